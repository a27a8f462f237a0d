-- The full audit trail of tool calls: status, category, risk, effect and the stored result.
ALTER TABLE tool_calls ADD COLUMN status TEXT NOT NULL DEFAULT 'running'
    CHECK (status IN ('running', 'succeeded', 'failed', 'denied', 'rejected', 'cancelled', 'interrupted'));
-- NULL for calls rejected before their tool was known (unknown name, malformed arguments).
ALTER TABLE tool_calls ADD COLUMN category TEXT;
ALTER TABLE tool_calls ADD COLUMN risk TEXT;
ALTER TABLE tool_calls ADD COLUMN effect TEXT;
ALTER TABLE tool_calls ADD COLUMN result_json TEXT;
ALTER TABLE tool_calls ADD COLUMN ended_at INTEGER;
CREATE INDEX tool_calls_category ON tool_calls (category, decision, started_at);

-- Every policy evaluation and every rule that matched.
CREATE TABLE policy_decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL REFERENCES tool_calls (id),
    tool TEXT NOT NULL,
    provenance TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('allow', 'prompt', 'forbid')),
    rules_json TEXT NOT NULL,
    decided_at INTEGER NOT NULL
) STRICT;
CREATE INDEX policy_decisions_call ON policy_decisions (call_id);

-- The receipt chain (seed 004): one content-addressed receipt per state-changing call.
CREATE TABLE receipts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    call_id TEXT NOT NULL UNIQUE REFERENCES tool_calls (id),
    prev_hash TEXT NOT NULL,
    tool TEXT NOT NULL,
    args_hash TEXT NOT NULL,
    result_hash TEXT NOT NULL,
    decision TEXT NOT NULL,
    provenance TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    hash TEXT NOT NULL UNIQUE
) STRICT;

-- Who wrote what: content written under external provenance stays external when read back.
CREATE TABLE content_provenance (
    path TEXT PRIMARY KEY,
    provenance TEXT NOT NULL,
    call_id TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- Ports the agent exposed.
CREATE TABLE exposed_ports (
    port INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    call_id TEXT NOT NULL,
    exposed_at INTEGER NOT NULL
) STRICT;
