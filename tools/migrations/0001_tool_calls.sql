-- Every tool call the agent made: written as an intent before it runs and completed after.
CREATE TABLE tool_calls (
    id TEXT PRIMARY KEY,
    turn_id INTEGER,
    name TEXT NOT NULL,
    args_json TEXT NOT NULL,
    provenance TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('allow', 'prompt', 'forbid')),
    result_summary TEXT,
    error_code TEXT,
    duration_ms INTEGER,
    started_at INTEGER NOT NULL
) STRICT;
CREATE INDEX tool_calls_turn ON tool_calls (turn_id);
CREATE INDEX tool_calls_started ON tool_calls (started_at);
