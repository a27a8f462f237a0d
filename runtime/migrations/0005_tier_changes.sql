-- Every change of survival tier: from what, to what, on which balance, and why.
CREATE TABLE tier_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    from_tier TEXT CHECK (from_tier IN ('dead', 'critical', 'low_compute', 'normal', 'high')),
    to_tier TEXT NOT NULL CHECK (to_tier IN ('dead', 'critical', 'low_compute', 'normal', 'high')),
    balance_micro_usdc INTEGER CHECK (balance_micro_usdc >= 0),
    reason TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX tier_changes_created ON tier_changes (created_at);
