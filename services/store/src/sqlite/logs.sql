-- Warnings, errors and skill-call outcomes (`clawdbot log`); `at` is Unix milliseconds.
CREATE TABLE IF NOT EXISTS logs (
    at         INTEGER NOT NULL,
    level      TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    instance   TEXT    NOT NULL,
    platform   TEXT    NOT NULL DEFAULT '',
    skill      TEXT    NOT NULL DEFAULT '',
    error_type TEXT    NOT NULL DEFAULT '',
    message    TEXT    NOT NULL,
    fields     TEXT    NOT NULL DEFAULT '',
    count      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS logs_at_idx ON logs (at);
CREATE INDEX IF NOT EXISTS logs_level_at_idx ON logs (level, at);
