//! Scoped bearer tokens (seed 000's delegation): each token holds capabilities within a
//! project scope; a non-admin issuer grants only what it holds, within its own scope, so an
//! agent can hand a child a deploy-only token for the child's project and nothing more. The
//! secret is shown once and stored as SHA-256; revoking a token revokes everything it issued,
//! at once.

use super::{LocalPlatform, token_hash};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{Capability, IssuedToken, TokenInfo, TokenRequest};
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeSet;

/// Who a request comes from: a live token's identity, capabilities and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's id.
    pub token_id: String,
    /// Admin tokens hold every capability in every project.
    pub admin: bool,
    /// What it may do.
    pub capabilities: BTreeSet<Capability>,
    /// Where: `None` is every project.
    pub projects: Option<BTreeSet<String>>,
}

impl Principal {
    /// The platform acting for itself (in-process callers, the CLI on the daemon's host).
    pub fn admin() -> Self {
        Self {
            token_id: "local-admin".to_owned(),
            admin: true,
            capabilities: Capability::ALL.into_iter().collect(),
            projects: None,
        }
    }

    /// Whether it holds `capability`.
    pub fn holds(&self, capability: Capability) -> bool {
        self.admin || self.capabilities.contains(&capability)
    }

    /// Whether `project` is within its scope.
    pub fn reaches(&self, project: &str) -> bool {
        self.admin
            || self
                .projects
                .as_ref()
                .is_none_or(|projects| projects.contains(project))
    }

    /// `CAPABILITY_MISSING` unless it holds `capability` (for `project`, when one is named).
    pub fn require(&self, capability: Capability, project: Option<&str>) -> Result<()> {
        if !self.holds(capability) {
            return Err(Error::new(
                ErrorCode::CapabilityMissing,
                format!("this token lacks the `{}` capability", capability.as_str()),
            )
            .with_hint(format!(
                "ask the token's issuer for a token with `{}`",
                capability.as_str()
            ))
            .with_state(serde_json::json!({"capabilities": self.capabilities})));
        }
        if let Some(project) = project
            && !self.reaches(project)
        {
            return Err(Error::new(
                ErrorCode::CapabilityMissing,
                format!("this token is not scoped to project `{project}`"),
            )
            .with_hint("use a token whose scope includes this project")
            .with_state(serde_json::json!({"projects": self.projects})));
        }
        Ok(())
    }
}

impl LocalPlatform {
    /// The principal of a live token secret, or `None`.
    pub async fn principal(&self, secret: &str) -> Result<Option<Principal>> {
        let hash = token_hash(secret);
        self.on_db(move |db, _| {
            let row: Option<(String, bool, String, Option<String>)> = db
                .conn()
                .query_row(
                    "SELECT id, admin, capabilities_json, projects_json FROM gateway_tokens
                     WHERE secret_sha256 = ?1 AND revoked_at IS NULL",
                    [hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            Ok(
                row.map(|(token_id, admin, capabilities, projects)| Principal {
                    token_id,
                    admin,
                    capabilities: serde_json::from_str(&capabilities).unwrap_or_default(),
                    projects: projects.and_then(|text| serde_json::from_str(&text).ok()),
                }),
            )
        })
        .await
    }

    /// Issues a token for `issuer`: never more than it holds, never beyond its scope.
    pub async fn issue_token_as(
        &self,
        issuer: &Principal,
        request: TokenRequest,
    ) -> Result<IssuedToken> {
        issuer.require(Capability::ManageTokens, None)?;
        if request.capabilities.is_empty() {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                "a token needs at least one capability",
            )
            .with_hint(format!("name some of: {}", Capability::names())));
        }
        let beyond: Vec<&str> = request
            .capabilities
            .iter()
            .filter(|capability| !issuer.holds(**capability))
            .map(|capability| capability.as_str())
            .collect();
        if !beyond.is_empty() {
            return Err(Error::new(
                ErrorCode::CapabilityMissing,
                format!(
                    "a token can only grant what it holds; it lacks {}",
                    beyond.join(", ")
                ),
            )
            .with_hint("grant a subset of this token's capabilities")
            .with_state(serde_json::json!({"capabilities": issuer.capabilities})));
        }
        let projects: Option<BTreeSet<String>> = match &request.projects {
            None if issuer.admin || issuer.projects.is_none() => None,
            None => {
                return Err(Error::new(
                    ErrorCode::CapabilityMissing,
                    "a token scoped to some projects cannot issue one for every project",
                )
                .with_hint(
                    "name the projects the new token may reach, within this token's own scope",
                )
                .with_state(serde_json::json!({"projects": issuer.projects})));
            }
            Some(projects) => {
                if projects.is_empty() {
                    return Err(Error::new(ErrorCode::InvalidInput, "the project scope is empty")
                        .with_hint("name at least one project, or leave `projects` out for every project"));
                }
                for project in projects {
                    crate::model::validate_name("project", project)?;
                }
                let outside: Vec<&String> =
                    projects.iter().filter(|p| !issuer.reaches(p)).collect();
                if !outside.is_empty() {
                    return Err(Error::new(
                        ErrorCode::CapabilityMissing,
                        format!("this token cannot reach {outside:?}, so it cannot grant them"),
                    )
                    .with_hint("scope the new token to projects within this token's own scope")
                    .with_state(serde_json::json!({"projects": issuer.projects})));
                }
                Some(projects.iter().cloned().collect())
            }
        };
        let secret = format!("cwy_{}", uuid::Uuid::new_v4().simple());
        let id = format!("tok_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let capabilities: Vec<Capability> = request
            .capabilities
            .iter()
            .copied()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let issued = IssuedToken {
            token: TokenInfo {
                id: id.clone(),
                name: request.name.clone().unwrap_or_default(),
                capabilities: capabilities.clone(),
                projects: projects.as_ref().map(|p| p.iter().cloned().collect()),
                issuer: Some(issuer.token_id.clone())
                    .filter(|_| !issuer.token_id.starts_with("local-")),
                created_at_ms: 0,
                revoked_at_ms: None,
            },
            secret: secret.clone(),
        };
        let (issuer_id, name) = (issued.token.issuer.clone(), issued.token.name.clone());
        let capabilities_json =
            serde_json::to_string(&capabilities).unwrap_or_else(|_| "[]".to_owned());
        let projects_json = projects.map(|p| serde_json::to_string(&p).unwrap_or_default());
        let created = self
            .on_db(move |db, now| {
                db.write(|tx| {
                    tx.execute(
                        "INSERT INTO gateway_tokens (id, secret_sha256, admin, created_at, name, capabilities_json, projects_json, issuer)
                         VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, ?7)",
                        params![id, token_hash(&secret), now, name, capabilities_json, projects_json, issuer_id],
                    )?;
                    Ok(now)
                })
            })
            .await?;
        let mut issued = issued;
        issued.token.created_at_ms = created;
        Ok(issued)
    }

    /// The tokens `principal` may see: all for an admin, else those it issued (never secrets).
    pub async fn list_tokens_as(&self, principal: &Principal) -> Result<Vec<TokenInfo>> {
        let (admin, id) = (principal.admin, principal.token_id.clone());
        self.on_db(move |db, _| {
            let mut stmt = db.conn().prepare(
                "SELECT id, name, admin, capabilities_json, projects_json, issuer, created_at, revoked_at
                 FROM gateway_tokens WHERE ?1 OR issuer = ?2 ORDER BY created_at, id",
            )?;
            let rows = stmt
                .query_map(params![admin, id], |r| {
                    let admin: bool = r.get(2)?;
                    let capabilities: String = r.get(3)?;
                    let projects: Option<String> = r.get(4)?;
                    Ok(TokenInfo {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        capabilities: if admin {
                            Capability::ALL.to_vec()
                        } else {
                            serde_json::from_str(&capabilities).unwrap_or_default()
                        },
                        projects: projects.and_then(|text| serde_json::from_str(&text).ok()),
                        issuer: r.get(5)?,
                        created_at_ms: r.get(6)?,
                        revoked_at_ms: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows)
        })
        .await
    }

    /// Revokes token `id` and everything issued under it; allowed to an admin, to the token
    /// itself and to whoever issued it (directly or further up). Idempotent.
    pub async fn revoke_token_as(&self, principal: &Principal, id: &str) -> Result<Vec<String>> {
        let (admin, me, id) = (principal.admin, principal.token_id.clone(), id.to_owned());
        self.on_db(move |db, now| {
            db.write(|tx| {
                let exists: bool = tx
                    .query_row("SELECT 1 FROM gateway_tokens WHERE id = ?1", [&id], |_| Ok(()))
                    .optional()?
                    .is_some();
                if !exists {
                    return Err(Error::new(ErrorCode::NotFound, format!("no token `{id}`"))
                        .with_hint("list_tokens shows the ids of the tokens you may revoke"));
                }
                // The token's line of issuers, to decide whether `me` may revoke it.
                let ancestors: Vec<String> = tx
                    .prepare(
                        "WITH RECURSIVE up(id, issuer) AS (
                             SELECT id, issuer FROM gateway_tokens WHERE id = ?1
                             UNION SELECT t.id, t.issuer FROM gateway_tokens t JOIN up ON t.id = up.issuer)
                         SELECT id FROM up",
                    )?
                    .query_map([&id], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                if !admin && !ancestors.contains(&me) {
                    return Err(Error::new(
                        ErrorCode::CapabilityMissing,
                        format!("token `{id}` was not issued by this token"),
                    )
                    .with_hint("revoke only tokens you issued (list_tokens shows them), or ask an admin"));
                }
                let revoked: Vec<String> = tx
                    .prepare(
                        "WITH RECURSIVE down(id) AS (
                             SELECT ?1 UNION SELECT t.id FROM gateway_tokens t JOIN down ON t.issuer = down.id)
                         UPDATE gateway_tokens SET revoked_at = ?2
                         WHERE id IN (SELECT id FROM down) AND revoked_at IS NULL AND admin = 0
                         RETURNING id",
                    )?
                    .query_map(params![id, now], |r| r.get(0))?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(revoked)
            })
        })
        .await
    }
}
