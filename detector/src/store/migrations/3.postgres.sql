-- Version 3: the agent's records (`detector store ingest` of its JSON-lines logs) and the
-- breaks of their hash chain. A record is known by its host, seq and hash (SHA-256 of its
-- line), so a log ingested twice adds nothing. Who opened what, never the line itself: its
-- command line is redacted only as far as the rules recognise a secret, and the store holds
-- no secret, ever.
CREATE TABLE agent_event (
    host TEXT NOT NULL,
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    -- Unix seconds (NULL: the record's time is not readable).
    time BIGINT,
    kind TEXT NOT NULL,
    -- The file opened or changed.
    path TEXT,
    pid BIGINT,
    uid BIGINT,
    comm TEXT,
    exe TEXT,
    -- The opener's container (its JSON), when it runs in one.
    container TEXT,
    verdict TEXT,
    policy_rule TEXT,
    mcp_client TEXT,
    mcp_server TEXT,
    -- Where it was first ingested from.
    file TEXT NOT NULL,
    line BIGINT NOT NULL,
    PRIMARY KEY (host, seq, hash)
);
CREATE INDEX agent_event_path ON agent_event (path);
CREATE TABLE chain_break (
    -- The SHA-256 of host, file, line and what: a break ingested twice is one row.
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    file TEXT NOT NULL,
    line BIGINT NOT NULL,
    seq BIGINT,
    -- The problem as `detector log verify` says it.
    what TEXT NOT NULL,
    found_at BIGINT NOT NULL
);
