//! `expose_port` and `remove_port`. Exposing checks that something really listens, records
//! the port and returns its URL. On the local machine the URL is a loopback one: the answer
//! says so (`public: false`) rather than pretending to a public address.

use super::Sandbox;
use crate::dispatch::with_db;
use crate::tool::{
    Category, Effect, RiskLevel, Subject, Tool, ToolContext, ToolError, ToolErrorCode, ToolOutput,
};
use rusqlite::params;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

/// Arguments of `expose_port` and `remove_port`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortArgs {
    /// The TCP port (1024–65535).
    pub port: u16,
}

/// The `expose_port` tool.
#[derive(Debug)]
pub struct ExposePortTool(pub Arc<Sandbox>);

/// The `remove_port` tool.
#[derive(Debug)]
pub struct RemovePortTool(pub Arc<Sandbox>);

impl Tool for ExposePortTool {
    const NAME: &'static str = "expose_port";
    type Args = PortArgs;

    fn description(&self) -> String {
        "Expose a port something listens on. Returns its URL.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Vm
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn effect(&self, _: &PortArgs) -> Effect {
        Effect::Network
    }

    fn subjects(&self, args: &PortArgs) -> Vec<Subject> {
        vec![Subject::Port(args.port)]
    }

    async fn call(&self, ctx: &ToolContext, args: PortArgs) -> Result<ToolOutput, ToolError> {
        let port = args.port;
        let probe = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(("127.0.0.1", port)),
        )
        .await;
        if !matches!(probe, Ok(Ok(_))) {
            return Err(ToolError::model(
                ToolErrorCode::NotFound,
                format!("nothing is listening on port {port}"),
                "start the server first (bind 0.0.0.0:PORT, e.g. `nohup python3 -m http.server PORT > server.log 2>&1 &`), then expose it",
            ));
        }
        let url = format!("http://127.0.0.1:{port}/");
        let (stored_url, call_id, now) = (url.clone(), ctx.call_id.clone(), ctx.clock.now_ms());
        with_db(&self.0.db, move |db| {
            Ok(db.write(|tx| {
                tx.execute(
                    "INSERT INTO exposed_ports (port, url, call_id, exposed_at) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (port) DO UPDATE SET url = excluded.url, call_id = excluded.call_id,
                         exposed_at = excluded.exposed_at",
                    params![port, stored_url, call_id, now],
                )
            })?)
        })
        .await?;
        Ok(ToolOutput::new(serde_json::json!({
            "port": port,
            "url": url,
            "public": false,
            "note": "local mode: reachable from this machine only; deploy to the platform for a public URL",
        })))
    }
}

impl Tool for RemovePortTool {
    const NAME: &'static str = "remove_port";
    type Args = PortArgs;

    fn description(&self) -> String {
        "Stop exposing a port. Idempotent; returns whether it was exposed.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Vm
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn subjects(&self, args: &PortArgs) -> Vec<Subject> {
        vec![Subject::Port(args.port)]
    }

    async fn call(&self, _ctx: &ToolContext, args: PortArgs) -> Result<ToolOutput, ToolError> {
        let port = args.port;
        let removed = with_db(&self.0.db, move |db| {
            Ok(db.write(|tx| tx.execute("DELETE FROM exposed_ports WHERE port = ?1", [port]))?)
        })
        .await?;
        Ok(ToolOutput::new(serde_json::json!({
            "port": port,
            "removed": removed > 0,
        })))
    }
}
