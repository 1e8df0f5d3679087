-- Every version of every loaded skill, newest last (`clawdbot skill rollback` steps back one),
-- and the WebAssembly components they run, by SHA-256 (loading a version twice stores it once).
CREATE TABLE IF NOT EXISTS skill_registry_history (
    id        bigserial   PRIMARY KEY,
    name      text        NOT NULL,
    manifest  text        NOT NULL,
    loaded_by text        NOT NULL DEFAULT '',
    loaded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS skill_registry_history_name_idx ON skill_registry_history (name, id);
CREATE TABLE IF NOT EXISTS skill_components (
    sha256    text        PRIMARY KEY,
    component bytea       NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
