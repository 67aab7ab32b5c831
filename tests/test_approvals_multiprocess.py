"""Two processes resolving one approval at the same moment: exactly one wins, the other gets
``AlreadyResolvedError``, and the journal holds one ``approval.resolved`` event per approval.

On SQLite the two transactions are serialized by the file's write lock; on PostgreSQL by the
conditional update of the pending row (docs/postgres.md). Each round releases both processes at
once from a barrier, so the race is real, not one process finishing before the other starts.
"""

from __future__ import annotations

import multiprocessing as mp

from palyra_journal import JournalStore
from palyra_journal.errors import AlreadyResolvedError

ROUNDS = 25
DECISIONS = ("allow", "deny")


def _resolver(path: str, backend: str, side: int, ids: list[str], barrier, outcomes) -> None:
    from palyra_journal import kernels
    kernels.set_backend(backend)
    with JournalStore.open(path, busy_timeout_ms=60_000) as store:
        for round_, approval_id in enumerate(ids):
            barrier.wait(60)
            try:
                store.approvals.resolve(approval_id, decision=DECISIONS[side], resolved_by=f"p{side}")
                outcomes[2 * round_ + side] = 1
            except AlreadyResolvedError as exc:
                assert approval_id in str(exc)
                outcomes[2 * round_ + side] = 2


def test_two_processes_resolve_one_approval_one_wins(db_path, backend):
    with JournalStore.open(db_path) as store:
        ids = [store.approvals.create(subject_type="tool", subject_id="shell.exec",
                                      request_summary=f"round {i}", principal="ops").approval_id
               for i in range(ROUNDS)]
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(2)
    outcomes = ctx.Array("b", 2 * ROUNDS, lock=False)  # 1 won, 2 AlreadyResolvedError, 0 neither
    procs = [ctx.Process(target=_resolver, args=(str(db_path), backend, side, ids, barrier, outcomes))
             for side in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with JournalStore.open(db_path, read_only=True) as store:
        for round_, approval_id in enumerate(ids):
            pair = sorted(outcomes[2 * round_: 2 * round_ + 2])
            assert pair == [1, 2], f"round {round_}: outcomes {pair}"
            winner = outcomes[2 * round_: 2 * round_ + 2].index(1)
            rec = store.approvals.get(approval_id)
            assert (rec.decision, rec.resolved_by) == (DECISIONS[winner], f"p{winner}")
        resolved = [e for e in store.iter_events() if e.kind == "approval.resolved"]
        assert sorted(e.payload["approval_id"] for e in resolved) == sorted(ids)
        assert store.verify().ok
