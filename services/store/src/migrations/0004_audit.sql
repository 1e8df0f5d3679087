-- The audit trail (`clawdbot admin audit`): admin actions, permission denials, calls of
-- admin-only skills. Recorded only while enabled; rows older than the retention are purged.
CREATE TABLE IF NOT EXISTS audit (
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL,
    action   text        NOT NULL,
    target   text        NOT NULL,
    decision text        NOT NULL,
    reason   text        NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_at_idx ON audit (at);
CREATE TABLE IF NOT EXISTS audit_settings (
    id             int     PRIMARY KEY CHECK (id = 1),
    enabled        boolean NOT NULL,
    retention_days int     NOT NULL
);
