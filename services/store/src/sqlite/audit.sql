-- The audit trail (`clawdbot admin audit`); `at` is Unix milliseconds.
CREATE TABLE IF NOT EXISTS audit (
    at       INTEGER NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    target   TEXT    NOT NULL,
    decision TEXT    NOT NULL,
    reason   TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS audit_at_idx ON audit (at);
CREATE TABLE IF NOT EXISTS audit_settings (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    enabled        INTEGER NOT NULL,
    retention_days INTEGER NOT NULL
);
