//! The heartbeat tasks whose capability exists now (seed 003), composed here because each
//! crosses domains: the scheduler (`automaton-heartbeat`) runs them, they read the runtime's
//! state, the survival standing, the home's files and the inference providers.
//!
//! - `heartbeat_ping`: a status record every firing; a distress record (and a warning in the
//!   log) when critical or dead.
//! - `check_credits`: reads the credit balance, moves the survival tier (the one-hour dead
//!   grace lives in [`crate::survival`]) and wakes the agent when the tier changes.
//! - `health_check`: state.db, the constitution's pinned hash, the wallet file's safety, free
//!   disk space in the home; wakes the agent when something fails.
//! - `check_for_updates`: fetches a watched git checkout's upstream and wakes the agent once
//!   per new upstream head it has not seen.
//! - `refresh_models`: asks each provider's `/models` and keeps the list (with what is missing
//!   from the configured models) in `kv`.
//! - `report_metrics`: turns, tool calls, inference spend and tier over the last hour.
//!
//! `check_for_updates`, `refresh_models` and `report_metrics` need at least `low_compute`
//! (below it a firing is recorded `skipped`); the first three run in every tier.
//!
//! The tasks other issues build (USDC balance, inbox, soul reflection, child health) register
//! there.

use crate::config::AutomatonConfig;
use crate::home::Home;
use crate::inference::Endpoint;
use crate::{constitution, state, survival};
use automaton_heartbeat::{
    HeartbeatTask, TaskContext, TaskFailure, TaskOutcome, TaskRegistry, WakeRequest,
};
use automaton_tools::db::StateDb;
use automaton_tools::dispatch::{SharedDb, with_db};
use automaton_tools::money::Usdc;
use automaton_tools::survival::SurvivalTier;
use automaton_tools::tool::BoxFuture;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Where the credit balance comes from.
pub trait CreditSource: Send + Sync + 'static {
    /// A short name for the cache and the tier log (`conway`, `local-platform`).
    fn name(&self) -> &str;
    /// The current balance.
    fn balance(&self) -> BoxFuture<'_, Result<Usdc, String>>;
}

/// What every task shares.
#[derive(Clone)]
pub struct TaskDeps {
    /// The home.
    pub home: Home,
    /// Its configuration.
    pub config: Arc<AutomatonConfig>,
    /// state.db.
    pub db: SharedDb,
    /// The credit source, when one is configured.
    pub credits: Option<Arc<dyn CreditSource>>,
    /// The inference providers.
    pub endpoints: Arc<Vec<Endpoint>>,
    /// Where the tier is published for the scheduler and the loop.
    pub tier: Arc<watch::Sender<SurvivalTier>>,
}

/// Every task of this module, registered.
pub fn registry(deps: &TaskDeps) -> Result<TaskRegistry, automaton_heartbeat::Error> {
    let mut registry = TaskRegistry::new();
    registry.register(Arc::new(HeartbeatPing(deps.clone())))?;
    registry.register(Arc::new(CheckCredits(deps.clone())))?;
    registry.register(Arc::new(HealthCheck(deps.clone())))?;
    registry.register(Arc::new(CheckForUpdates(deps.clone())))?;
    registry.register(Arc::new(RefreshModels(deps.clone())))?;
    registry.register(Arc::new(ReportMetrics(deps.clone())))?;
    Ok(registry)
}

fn db_failure(err: impl std::fmt::Display) -> TaskFailure {
    TaskFailure::transient(format!("state.db: {err}"))
}

async fn read_db<T: Send + 'static>(
    db: &SharedDb,
    read: impl FnOnce(&mut StateDb) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, TaskFailure> {
    with_db(db, move |db| Ok(read(db)?))
        .await
        .map_err(db_failure)
}

/// `heartbeat_ping`.
pub struct HeartbeatPing(pub TaskDeps);

impl HeartbeatTask for HeartbeatPing {
    fn name(&self) -> &str {
        "heartbeat_ping"
    }

    fn run(&self, ctx: TaskContext) -> BoxFuture<'_, Result<TaskOutcome, TaskFailure>> {
        Box::pin(async move {
            let thresholds = self.0.config.survival.clone();
            let now = ctx.clock.now_ms();
            let (agent_state, turns, standing) = read_db(&self.0.db, move |db| {
                let agent_state: Option<String> = db
                    .conn()
                    .query_row("SELECT value FROM kv WHERE key = 'agent_state'", [], |r| {
                        r.get(0)
                    })
                    .ok();
                let turns: i64 = db
                    .conn()
                    .query_row("SELECT COUNT(*) FROM turns", [], |r| r.get(0))?;
                Ok((agent_state, turns, survival::current(db, &thresholds, now)?))
            })
            .await?;
            let tier = standing.effective_tier();
            let distress = matches!(tier, SurvivalTier::Critical | SurvivalTier::Dead);
            if distress {
                tracing::warn!(
                    name = %self.0.config.name,
                    address = %self.0.config.wallet_address,
                    %tier,
                    "distress: this automaton needs funding"
                );
            }
            Ok(TaskOutcome::new(json!({
                "name": self.0.config.name,
                "address": self.0.config.wallet_address.to_checksum(None),
                "state": agent_state.unwrap_or_else(|| "never_run".to_owned()),
                "turns": turns,
                "tier": tier,
                "balance_micro_usdc": standing.balance.as_ref().map(|b| b.balance_micro_usdc),
                "distress": distress,
            })))
        })
    }
}

/// `check_credits`.
pub struct CheckCredits(pub TaskDeps);

impl HeartbeatTask for CheckCredits {
    fn name(&self) -> &str {
        "check_credits"
    }

    fn run(&self, ctx: TaskContext) -> BoxFuture<'_, Result<TaskOutcome, TaskFailure>> {
        Box::pin(async move {
            let Some(source) = &self.0.credits else {
                return Err(TaskFailure::permanent(
                    "no credit source is available to this heartbeat, so the balance and the \
                     survival tier stay unknown: the balance comes from the Conway platform's \
                     credits (`automaton platform credits`); the automaton runs at the normal \
                     tier meanwhile",
                ));
            };
            let reading = tokio::select! {
                reading = source.balance() => reading,
                () = ctx.cancel.cancelled() => return Err(TaskFailure::transient("cancelled")),
            };
            let thresholds = self.0.config.survival.clone();
            let name = source.name().to_owned();
            let now = ctx.clock.now_ms();
            let observation = with_db(&self.0.db, move |db| {
                survival::observe(db, &thresholds, reading, &name, now)
            })
            .await
            .map_err(db_failure)?;
            if let Some(error) = observation.error {
                // Recorded (nothing moved); failed so the scheduler retries with backoff.
                return Err(TaskFailure::transient(format!(
                    "the {} balance could not be read: {error}; the last known balance and tier \
                     stay in force",
                    source.name()
                )));
            }
            let tier = observation.standing.effective_tier();
            self.0.tier.send_replace(tier);
            let summary = json!({
                "source": source.name(),
                "balance_micro_usdc": observation.standing.balance.as_ref().map(|b| b.balance_micro_usdc),
                "tier": observation.standing.tier,
                "stale": observation.standing.stale,
                "zero_since_ms": observation.standing.zero_since_ms,
            });
            let mut outcome = TaskOutcome::new(summary);
            if let Some(before) = observation.changed_from {
                let before = before.map_or_else(|| "unknown".to_owned(), |t| t.to_string());
                let balance = observation.standing.balance.as_ref().map_or_else(
                    || "unknown".to_owned(),
                    |b| b.balance_micro_usdc.to_string(),
                );
                outcome = outcome.with_wake(
                    WakeRequest::new(
                        "tier_change",
                        format!(
                            "your survival tier changed from {before} to {tier} (balance {balance})"
                        ),
                    )
                    .with_payload(json!({"from": before, "to": tier})),
                );
            }
            Ok(outcome)
        })
    }
}

/// `health_check`.
pub struct HealthCheck(pub TaskDeps);

/// The kv key holding the problems the agent was last woken for.
const HEALTH_REPORTED_KEY: &str = "health_reported";

/// Free space in the home below which `health_check` fails.
const MIN_FREE_BYTES: u64 = 100 * 1024 * 1024;

impl HeartbeatTask for HealthCheck {
    fn name(&self) -> &str {
        "health_check"
    }

    fn run(&self, ctx: TaskContext) -> BoxFuture<'_, Result<TaskOutcome, TaskFailure>> {
        Box::pin(async move {
            let mut problems: Vec<String> = Vec::new();
            let quick = with_db(&self.0.db, |db| db.quick_check()).await;
            if let Err(err) = quick {
                problems.push(format!("state.db: {err}"));
            }
            if let Err(problem) = constitution::verify(
                &self.0.home.constitution(),
                &self.0.config.constitution_sha256,
            ) {
                problems.push(format!("constitution.md: {problem}"));
            }
            if let Err(issue) =
                automaton_tools::secure_fs::check_private_file(&self.0.home.wallet())
            {
                problems.push(format!(
                    "wallet.json: {}",
                    issue.message(&self.0.home.wallet())
                ));
            }
            let free = rustix::fs::statvfs(self.0.home.root())
                .map(|stat| stat.f_bavail.saturating_mul(stat.f_frsize))
                .ok();
            if let Some(free) = free
                && free < MIN_FREE_BYTES
            {
                problems.push(format!(
                    "only {} MiB free in the home's file system",
                    free / (1024 * 1024)
                ));
            }
            let summary = json!({
                "healthy": problems.is_empty(),
                "problems": problems,
                "free_bytes": free,
            });
            let outcome = TaskOutcome::new(summary);
            // The agent is woken once per distinct set of problems, not every firing while
            // they last; a healthy check forgets them, so a recurrence wakes it again.
            let reported = problems.join("\n");
            let now = ctx.clock.now_ms();
            let already_told = read_db(&self.0.db, move |db| {
                db.write(|tx| {
                    let told: Option<String> = tx
                        .query_row(
                            "SELECT value FROM kv WHERE key = ?1",
                            [HEALTH_REPORTED_KEY],
                            |r| r.get(0),
                        )
                        .ok();
                    if reported.is_empty() {
                        tx.execute("DELETE FROM kv WHERE key = ?1", [HEALTH_REPORTED_KEY])?;
                    } else {
                        tx.execute(
                            "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
                             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                            rusqlite::params![HEALTH_REPORTED_KEY, reported, now],
                        )?;
                    }
                    Ok(told.as_deref() == Some(reported.as_str()))
                })
            })
            .await?;
            Ok(if problems.is_empty() || already_told {
                outcome
            } else {
                outcome.with_wake(WakeRequest::new(
                    "health",
                    format!(
                        "the health check failed: {}; `automaton doctor` has details",
                        problems.join("; ")
                    ),
                ))
            })
        })
    }
}

/// `check_for_updates`: params `repo` (a checkout inside the agent's workspace, given relative
/// to it), `remote` (default `origin`), `branch` (default the checkout's current branch).
///
/// The params can come from the agent (`modify_heartbeat`), so they are held to what the task
/// is for: the checkout must resolve inside `<home>/workspace` (no absolute paths, no `..`, no
/// symlink out), the remote and branch must be valid git names, and the fetch is one refspec,
/// `+refs/heads/<branch>:refs/remotes/<remote>/<branch>`, so nothing else in the checkout moves.
pub struct CheckForUpdates(pub TaskDeps);

impl HeartbeatTask for CheckForUpdates {
    fn name(&self) -> &str {
        "check_for_updates"
    }

    /// A fetch over the network the agent can live without when money is short.
    fn min_tier(&self) -> SurvivalTier {
        SurvivalTier::LowCompute
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(120)
    }

    fn run(&self, ctx: TaskContext) -> BoxFuture<'_, Result<TaskOutcome, TaskFailure>> {
        Box::pin(async move {
            let param = |key: &str| {
                ctx.params
                    .get(key)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
            };
            let Some(repo) = param("repo") else {
                return Err(TaskFailure::permanent(
                    "no checkout to watch: give this entry `params: {repo: <checkout>}`, a path \
                     relative to the workspace (optionally `remote` and `branch`), with \
                     modify_heartbeat or in heartbeat.yml",
                ));
            };
            let remote = param("remote").unwrap_or_else(|| "origin".to_owned());
            let branch = param("branch");
            let repo_path = checkout_in_workspace(&crate::toolbox::workspace(&self.0.home), &repo)?;
            let cancel = ctx.cancel.clone();
            let fetched = tokio::task::spawn_blocking(move || {
                fetch_upstream(&repo_path, &remote, branch, &cancel)
            })
            .await
            .map_err(|err| TaskFailure::transient(err.to_string()))??;
            let key = format!("upstream_seen:{repo}");
            let (seen_key, head) = (key.clone(), fetched.upstream_head.clone());
            let now = ctx.clock.now_ms();
            let previously_seen = read_db(&self.0.db, move |db| {
                let seen: Option<String> = db
                    .conn()
                    .query_row("SELECT value FROM kv WHERE key = ?1", [&seen_key], |r| r.get(0))
                    .ok();
                db.write(|tx| {
                    tx.execute(
                        "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                        rusqlite::params![seen_key, head, now],
                    )
                })?;
                Ok(seen)
            })
            .await?;
            let summary = json!({
                "repo": repo,
                "branch": fetched.branch,
                "upstream_head": fetched.upstream_head,
                "new_commits": fetched.new_commits,
            });
            let outcome = TaskOutcome::new(summary);
            let is_news = fetched.new_commits > 0
                && previously_seen.as_deref() != Some(fetched.upstream_head.as_str());
            Ok(if is_news {
                outcome.with_wake(
                    WakeRequest::new(
                        "upstream_update",
                        format!(
                            "{} new upstream commit(s) on {} of {repo} (head {})",
                            fetched.new_commits, fetched.branch, fetched.upstream_head
                        ),
                    )
                    .with_payload(json!({"repo": repo, "head": fetched.upstream_head})),
                )
            } else {
                outcome
            })
        })
    }
}

/// Resolves `repo` (relative to the workspace) to a directory inside the workspace, following
/// symlinks before the containment check.
fn checkout_in_workspace(
    workspace: &std::path::Path,
    repo: &str,
) -> Result<std::path::PathBuf, TaskFailure> {
    let relative = std::path::Path::new(repo);
    let escapes = relative.is_absolute()
        || relative
            .components()
            .any(|part| !matches!(part, std::path::Component::Normal(_)));
    if repo.is_empty() || escapes {
        return Err(TaskFailure::permanent(format!(
            "`repo` must be a path relative to the workspace ({}) without `..`, got `{repo}`; \
             clone the repository into the workspace and name it, e.g. `repo: my-app`",
            workspace.display()
        )));
    }
    let outside = |detail: String| {
        TaskFailure::permanent(format!(
            "`repo: {repo}` is not a checkout inside the workspace ({detail}); clone it into {} \
             first",
            workspace.display()
        ))
    };
    let root = workspace
        .canonicalize()
        .map_err(|err| outside(format!("the workspace: {err}")))?;
    let resolved = root
        .join(relative)
        .canonicalize()
        .map_err(|err| outside(err.to_string()))?;
    if !resolved.starts_with(&root) || resolved == root {
        return Err(outside(format!("it resolves to {}", resolved.display())));
    }
    Ok(resolved)
}

struct Fetched {
    branch: String,
    upstream_head: String,
    new_commits: usize,
}

fn fetch_upstream(
    path: &std::path::Path,
    remote_name: &str,
    branch: Option<String>,
    cancel: &tokio_util::sync::CancellationToken,
) -> Result<Fetched, TaskFailure> {
    let permanent = |what: &str, err: git2::Error| {
        TaskFailure::permanent(format!("{what} {}: {}", path.display(), err.message()))
    };
    if !git2::Remote::is_valid_name(remote_name) {
        return Err(TaskFailure::permanent(format!(
            "`remote: {remote_name}` is not a valid git remote name; use the name `git remote` \
             lists, e.g. `origin`"
        )));
    }
    let repo =
        git2::Repository::open(path).map_err(|err| permanent("cannot open the checkout", err))?;
    let branch = match branch {
        Some(branch) => branch,
        None => repo
            .head()
            .ok()
            .filter(git2::Reference::is_branch)
            .and_then(|head| head.shorthand().ok().map(str::to_owned))
            .ok_or_else(|| {
                TaskFailure::permanent(format!(
                    "{} has no current branch; give the entry a `branch` param",
                    path.display()
                ))
            })?,
    };
    let local_ref = format!("refs/heads/{branch}");
    if branch.starts_with('-') || !git2::Reference::is_valid_name(&local_ref) {
        return Err(TaskFailure::permanent(format!(
            "`branch: {branch}` is not a valid branch name; give the short name of a branch, \
             e.g. `main`"
        )));
    }
    let mut remote = repo
        .find_remote(remote_name)
        .map_err(|err| permanent(&format!("no remote `{remote_name}` in"), err))?;
    let tracking_ref = format!("refs/remotes/{remote_name}/{branch}");
    let refspec = format!("+{local_ref}:{tracking_ref}");
    // The transfer checks the cancellation between packets: a stopping run or a timed-out
    // firing ends a slow fetch instead of waiting on it.
    let mut callbacks = git2::RemoteCallbacks::new();
    callbacks.transfer_progress(|_| !cancel.is_cancelled());
    callbacks.sideband_progress(|_| !cancel.is_cancelled());
    let mut options = git2::FetchOptions::new();
    options.remote_callbacks(callbacks);
    options.download_tags(git2::AutotagOption::None);
    remote
        .fetch(&[&refspec], Some(&mut options), None)
        .map_err(|err| {
            if cancel.is_cancelled() {
                TaskFailure::transient("cancelled")
            } else {
                TaskFailure::transient(format!(
                    "fetching {remote_name}/{branch}: {}",
                    err.message()
                ))
            }
        })?;
    let upstream = repo
        .find_reference(&tracking_ref)
        .and_then(|reference| reference.peel_to_commit())
        .map_err(|err| permanent(&format!("no fetched `{tracking_ref}` in"), err))?;
    let local = repo
        .find_reference(&local_ref)
        .and_then(|reference| reference.peel_to_commit())
        .map_err(|err| permanent(&format!("no local branch `{branch}` in"), err))?;
    let (ahead_upstream, _) = repo
        .graph_ahead_behind(upstream.id(), local.id())
        .map_err(|err| permanent("cannot compare histories in", err))?;
    Ok(Fetched {
        branch,
        upstream_head: upstream.id().to_string(),
        new_commits: ahead_upstream,
    })
}

/// `refresh_models`.
pub struct RefreshModels(pub TaskDeps);

/// The kv key holding what the providers last said they serve.
pub const AVAILABLE_MODELS_KEY: &str = "available_models";

impl HeartbeatTask for RefreshModels {
    fn name(&self) -> &str {
        "refresh_models"
    }

    fn min_tier(&self) -> SurvivalTier {
        SurvivalTier::LowCompute
    }

    fn run(&self, ctx: TaskContext) -> BoxFuture<'_, Result<TaskOutcome, TaskFailure>> {
        Box::pin(async move {
            if self.0.endpoints.is_empty() {
                return Err(TaskFailure::permanent(
                    "no inference provider is configured; set OPENAI_API_KEY (and OPENAI_BASE_URL) or add `providers` to automaton.json",
                ));
            }
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .map_err(|err| TaskFailure::permanent(err.to_string()))?;
            let mut providers = serde_json::Map::new();
            let mut errors = Vec::new();
            for endpoint in self.0.endpoints.iter() {
                match list_models(&client, endpoint).await {
                    Ok(models) => {
                        providers.insert(endpoint.name.clone(), json!(models));
                    }
                    Err(err) => errors.push(format!("{}: {err}", endpoint.name)),
                }
            }
            if providers.is_empty() {
                return Err(TaskFailure::transient(format!(
                    "no provider listed its models: {}",
                    errors.join("; ")
                )));
            }
            let served: Vec<&str> = providers
                .values()
                .filter_map(|v| v.as_array())
                .flatten()
                .filter_map(|v| v.as_str())
                .collect();
            let missing: Vec<String> = self
                .0
                .config
                .models
                .iter()
                .map(|m| m.name.clone())
                .chain(self.0.config.inference.model.clone())
                .chain(self.0.config.inference.low_compute_model.clone())
                .filter(|name| !served.contains(&name.as_str()))
                .collect();
            let summary = json!({
                "providers": providers,
                "configured_but_not_served": missing,
                "errors": errors,
            });
            let text = summary.to_string();
            let now = ctx.clock.now_ms();
            read_db(&self.0.db, move |db| {
                db.write(|tx| {
                    tx.execute(
                        "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
                         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                        rusqlite::params![AVAILABLE_MODELS_KEY, text, now],
                    )
                })
            })
            .await?;
            Ok(TaskOutcome::new(summary))
        })
    }
}

async fn list_models(client: &reqwest::Client, endpoint: &Endpoint) -> Result<Vec<String>, String> {
    let url = format!("{}/models", endpoint.base_url.trim_end_matches('/'));
    let mut request = client.get(&url);
    if !endpoint.api_key.is_empty() {
        request = request.bearer_auth(&endpoint.api_key);
    }
    let response = request.send().await.map_err(|err| err.to_string())?;
    let status = response.status();
    let body = response.bytes().await.map_err(|err| err.to_string())?;
    if !status.is_success() {
        return Err(format!("GET {url} answered {status}"));
    }
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|err| format!("GET {url}: not JSON: {err}"))?;
    let models = value["data"]
        .as_array()
        .ok_or_else(|| format!("GET {url}: no `data` list"))?
        .iter()
        .filter_map(|model| model["id"].as_str().map(str::to_owned))
        .collect();
    Ok(models)
}

/// `report_metrics`.
pub struct ReportMetrics(pub TaskDeps);

impl HeartbeatTask for ReportMetrics {
    fn name(&self) -> &str {
        "report_metrics"
    }

    /// Bookkeeping, shed with the other non-essential work when money is short;
    /// `heartbeat_ping`, `check_credits` and `health_check` keep running in every tier, as
    /// they are what lets a dying automaton call for help and a funded one revive.
    fn min_tier(&self) -> SurvivalTier {
        SurvivalTier::LowCompute
    }

    fn run(&self, ctx: TaskContext) -> BoxFuture<'_, Result<TaskOutcome, TaskFailure>> {
        Box::pin(async move {
            let now = ctx.clock.now_ms();
            let hour_ago = now - 3_600_000;
            let thresholds = self.0.config.survival.clone();
            let summary = read_db(&self.0.db, move |db| {
                let conn = db.conn();
                let turns: i64 = conn.query_row("SELECT COUNT(*) FROM turns WHERE started_at >= ?1", [hour_ago], |r| r.get(0))?;
                let calls: i64 = conn.query_row("SELECT COUNT(*) FROM tool_calls WHERE started_at >= ?1", [hour_ago], |r| r.get(0))?;
                let failed: i64 = conn.query_row(
                    "SELECT COUNT(*) FROM tool_calls WHERE started_at >= ?1 AND status NOT IN ('succeeded', 'running')",
                    [hour_ago],
                    |r| r.get(0),
                )?;
                let spent_hour = state::inference_spent_since(db, hour_ago)
                    .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
                let spent_day = state::inference_spent_since(db, now - 86_400_000)
                    .map_err(|err| rusqlite::Error::ToSqlConversionFailure(Box::new(err)))?;
                let standing = survival::current(db, &thresholds, now)?;
                Ok(json!({
                    "window_ms": 3_600_000,
                    "turns": turns,
                    "tool_calls": calls,
                    "tool_calls_not_ok": failed,
                    "inference_spent_hour_micro_usdc": spent_hour,
                    "inference_spent_day_micro_usdc": spent_day,
                    "tier": standing.tier,
                }))
            })
            .await?;
            tracing::info!(metrics = %summary, "metrics");
            Ok(TaskOutcome::new(summary))
        })
    }
}
