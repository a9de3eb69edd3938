-- Version 4: each agent record keeps its `prev` (the hash of the record before it), so that a
-- log ingested after the file it was rotated from, or before the one rotated from it, is
-- checked against the records the store already holds where the two files meet. Records
-- ingested before this version have none (NULL).
ALTER TABLE agent_event ADD COLUMN prev TEXT;
