//! PostgreSQL datastores: one platform-managed cluster (initdb and pg_ctl, a private loopback
//! port, its socket directory private to it, SCRAM passwords everywhere), started on the first
//! `add` and on `resume`, stopped on `shutdown`; per datastore a database owned by a role of
//! the same name with a generated password. Backups are `pg_dump -Fc`, restores
//! `pg_restore --clean`; queries run over `tokio-postgres`'s simple query protocol as the
//! datastore's own role, so a query reaches that database only.
//!
//! The server refuses to run as root: when the platform is root, initdb and pg_ctl run as the
//! `postgres` user (`runuser`), and the cluster lives where that user can reach it: under the
//! platform's data directory (opened to the `postgres` group only, 0710) when the parents above
//! it let it through, else in the `postgres` user's home.

use super::{PgTarget, capped, internal};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{ColumnInfo, MAX_QUERY_ROWS, QueryResult, TableInfo};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::process::Command;

/// The cluster's superuser.
const ADMIN_ROLE: &str = "automaton_admin";
/// Rows counted per table in a listing, at most.
const COUNT_CAP: u64 = 10_000;

/// The managed cluster: where it lives, its port, its admin password.
#[derive(Clone)]
pub(in crate::local) struct Cluster {
    pub(in crate::local) dir: PathBuf,
    pub(in crate::local) port: u16,
    pub(in crate::local) admin_password: String,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A PostgreSQL program: from the newest `/usr/lib/postgresql/<version>/bin` (Debian keeps
/// the server binaries off PATH), else from PATH.
fn program(name: &str) -> PathBuf {
    static BIN: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();
    let bin = BIN.get_or_init(|| {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                let bin = entry.path().join("bin");
                bin.join("initdb").exists().then_some((version, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, bin)| bin)
    });
    bin.as_ref()
        .map_or_else(|| PathBuf::from(name), |bin| bin.join(name))
}

/// A server-side command, run as the `postgres` user when the platform is root.
fn as_owner(program: &Path) -> Command {
    let mut command = if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    };
    command.stdin(Stdio::null()).kill_on_drop(true);
    command
}

/// Runs `command`; its stdout, or an error with the end of its stderr.
async fn run(mut command: Command, doing: &str) -> Result<String> {
    let output = command.output().await.map_err(|err| {
        internal(doing, err).with_hint(
            "install PostgreSQL (Debian: `apt-get install postgresql`); its server programs are looked for in /usr/lib/postgresql/*/bin",
        )
    })?;
    if output.status.success() {
        return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let tail: Vec<String> = stderr
        .lines()
        .rev()
        .take(10)
        .map(str::to_owned)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(Error::new(
        ErrorCode::InternalError,
        format!("{doing} failed ({})", output.status),
    )
    .with_log_tail(tail))
}

/// Hands `path` (recursively) to the `postgres` user when the platform is root.
async fn give_to_owner(path: &Path) -> Result<()> {
    if is_root() {
        let mut command = Command::new("chown");
        command.arg("-R").arg("postgres:").arg(path);
        run(
            command,
            "handing the cluster directory to the postgres user",
        )
        .await?;
    }
    Ok(())
}

async fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    tokio::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|err| internal(&format!("setting the mode of {}", path.display()), err))
}

async fn make_dir(path: &Path) -> Result<()> {
    super::private_dir(path).await?;
    set_mode(path, 0o700).await
}

/// The `postgres` user's group id and home, from /etc/passwd.
async fn postgres_account() -> (Option<u32>, PathBuf) {
    let passwd = tokio::fs::read_to_string("/etc/passwd")
        .await
        .unwrap_or_default();
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<&str>>())
        .find(|fields| fields.first() == Some(&"postgres"))
        .map_or((None, PathBuf::from("/var/lib/postgresql")), |fields| {
            (
                fields.get(3).and_then(|gid| gid.parse().ok()),
                fields
                    .get(5)
                    .map_or_else(|| PathBuf::from("/var/lib/postgresql"), PathBuf::from),
            )
        })
}

/// Lets the `postgres` group (and no one else) pass through `dir`: group `postgres`, 0710.
async fn open_to_postgres(dir: &Path, gid: u32) -> Result<()> {
    let owned = dir.to_owned();
    tokio::task::spawn_blocking(move || std::os::unix::fs::chown(&owned, None, Some(gid)))
        .await
        .map_err(|err| internal("handing a directory to the postgres group", err))?
        .map_err(|err| {
            internal(
                &format!("handing {} to the postgres group", dir.display()),
                err,
            )
        })?;
    set_mode(dir, 0o710).await
}

/// Where the cluster can live: `datastores/postgres` when the server's user reaches it.
async fn cluster_dir(datastores: &Path) -> Result<PathBuf> {
    let primary = datastores.join("postgres");
    if tokio::fs::try_exists(&primary).await.unwrap_or(false) {
        tokio::fs::remove_dir_all(&primary)
            .await
            .map_err(|err| internal("clearing a half-made cluster", err))?;
    }
    make_dir(&primary).await?;
    if !is_root() {
        return Ok(primary);
    }
    // The data directory and `datastores/` let the server's user through, no one else: the
    // rest of the data directory (releases, logs, other engines' files) stays the platform's.
    let (gid, home) = postgres_account().await;
    let parents: Vec<&Path> = datastores
        .parent()
        .into_iter()
        .chain(std::iter::once(datastores))
        .collect();
    if let Some(gid) = gid {
        for parent in &parents {
            open_to_postgres(parent, gid).await?;
        }
        give_to_owner(&primary).await?;
        let mut probe = as_owner(Path::new("test"));
        probe.arg("-w").arg(&primary);
        if run(probe, "probing the cluster directory").await.is_ok() {
            return Ok(primary);
        }
        for parent in &parents {
            set_mode(parent, 0o700).await?;
        }
    }
    let _ = tokio::fs::remove_dir_all(&primary).await;
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
        primary.to_string_lossy().as_bytes(),
    ));
    let fallback = home.join("automaton-platform").join(&digest[..16]);
    tracing::info!(dir = %fallback.display(), "the postgres user cannot reach the platform's data directory; the cluster lives in its home");
    if tokio::fs::try_exists(&fallback).await.unwrap_or(false) {
        let _ = tokio::fs::remove_dir_all(&fallback).await;
    }
    make_dir(&fallback).await?;
    if let Some(parent) = fallback.parent() {
        give_to_owner(parent).await?;
    }
    Ok(fallback)
}

/// Makes and starts the cluster (initdb ≈ 1 s).
pub(super) async fn create(datastores: &Path) -> Result<Cluster> {
    let dir = cluster_dir(datastores).await?;
    let password = uuid::Uuid::new_v4().simple().to_string();
    let pwfile = dir.join("admin.pw");
    tokio::fs::write(&pwfile, &password)
        .await
        .map_err(|err| internal("writing the admin password file", err))?;
    set_mode(&pwfile, 0o600).await?;
    make_dir(&dir.join("run")).await?;
    give_to_owner(&dir).await?;
    let mut initdb = as_owner(&program("initdb"));
    initdb
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-U", ADMIN_ROLE, "--auth=scram-sha-256", "-E", "UTF8"])
        .args(["--locale=C.UTF-8", "--no-instructions"])
        .arg(format!("--pwfile={}", pwfile.display()));
    let made = run(initdb, "initializing the PostgreSQL cluster (initdb)").await;
    let _ = tokio::fs::remove_file(&pwfile).await;
    made?;
    let port =
        super::super::instance::free_port().map_err(|err| internal("finding a free port", err))?;
    let cluster = Cluster {
        dir,
        port,
        admin_password: password,
    };
    start(&cluster).await?;
    Ok(cluster)
}

/// Starts the cluster unless it runs already.
pub(super) async fn start(cluster: &Cluster) -> Result<()> {
    let mut status = as_owner(&program("pg_ctl"));
    status.arg("status").arg("-D").arg(cluster.data());
    if run(status, "asking pg_ctl for the cluster's status")
        .await
        .is_ok()
    {
        return Ok(());
    }
    let log = cluster.dir.join("server.log");
    let mut start = as_owner(&program("pg_ctl"));
    start
        .arg("-D")
        .arg(cluster.data())
        .arg("-l")
        .arg(&log)
        .arg("-o")
        // Dynamic shared memory in the data directory, not in `/dev/shm`, which confined
        // apps may write: there, a platform not running as root (so the cluster runs as its
        // user) would hand every app the segments holding all the datastores' query data.
        // A failing statement is not copied into the log: `CREATE ROLE … PASSWORD` carries one.
        .arg(format!(
            "-p {} -k '{}' -c listen_addresses=127.0.0.1 -c dynamic_shared_memory_type=mmap -c log_min_error_statement=panic",
            cluster.port,
            cluster.dir.join("run").display()
        ))
        .args(["-w", "-t", "60", "start"]);
    match run(start, "starting the PostgreSQL cluster (pg_ctl start)").await {
        Ok(_) => Ok(()),
        Err(error) => {
            let log_text = tokio::fs::read_to_string(&log).await.unwrap_or_default();
            let tail: Vec<String> = log_text
                .lines()
                .rev()
                .take(15)
                .map(str::to_owned)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            Err(error.with_log_tail(tail).with_hint(format!(
                "read {}; a port clash clears on retry",
                log.display()
            )))
        }
    }
}

/// Stops the cluster (fast: sessions are ended, data is flushed).
pub(super) async fn stop(cluster: &Cluster) {
    let mut stop = as_owner(&program("pg_ctl"));
    stop.arg("-D")
        .arg(cluster.data())
        .args(["-m", "fast", "-w", "-t", "30", "stop"]);
    if let Err(error) = run(stop, "stopping the PostgreSQL cluster").await {
        tracing::warn!(error = %error, "the PostgreSQL cluster did not stop cleanly");
    }
}

/// Stops the cluster at once, without the runtime (a test's last-resort cleanup).
#[cfg(test)]
pub(super) fn stop_blocking(data: &Path) -> std::io::Result<std::process::ExitStatus> {
    let program = program("pg_ctl");
    let mut command = if is_root() {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        std::process::Command::new(program)
    };
    command
        .arg("-D")
        .arg(data)
        .args(["-m", "immediate", "stop"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
}

/// A platform error for a failed client call: SQL mistakes are the caller's to fix, a
/// cancelled statement is a timeout, the rest is the platform's.
fn pg_error(doing: &str, err: &tokio_postgres::Error) -> Error {
    if let Some(db) = err.as_db_error() {
        let code = db.code().code();
        if code == "57014" {
            return Error::new(
                ErrorCode::Timeout,
                format!("{doing}: the statement ran past the time limit and was cancelled"),
            )
            .with_hint("make the query cheaper (an index, a LIMIT) and run it again");
        }
        let hint = db.hint().map_or_else(
            || "fix the SQL and run it again; `db tables` lists the tables and columns".to_owned(),
            str::to_owned,
        );
        return Error::new(
            ErrorCode::InvalidInput,
            format!("{doing}: {} (SQLSTATE {code})", db.message()),
        )
        .with_hint(hint);
    }
    internal(doing, err).with_hint("retry; if it persists the platform's PostgreSQL cluster may be down (restart the platform)")
}

pub(super) async fn connect(
    port: u16,
    user: &str,
    password: &str,
    database: &str,
    options: Option<&str>,
) -> Result<tokio_postgres::Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user(user)
        .password(password)
        .dbname(database)
        .connect_timeout(Duration::from_secs(10));
    if let Some(options) = options {
        config.options(options);
    }
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|err| pg_error("connecting to PostgreSQL", &err))?;
    // The connection's task ends when the client is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

async fn admin(cluster: &Cluster) -> Result<tokio_postgres::Client> {
    connect(
        cluster.port,
        ADMIN_ROLE,
        &cluster.admin_password,
        "postgres",
        None,
    )
    .await
}

/// Makes the role and database `identifier` (dropping leftovers of a failed attempt first).
pub(super) async fn create_database(
    cluster: &Cluster,
    identifier: &str,
    password: &str,
) -> Result<()> {
    drop_database(cluster, identifier).await?;
    let client = admin(cluster).await?;
    // Each its own statement: CREATE DATABASE cannot run inside a transaction block. The
    // identifier is `[a-z0-9_]` and the password hex, so neither needs escaping.
    for statement in [
        format!("CREATE ROLE \"{identifier}\" LOGIN PASSWORD '{password}'"),
        format!("CREATE DATABASE \"{identifier}\" OWNER \"{identifier}\""),
        format!("REVOKE ALL ON DATABASE \"{identifier}\" FROM PUBLIC"),
    ] {
        client
            .batch_execute(&statement)
            .await
            .map_err(|err| pg_error("creating the database", &err))?;
    }
    Ok(())
}

/// Drops the database (ending its sessions) and its role; nothing there is fine.
pub(super) async fn drop_database(cluster: &Cluster, identifier: &str) -> Result<()> {
    let client = admin(cluster).await?;
    for statement in [
        format!("DROP DATABASE IF EXISTS \"{identifier}\" WITH (FORCE)"),
        format!("DROP ROLE IF EXISTS \"{identifier}\""),
    ] {
        client
            .batch_execute(&statement)
            .await
            .map_err(|err| pg_error("dropping the database", &err))?;
    }
    Ok(())
}

/// A client program (pg_dump, pg_restore) aimed at the datastore; the password goes in the
/// child's env, never on its command line.
fn client_program(name: &str, target: &PgTarget) -> Command {
    let mut command = Command::new(program(name));
    command
        .args(["-h", "127.0.0.1", "-p", &target.port.to_string()])
        .args(["-U", &target.user, "-d", &target.database])
        .env("PGPASSWORD", &target.password)
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// `pg_dump -Fc` of the datastore into `file`.
pub(super) async fn dump(target: &PgTarget, file: &Path) -> Result<()> {
    let mut command = client_program("pg_dump", target);
    command.args(["-Fc", "--no-owner", "-f"]).arg(file);
    run(command, "backing up with pg_dump").await.map(|_| ())
}

/// `pg_restore --clean` of `file` into the datastore, in one transaction.
pub(super) async fn restore(target: &PgTarget, file: &Path) -> Result<()> {
    let mut command = client_program("pg_restore", target);
    command
        .args(["--clean", "--if-exists", "--no-owner", "--no-privileges"])
        .arg("--single-transaction")
        .arg(file);
    run(command, "restoring with pg_restore").await.map(|_| ())
}

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// The datastore's tables and views (user schemas), with columns and rows counted up to
/// 10,000.
pub(super) async fn tables(target: &PgTarget, limit: usize) -> Result<Vec<TableInfo>> {
    let client = connect(
        target.port,
        &target.user,
        &target.password,
        &target.database,
        Some("-c statement_timeout=30000"),
    )
    .await?;
    let rows = client
        .query(
            "SELECT c.table_schema::text, c.table_name::text, t.table_type::text, c.column_name::text, c.data_type::text
             FROM information_schema.columns c
             JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE c.table_schema NOT IN ('pg_catalog', 'information_schema')
             ORDER BY 1, 2, c.ordinal_position",
            &[],
        )
        .await
        .map_err(|err| pg_error("listing the tables", &err))?;
    let mut tables: Vec<(String, String, TableInfo)> = Vec::new();
    for row in rows {
        let (schema, table, kind, column, data_type): (String, String, String, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
        let is_same = tables
            .last()
            .is_some_and(|(s, t, _)| *s == schema && *t == table);
        if !is_same {
            if tables.len() == limit {
                break;
            }
            let name = if schema == "public" {
                table.clone()
            } else {
                format!("{schema}.{table}")
            };
            let kind = if kind == "VIEW" { "view" } else { "table" };
            tables.push((
                schema.clone(),
                table.clone(),
                TableInfo {
                    name,
                    kind: kind.to_owned(),
                    rows: None,
                    rows_capped: false,
                    columns: Vec::new(),
                },
            ));
        }
        if let Some((_, _, info)) = tables.last_mut() {
            info.columns.push(ColumnInfo {
                name: column,
                data_type,
            });
        }
    }
    for (schema, table, info) in &mut tables {
        if info.kind != "table" {
            continue;
        }
        let count = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM (SELECT 1 FROM {}.{} LIMIT {}) AS bounded",
                    quote(schema),
                    quote(table),
                    COUNT_CAP + 1
                ),
                &[],
            )
            .await
            .map_err(|err| pg_error("counting rows", &err))?;
        let rows = u64::try_from(count.get::<_, i64>(0)).unwrap_or_default();
        info.rows = Some(rows.min(COUNT_CAP));
        info.rows_capped = rows > COUNT_CAP;
    }
    Ok(tables.into_iter().map(|(_, _, info)| info).collect())
}

/// Runs SQL (one statement or several; the last one's result answers) as the datastore's
/// role, with a statement timeout; values as PostgreSQL prints them.
pub(super) async fn query(target: &PgTarget, text: &str, timeout: Duration) -> Result<QueryResult> {
    use futures_util::StreamExt;
    use tokio_postgres::SimpleQueryMessage;
    let client = connect(
        target.port,
        &target.user,
        &target.password,
        &target.database,
        Some(&format!("-c statement_timeout={}", timeout.as_millis())),
    )
    .await?;
    let work = async {
        let stream = client
            .simple_query_raw(text)
            .await
            .map_err(|err| pg_error("the query failed", &err))?;
        let mut stream = std::pin::pin!(stream);
        let (mut columns, mut rows, mut count, mut described) =
            (Vec::new(), Vec::new(), 0_u64, false);
        while let Some(message) = stream.next().await {
            match message.map_err(|err| pg_error("the query failed", &err))? {
                SimpleQueryMessage::RowDescription(fields) => {
                    columns = fields.iter().map(|f| f.name().to_owned()).collect();
                    rows.clear();
                    described = true;
                }
                SimpleQueryMessage::Row(row) => {
                    rows.push(
                        (0..row.len())
                            .map(|i| {
                                row.get(i).map_or(serde_json::Value::Null, |value| {
                                    serde_json::Value::String(value.to_owned())
                                })
                            })
                            .collect(),
                    );
                    if rows.len() > MAX_QUERY_ROWS {
                        // The rest is not read: dropping the connection ends the statement.
                        return Ok(capped(columns, rows, MAX_QUERY_ROWS as u64));
                    }
                }
                SimpleQueryMessage::CommandComplete(affected) => {
                    if described {
                        count = rows.len() as u64;
                    } else {
                        columns.clear();
                        rows.clear();
                        count = affected;
                    }
                    described = false;
                }
                _ => {}
            }
        }
        Ok(capped(columns, rows, count))
    };
    tokio::time::timeout(timeout + Duration::from_secs(5), work)
        .await
        .unwrap_or_else(|_| {
            Err(Error::new(
                ErrorCode::Timeout,
                format!("the query ran past {} s", timeout.as_secs()),
            )
            .with_hint("make the query cheaper (an index, a LIMIT) and run it again"))
        })
}
