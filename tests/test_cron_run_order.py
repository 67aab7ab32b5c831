"""``list_runs`` is "ordered by run_id (claim order)": run ids are ULIDs, monotonic within a
millisecond per process, so runs claimed in one millisecond still list in the order claimed."""

from __future__ import annotations

import palyra_journal as pj
from palyra_journal import Every

T0 = 1_700_000_000_000
JOBS = 300


def test_runs_claimed_in_one_millisecond_list_in_claim_order(db_path, backend):
    with pj.JournalStore.open(db_path, clock=lambda: T0) as store:  # the clock never moves
        for i in range(JOBS):
            # job ids in reverse of the claim order, so no other key can explain the order
            store.cron.create_job(name=f"job{i}", prompt="p", owner_principal="o", channel=None,
                                  schedule=Every(1_000), job_id=f"job{JOBS - i:04d}")
        claimed = []
        while len(claimed) < JOBS:  # several claim calls, all in the same millisecond
            got = store.cron.claim_due(worker_id="w", limit=64, now_unix_ms=T0 + 1_000)
            assert got
            claimed += [c.run.run_id for c in got]
        listed = [r.run_id for r in store.cron.list_runs(limit=1_000)]
    assert len(set(claimed)) == JOBS
    assert listed == claimed
