-- Every inference call: which model, how many tokens, how long, what it cost.
CREATE TABLE inference_costs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    turn_id INTEGER,
    task TEXT NOT NULL,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cost_micro_usdc INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX inference_costs_created ON inference_costs (created_at);
