-- Skills loaded by `clawdbot skill load` (their manifests, as JSON); workers poll it.
CREATE TABLE IF NOT EXISTS skill_registry (
    name      TEXT    PRIMARY KEY,
    manifest  TEXT    NOT NULL,
    loaded_by TEXT    NOT NULL DEFAULT '',
    loaded_at INTEGER NOT NULL
);
