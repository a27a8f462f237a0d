-- Bearer tokens of the REST gateway. Only a SHA-256 of each secret is kept: the secret is
-- shown once, when it is made. The first start makes one admin token.
CREATE TABLE gateway_tokens (
    id            TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL UNIQUE,
    admin         INTEGER NOT NULL CHECK (admin IN (0, 1)),
    created_at    INTEGER NOT NULL,
    revoked_at    INTEGER
) STRICT;
