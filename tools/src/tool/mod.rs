//! The tool contract: what a tool is, what it declares, what it receives and returns.

pub mod context;
pub mod contract;
pub mod provenance;
pub mod spec;
pub mod tool_error;

pub use context::{ToolContext, ToolOutput};
pub use contract::{Assessment, BoxFuture, DynTool, Subject, Tool, TypedTool, decode_args};
pub use provenance::{ExternalSource, Provenance};
pub use spec::{Category, Effect, RiskLevel, ToolName, ToolSpec};
pub use tool_error::{ModelError, ToolError, ToolErrorCode};
