//! The datastore scenarios on the local platform itself, what survives a platform restart,
//! backup retention, and the parsers.

use super::backups::BACKUP_RETENTION_MS;
use super::*;
use crate::api::Platform;
use crate::datastore_scenarios::{
    EngineGuard, bad_inputs_scenario, postgres_scenario, redis_and_sqlite_scenario,
    traversable_tempdir,
};
use automaton_tools::clock::{ManualClock, SystemClock};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn open(data: &Path) -> LocalPlatform {
    LocalPlatform::open(data, Arc::new(SystemClock)).unwrap()
}

#[tokio::test]
async fn postgres_serves_an_app_round_trips_a_backup_and_survives_a_platform_restart() {
    let dir = traversable_tempdir();
    let data = dir.path().join("platform");
    let _guard = EngineGuard(data.clone());
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let platform = open(&data);
    postgres_scenario(&platform, &platform, &work).await;
    // The cluster lives in the data directory, which only the platform and (to pass through)
    // the `postgres` group may enter.
    assert!(data.join("datastores/postgres/data/PG_VERSION").exists());
    if rustix::process::geteuid().is_root() {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&data).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o710);
        assert_ne!(meta.gid(), 0, "the postgres group");
    }

    // The cluster stops with the platform and comes back with `resume`, data intact.
    platform.create_project("keep", None).await.unwrap();
    platform
        .add_datastore("keep", DatastoreKind::Postgres, None, None)
        .await
        .unwrap();
    platform
        .query_datastore(
            "keep",
            "postgres",
            "CREATE TABLE t (v int); INSERT INTO t VALUES (7)",
            None,
        )
        .await
        .unwrap();
    platform.shutdown().await;
    let err = platform
        .query_datastore("keep", "postgres", "SELECT v FROM t", None)
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::InternalError,
        "the cluster is down: {err:?}"
    );
    drop(platform);
    let reopened = open(&data);
    reopened.resume().await.unwrap();
    let result = reopened
        .query_datastore("keep", "postgres", "SELECT v FROM t", None)
        .await
        .unwrap();
    // The cluster's dynamic shared memory is not in `/dev/shm`, which confined apps write.
    let dsm = reopened
        .query_datastore("keep", "postgres", "SHOW dynamic_shared_memory_type", None)
        .await
        .unwrap();
    assert_eq!(dsm.rows, [[serde_json::json!("mmap")]]);
    assert_eq!(result.rows, [[serde_json::json!("7")]]);
    // A statement past the time limit is cancelled (the verbs use QUERY_TIMEOUT, 30 s).
    let target = reopened
        .datastore_row("keep", "postgres")
        .await
        .unwrap()
        .pg()
        .unwrap();
    let started = std::time::Instant::now();
    let err = postgres::query(&target, "SELECT pg_sleep(20)", Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Deleting the project removes its database and role.
    reopened.delete_project("keep", true, None).await.unwrap();
    let cluster = reopened.cluster().await.unwrap();
    let admin = postgres::connect(
        cluster.port,
        "automaton_admin",
        &cluster.admin_password,
        "postgres",
        None,
    )
    .await
    .unwrap();
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'keep__%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    reopened.shutdown().await;
}

#[tokio::test]
async fn redis_and_sqlite_serve_an_app_and_redis_data_survives_a_platform_restart() {
    let dir = traversable_tempdir();
    let data = dir.path().join("platform");
    let _guard = EngineGuard(data.clone());
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let platform = open(&data);
    redis_and_sqlite_scenario(&platform, &work).await;
    // The data directory may be open to traversal (for the `postgres` user); what holds data
    // and secrets is not.
    use std::os::unix::fs::PermissionsExt;
    for private in [
        "datastores/redis",
        "datastores/redis/kv__redis",
        "datastores/sqlite",
        "objects",
        "objects/backups/kv/redis",
    ] {
        let mode = std::fs::metadata(data.join(private))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o700, "{private}");
    }
    platform.shutdown().await;
    drop(platform);
    let reopened = open(&data);
    reopened.resume().await.unwrap();
    let got = reopened
        .query_datastore("kv", "redis", "GET hits", None)
        .await
        .unwrap();
    assert_eq!(got.rows, [[serde_json::json!("2")]]);
    let deleted = reopened
        .delete_datastore("kv", "redis", true, None)
        .await
        .unwrap();
    assert_eq!(deleted.restarted_services, ["app"]);
    assert!(
        !data.join("datastores/redis/kv__redis").exists(),
        "its files are gone"
    );
    reopened.shutdown().await;
}

#[tokio::test]
async fn bad_inputs_get_errors_that_say_what_to_do() {
    let dir = traversable_tempdir();
    let platform = open(&dir.path().join("platform"));
    bad_inputs_scenario(&platform).await;
}

#[tokio::test]
async fn backups_older_than_seven_days_are_pruned() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let platform =
        LocalPlatform::open(&dir.path().join("platform"), Arc::new(clock.clone())).unwrap();
    platform.create_project("p", None).await.unwrap();
    platform
        .add_datastore("p", DatastoreKind::Sqlite, None, None)
        .await
        .unwrap();
    let old = platform.create_backup("p", "sqlite", None).await.unwrap();
    assert_eq!(old.expires_at_ms, old.created_at_ms + BACKUP_RETENTION_MS);
    clock.advance(BACKUP_RETENTION_MS - 1000);
    let newer = platform.create_backup("p", "sqlite", None).await.unwrap();
    let keys: Vec<String> = platform
        .list_backups("p", "sqlite")
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.key)
        .collect();
    assert_eq!(keys, [newer.key.clone(), old.key.clone()], "newest first");
    clock.advance(2000);
    let kept = platform.list_backups("p", "sqlite").await.unwrap();
    assert_eq!(kept, [newer]);
    let old_file = dir
        .path()
        .join("platform/objects/backups/p/sqlite")
        .join(format!("{}.sqlite", old.key));
    assert!(!old_file.exists());
}

#[test]
fn redis_commands_split_into_words_with_quotes() {
    for (text, words) in [
        ("HGETALL user:1", vec!["HGETALL", "user:1"]),
        ("  SET  k   v ", vec!["SET", "k", "v"]),
        (
            "SET greeting \"hello world\"",
            vec!["SET", "greeting", "hello world"],
        ),
        ("SET q 'it''s'", vec!["SET", "q", "its"]),
        ("SET e \"a\\\"b\\n\"", vec!["SET", "e", "a\"b\n"]),
        ("SET empty \"\"", vec!["SET", "empty", ""]),
    ] {
        assert_eq!(redis::parse_command(text).unwrap(), words, "{text}");
    }
    let err = redis::parse_command("SET a 'open").unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
}

#[test]
fn env_names_follow_the_kind_or_the_custom_name() {
    assert_eq!(env_names_for(DatastoreKind::Redis, "redis"), ["REDIS_URL"]);
    assert_eq!(
        env_names_for(DatastoreKind::Sqlite, "sqlite"),
        ["DATABASE_URL"]
    );
    assert_eq!(env_names_for(DatastoreKind::Postgres, "postgres").len(), 6);
    assert_eq!(
        env_names_for(DatastoreKind::Postgres, "analytics-db"),
        ["ANALYTICS_DB_URL"]
    );
    assert_ne!(pg_identifier("a-b", "c"), pg_identifier("a", "b-c"));
}

#[tokio::test]
async fn an_engine_that_cannot_start_again_is_reported_and_the_platform_still_resumes() {
    let dir = traversable_tempdir();
    let data = dir.path().join("platform");
    let _guard = EngineGuard(data.clone());
    let platform = open(&data);
    platform.create_project("kv", None).await.unwrap();
    let added = platform
        .add_datastore("kv", DatastoreKind::Redis, None, None)
        .await
        .unwrap();
    platform.shutdown().await;
    drop(platform);
    // Something else took the server's port meanwhile.
    let port: u16 = added
        .datastore
        .url
        .rsplit(':')
        .next()
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let reopened = open(&data);
    reopened.resume().await.unwrap();
    let events = reopened.get_project("kv").await.unwrap().recent_events;
    assert!(
        events.iter().any(|e| e.kind == "datastore.unavailable"),
        "{events:?}"
    );
    let err = reopened
        .query_datastore("kv", "redis", "PING", None)
        .await
        .unwrap_err();
    assert!(err.retryable, "{err:?}");
    reopened.shutdown().await;
}

#[tokio::test]
async fn a_sqlite_statement_past_the_time_limit_is_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    sqlite::create(&path).await.unwrap();
    let started = std::time::Instant::now();
    let err = sqlite::query(
        &path,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
        Duration::from_millis(200),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout, "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Review finding: a confined app may write its SQLite datastore's directory, so it can
/// replace `data.db` with a symlink to the platform's own `platform.db`; the platform then
/// opens that (unconfined) for every query, listing, backup and restore of the datastore. A
/// caller allowed to query its project's datastore reads every datastore secret (and the
/// cluster's admin password) and can write `platform.db` (mint an admin token).
#[tokio::test]
async fn a_sqlite_datastore_replaced_by_a_symlink_does_not_open_the_platform_s_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("platform");
    let platform = open(&data);
    platform.create_project("p", None).await.unwrap();
    let added = platform
        .add_datastore("p", DatastoreKind::Sqlite, None, None)
        .await
        .unwrap();
    let file = data.join("datastores/sqlite/p__sqlite/data.db");
    assert!(file.exists(), "{added:?}");
    // What the confined app can do in its writable datastore directory.
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
    }
    std::os::unix::fs::symlink("../../../platform.db", &file).unwrap();
    let read = platform
        .query_datastore(
            "p",
            "sqlite",
            "SELECT count(*) FROM gateway_tokens WHERE admin = 1",
            None,
        )
        .await;
    assert!(
        read.is_err(),
        "the platform's own database answered: {read:?}"
    );
}

/// Review finding: one SQLite statement through the query API writes a file anywhere the
/// platform's user may (`VACUUM INTO`), e.g. into another project's release.
#[tokio::test]
async fn a_sqlite_query_writes_no_file_outside_its_datastore() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("platform");
    let platform = open(&data);
    platform.create_project("p", None).await.unwrap();
    platform
        .add_datastore("p", DatastoreKind::Sqlite, None, None)
        .await
        .unwrap();
    let outside = dir.path().join("elsewhere.db");
    let wrote = platform
        .query_datastore(
            "p",
            "sqlite",
            &format!("VACUUM INTO '{}'", outside.display()),
            None,
        )
        .await;
    assert!(
        !outside.exists(),
        "VACUUM INTO wrote {} ({wrote:?})",
        outside.display()
    );
}

/// A confined app's symlink in place of the datastore's WAL or shared-memory file does not
/// make the platform write through it.
#[tokio::test]
async fn a_symlinked_sqlite_wal_or_shm_is_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("platform");
    let platform = open(&data);
    platform.create_project("p", None).await.unwrap();
    platform
        .add_datastore("p", DatastoreKind::Sqlite, None, None)
        .await
        .unwrap();
    let file = data.join("datastores/sqlite/p__sqlite/data.db");
    let victims: Vec<PathBuf> = ["wal", "shm"]
        .iter()
        .map(|suffix| {
            let victim = dir.path().join(format!("victim-{suffix}"));
            std::fs::write(&victim, "keep me").unwrap();
            let link = PathBuf::from(format!("{}-{suffix}", file.display()));
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&victim, &link).unwrap();
            victim
        })
        .collect();
    let _ = platform
        .query_datastore("p", "sqlite", "CREATE TABLE t (v TEXT)", None)
        .await;
    let _ = platform
        .query_datastore("p", "sqlite", "INSERT INTO t VALUES ('x')", None)
        .await;
    let _ = platform.create_backup("p", "sqlite", None).await;
    for victim in &victims {
        assert_eq!(
            std::fs::read_to_string(victim).unwrap(),
            "keep me",
            "{} was written through",
            victim.display()
        );
    }
}
