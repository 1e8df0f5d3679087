-- Sealed credentials (`clawdbot security`); times are Unix milliseconds.
CREATE TABLE IF NOT EXISTS secrets (
    name       TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL,
    scope      TEXT    NOT NULL DEFAULT '',
    key_id     TEXT    NOT NULL,
    sealed     BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
