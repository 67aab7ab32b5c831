"""Fuzzing: hypothesis differential tests (native vs pure vs oracle) and an atheris harness."""
