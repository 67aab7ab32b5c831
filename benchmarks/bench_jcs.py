"""The JSON part of every append (report section 0, kernels): canonicalize event payloads.

Phase 2 target: canonicalization (redaction included) within 2x orjson ``dumps(OPT_SORT_KEYS)`` on
a ~490-byte tool event (nested results, a usage object), once with 5 doubles and once with the
doubles turned into integers. Ours runs both as one call per event and through the batch path
(``canonicalize_many`` over 1 000 events, the path ``append_many`` takes), rate per event.

Other workloads (each implementation on the same payload in the same run):
``canonicalize value``: a Python dict -> canonical text (ours native/python with redaction on,
json.dumps(sort_keys, compact, ensure_ascii=False), orjson OPT_SORT_KEYS, rfc8785.dumps);
``canonicalize text``: the same payload as JSON text (ours parse+redact+write, versus
json.loads + json.dumps and orjson.loads + orjson.dumps). Missing peers are skipped.
"""

from __future__ import annotations

import json

import pytest

from .common import describe

PAYLOAD = {
    "tool": "web.fetch",
    "url": "https://example.com/docs/getting-started?lang=fr",
    "status": 200,
    "elapsed_ms": 183.25,
    "title": "Démarrage rapide — guide de l'utilisateur",
    "tags": ["docs", "fetch", "fr"],
    "request": {"method": "GET", "retries": 0, "cache": True, "agent": "palyra/1.0"},
    "summary": "The page explains installation, configuration and the first steps of the CLI.",
}
TEXT = json.dumps(PAYLOAD, ensure_ascii=False).encode("utf-8")

TOOL_EVENT = {
    "tool": "web.search", "call_id": "call_8f3a2b", "status": "ok",
    "query": "python canonical json implementation",
    "results": [
        {"url": "https://example.com/a", "title": "Canonical JSON in Python", "score": 0.9132},
        {"url": "https://example.org/b", "title": "RFC 8785 explained", "score": 0.8721},
        {"url": "https://example.net/c", "title": "JSON number formatting", "score": 0.7345},
    ],
    "elapsed_ms": 183.25,
    "usage": {"prompt_tokens": 812, "completion_tokens": 64, "total_tokens": 876},
    "cached": False,
}


def _ints(v):
    if isinstance(v, float):
        return int(v * 1000)
    if isinstance(v, dict):
        return {k: _ints(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_ints(x) for x in v]
    return v


TOOL_EVENTS = {"doubles": TOOL_EVENT, "ints": _ints(TOOL_EVENT)}
BATCH = 1000


@pytest.mark.parametrize("shape", sorted(TOOL_EVENTS))
@pytest.mark.parametrize("impl", ["native", "native batch", "orjson", "json.dumps"])
def test_canonicalize_tool_event(benchmark, shape, impl):
    """The phase-2 target row: ours (redaction on) against orjson on the same event."""
    event = TOOL_EVENTS[shape]
    workload = f"canonicalize tool event ({shape})"
    if impl == "orjson":
        orjson = pytest.importorskip("orjson")
        describe(benchmark, section=0, workload=workload, impl="orjson", role="peer", items=1)
        benchmark(orjson.dumps, event, option=orjson.OPT_SORT_KEYS)
    elif impl == "json.dumps":
        describe(benchmark, section=0, workload=workload, impl="json.dumps", role="peer", items=1)
        benchmark(json.dumps, event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    elif impl == "native":
        mod = _ours("native")
        describe(benchmark, section=0, workload=workload, impl="palyra native", role="ours", items=1)
        text, redacted = benchmark(mod.canonicalize, event)
        assert not redacted and text == _ours("python").canonicalize(event)[0]
    else:
        mod = _ours("native")
        batch = [event] * BATCH
        describe(benchmark, section=0, workload=workload, impl="palyra native batch", role="ours",
                 items=BATCH)
        texts, flags = benchmark(mod.canonicalize_many, batch)
        assert len(texts) == BATCH and not any(flags)


def _ours(backend: str):
    if backend == "native":
        from palyra_journal.kernels import native_jcs as mod
    else:
        from palyra_journal.kernels import pure_jcs as mod
    return mod


@pytest.mark.benchmark(group="canonicalize value")
@pytest.mark.parametrize("impl", ["native", "python"])
def test_canonicalize_value_ours(benchmark, impl):
    mod = _ours(impl)
    describe(benchmark, section=0, workload="canonicalize value", impl=f"palyra {impl}",
             role="ours", items=1)
    text, _ = benchmark(mod.canonicalize, PAYLOAD)
    assert 300 <= len(text.encode()) <= 360


@pytest.mark.benchmark(group="canonicalize value")
def test_canonicalize_value_json(benchmark):
    describe(benchmark, section=0, workload="canonicalize value", impl="json.dumps", role="peer", items=1)
    benchmark(json.dumps, PAYLOAD, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.benchmark(group="canonicalize value")
def test_canonicalize_value_orjson(benchmark):
    orjson = pytest.importorskip("orjson")
    describe(benchmark, section=0, workload="canonicalize value", impl="orjson", role="peer", items=1)
    benchmark(orjson.dumps, PAYLOAD, option=orjson.OPT_SORT_KEYS)


@pytest.mark.benchmark(group="canonicalize value")
def test_canonicalize_value_rfc8785(benchmark):
    rfc8785 = pytest.importorskip("rfc8785")
    describe(benchmark, section=0, workload="canonicalize value", impl="rfc8785", role="peer", items=1)
    benchmark(rfc8785.dumps, PAYLOAD)


@pytest.mark.benchmark(group="canonicalize text")
@pytest.mark.parametrize("impl", ["native", "python"])
def test_canonicalize_text_ours(benchmark, impl):
    mod = _ours(impl)
    describe(benchmark, section=0, workload="canonicalize text", impl=f"palyra {impl}",
             role="ours", items=1)
    text, _ = benchmark(mod.canonicalize_text, TEXT)
    assert text == _ours("python").canonicalize(PAYLOAD)[0]


@pytest.mark.benchmark(group="canonicalize text")
def test_canonicalize_text_json(benchmark):
    describe(benchmark, section=0, workload="canonicalize text", impl="json", role="peer", items=1)
    benchmark(lambda: json.dumps(json.loads(TEXT), sort_keys=True, separators=(",", ":"),
                                 ensure_ascii=False))


@pytest.mark.benchmark(group="canonicalize text")
def test_canonicalize_text_orjson(benchmark):
    orjson = pytest.importorskip("orjson")
    describe(benchmark, section=0, workload="canonicalize text", impl="orjson", role="peer", items=1)
    benchmark(lambda: orjson.dumps(orjson.loads(TEXT), option=orjson.OPT_SORT_KEYS))
