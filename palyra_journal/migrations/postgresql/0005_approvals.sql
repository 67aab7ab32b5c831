-- Approvals (docs/approvals.md), PostgreSQL twin of ../0005_approvals.sql.
-- A request is pending while decision IS NULL; a decision is written once and never changes.
-- request_summary and reason are stored redacted; policy_snapshot_json and prompt_json hold the
-- canonical JSON of the redacted values.
CREATE TABLE approvals (
    approval_id          TEXT PRIMARY KEY,
    subject_type         TEXT NOT NULL CHECK (subject_type IN ('tool', 'channel_send',
                             'secret_access', 'browser_action', 'node_capability',
                             'device_pairing')),
    subject_id           TEXT NOT NULL,
    request_summary      TEXT NOT NULL,
    principal            TEXT NOT NULL,
    session_id           TEXT,
    run_id               TEXT,
    device_id            TEXT,
    channel              TEXT,
    policy_snapshot_json TEXT,
    prompt_json          TEXT,
    requested_at_unix_ms BIGINT NOT NULL,
    expires_at_unix_ms   BIGINT,
    decision             TEXT CHECK (decision IN ('allow', 'deny', 'timeout', 'error')),
    scope                TEXT CHECK (scope IN ('once', 'session', 'timeboxed')),
    reason               TEXT,
    scope_ttl_ms         BIGINT,
    resolved_by          TEXT,
    resolved_at_unix_ms  BIGINT
);
CREATE INDEX approvals_principal_requested ON approvals(principal, requested_at_unix_ms);
CREATE INDEX approvals_subject ON approvals(subject_id);
CREATE INDEX approvals_decision_requested ON approvals(decision, requested_at_unix_ms);
CREATE INDEX approvals_run ON approvals(run_id);
CREATE INDEX approvals_session ON approvals(session_id);
-- A decision is evidence: once written it cannot be changed, and no request is ever deleted.
CREATE TRIGGER approvals_decision_final BEFORE UPDATE ON approvals
    FOR EACH ROW WHEN (OLD.decision IS NOT NULL)
    EXECUTE FUNCTION palyra_refuse('approvals: a resolved decision never changes');
CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
    FOR EACH ROW EXECUTE FUNCTION palyra_refuse('approvals: requests are never deleted');
