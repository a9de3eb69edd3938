-- The inventory, version 1 (SQLite). Times are Unix seconds. No secret is ever stored: keys are
-- fingerprints and redacted previews; locations are the report's location objects.
CREATE TABLE run (
    id INTEGER PRIMARY KEY,
    host TEXT NOT NULL,
    -- What the run covered (`audit`, or a scan's targets): runs of one host and scope follow
    -- each other, and "what changed" compares a run with the one before it.
    scope TEXT NOT NULL,
    generated_at INTEGER NOT NULL,
    recorded_at INTEGER NOT NULL,
    tool_version TEXT NOT NULL,
    -- The report's SHA-256: a report recorded twice is one run.
    report_sha256 TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL
);
CREATE INDEX run_stream ON run (host, scope, generated_at);
CREATE TABLE inventory_key (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    rule TEXT NOT NULL,
    provider TEXT NOT NULL,
    severity TEXT NOT NULL,
    redacted TEXT NOT NULL,
    first_seen INTEGER,
    last_seen INTEGER
);
CREATE TABLE key_run (
    run_id INTEGER NOT NULL REFERENCES run (id) ON DELETE CASCADE,
    key_id INTEGER NOT NULL REFERENCES inventory_key (id),
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    -- In a current place that is not detector's managed store.
    exposed INTEGER NOT NULL,
    violations TEXT NOT NULL,
    projects TEXT NOT NULL,
    environments TEXT NOT NULL,
    verification TEXT,
    verified_at INTEGER,
    PRIMARY KEY (run_id, key_id)
);
CREATE INDEX key_run_key ON key_run (key_id);
CREATE TABLE location (
    id INTEGER PRIMARY KEY,
    -- The SHA-256 of `detail`: one row per place.
    place TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    host TEXT,
    path TEXT NOT NULL,
    line INTEGER,
    detail TEXT NOT NULL
);
CREATE TABLE sighting (
    run_id INTEGER NOT NULL REFERENCES run (id) ON DELETE CASCADE,
    key_id INTEGER NOT NULL REFERENCES inventory_key (id),
    location_id INTEGER NOT NULL REFERENCES location (id),
    is_current INTEGER NOT NULL,
    PRIMARY KEY (run_id, key_id, location_id)
);
