//! What a running call receives (its id, provenance, cancellation, deadline, clock) and
//! what it returns.

use crate::clock::Clock;
use crate::tool::provenance::Provenance;
use serde::Serialize;
use std::sync::Arc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The context of one call.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The call's id (unique across state.db).
    pub call_id: String,
    /// The turn it belongs to, when run by the agent loop.
    pub turn_id: Option<i64>,
    /// Who caused the call.
    pub provenance: Provenance,
    /// Cancelled when the turn or the runtime stops; tools must stop promptly.
    pub cancel: CancellationToken,
    /// When the call must be finished.
    pub deadline: Instant,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// A tool's successful result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolOutput {
    /// The result the model sees.
    pub value: serde_json::Value,
    /// The provenance of the content in `value`, when it is not the tool's own report
    /// (e.g. a file's text carries the provenance of whoever wrote it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_provenance: Option<Provenance>,
    /// Files the call wrote (canonical paths): their content provenance (the call's) is
    /// recorded in the same transaction as the call's result, not in one of its own.
    #[serde(skip)]
    pub written_files: Vec<String>,
}

impl ToolOutput {
    /// A result whose content the tool itself produced.
    pub fn new(value: serde_json::Value) -> Self {
        Self {
            value,
            content_provenance: None,
            written_files: Vec::new(),
        }
    }

    /// A result that wrote `file` (a canonical path): its provenance commits with the result.
    pub fn with_written_file(mut self, file: String) -> Self {
        self.written_files.push(file);
        self
    }

    /// A result carrying content of the given provenance.
    pub fn with_content_provenance(mut self, provenance: Provenance) -> Self {
        self.content_provenance = Some(provenance);
        self
    }
}
