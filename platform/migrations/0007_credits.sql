-- Credits: a prepaid balance that inference through the platform spends. An append-only ledger
-- in integer micro-USD (1 USD = 1_000_000; never floats): every change is one row carrying the
-- balance after it, so the balance is the newest row of the account (one indexed read) and the
-- history explains every unit of it. A charge larger than the balance takes what is left and
-- records the shortfall: usage is known only after the upstream answered, and the upstream is
-- paid by then (the proxy refuses before the call when the balance is not above zero).
CREATE TABLE credit_ledger (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    -- The account charged or credited (the local platform's one account is `owner`).
    account                  TEXT NOT NULL,
    at                       INTEGER NOT NULL,
    -- Signed: grants are positive, charges negative.
    amount_micro_usd         INTEGER NOT NULL,
    kind                     TEXT NOT NULL CHECK (kind IN ('grant', 'inference')),
    reason                   TEXT NOT NULL,
    -- What the change is about (a request id, the granting token); NULL when nothing.
    reference                TEXT,
    -- What a charge could not take because the balance ran out.
    shortfall_micro_usd      INTEGER NOT NULL DEFAULT 0 CHECK (shortfall_micro_usd >= 0),
    balance_after_micro_usd  INTEGER NOT NULL CHECK (balance_after_micro_usd >= 0)
) STRICT;

CREATE INDEX credit_ledger_by_account ON credit_ledger (account, id);

CREATE TRIGGER credit_ledger_no_update BEFORE UPDATE ON credit_ledger
BEGIN
    SELECT RAISE(ABORT, 'the credit ledger is append-only');
END;

CREATE TRIGGER credit_ledger_no_delete BEFORE DELETE ON credit_ledger
BEGIN
    SELECT RAISE(ABORT, 'the credit ledger is append-only');
END;
