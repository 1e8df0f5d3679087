-- Message history: one row per inbound envelope and per outbound reply, partitioned by month
-- so that old months can be detached or dropped whole. The primary key includes the partition
-- key (Postgres requires it) and the direction, so that replays insert nothing twice.
CREATE TABLE IF NOT EXISTS messages (
    id                  text        NOT NULL,
    direction           text        NOT NULL CHECK (direction IN ('in', 'out')),
    platform            text        NOT NULL,
    bot_id              text        NOT NULL,
    conversation_kind   text        NOT NULL,
    conversation_id     text        NOT NULL,
    sender_id           text        NOT NULL DEFAULT '',
    platform_message_id text        NOT NULL DEFAULT '',
    event_type          text        NOT NULL DEFAULT '',
    skill               text        NOT NULL DEFAULT '',
    in_reply_to         text        NOT NULL DEFAULT '',
    status              text        NOT NULL DEFAULT '',
    text                text        NOT NULL,
    -- The protobuf Envelope (in) or DeliveryRecord (out), whole.
    payload             bytea       NOT NULL,
    created_at          timestamptz NOT NULL,
    PRIMARY KEY (created_at, direction, id)
) PARTITION BY RANGE (created_at);

-- Catches rows of a month whose partition does not exist yet; the writer creates month
-- partitions ahead of the rows, so this stays empty in normal operation.
CREATE TABLE IF NOT EXISTS messages_default PARTITION OF messages DEFAULT;

-- "A conversation over time", the question history answers most.
CREATE INDEX IF NOT EXISTS messages_conversation_idx
    ON messages (platform, bot_id, conversation_id, created_at);
