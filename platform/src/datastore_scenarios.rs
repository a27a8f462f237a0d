//! Datastore scenarios every backend must pass: run against the local platform directly
//! (`local::datastores::tests`) and through the gateway with the HTTP client (`http_tests`).
//! Real engines throughout: PostgreSQL and Redis from Debian's packages, SQLite files, and a
//! deployed Python app that reaches them through the env the platform injected.

use crate::api::Platform;
use crate::error::ErrorCode;
use crate::local::LocalPlatform;
use crate::model::{DatastoreKind, DatastoreStatus, MAX_QUERY_ROWS};
use crate::test_support::packed;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Kills a test platform's engines when dropped, so a failing test leaves no server running.
pub struct EngineGuard(pub PathBuf);

impl Drop for EngineGuard {
    fn drop(&mut self) {
        LocalPlatform::kill_engines_blocking(&self.0);
    }
}

/// A temporary directory the `postgres` user can pass through (the platform runs as root in
/// CI, and the cluster's directory lives inside).
pub fn traversable_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    dir
}

/// A Python app on `$PORT`: `/pg?q=SQL` through psql and `$DATABASE_URL`, `/redis?c=CMD`
/// over a raw RESP socket to `$REDIS_URL`, `/sqlite?q=SQL` on `$CACHE_URL`, `/env?q=NAME`.
pub const APP: &str = r#"import os, socket, sqlite3, subprocess, http.server, urllib.parse

def pg(sql):
    url = os.environ.get('DATABASE_URL')
    if not url:
        return 'no db'
    r = subprocess.run(['psql', url, '-tAc', sql], capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else 'error: ' + r.stderr.strip()

def redis(words):
    u = urllib.parse.urlparse(os.environ['REDIS_URL'])
    s = socket.create_connection((u.hostname, u.port))
    def send(*a):
        s.sendall(('*%d\r\n' % len(a) + ''.join('$%d\r\n%s\r\n' % (len(x), x) for x in a)).encode())
        return s.recv(65536).decode()
    send('AUTH', u.password)
    lines = send(*words).split('\r\n')
    s.close()
    return lines[1] if lines[0].startswith('$') else lines[0].lstrip(':+-')

def lite(sql):
    c = sqlite3.connect(os.environ['CACHE_URL'], uri=True)
    rows = c.execute(sql).fetchall()
    c.commit()
    c.close()
    return ','.join(str(r[0]) for r in rows)

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        arg = q.get('q', q.get('c', ['']))[0]
        if u.path == '/pg':
            body = pg(arg)
        elif u.path == '/redis':
            body = redis(arg.split(' '))
        elif u.path == '/sqlite':
            body = lite(arg)
        else:
            body = os.environ.get(arg, 'unset')
        body = body.encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

print('listening on', os.environ['PORT'], flush=True)
http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"#;

/// Percent-encodes a query-string value.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The app's answer to `path?q=arg`, via its live URL.
pub async fn ask(platform: &dyn Platform, project: &str, path: &str, arg: &str) -> String {
    let detail = platform.get_service(project, "app", 0).await.unwrap();
    let url = detail.url.unwrap();
    crate::test_support::get(&format!("{url}{path}?q={}", encode(arg)))
        .await
        .1
}

/// Deploys [`APP`] as `app` in `project`.
pub async fn deploy_app(platform: &dyn Platform, project: &str, work: &Path) {
    let archive = packed(work, &format!("app-{project}"), &[("main.py", APP)]);
    let accepted = platform
        .deploy(project, "app", &archive, None)
        .await
        .unwrap();
    let operation = platform
        .wait_operation(&accepted.operation_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(operation.error.is_none(), "{operation:?}");
}

/// Postgres: an app already running gets DATABASE_URL and the PG* variables by a rolling
/// restart and stores rows through psql; reads never show the password; tables, the 500-row
/// cap and the audit; backup → drop → restore brings the rows back; delete needs confirm,
/// removes the env and restarts the app, and is idempotent.
pub async fn postgres_scenario(platform: &dyn Platform, local: &LocalPlatform, work: &Path) {
    let project = "pgshop";
    platform.create_project(project, None).await.unwrap();
    deploy_app(platform, project, work).await;
    assert_eq!(ask(platform, project, "/pg", "SELECT 1").await, "no db");

    let added = platform
        .add_datastore(project, DatastoreKind::Postgres, None, Some("add-pg"))
        .await
        .unwrap();
    assert!(added.created);
    assert_eq!(added.restarted_services, ["app"]);
    assert_eq!(added.datastore.status, DatastoreStatus::Ready);
    assert_eq!(
        added.datastore.env_names,
        [
            "DATABASE_URL",
            "PGHOST",
            "PGPORT",
            "PGUSER",
            "PGPASSWORD",
            "PGDATABASE"
        ]
    );
    assert!(
        added
            .datastore
            .url
            .starts_with("postgres://pgshop__postgres:***@127.0.0.1:"),
        "{}",
        added.datastore.url
    );
    // A retry with the same key answers the same, and adding again changes nothing.
    let replay = platform
        .add_datastore(project, DatastoreKind::Postgres, None, Some("add-pg"))
        .await
        .unwrap();
    assert_eq!(replay, added);
    assert!(
        !platform
            .add_datastore(project, DatastoreKind::Postgres, None, None)
            .await
            .unwrap()
            .created
    );

    // The app stores and reads rows with what the platform injected.
    assert_eq!(
        ask(platform, project, "/env", "PGUSER").await,
        "pgshop__postgres"
    );
    ask(
        platform,
        project,
        "/pg",
        "CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL)",
    )
    .await;
    ask(
        platform,
        project,
        "/pg",
        "INSERT INTO items (name) VALUES ('alice'), ('bob')",
    )
    .await;
    assert_eq!(
        ask(
            platform,
            project,
            "/pg",
            "SELECT string_agg(name, ',' ORDER BY id) FROM items"
        )
        .await,
        "alice,bob"
    );

    // No read shows the password.
    let secret = local.datastore_secret(project, "postgres").await.unwrap();
    let reads = serde_json::json!([
        platform.get_datastore(project, "postgres").await.unwrap(),
        platform.list_datastores(project).await.unwrap(),
        platform.get_project(project).await.unwrap(),
        added,
    ])
    .to_string();
    assert!(!reads.contains(&secret), "{reads}");
    assert_eq!(ask(platform, project, "/env", "PGPASSWORD").await, secret);

    // Tables, queries, the cap.
    let tables = platform.list_tables(project, "postgres").await.unwrap();
    assert_eq!(tables.tables.len(), 1, "{tables:?}");
    assert_eq!(tables.tables[0].name, "items");
    assert_eq!(tables.tables[0].rows, Some(2));
    let columns: Vec<&str> = tables.tables[0]
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(columns, ["id", "name"]);
    let result = platform
        .query_datastore(
            project,
            "postgres",
            "SELECT id, name FROM items ORDER BY id",
            None,
        )
        .await
        .unwrap();
    assert_eq!(result.columns, ["id", "name"]);
    assert_eq!(result.rows, [["1", "alice"], ["2", "bob"]]);
    assert_eq!(result.row_count, 2);
    assert!(!result.truncated);
    let many = platform
        .query_datastore(
            project,
            "postgres",
            "SELECT generate_series(1, 2000) AS n",
            None,
        )
        .await
        .unwrap();
    assert_eq!(many.rows.len(), MAX_QUERY_ROWS);
    assert!(many.truncated);
    assert_eq!(many.rows[499], [serde_json::json!("500")]);
    let inserted = platform
        .query_datastore(
            project,
            "postgres",
            "INSERT INTO items (name) VALUES ('carol')",
            None,
        )
        .await
        .unwrap();
    assert_eq!(inserted.row_count, 1);
    assert!(inserted.columns.is_empty());
    let err = platform
        .query_datastore(project, "postgres", "SELEC nope", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.message.contains("syntax error"), "{err:?}");

    // Backup → drop → restore.
    let backup = platform
        .create_backup(project, "postgres", None)
        .await
        .unwrap();
    assert!(
        backup.key.starts_with("bk_") && backup.bytes > 0,
        "{backup:?}"
    );
    let listed = platform.list_backups(project, "postgres").await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&backup));
    platform
        .query_datastore(project, "postgres", "DROP TABLE items", None)
        .await
        .unwrap();
    assert!(
        ask(platform, project, "/pg", "SELECT count(*) FROM items")
            .await
            .contains("does not exist")
    );
    let restored = platform
        .restore_backup(project, "postgres", &backup.key, None)
        .await
        .unwrap();
    assert!(restored.method.contains("pg_restore"));
    assert_eq!(
        ask(
            platform,
            project,
            "/pg",
            "SELECT string_agg(name, ',' ORDER BY id) FROM items"
        )
        .await,
        "alice,bob,carol"
    );
    let err = platform
        .restore_backup(project, "postgres", "bk_missing", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(err.state.unwrap()["backups"][0], backup.key);

    // Every query was audited, failures too.
    let audit = local.query_audit(project).await;
    assert_eq!(audit.len(), 5, "{audit:?}");
    assert!(
        audit
            .iter()
            .any(|(_, query, ok, _)| query == "SELEC nope" && !ok)
    );
    assert!(audit.iter().any(
        |(_, query, ok, rows)| query.starts_with("SELECT generate_series")
            && *ok
            && *rows == Some(500)
    ));

    // Delete: confirmation, the env goes, the app restarts without it, idempotent.
    let err = platform
        .delete_datastore(project, "postgres", false, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.hint.contains("confirm"), "{err:?}");
    let deleted = platform
        .delete_datastore(project, "postgres", true, None)
        .await
        .unwrap();
    assert!(deleted.deleted);
    assert_eq!(deleted.restarted_services, ["app"]);
    assert_eq!(deleted.removed_env.len(), 6);
    assert!(platform.list_env(project).await.unwrap().is_empty());
    assert_eq!(ask(platform, project, "/pg", "SELECT 1").await, "no db");
    assert!(
        !platform
            .delete_datastore(project, "postgres", true, None)
            .await
            .unwrap()
            .deleted
    );
    assert!(platform.list_datastores(project).await.unwrap().is_empty());
}

/// Redis and SQLite (under a custom name): the app increments a counter over RESP and reads
/// a SQLite file through `CACHE_URL`; one Redis command at a time, pairs for HGETALL, keys
/// with their types; both back up and restore; refused commands and bad quoting say why.
pub async fn redis_and_sqlite_scenario(platform: &dyn Platform, work: &Path) {
    let project = "kv";
    platform.create_project(project, None).await.unwrap();
    let redis = platform
        .add_datastore(project, DatastoreKind::Redis, None, None)
        .await
        .unwrap();
    assert_eq!(redis.datastore.env_names, ["REDIS_URL"]);
    assert!(redis.restarted_services.is_empty(), "nothing deployed yet");
    let sqlite = platform
        .add_datastore(project, DatastoreKind::Sqlite, Some("cache"), None)
        .await
        .unwrap();
    assert_eq!(sqlite.datastore.env_names, ["CACHE_URL"]);
    assert!(sqlite.datastore.url.starts_with("file:///"));
    // A deploy after `add` sees the env.
    deploy_app(platform, project, work).await;
    assert_eq!(ask(platform, project, "/redis", "INCR hits").await, "1");
    assert_eq!(ask(platform, project, "/redis", "INCR hits").await, "2");
    let got = platform
        .query_datastore(project, "redis", "GET hits", None)
        .await
        .unwrap();
    assert_eq!(got.columns, ["value"]);
    assert_eq!(got.rows, [[serde_json::json!("2")]]);
    platform
        .query_datastore(
            project,
            "redis",
            "HSET user:1 name \"Ada Lovelace\" age 36",
            None,
        )
        .await
        .unwrap();
    let user = platform
        .query_datastore(project, "redis", "HGETALL user:1", None)
        .await
        .unwrap();
    assert_eq!(user.columns, ["field", "value"]);
    assert_eq!(user.rows, [["name", "Ada Lovelace"], ["age", "36"]]);
    let keys = platform.list_tables(project, "redis").await.unwrap();
    let listed: Vec<(&str, &str, Option<u64>)> = keys
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t.kind.as_str(), t.rows))
        .collect();
    assert_eq!(
        listed,
        [("hits", "string", None), ("user:1", "hash", Some(2))]
    );
    let err = platform
        .query_datastore(project, "redis", "CONFIG SET requirepass x", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.message.contains("CONFIG"), "{err:?}");
    let err = platform
        .query_datastore(project, "redis", "SET a \"unclosed", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    // Redis backup → change → restore.
    let backup = platform
        .create_backup(project, "redis", None)
        .await
        .unwrap();
    platform
        .query_datastore(project, "redis", "SET hits 100", None)
        .await
        .unwrap();
    platform
        .restore_backup(project, "redis", &backup.key, None)
        .await
        .unwrap();
    assert_eq!(ask(platform, project, "/redis", "GET hits").await, "2");
    let got = platform
        .query_datastore(project, "redis", "GET hits", None)
        .await
        .unwrap();
    assert_eq!(got.rows, [[serde_json::json!("2")]]);

    // SQLite through the query API and the app.
    for statement in [
        "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)",
        "INSERT INTO notes (body) VALUES ('one'), ('two')",
    ] {
        platform
            .query_datastore(project, "cache", statement, None)
            .await
            .unwrap();
    }
    assert_eq!(
        ask(platform, project, "/sqlite", "SELECT count(*) FROM notes").await,
        "2"
    );
    let notes = platform
        .query_datastore(
            project,
            "cache",
            "SELECT id, body FROM notes ORDER BY id",
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        notes.rows,
        [
            [serde_json::json!(1), serde_json::json!("one")],
            [serde_json::json!(2), serde_json::json!("two")]
        ]
    );
    let tables = platform.list_tables(project, "cache").await.unwrap();
    assert_eq!(tables.tables[0].name, "notes");
    assert_eq!(tables.tables[0].rows, Some(2));
    let backup = platform
        .create_backup(project, "cache", None)
        .await
        .unwrap();
    platform
        .query_datastore(project, "cache", "DELETE FROM notes", None)
        .await
        .unwrap();
    assert_eq!(
        ask(platform, project, "/sqlite", "SELECT count(*) FROM notes").await,
        "0"
    );
    platform
        .restore_backup(project, "cache", &backup.key, None)
        .await
        .unwrap();
    assert_eq!(
        ask(platform, project, "/sqlite", "SELECT count(*) FROM notes").await,
        "2"
    );
    let err = platform
        .query_datastore(project, "cache", "SELECT 1; SELECT 2", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let many = platform
        .query_datastore(
            project,
            "cache",
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 900) SELECT i FROM n",
            None,
        )
        .await
        .unwrap();
    assert_eq!((many.rows.len(), many.truncated), (MAX_QUERY_ROWS, true));
}

/// Bad inputs, each with a seed-000 error saying what to do, and nothing changed.
pub async fn bad_inputs_scenario(platform: &dyn Platform) {
    let err = DatastoreKind::parse("mysql").unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.hint.contains("postgres, redis, sqlite"), "{err:?}");
    let err = platform
        .add_datastore("nowhere", DatastoreKind::Sqlite, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    let project = "bad";
    platform.create_project(project, None).await.unwrap();
    let err = platform
        .add_datastore(project, DatastoreKind::Mongo, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.message.contains("not available on the local platform"));
    assert!(err.hint.contains("postgres, redis or sqlite"), "{err:?}");
    let err = platform
        .add_datastore(project, DatastoreKind::Sqlite, Some("My DB"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.hint.contains("`my-db`"), "{err:?}");
    let err = platform
        .query_datastore(project, "missing", "SELECT 1", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.hint.contains("no datastores"), "{err:?}");
    platform
        .add_datastore(project, DatastoreKind::Sqlite, None, None)
        .await
        .unwrap();
    let err = platform.get_datastore(project, "sqlit").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.hint.contains("did you mean `sqlite`"), "{err:?}");
    // Both would set DATABASE_URL: refused, with a name that would work.
    let err = platform
        .add_datastore(project, DatastoreKind::Postgres, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert!(err.hint.contains("--name"), "{err:?}");
    let err = platform
        .add_datastore(project, DatastoreKind::Redis, Some("sqlite"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    let err = platform
        .delete_datastore(project, "sqlite", false, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let err = platform
        .query_datastore(project, "sqlite", "   ", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let err = platform
        .restore_backup(project, "sqlite", "bk_nope", None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(
        platform.list_datastores(project).await.unwrap().len(),
        1,
        "nothing lost"
    );
    assert_eq!(platform.list_env(project).await.unwrap(), ["DATABASE_URL"]);
}
