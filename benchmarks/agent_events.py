"""Realistic agent-journal events, shared by the redaction test and the ingest benchmark.

The shapes of a phase-1 field journal: agent messages with LLM usage figures (``usage``,
``max_tokens``, ``tokens: {in, out}``, counting keys), tool calls with nested results and doubles,
tool output and log lines with an occasional secret inside, HTTP requests with headers. A quarter
of the events are ``message.agent``; every usage number must survive redaction, and the secrets
placed in text must be masked while the rest of the line is kept.
"""

from __future__ import annotations

import json
import random
from typing import Iterator

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def agent_message(rng: random.Random, i: int) -> dict:
    p, c = rng.randrange(10, 8000), rng.randrange(1, 2000)
    return {"kind": "message.agent", "session_id": f"s{i % 97}", "actor": "agent",
            "payload": {"role": "assistant", "model": "gpt-x", "text": f"Answer {i}: see the notes.",
                        "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c},
                        "max_tokens": 4096, "tokens": {"in": p, "out": c}, "token_count": c,
                        "token_limit": 8192, "temperature": 0.2, "latency_ms": rng.random() * 900}}


def tool_call(rng: random.Random, i: int) -> dict:
    return {"kind": "tool.result", "session_id": f"s{i % 97}", "actor": "tool",
            "payload": {"tool": "web.search", "query": f"release notes {i}",
                        "results": [{"url": f"https://example.com/{i}/{k}", "score": rng.random(),
                                     "rank": k} for k in range(3)],
                        "elapsed_ms": rng.random() * 400, "bytes": float(rng.randrange(1, 10**9)) * 1e7}}


def tool_output(rng: random.Random, i: int) -> dict:
    secret = rng.random() < 0.1
    line = (f"2026-01-01T00:00:{i % 60:02d}Z GET /api/v1/items?page={i} 200 "
            + ("token=" + "%016x" % rng.getrandbits(64) if secret else "cache=hit"))
    return {"kind": "tool.output", "session_id": f"s{i % 97}", "actor": "tool",
            "payload": {"command": "curl -s https://api.example.com/items", "exit_code": 0,
                        "stdout": line, "stderr": "", "duration_s": rng.random()}}


def http_request(rng: random.Random, i: int) -> dict:
    return {"kind": "http.request", "actor": "gateway",
            "payload": {"method": "POST", "path": "/v1/chat", "status": 200,
                        "headers": {"Authorization": "Bearer sk-" + "a" * 24,
                                    "Content-Type": "application/json"},
                        "request_id": f"req-{i}", "nanos": 1.5e16 + i}}


_MAKERS = (agent_message, tool_call, tool_output, http_request)


def events(n: int, seed: int = 7) -> Iterator[dict]:
    """``n`` events, a quarter of each shape, deterministic for a seed."""
    rng = random.Random(seed)
    for i in range(n):
        yield _MAKERS[i % 4](rng, i)


def jsonl(n: int, seed: int = 7) -> bytes:
    """The same events as JSON lines, as ``ingest_jsonl`` reads them."""
    return b"".join(json.dumps(e).encode() + b"\n" for e in events(n, seed))
