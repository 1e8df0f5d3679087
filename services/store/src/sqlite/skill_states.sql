-- Skills switched on or off by `clawdbot skill enable|disable`; workers poll it.
CREATE TABLE IF NOT EXISTS skill_states (
    name       TEXT    PRIMARY KEY,
    enabled    INTEGER NOT NULL,
    changed_by TEXT    NOT NULL DEFAULT '',
    changed_at INTEGER NOT NULL
);
