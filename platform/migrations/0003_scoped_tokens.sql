-- Scoped tokens: what each token may do (capabilities) and where (projects, or every
-- project), and who issued it, so a token can only hand on what it holds and revoking a
-- token revokes what it issued. Admin tokens hold everything everywhere.
ALTER TABLE gateway_tokens ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE gateway_tokens ADD COLUMN capabilities_json TEXT NOT NULL DEFAULT '[]';
-- NULL: every project. Otherwise a JSON array of project names.
ALTER TABLE gateway_tokens ADD COLUMN projects_json TEXT;
ALTER TABLE gateway_tokens ADD COLUMN issuer TEXT REFERENCES gateway_tokens (id);
CREATE INDEX gateway_tokens_issuer ON gateway_tokens (issuer);
