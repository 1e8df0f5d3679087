-- Warnings, errors and skill-call outcomes of every process (`clawdbot log show|analyze`).
-- `count` > 1 is a summary row (successful skill calls are counted, not logged one by one).
-- Every query is bounded by `at`, so the (at) and (level, at) indexes keep them fast.
CREATE TABLE IF NOT EXISTS logs (
    at         timestamptz NOT NULL DEFAULT now(),
    level      text        NOT NULL,
    role       text        NOT NULL,
    instance   text        NOT NULL,
    platform   text        NOT NULL DEFAULT '',
    skill      text        NOT NULL DEFAULT '',
    error_type text        NOT NULL DEFAULT '',
    message    text        NOT NULL,
    fields     text        NOT NULL DEFAULT '',
    count      bigint      NOT NULL DEFAULT 1
);
CREATE INDEX IF NOT EXISTS logs_at_idx ON logs (at);
CREATE INDEX IF NOT EXISTS logs_level_at_idx ON logs (level, at);
