-- Credentials the cluster keeps itself (`clawdbot security`), sealed with AES-256-GCM under a
-- master key from the environment; `key_id` names that key so a rotation finds what to re-seal.
CREATE TABLE IF NOT EXISTS secrets (
    name       text        PRIMARY KEY,
    kind       text        NOT NULL,
    scope      text        NOT NULL DEFAULT '',
    key_id     text        NOT NULL,
    sealed     bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz
);
