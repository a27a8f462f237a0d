-- Git repositories (the forge): one row per hosted repository. The repository itself is a
-- bare git repository at repos/<project>/<name>.git in the platform's data directory; this
-- row says it exists, which service a push to its default branch deploys, and the last such
-- deploy (a JSON RepoDeploy: commit, operation id or error).
CREATE TABLE repos (
    project          TEXT NOT NULL REFERENCES projects (name) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    deploy_service   TEXT,
    last_deploy_json TEXT,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (project, name)
) STRICT;
