"""``palyra-journal memory add|search|list|delete|maintain|reembed DB ...``."""

from __future__ import annotations

import argparse
import sys
import time

from ..errors import InvalidPathError, InvalidPayloadError
from . import CREATE, READ, WRITE, add_command, add_db, emit, open_db

EMBEDDING_HELP = ("embedding provider: hash[:DIMS] (default hash:64), random[:DIMS[:SEED]] "
                  "(random projection), st:MODEL (a local sentence-transformers model)")


def provider_from_spec(spec: str):
    """``hash:64`` / ``random:384:0`` / ``st:MODEL`` → an embedding provider."""
    from ..memory.embeddings import (
        HashEmbeddingProvider, RandomProjectionProvider, SentenceTransformerProvider,
    )
    kind, _, rest = spec.partition(":")
    try:
        if kind == "hash":
            return HashEmbeddingProvider(int(rest) if rest else 64)
        if kind == "random":
            dims, _, seed = rest.partition(":")
            return RandomProjectionProvider(int(dims) if dims else 384, seed=int(seed) if seed else 0)
    except ValueError as exc:
        raise InvalidPayloadError(f"--embedding {spec!r}: {exc}") from exc
    if kind == "st" and rest:
        return SentenceTransformerProvider(rest)
    raise InvalidPayloadError(f"--embedding {spec!r}: expected hash[:DIMS], random[:DIMS[:SEED]] "
                              "or st:MODEL")


def _common(p: argparse.ArgumentParser, mode: str, *, scope: bool = True) -> None:
    add_db(p, mode)
    p.add_argument("--embedding", default="hash:64", metavar="SPEC", help=EMBEDDING_HELP)
    if scope:
        p.add_argument("--principal", required=True)
        p.add_argument("--channel")
        p.add_argument("--session-id")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tag", action="append", default=[], dest="tags",
                   help="only items carrying this tag (repeat: all of them)")
    p.add_argument("--source", action="append", default=[], dest="sources",
                   help="only items from this source (repeat: any of them)")


def register(sub) -> None:
    p = sub.add_parser("memory", help="add, search, list, delete, maintain and re-embed memories",
                       description="Memories: ingest text, hybrid (FTS5 + exact vector) search "
                       "scoped by principal/channel/session, retention and re-embedding.")
    msub = p.add_subparsers(dest="memory_command", metavar="ACTION", parser_class=type(p))

    a = add_command(msub, "add", "store one memory", run_add,
                    description="Store one memory. CONTENT is text, @FILE, or - for stdin.")
    _common(a, CREATE)
    a.add_argument("content", metavar="CONTENT")
    a.add_argument("--source", default="manual")
    a.add_argument("--tag", action="append", default=[], dest="tags")
    a.add_argument("--confidence", type=float)
    a.add_argument("--ttl", type=int, dest="ttl_unix_ms", metavar="UNIX_MS",
                   help="absolute expiry time in Unix ms")
    a.add_argument("--id", dest="memory_id")

    s = add_command(msub, "search", "hybrid search within a scope", run_search,
                    description="Search memories of a principal (optionally one channel/session) "
                    "by FTS5 bm25 and exact cosine, fused into one ranking (docs/memory.md).")
    _common(s, READ)
    s.add_argument("query", metavar="QUERY")
    s.add_argument("-k", "--top-k", type=int, default=8)
    s.add_argument("--min-score", type=float, default=0.0)
    s.add_argument("--mode", choices=("hybrid", "lexical", "vector"), default="hybrid")
    _filters(s)

    ls = add_command(msub, "list", "list memories of a scope, oldest first", run_list)
    _common(ls, READ)
    ls.add_argument("--after", dest="after_id", metavar="MEMORY_ID")
    ls.add_argument("--limit", type=int, default=100)
    _filters(ls)

    d = add_command(msub, "delete", "delete one memory (exit 1 when not found)", run_delete)
    add_db(d, WRITE)
    d.add_argument("memory_id", metavar="MEMORY_ID")
    d.add_argument("--principal", required=True)
    d.add_argument("--channel")
    d.add_argument("--embedding", default="hash:64", metavar="SPEC", help=EMBEDDING_HELP)

    m = add_command(msub, "maintain", "delete expired / old / over-cap memories", run_maintain,
                    description="Delete expired items, items older than --ttl-days, and the "
                    "oldest items over --max-entries / --max-bytes; optionally VACUUM.")
    _common(m, WRITE, scope=False)
    m.add_argument("--max-entries", type=int)
    m.add_argument("--max-bytes", type=int)
    m.add_argument("--ttl-days", type=float)
    m.add_argument("--vacuum", action="store_true")

    r = add_command(msub, "reembed", "re-embed items made by another model", run_reembed,
                    description="Re-embed, in batches, every memory whose stored model, dims or "
                    "version differ from the --embedding provider's. Resumable.")
    _common(r, WRITE, scope=False)
    r.add_argument("--batch-size", type=int, default=256)


def _open(args: argparse.Namespace):
    return open_db(args, embedding_provider=provider_from_spec(args.embedding))


def _read_content(value: str) -> str:
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as f:
                return f.read()
        except OSError as exc:
            raise InvalidPathError(f"cannot read {value[1:]!r}: {exc.strerror}") from exc
    return value


def _item_line(item) -> str:
    ts = time.strftime("%Y-%m-%d %H:%M", time.gmtime(item.created_at_unix_ms / 1000))
    text = item.content if len(item.content) <= 80 else item.content[:77] + "..."
    tags = f" [{', '.join(item.tags)}]" if item.tags else ""
    return f"{item.memory_id}  {ts}  {item.source:<10} {text}{tags}"


def run_add(args: argparse.Namespace) -> int:
    with _open(args) as store:
        item = store.memory.ingest(
            _read_content(args.content), principal=args.principal, channel=args.channel,
            session_id=args.session_id, source=args.source, tags=args.tags,
            confidence=args.confidence, ttl_unix_ms=args.ttl_unix_ms, memory_id=args.memory_id)
    emit(args, item, lambda: f"added {item.memory_id}")
    return 0


def run_search(args: argparse.Namespace) -> int:
    with _open(args) as store:
        hits = store.memory.search(
            args.query, principal=args.principal, channel=args.channel, session_id=args.session_id,
            top_k=args.top_k, min_score=args.min_score, tags=args.tags, sources=args.sources,
            mode=args.mode)

    def human() -> str:
        if not hits:
            return "no matches"
        return "\n".join(f"{h.score:.3f}  {h.item.memory_id}  {h.snippet}" for h in hits)

    emit(args, hits, human)
    return 0


def run_list(args: argparse.Namespace) -> int:
    with _open(args) as store:
        items = store.memory.list(principal=args.principal, channel=args.channel,
                                  session_id=args.session_id, after_id=args.after_id,
                                  limit=args.limit, tags=args.tags, sources=args.sources)
    emit(args, items, lambda: "\n".join(_item_line(i) for i in items) or "no memories")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    with _open(args) as store:
        deleted = store.memory.delete(args.memory_id, principal=args.principal,
                                      channel=args.channel)
    emit(args, {"deleted": deleted, "memory_id": args.memory_id},
         lambda: f"deleted {args.memory_id}" if deleted else f"{args.memory_id}: not found")
    return 0 if deleted else 1


def run_maintain(args: argparse.Namespace) -> int:
    with _open(args) as store:
        report = store.memory.maintain(max_entries=args.max_entries, max_bytes=args.max_bytes,
                                       ttl_days=args.ttl_days, vacuum=args.vacuum)
    emit(args, report, lambda: (
        f"deleted {report.deleted} (expired {report.deleted_expired}, ttl {report.deleted_ttl}, "
        f"entries cap {report.deleted_for_entries}, bytes cap {report.deleted_for_bytes}); "
        f"{report.entries_after} items, {report.bytes_after} bytes left"
        + ("; vacuumed" if report.vacuumed else "")))
    return 0


def run_reembed(args: argparse.Namespace) -> int:
    with _open(args) as store:
        count = store.memory.reembed(batch_size=args.batch_size, progress=not args.json)
        model = store.embedding_provider.model_name
    emit(args, {"reembedded": count, "model": model}, lambda: f"re-embedded {count} with {model}")
    return 0
