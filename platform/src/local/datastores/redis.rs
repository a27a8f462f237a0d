//! Redis datastores: a `redis-server` per datastore on a private loopback port, password auth
//! (`requirepass`, in a 0600 config file, never on a command line), its RDB file in its own
//! directory (saved on shutdown, so data survives a platform restart). Backups are an RDB
//! snapshot (`SAVE`, then a copy of `dump.rdb`); a restore stops the server, puts the snapshot
//! in place and starts it again. Queries are one command (`HGETALL user:1`, quoted arguments
//! allowed), except the few that would break the platform's hold on the server.

use super::{capped, internal};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{MAX_QUERY_ROWS, QueryResult, TableInfo};
use std::path::Path;
use std::time::Duration;

/// Commands a query may not run: they would change how the platform reaches or runs the
/// server, or never return.
const REFUSED: &[&str] = &[
    "ACL",
    "AUTH",
    "BGREWRITEAOF",
    "CLIENT",
    "CLUSTER",
    "CONFIG",
    "DEBUG",
    "FAILOVER",
    "HELLO",
    "MIGRATE",
    "MODULE",
    "MONITOR",
    "PSUBSCRIBE",
    "PSYNC",
    "REPLICAOF",
    "SELECT",
    "SHUTDOWN",
    "SLAVEOF",
    "SSUBSCRIBE",
    "SUBSCRIBE",
    "SYNC",
];

fn pid_file(dir: &Path) -> std::path::PathBuf {
    dir.join("redis.pid")
}

/// The pid of the server if it runs.
async fn running_pid(dir: &Path) -> Option<rustix::process::Pid> {
    let text = tokio::fs::read_to_string(pid_file(dir)).await.ok()?;
    let pid = rustix::process::Pid::from_raw(text.trim().parse().ok()?)?;
    rustix::process::test_kill_process(pid).ok()?;
    Some(pid)
}

async fn connect(port: u16, password: &str) -> Result<redis::aio::MultiplexedConnection> {
    // The password is hex: nothing in it needs escaping in the URL.
    let url = format!("redis://:{password}@127.0.0.1:{port}/0");
    let client = redis::Client::open(url.as_str())
        .map_err(|err| redis_error("connecting to Redis", &err))?;
    tokio::time::timeout(
        Duration::from_secs(2),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| internal("connecting to Redis", "no answer within 2 s"))?
    .map_err(|err| redis_error("connecting to Redis", &err))
}

fn redis_error(doing: &str, err: &redis::RedisError) -> Error {
    if err.is_io_error() || err.is_connection_refusal() || err.is_timeout() {
        return internal(doing, err).with_hint(
            "retry; if it persists the datastore's server is down (restart the platform)",
        );
    }
    Error::new(ErrorCode::InvalidInput, format!("{doing}: {err}"))
        .with_hint("fix the command and run it again; `db tables` lists the keys and their types")
}

/// Starts the server (unless it runs) and waits until it answers `PING`.
pub(super) async fn start(dir: &Path, port: u16, password: &str) -> Result<()> {
    if running_pid(dir).await.is_some() && ping(port, password).await.is_ok() {
        return Ok(());
    }
    super::private_dir(dir).await?;
    let config = dir.join("redis.conf");
    let text = format!(
        "port {port}\nbind 127.0.0.1\nprotected-mode yes\ndaemonize yes\npidfile {pid}\ndir {dir}\nlogfile {log}\nrequirepass {password}\nsave 60 1\nappendonly no\ndbfilename dump.rdb\n",
        pid = pid_file(dir).display(),
        dir = dir.display(),
        log = dir.join("redis.log").display(),
    );
    let config_path = config.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::remove_file(&config_path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&config_path)
            .and_then(|mut file| file.write_all(text.as_bytes()))
    })
    .await
    .map_err(|err| internal("writing the Redis config", err))?
    .map_err(|err| internal("writing the Redis config", err))?;
    let status = tokio::process::Command::new("redis-server")
        .arg(&config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|err| {
            internal("starting redis-server", err)
                .with_hint("install Redis (Debian: `apt-get install redis-server`)")
        })?;
    if !status.status.success() {
        return Err(internal(
            "starting redis-server",
            String::from_utf8_lossy(&status.stderr).trim(),
        ));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let answered = ping(port, password).await;
        let Err(error) = answered else {
            return Ok(());
        };
        let log = tokio::fs::read_to_string(dir.join("redis.log"))
            .await
            .unwrap_or_default();
        // A server that could not listen has exited: no use waiting for it.
        let gave_up = log.contains("Failed listening on port")
            || log.contains("Could not create server TCP listening socket");
        if gave_up || tokio::time::Instant::now() >= deadline {
            let tail: Vec<String> = log.lines().rev().take(10).map(str::to_owned).collect();
            return Err(error
                .with_log_tail(tail.into_iter().rev().collect())
                .with_hint("the Redis server did not come up (its log tail says why); a port clash clears when the port is free again"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn ping(port: u16, password: &str) -> Result<()> {
    let mut connection = connect(port, password).await?;
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .map_err(|err| redis_error("pinging Redis", &err))?;
    Ok(())
}

/// Stops the server (SIGTERM: it saves its RDB file first) and waits up to 10 s for it to go.
pub(super) async fn stop(dir: &Path) {
    let Some(pid) = running_pid(dir).await else {
        return;
    };
    if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_err() {
        return;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while rustix::process::test_kill_process(pid).is_ok() {
        if tokio::time::Instant::now() >= deadline {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `SAVE`, then a copy of the RDB file into `file`.
pub(super) async fn snapshot(port: u16, password: &str, dir: &Path, file: &Path) -> Result<()> {
    let mut connection = connect(port, password).await?;
    redis::cmd("SAVE")
        .query_async::<()>(&mut connection)
        .await
        .map_err(|err| redis_error("saving the Redis snapshot", &err))?;
    tokio::fs::copy(dir.join("dump.rdb"), file)
        .await
        .map_err(|err| internal("copying the Redis snapshot", err))?;
    Ok(())
}

/// Stops the server, puts the snapshot `file` in place of its RDB file and starts it again.
pub(super) async fn restore(port: u16, password: &str, dir: &Path, file: &Path) -> Result<()> {
    stop(dir).await;
    tokio::fs::copy(file, dir.join("dump.rdb"))
        .await
        .map_err(|err| internal("putting the snapshot in place", err))?;
    start(dir, port, password).await
}

/// Up to `limit` keys (SCAN) with their types and sizes.
pub(super) async fn keys(port: u16, password: &str, limit: usize) -> Result<Vec<TableInfo>> {
    let mut connection = connect(port, password).await?;
    let mut cursor: u64 = 0;
    let mut names: Vec<String> = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("COUNT")
            .arg(200)
            .query_async(&mut connection)
            .await
            .map_err(|err| redis_error("listing the keys", &err))?;
        names.extend(batch);
        cursor = next;
        if cursor == 0 || names.len() >= limit {
            break;
        }
    }
    names.sort();
    names.dedup();
    names.truncate(limit);
    let mut tables = Vec::with_capacity(names.len());
    for name in names {
        let kind: String = redis::cmd("TYPE")
            .arg(&name)
            .query_async(&mut connection)
            .await
            .map_err(|err| redis_error("reading a key's type", &err))?;
        let size_command = match kind.as_str() {
            "hash" => Some("HLEN"),
            "list" => Some("LLEN"),
            "set" => Some("SCARD"),
            "zset" => Some("ZCARD"),
            "stream" => Some("XLEN"),
            _ => None,
        };
        let rows = match size_command {
            Some(command) => Some(
                redis::cmd(command)
                    .arg(&name)
                    .query_async::<u64>(&mut connection)
                    .await
                    .map_err(|err| redis_error("reading a key's size", &err))?,
            ),
            None => None,
        };
        tables.push(TableInfo {
            name,
            kind,
            rows,
            rows_capped: false,
            columns: Vec::new(),
        });
    }
    Ok(tables)
}

/// Splits a command line into words: whitespace separates, `"…"` and `'…'` quote (with `\`
/// escapes inside double quotes).
pub(super) fn parse_command(text: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '"' || c == '\'' {
                let quote = c;
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == quote {
                        closed = true;
                        break;
                    }
                    if c == '\\' && quote == '"' {
                        match chars.next() {
                            Some('n') => word.push('\n'),
                            Some('t') => word.push('\t'),
                            Some(other) => word.push(other),
                            None => break,
                        }
                    } else {
                        word.push(c);
                    }
                }
                if !closed {
                    return Err(Error::new(
                        ErrorCode::InvalidInput,
                        format!("the command has an unclosed {quote} quote"),
                    )
                    .with_hint("close the quote, e.g. SET greeting \"hello world\""));
                }
            } else {
                word.push(c);
            }
        }
        words.push(word);
    }
    Ok(words)
}

fn to_json(value: redis::Value) -> serde_json::Value {
    use redis::Value;
    match value {
        Value::Nil => serde_json::Value::Null,
        Value::Int(n) => n.into(),
        Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned().into(),
        Value::SimpleString(text) => text.into(),
        Value::Okay => "OK".into(),
        Value::Double(x) => x.into(),
        Value::Boolean(b) => b.into(),
        Value::Array(items) | Value::Set(items) => {
            serde_json::Value::Array(items.into_iter().map(to_json).collect())
        }
        Value::Map(pairs) => serde_json::Value::Array(
            pairs
                .into_iter()
                .map(|(k, v)| serde_json::Value::Array(vec![to_json(k), to_json(v)]))
                .collect(),
        ),
        other => format!("{other:?}").into(),
    }
}

/// Runs one command; the answer as a table: pairs for `HGETALL` (and RESP3 maps), one row per
/// element for arrays, one row for a single value.
pub(super) async fn command(
    port: u16,
    password: &str,
    text: &str,
    timeout: Duration,
) -> Result<QueryResult> {
    let words = parse_command(text)?;
    let Some(name) = words.first().map(|w| w.to_ascii_uppercase()) else {
        return Err(Error::new(ErrorCode::InvalidInput, "the command is empty")
            .with_hint("send one command, e.g. HGETALL user:1"));
    };
    if REFUSED.contains(&name.as_str()) {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("{name} is not allowed through the query API"),
        )
        .with_hint("the platform manages the server's config, auth and lifecycle; use data commands (GET, SET, HGETALL, LRANGE, SCAN, …)"));
    }
    let mut connection = connect(port, password).await?;
    let mut cmd = redis::cmd(&name);
    for word in &words[1..] {
        cmd.arg(word);
    }
    let value: redis::Value = tokio::time::timeout(timeout, cmd.query_async(&mut connection))
        .await
        .map_err(|_| {
            Error::new(
                ErrorCode::Timeout,
                format!("{name} ran past {} s", timeout.as_secs()),
            )
            .with_hint("use a cheaper command (SCAN instead of KEYS, ranges instead of whole keys)")
        })?
        .map_err(|err| redis_error(&format!("{name} failed"), &err))?;
    let pairs = name == "HGETALL" || matches!(value, redis::Value::Map(_));
    let value = to_json(value);
    let (columns, rows): (Vec<String>, Vec<Vec<serde_json::Value>>) = match value {
        serde_json::Value::Array(items) if pairs => {
            let items: Vec<serde_json::Value> = items
                .into_iter()
                .flat_map(|item| match item {
                    serde_json::Value::Array(pair) => pair,
                    other => vec![other],
                })
                .collect();
            let rows = items
                .chunks(2)
                .take(MAX_QUERY_ROWS + 1)
                .map(|pair| pair.to_vec())
                .collect();
            (vec!["field".to_owned(), "value".to_owned()], rows)
        }
        serde_json::Value::Array(items) => (
            vec!["value".to_owned()],
            items
                .into_iter()
                .take(MAX_QUERY_ROWS + 1)
                .map(|item| vec![item])
                .collect(),
        ),
        single => (vec!["value".to_owned()], vec![vec![single]]),
    };
    let count = rows.len().min(MAX_QUERY_ROWS) as u64;
    Ok(capped(columns, rows, count))
}
