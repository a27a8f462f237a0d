-- Small named values the runtime keeps between starts (agent state, last known balance, …).
CREATE TABLE kv (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- One row per turn of the agent loop.
CREATE TABLE turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER,
    state TEXT NOT NULL CHECK (state IN ('running', 'completed', 'failed', 'cancelled')),
    input_source TEXT NOT NULL,
    input TEXT,
    thinking TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_micro_usdc INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX turns_started ON turns (started_at);
