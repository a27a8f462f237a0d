//! The local platform's reads and writes of `platform.db`. Every function takes a connection
//! (a `Transaction` derefs to one), so a verb composes them inside one transaction.

use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    DeletedProject, Operation, OperationEvent, OperationStatus, Phase, ProjectEvent, ProjectState,
    ProjectSummary, ServiceState, ServiceStatus,
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
    if let Some(answer) = replayed(conn, key, verb, request, now)? {
        return Ok(answer);
    }
    let answer = work()?;
    remember(conn, key, verb, request, &answer, now)?;
    Ok(answer)
}

fn request_hash(verb: &str, request: &serde_json::Value) -> String {
    hex::encode(Sha256::digest(format!("{verb}\n{request}").as_bytes()))
}

/// The stored answer for `key` when it was used for this very request; a `CONFLICT` when it
/// was used for another; `None` when it is new.
pub fn replayed<T: DeserializeOwned>(
    conn: &Connection,
    key: &str,
    verb: &str,
    request: &serde_json::Value,
    now: i64,
) -> Result<Option<T>> {
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
    let seen: Option<(String, String, String, i64)> = conn
        .query_row(
            "SELECT verb, request_sha256, response_json, created_at FROM idempotency_keys WHERE key = ?1",
            [key],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    let Some((seen_verb, seen_sha256, response, created_at)) = seen else {
        return Ok(None);
    };
    if seen_sha256 == request_hash(verb, request) {
        if response.is_empty() {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!("a {seen_verb} request with the idempotency_key `{key}` is still running"),
            )
            .with_hint("wait a moment and retry with the same key: the answer of the first request comes back")
            .retryable_anyway());
        }
        return serde_json::from_str(&response).map(Some).map_err(|err| {
            Error::new(
                ErrorCode::InternalError,
                format!("a stored answer does not parse: {err}"),
            )
            .not_retryable()
        });
    }
    Err(Error::new(
        ErrorCode::Conflict,
        format!("the idempotency_key `{key}` was already used for a different {seen_verb} request"),
    )
    .with_hint("use a new idempotency_key for a different request; reuse a key only to retry the very same request")
    .with_state(serde_json::json!({ "verb": seen_verb, "first_used_at_ms": created_at })))
}

/// The stored answer for `key` (as [`replayed`]); when the key is new, it is claimed for
/// this request (a pending row), so a concurrent retry with the same key waits for this one
/// instead of running the change twice. Settle the claim with [`remember`] or
/// [`release_claim`].
pub fn claim<T: DeserializeOwned>(
    conn: &Connection,
    key: &str,
    verb: &str,
    request: &serde_json::Value,
    now: i64,
) -> Result<Option<T>> {
    if let Some(answer) = replayed(conn, key, verb, request, now)? {
        return Ok(Some(answer));
    }
    conn.execute(
        "INSERT INTO idempotency_keys (key, verb, request_sha256, response_json, created_at) VALUES (?1, ?2, ?3, '', ?4)",
        params![key, verb, request_hash(verb, request), now],
    )?;
    Ok(None)
}

/// Frees a claimed key whose request failed, so a retry runs it again.
pub fn release_claim(conn: &Connection, key: &str) -> Result<()> {
    conn.execute(
        "DELETE FROM idempotency_keys WHERE key = ?1 AND response_json = ''",
        [key],
    )?;
    Ok(())
}

/// Claims a previous platform process left pending: their requests never answered.
pub fn release_abandoned_claims(conn: &Connection) -> Result<usize> {
    Ok(conn.execute("DELETE FROM idempotency_keys WHERE response_json = ''", [])?)
}

/// Stores `answer` as the response to `key`'s request.
pub fn remember<T: Serialize>(
    conn: &Connection,
    key: &str,
    verb: &str,
    request: &serde_json::Value,
    answer: &T,
    now: i64,
) -> Result<()> {
    let response = serde_json::to_string(answer).map_err(|err| {
        Error::new(
            ErrorCode::InternalError,
            format!("an answer does not serialise: {err}"),
        )
        .not_retryable()
    })?;
    conn.execute(
        "INSERT INTO idempotency_keys (key, verb, request_sha256, response_json, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (key) DO UPDATE SET response_json = excluded.response_json WHERE response_json = ''",
        params![key, verb, request_hash(verb, request), response, now],
    )?;
    Ok(())
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

/// The name in `known` most like `name` (Jaro–Winkler above 0.8), for a "did you mean".
pub fn closest(name: &str, known: &[String]) -> Option<String> {
    known
        .iter()
        .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, candidate)| candidate.clone())
}

/// `NOT_FOUND` for a project, naming the ones that exist.
pub fn project_not_found(conn: &Connection, name: &str) -> Error {
    let known: Vec<String> = list_projects(conn)
        .map(|projects| projects.into_iter().map(|p| p.name).collect())
        .unwrap_or_default();
    let closest = closest(name, &known);
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
        .query_map(params![name, RECENT_EVENTS], event_row)?
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

/// Whether the project exists.
pub fn project_exists(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .query_row("SELECT 1 FROM projects WHERE name = ?1", [name], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Creates the service row if it does not exist (status `stopped`).
pub fn ensure_service(conn: &Connection, project: &str, service: &str, now: i64) -> Result<()> {
    conn.execute(
        "INSERT INTO services (project, name, status, created_at, updated_at) VALUES (?1, ?2, 'stopped', ?3, ?3)
         ON CONFLICT (project, name) DO NOTHING",
        params![project, service, now],
    )?;
    Ok(())
}

/// Sets a service's status.
pub fn set_service_status(
    conn: &Connection,
    project: &str,
    service: &str,
    status: ServiceStatus,
    now: i64,
) -> Result<()> {
    conn.execute(
        "UPDATE services SET status = ?3, updated_at = ?4 WHERE project = ?1 AND name = ?2",
        params![project, service, status.as_str(), now],
    )?;
    Ok(())
}

/// The service's current release and status, if the service exists.
pub fn service_release(
    conn: &Connection,
    project: &str,
    service: &str,
) -> Result<Option<(Option<String>, ServiceStatus, u32)>> {
    let row: Option<(Option<String>, String, u32)> = conn
        .query_row(
            "SELECT current_release, status, replicas FROM services WHERE project = ?1 AND name = ?2",
            params![project, service],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(row.map(|(release, status, replicas)| {
        (
            release,
            ServiceStatus::parse(&status).unwrap_or(ServiceStatus::Stopped),
            replicas,
        )
    }))
}

/// The operation still in flight for the service, if any.
pub fn operation_in_flight(
    conn: &Connection,
    project: &str,
    service: &str,
) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT id FROM operations WHERE project = ?1 AND service = ?2 AND status IN ('queued', 'running')",
            params![project, service],
            |r| r.get(0),
        )
        .optional()?)
}

/// Inserts a queued operation.
pub fn insert_operation(
    conn: &Connection,
    id: &str,
    kind: &str,
    project: &str,
    service: &str,
    now: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO operations (id, kind, project, service, status, phase, created_at) VALUES (?1, ?2, ?3, ?4, 'queued', 'queued', ?5)",
        params![id, kind, project, service, now],
    )?;
    push_event(
        conn,
        id,
        "phase",
        &serde_json::json!({"phase": "queued"}),
        now,
    )
}

/// Appends an event to the operation's stream.
pub fn push_event(
    conn: &Connection,
    operation: &str,
    kind: &str,
    data: &serde_json::Value,
    now: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO operation_events (operation, seq, kind, data_json, at)
         VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM operation_events WHERE operation = ?1), ?2, ?3, ?4)",
        params![operation, kind, data.to_string(), now],
    )?;
    Ok(())
}

/// Moves the operation to `phase` (running) and records the change in its stream.
pub fn set_phase(conn: &Connection, operation: &str, phase: Phase, now: i64) -> Result<()> {
    conn.execute(
        "UPDATE operations SET phase = ?2, status = 'running' WHERE id = ?1",
        params![operation, phase.as_str()],
    )?;
    push_event(
        conn,
        operation,
        "phase",
        &serde_json::json!({"phase": phase.as_str()}),
        now,
    )
}

/// Ends the operation with a result or an error, and closes its stream with `done`.
pub fn finish_operation(
    conn: &Connection,
    operation: &str,
    phase: Phase,
    outcome: &std::result::Result<serde_json::Value, Error>,
    now: i64,
) -> Result<()> {
    let (status, result, error) = match outcome {
        Ok(result) => (OperationStatus::Succeeded, Some(result.to_string()), None),
        Err(error) => (
            OperationStatus::Failed,
            None,
            Some(serde_json::to_string(error).unwrap_or_default()),
        ),
    };
    conn.execute(
        "UPDATE operations SET status = ?2, phase = ?3, result_json = ?4, error_json = ?5, finished_at = ?6 WHERE id = ?1",
        params![operation, status.as_str(), phase.as_str(), result, error, now],
    )?;
    push_event(
        conn,
        operation,
        "phase",
        &serde_json::json!({"phase": phase.as_str()}),
        now,
    )?;
    let done = match outcome {
        Ok(result) => serde_json::json!({"status": status.as_str(), "result": result}),
        Err(error) => serde_json::json!({"status": status.as_str(), "error": error}),
    };
    push_event(conn, operation, "done", &done, now)
}

/// The operation, or `NOT_FOUND`.
pub fn operation(conn: &Connection, id: &str) -> Result<Operation> {
    let row = conn
        .query_row(
            "SELECT kind, project, service, status, phase, result_json, error_json, created_at, finished_at FROM operations WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, i64>(7)?,
                    r.get::<_, Option<i64>>(8)?,
                ))
            },
        )
        .optional()?;
    let Some((kind, project, service, status, phase, result, error, created_at_ms, finished_at_ms)) =
        row
    else {
        return Err(
            Error::new(ErrorCode::NotFound, format!("no operation `{id}`")).with_hint(
                "use the operation_id a deploy returned; operations go with their project",
            ),
        );
    };
    Ok(Operation {
        id: id.to_owned(),
        kind,
        project,
        service,
        status: OperationStatus::parse(&status).unwrap_or(OperationStatus::Failed),
        phase: Phase::parse(&phase).unwrap_or(Phase::Failed),
        result: result.and_then(|text| serde_json::from_str(&text).ok()),
        error: error.and_then(|text| serde_json::from_str(&text).ok()),
        created_at_ms,
        finished_at_ms,
    })
}

/// The operation's events after `after_seq`, in order.
pub fn operation_events(
    conn: &Connection,
    id: &str,
    after_seq: i64,
) -> Result<Vec<OperationEvent>> {
    let events = conn
        .prepare_cached(
            "SELECT seq, kind, data_json, at FROM operation_events WHERE operation = ?1 AND seq > ?2 ORDER BY seq",
        )?
        .query_map(params![id, after_seq], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get::<_, i64>(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(events
        .into_iter()
        .map(|(seq, kind, data, at_ms)| OperationEvent {
            seq,
            kind,
            data: serde_json::from_str(&data).unwrap_or(serde_json::Value::Null),
            at_ms,
        })
        .collect())
}

/// Records a built release, ready to start, with its plan.
pub fn record_release(
    conn: &Connection,
    (project, service): (&str, &str),
    id: &str,
    sha256: &str,
    plan_json: Option<&str>,
    now: i64,
) -> Result<()> {
    conn.execute(
        "INSERT INTO releases (id, project, service, sha256, plan_json, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, 'ready', ?6)
         ON CONFLICT (project, service, id) DO UPDATE SET plan_json = excluded.plan_json, status = 'ready'",
        params![id, project, service, sha256, plan_json, now],
    )?;
    Ok(())
}

/// Marks a release that failed its health gate.
pub fn mark_release_failed(
    conn: &Connection,
    project: &str,
    service: &str,
    id: &str,
) -> Result<()> {
    conn.execute(
        "UPDATE releases SET status = 'failed' WHERE project = ?1 AND service = ?2 AND id = ?3",
        params![project, service, id],
    )?;
    Ok(())
}

/// Points the service at `release`, keeping the one it ran as the rollback target.
pub fn promote_release(
    conn: &Connection,
    project: &str,
    service: &str,
    release: &str,
    now: i64,
) -> Result<()> {
    conn.execute(
        "UPDATE services SET
             previous_release = CASE WHEN current_release IS NOT NULL AND current_release != ?3 THEN current_release ELSE previous_release END,
             current_release = ?3, status = 'active', replicas = MAX(replicas, 1), updated_at = ?4
         WHERE project = ?1 AND name = ?2",
        params![project, service, release, now],
    )?;
    Ok(())
}

/// The env of a project, names and values, for starting its processes (never for a read).
pub fn env_values(conn: &Connection, project: &str) -> Result<Vec<(String, String)>> {
    Ok(conn
        .prepare_cached("SELECT name, value FROM env WHERE project = ?1 ORDER BY name")?
        .query_map([project], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Operations a previous platform process left unfinished: failed, so a caller polling them
/// learns to deploy again.
pub fn fail_abandoned_operations(conn: &Connection, now: i64) -> Result<usize> {
    let ids = conn
        .prepare("SELECT id FROM operations WHERE status IN ('queued', 'running')")?
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for id in &ids {
        let error = Error::new(
            ErrorCode::InternalError,
            "the platform restarted while this operation ran; nothing of it took effect",
        )
        .with_hint("deploy again");
        finish_operation(conn, id, Phase::Failed, &Err(error), now)?;
    }
    conn.execute(
        "UPDATE services SET status = CASE WHEN current_release IS NULL THEN 'failed' ELSE 'active' END, updated_at = ?1
         WHERE status IN ('queued', 'building', 'deploying')",
        [now],
    )?;
    Ok(ids.len())
}

/// The service's row, or `NOT_FOUND` naming the project's services.
pub fn require_service(conn: &Connection, project: &str, service: &str) -> Result<ServiceState> {
    let state = project_state(conn, project)?;
    let names: Vec<String> = state.services.iter().map(|s| s.name.clone()).collect();
    state
        .services
        .into_iter()
        .find(|s| s.name == service)
        .ok_or_else(|| {
            let closest = closest(service, &names);
            let hint = match closest {
                Some(candidate) => format!("did you mean `{candidate}`? list_services shows them all"),
                None => "deploy it first (a first deploy creates the service), or pick one of the project's services".to_owned(),
            };
            Error::new(ErrorCode::NotFound, format!("no service `{service}` in project `{project}`"))
                .with_hint(hint)
                .with_state(serde_json::json!({ "services": names }))
        })
}

/// The service's releases, newest first.
pub fn releases(
    conn: &Connection,
    project: &str,
    service: &str,
) -> Result<Vec<crate::model::ReleaseInfo>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, status, created_at FROM releases WHERE project = ?1 AND service = ?2 ORDER BY created_at DESC, id",
        )?
        .query_map(params![project, service], |r| {
            Ok(crate::model::ReleaseInfo {
                id: r.get(0)?,
                status: r.get(1)?,
                created_at_ms: r.get(2)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The build plan of a ready release.
pub fn release_plan(
    conn: &Connection,
    project: &str,
    service: &str,
    release: &str,
) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT plan_json FROM releases WHERE project = ?1 AND service = ?2 AND id = ?3 AND status = 'ready'",
            params![project, service, release],
            |r| r.get::<_, Option<String>>(0),
        )
        .optional()?
        .flatten())
}

/// Sets the wanted replica count.
pub fn set_replicas(
    conn: &Connection,
    project: &str,
    service: &str,
    replicas: u32,
    now: i64,
) -> Result<()> {
    conn.execute(
        "UPDATE services SET replicas = ?3, updated_at = ?4 WHERE project = ?1 AND name = ?2",
        params![project, service, replicas, now],
    )?;
    Ok(())
}

/// The directories of the project's SQLite datastores: what its confined apps may write
/// besides their release.
pub fn sqlite_datastore_dirs(conn: &Connection, project: &str) -> Result<Vec<std::path::PathBuf>> {
    Ok(conn
        .prepare_cached("SELECT path FROM datastores WHERE project = ?1 AND kind = 'sqlite' AND path IS NOT NULL")?
        .query_map([project], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?
        .into_iter()
        .filter_map(|path| std::path::Path::new(&path).parent().map(std::path::Path::to_path_buf))
        .collect())
}

/// Sets the service's status to `to` only while it is `from`.
pub fn set_service_status_if(
    conn: &Connection,
    project: &str,
    service: &str,
    from: ServiceStatus,
    to: ServiceStatus,
    now: i64,
) -> Result<()> {
    conn.execute(
        "UPDATE services SET status = ?4, updated_at = ?5 WHERE project = ?1 AND name = ?2 AND status = ?3",
        params![project, service, from.as_str(), to.as_str(), now],
    )?;
    Ok(())
}

/// Merges `vars` into the project env.
pub fn merge_env(
    conn: &Connection,
    project: &str,
    vars: &[(String, String)],
    now: i64,
) -> Result<()> {
    for (name, value) in vars {
        conn.execute(
            "INSERT INTO env (project, name, value, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![project, name, value, now],
        )?;
    }
    Ok(())
}

/// The names of the project's env.
pub fn env_names(conn: &Connection, project: &str) -> Result<Vec<String>> {
    Ok(conn
        .prepare_cached("SELECT name FROM env WHERE project = ?1 ORDER BY name")?
        .query_map([project], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Counts the project's deploys in flight.
pub fn builds_in_flight(conn: &Connection, project: &str) -> Result<u32> {
    Ok(conn.query_row(
        "SELECT COUNT(*) FROM operations WHERE project = ?1 AND kind = 'deploy' AND status IN ('queued', 'running')",
        [project],
        |r| r.get(0),
    )?)
}

/// The log lines of the service's latest deploy.
pub fn latest_build_lines(
    conn: &Connection,
    project: &str,
    service: &str,
    lines: usize,
) -> Result<Vec<String>> {
    let latest: Option<String> = conn
        .query_row(
            "SELECT id FROM operations WHERE project = ?1 AND service = ?2 AND kind = 'deploy' ORDER BY created_at DESC LIMIT 1",
            params![project, service],
            |r| r.get(0),
        )
        .optional()?;
    let Some(operation) = latest else {
        return Ok(Vec::new());
    };
    let mut out: Vec<String> = conn
        .prepare_cached(
            "SELECT data_json FROM operation_events WHERE operation = ?1 AND kind = 'log' ORDER BY seq DESC LIMIT ?2",
        )?
        .query_map(params![operation, i64::try_from(lines).unwrap_or(i64::MAX)], |r| r.get::<_, String>(0))?
        .filter_map(|row| row.ok())
        .filter_map(|json| serde_json::from_str::<serde_json::Value>(&json).ok())
        .filter_map(|value| value["line"].as_str().map(str::to_owned))
        .collect();
    out.reverse();
    Ok(out)
}

/// The project's events after `after_id`, oldest first.
pub fn events_after(conn: &Connection, project: &str, after_id: i64) -> Result<Vec<ProjectEvent>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, kind, service, message, at FROM events WHERE project = ?1 AND id > ?2 ORDER BY id LIMIT 500",
        )?
        .query_map(params![project, after_id], event_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A `SELECT id, kind, service, message, at FROM events` row.
fn event_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ProjectEvent> {
    Ok(ProjectEvent {
        id: row.get(0)?,
        kind: row.get(1)?,
        service: row.get(2)?,
        message: row.get(3)?,
        at_ms: row.get(4)?,
    })
}
