-- Skills switched on or off cluster-wide by `clawdbot skill enable|disable`; workers poll it.
CREATE TABLE IF NOT EXISTS skill_states (
    name       text        PRIMARY KEY,
    enabled    boolean     NOT NULL,
    changed_by text        NOT NULL DEFAULT '',
    changed_at timestamptz NOT NULL DEFAULT now()
);
