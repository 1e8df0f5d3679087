-- Message history in SQLite (the embedded store): the same rows as the Postgres `messages`
-- table, without partitions (one file, one process). `created_at` is Unix milliseconds.
CREATE TABLE IF NOT EXISTS messages (
    id                  TEXT    NOT NULL,
    direction           TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    platform            TEXT    NOT NULL,
    bot_id              TEXT    NOT NULL,
    conversation_kind   TEXT    NOT NULL,
    conversation_id     TEXT    NOT NULL,
    sender_id           TEXT    NOT NULL DEFAULT '',
    platform_message_id TEXT    NOT NULL DEFAULT '',
    event_type          TEXT    NOT NULL DEFAULT '',
    skill               TEXT    NOT NULL DEFAULT '',
    in_reply_to         TEXT    NOT NULL DEFAULT '',
    status              TEXT    NOT NULL DEFAULT '',
    text                TEXT    NOT NULL,
    payload             BLOB    NOT NULL,
    created_at          INTEGER NOT NULL,
    PRIMARY KEY (id, direction)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS messages_conversation_idx
    ON messages (platform, bot_id, conversation_id, created_at);
