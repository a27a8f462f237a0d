//! The authority gate: what caused a call bounds what it may do. A forbidden tool never runs;
//! a call caused by external input (a relay message, a fetched page, tool output, skill or
//! MCP text, a child) may not run a dangerous tool; the parent's requests for dangerous
//! tools need approval. The agent's own autonomous turns are `self`, not external.

use crate::policy::engine::{Gate, PolicyRequest};
use crate::policy::{Decision, Verdict};
use crate::tool::{Provenance, RiskLevel};

/// The authority gate.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuthorityGate;

impl Gate for AuthorityGate {
    fn name(&self) -> &'static str {
        "authority"
    }

    fn check(&self, request: &PolicyRequest<'_>, verdict: &mut Verdict) {
        let risk = request.assessment.risk;
        let provenance = request.provenance;
        match risk {
            RiskLevel::Forbidden => verdict.push(
                self.name(),
                "forbidden_tool",
                Decision::Forbid,
                format!("`{}` is a forbidden tool and never runs", request.tool.name),
            ),
            RiskLevel::Dangerous if provenance.is_external() => verdict.push(
                self.name(),
                "external_dangerous",
                Decision::Forbid,
                format!(
                    "`{}` is dangerous and this call was caused by {provenance} input, which may inform but never command dangerous actions",
                    request.tool.name
                ),
            ),
            RiskLevel::Dangerous if provenance == Provenance::Parent => verdict.push(
                self.name(),
                "parent_dangerous",
                Decision::Prompt,
                format!(
                    "`{}` is dangerous; a parent's request for it needs approval",
                    request.tool.name
                ),
            ),
            RiskLevel::Safe | RiskLevel::Caution | RiskLevel::Dangerous => {}
        }
    }
}
