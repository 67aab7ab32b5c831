"""Reliability and security harness: crash safety, concurrency, hostile input, file modes."""
