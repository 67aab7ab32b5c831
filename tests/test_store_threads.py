"""One store shared by several threads, on both engines: the threads take turns on the store's
one connection (docs/postgres.md "Connections"), so writers give one gapless chain and readers
(the journal, a memory search over the in-memory index) see only committed states."""

from __future__ import annotations

import threading

from palyra_journal import JournalStore

WRITERS, PER_WRITER = 4, 40


def test_threads_sharing_a_store_write_one_chain_and_read_committed_states(db_path, backend):
    store = JournalStore.open(db_path)
    errors: list[BaseException] = []
    seen_heads: list[int] = []
    found: list[int] = []
    done = threading.Event()

    def writer(w: int) -> None:
        try:
            for i in range(PER_WRITER):
                with store.write():  # a nested write joins this thread's transaction
                    store.append("k", {"w": w, "i": i})
                    store.memory.ingest(f"note {w} {i}", principal="p")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            while not done.is_set():
                head = store.head()
                seen_heads.append(0 if head is None else head.seq)
                hits = store.memory.search("note", principal="p", top_k=WRITERS * PER_WRITER, mode="lexical")
                found.append(len(hits))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    watcher = threading.Thread(target=reader)
    watcher.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watcher.join()
    try:
        assert errors == []
        total = WRITERS * PER_WRITER
        # every write appended its event and its memory event together: heads come in pairs
        # of committed writes, never half of one
        assert seen_heads == sorted(seen_heads) and all(s % 2 == 0 for s in seen_heads)
        assert found == sorted(found) and all(n <= total for n in found)
        report = store.verify()
        assert report.ok and report.checked == 2 * total
        seqs = [r.seq for r in store.events(limit=10 * total)]
        assert seqs == list(range(1, 2 * total + 1))
        assert len(store.memory.search("note", principal="p", top_k=WRITERS * PER_WRITER, mode="lexical")) == total
    finally:
        store.close()
