//! The local platform's reads and writes of `platform.db`. Every function takes a connection
//! (a `Transaction` derefs to one), so a verb composes them inside one transaction.

use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    DeletedProject, ProjectEvent, ProjectState, ProjectSummary, ServiceState, ServiceStatus,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_TTL_MS: i64 = 24 * 3600 * 1000;
/// How many events `getProject` shows.
const RECENT_EVENTS: i64 = 20;

/// Runs `work` once per `key` and request: a replay of the same key and request returns the
/// stored answer, the same key with another request is a `CONFLICT`. Without a key, `work`
/// just runs. Failures are not stored, so a retry can succeed.
pub fn idempotent<T, F>(
    conn: &Connection,
    key: Option<&str>,
    verb: &str,
    request: &serde_json::Value,
    now: i64,
    work: F,
) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T>,
{
    let Some(key) = key else {
        return work();
    };
    if key.is_empty() || key.len() > 200 {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "an idempotency_key must be 1 to 200 characters",
        )
        .with_hint("use a short unique string per intended action, e.g. a UUID"));
    }
    conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < ?1",
        [now - IDEMPOTENCY_TTL_MS],
    )?;
    let request_sha256 = hex::encode(Sha256::digest(format!("{verb}\n{request}").as_bytes()));
    let seen: Option<(String, String, String, i64)> = conn
        .query_row(
            "SELECT verb, request_sha256, response_json, created_at FROM idempotency_keys WHERE key = ?1",
            [key],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    if let Some((seen_verb, seen_sha256, response, created_at)) = seen {
        if seen_sha256 == request_sha256 {
            return serde_json::from_str(&response).map_err(|err| {
                Error::new(
                    ErrorCode::InternalError,
                    format!("a stored answer does not parse: {err}"),
                )
            });
        }
        return Err(Error::new(
            ErrorCode::Conflict,
            format!("the idempotency_key `{key}` was already used for a different {seen_verb} request"),
        )
        .with_hint("use a new idempotency_key for a different request; reuse a key only to retry the very same request")
        .with_state(serde_json::json!({ "verb": seen_verb, "first_used_at_ms": created_at })));
    }
    let answer = work()?;
    let response = serde_json::to_string(&answer).map_err(|err| {
        Error::new(
            ErrorCode::InternalError,
            format!("an answer does not serialise: {err}"),
        )
    })?;
    conn.execute(
        "INSERT INTO idempotency_keys (key, verb, request_sha256, response_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![key, verb, request_sha256, response, now],
    )?;
    Ok(answer)
}

/// Inserts the project; false when it already exists.
pub fn insert_project(conn: &Connection, name: &str, now: i64) -> Result<bool> {
    let inserted = conn.execute(
        "INSERT INTO projects (name, created_at) VALUES (?1, ?2) ON CONFLICT (name) DO NOTHING",
        params![name, now],
    )?;
    Ok(inserted == 1)
}

/// Appends a project event.
pub fn record_event(
    conn: &Connection,
    project: &str,
    kind: &str,
    service: Option<&str>,
    message: &str,
    now: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO events (project, kind, service, message, at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![project, kind, service, message, now],
    )?;
    Ok(())
}

/// `NOT_FOUND` for a project, naming the ones that exist.
pub fn project_not_found(conn: &Connection, name: &str) -> Error {
    let known: Vec<String> = list_projects(conn)
        .map(|projects| projects.into_iter().map(|p| p.name).collect())
        .unwrap_or_default();
    let closest = known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate.clone());
    let hint = match closest {
        Some(candidate) => format!("did you mean `{candidate}`? `list_projects` shows them all"),
        None if known.is_empty() => {
            "there are no projects yet: create one first (`automaton platform init NAME`)"
                .to_owned()
        }
        None => "create it first, or pick one of the existing projects".to_owned(),
    };
    Error::new(ErrorCode::NotFound, format!("no project named `{name}`"))
        .with_hint(hint)
        .with_state(serde_json::json!({ "projects": known }))
}

/// The project's full state tree.
pub fn project_state(conn: &Connection, name: &str) -> Result<ProjectState> {
    let created_at: Option<i64> = conn
        .query_row(
            "SELECT created_at FROM projects WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()?;
    let Some(created_at_ms) = created_at else {
        return Err(project_not_found(conn, name));
    };
    let mut services = Vec::new();
    let mut stmt = conn.prepare_cached(
        "SELECT name, status, replicas, current_release, previous_release FROM services WHERE project = ?1 ORDER BY name",
    )?;
    let rows = stmt.query_map([name], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, u32>(2)?,
            row.get::<_, Option<String>>(3)?,
            row.get::<_, Option<String>>(4)?,
        ))
    })?;
    for row in rows {
        let (service, status, replicas, current_release, previous_release) = row?;
        services.push(ServiceState {
            status: ServiceStatus::parse(&status).ok_or_else(|| {
                Error::new(
                    ErrorCode::InternalError,
                    format!("service {service} has an unknown status `{status}`"),
                )
            })?,
            name: service,
            replicas,
            current_release,
            previous_release,
        });
    }
    let env_names = conn
        .prepare_cached("SELECT name FROM env WHERE project = ?1 ORDER BY name")?
        .query_map([name], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let mut recent_events = conn
        .prepare_cached(
            "SELECT id, kind, service, message, at FROM events WHERE project = ?1 ORDER BY id DESC LIMIT ?2",
        )?
        .query_map(params![name, RECENT_EVENTS], |row| {
            Ok(ProjectEvent {
                id: row.get(0)?,
                kind: row.get(1)?,
                service: row.get(2)?,
                message: row.get(3)?,
                at_ms: row.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    recent_events.reverse();
    Ok(ProjectState {
        name: name.to_owned(),
        created_at_ms,
        services,
        env_names,
        recent_events,
    })
}

/// Every project, by name.
pub fn list_projects(conn: &Connection) -> Result<Vec<ProjectSummary>> {
    let projects = conn
        .prepare_cached(
            "SELECT p.name, p.created_at, (SELECT COUNT(*) FROM services s WHERE s.project = p.name)
             FROM projects p ORDER BY p.name",
        )?
        .query_map([], |row| {
            Ok(ProjectSummary {
                name: row.get(0)?,
                created_at_ms: row.get(1)?,
                services: row.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(projects)
}

/// Removes the project and everything in it (services, releases and env cascade; its events
/// and operations go too).
pub fn delete_project(conn: &Connection, name: &str) -> Result<DeletedProject> {
    let removed_services = conn
        .prepare_cached("SELECT name FROM services WHERE project = ?1 ORDER BY name")?
        .query_map([name], |row| row.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    let deleted = conn.execute("DELETE FROM projects WHERE name = ?1", [name])? == 1;
    conn.execute("DELETE FROM events WHERE project = ?1", [name])?;
    conn.execute("DELETE FROM operations WHERE project = ?1", [name])?;
    Ok(DeletedProject {
        name: name.to_owned(),
        deleted,
        removed_services,
    })
}
