-- Every version of every loaded skill, and their WebAssembly components by SHA-256.
CREATE TABLE IF NOT EXISTS skill_registry_history (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    name      TEXT    NOT NULL,
    manifest  TEXT    NOT NULL,
    loaded_by TEXT    NOT NULL DEFAULT '',
    loaded_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS skill_registry_history_name_idx ON skill_registry_history (name, id);
CREATE TABLE IF NOT EXISTS skill_components (
    sha256    TEXT    PRIMARY KEY,
    component BLOB    NOT NULL,
    stored_at INTEGER NOT NULL
);
