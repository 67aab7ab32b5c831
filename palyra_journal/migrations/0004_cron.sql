-- Cron (docs/cron.md): jobs, their runs, and pending retries / queued runs.
-- A job's schedule is JSON ({"type":"cron"|"every"|"at", ...}). next_slot_unix_ms is the slot the
-- schedule fires next; next_run_at_unix_ms is that slot plus its jitter (when it becomes due).
CREATE TABLE cron_jobs (
    job_id              TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    prompt              TEXT NOT NULL,
    owner_principal     TEXT NOT NULL,
    channel             TEXT,
    session_key         TEXT,
    session_label       TEXT,
    schedule_json       TEXT NOT NULL,
    enabled             INTEGER NOT NULL CHECK (enabled IN (0, 1)),
    concurrency_policy  TEXT NOT NULL CHECK (concurrency_policy IN ('forbid', 'replace', 'queue_one')),
    misfire_policy      TEXT NOT NULL CHECK (misfire_policy IN ('skip', 'catch_up')),
    max_attempts        INTEGER NOT NULL CHECK (max_attempts >= 1),
    backoff_ms          INTEGER NOT NULL CHECK (backoff_ms >= 0),
    jitter_ms           INTEGER NOT NULL CHECK (jitter_ms BETWEEN 0 AND 60000),
    next_slot_unix_ms   INTEGER,
    next_run_at_unix_ms INTEGER,
    last_run_at_unix_ms INTEGER,
    queued_run          INTEGER,
    created_at_unix_ms  INTEGER NOT NULL,
    updated_at_unix_ms  INTEGER NOT NULL
);
CREATE INDEX cron_jobs_due ON cron_jobs(enabled, next_run_at_unix_ms);
CREATE INDEX cron_jobs_owner ON cron_jobs(owner_principal, job_id);

CREATE TABLE cron_runs (
    run_id                   TEXT PRIMARY KEY,
    job_id                   TEXT NOT NULL REFERENCES cron_jobs(job_id) ON DELETE CASCADE,
    attempt                  INTEGER NOT NULL CHECK (attempt >= 1),
    status                   TEXT NOT NULL CHECK (status IN ('accepted', 'running', 'succeeded',
                                 'failed', 'skipped', 'denied', 'cancelled')),
    worker_id                TEXT,
    lease_expires_at_unix_ms INTEGER,
    scheduled_for_unix_ms    INTEGER NOT NULL,
    started_at_unix_ms       INTEGER,
    finished_at_unix_ms      INTEGER,
    session_id               TEXT,
    orchestrator_run_id      TEXT,
    error_kind               TEXT,
    error_message            TEXT,
    model_tokens_in          INTEGER NOT NULL DEFAULT 0,
    model_tokens_out         INTEGER NOT NULL DEFAULT 0,
    tool_calls               INTEGER NOT NULL DEFAULT 0,
    tool_denies              INTEGER NOT NULL DEFAULT 0,
    claimed_at_unix_ms       INTEGER NOT NULL
);
CREATE INDEX cron_runs_job ON cron_runs(job_id, run_id);
CREATE INDEX cron_runs_job_active ON cron_runs(job_id)
    WHERE status IN ('accepted', 'running');
CREATE INDEX cron_runs_lease ON cron_runs(lease_expires_at_unix_ms)
    WHERE status IN ('accepted', 'running');

-- Runs waiting for their time: retries (attempt >= 2, after backoff) and queued runs (queue_one,
-- released when the active run ends). claim_due turns a due row into a run and deletes it.
CREATE TABLE cron_pending (
    pending_id            INTEGER PRIMARY KEY,
    job_id                TEXT NOT NULL REFERENCES cron_jobs(job_id) ON DELETE CASCADE,
    kind                  TEXT NOT NULL CHECK (kind IN ('retry', 'queued')),
    scheduled_for_unix_ms INTEGER NOT NULL,
    attempt               INTEGER NOT NULL CHECK (attempt >= 1),
    due_at_unix_ms        INTEGER NOT NULL
);
CREATE INDEX cron_pending_due ON cron_pending(due_at_unix_ms);
CREATE INDEX cron_pending_job ON cron_pending(job_id);
