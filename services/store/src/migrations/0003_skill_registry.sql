-- Skills loaded on a running cluster by `clawdbot skill load` (their manifests, as JSON);
-- workers poll it and start serving new ones within a second.
CREATE TABLE IF NOT EXISTS skill_registry (
    name      text        PRIMARY KEY,
    manifest  text        NOT NULL,
    loaded_by text        NOT NULL DEFAULT '',
    loaded_at timestamptz NOT NULL DEFAULT now()
);
