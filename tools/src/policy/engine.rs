//! The policy engine: every gate looks at a call, the strictest answer wins, every matched
//! rule is kept for the `policy_decisions` row. With no approver configured, `Prompt` means
//! `Forbid`: an autonomous agent fails closed.

use crate::policy::{Decision, Verdict};
use crate::tool::{Assessment, Category, Provenance, ToolSpec};

/// Counts of earlier calls, for rate limits.
pub trait CallHistory {
    /// Calls of `category` allowed since `since_ms`.
    fn allowed_since(&self, category: Category, since_ms: i64) -> u64;
    /// Calls of `category` allowed in `turn_id`.
    fn allowed_in_turn(&self, category: Category, turn_id: i64) -> u64;
}

/// A history with no calls (for `policy check` dry runs and tests).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHistory;

impl CallHistory for NoHistory {
    fn allowed_since(&self, _: Category, _: i64) -> u64 {
        0
    }
    fn allowed_in_turn(&self, _: Category, _: i64) -> u64 {
        0
    }
}

/// One call, as the gates see it.
pub struct PolicyRequest<'a> {
    /// The tool's spec.
    pub tool: &'a ToolSpec,
    /// The call's risk, effect and subjects.
    pub assessment: &'a Assessment,
    /// The raw arguments.
    pub args: &'a serde_json::Value,
    /// Who caused the call.
    pub provenance: Provenance,
    /// The turn, when run by the loop.
    pub turn_id: Option<i64>,
    /// Now, epoch ms.
    pub now_ms: i64,
    /// Earlier calls.
    pub history: &'a dyn CallHistory,
}

/// A policy gate.
pub trait Gate: Send + Sync {
    /// The gate's name in recorded rules.
    fn name(&self) -> &'static str;
    /// Adds every rule that matches `request` to `verdict`.
    fn check(&self, request: &PolicyRequest<'_>, verdict: &mut Verdict);
}

/// The engine's answer for one call.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyOutcome {
    /// The effective decision (`Prompt` already turned into `Forbid` without an approver).
    pub decision: Decision,
    /// Every rule that matched.
    pub verdict: Verdict,
}

impl PolicyOutcome {
    /// The reason of the strictest rule, for the model.
    pub fn reason(&self) -> String {
        self.verdict
            .rules
            .iter()
            .filter(|rule| rule.decision == self.verdict.decision())
            .map(|rule| format!("{} ({}/{})", rule.reason, rule.gate, rule.rule))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The ordered set of gates.
pub struct PolicyEngine {
    gates: Vec<Box<dyn Gate>>,
    has_approver: bool,
}

impl std::fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyEngine")
            .field(
                "gates",
                &self.gates.iter().map(|g| g.name()).collect::<Vec<_>>(),
            )
            .field("has_approver", &self.has_approver)
            .finish()
    }
}

impl PolicyEngine {
    /// An engine over `gates`; without an approver, `Prompt` is `Forbid`.
    pub fn new(gates: Vec<Box<dyn Gate>>, has_approver: bool) -> Self {
        Self {
            gates,
            has_approver,
        }
    }

    /// Evaluates every gate.
    pub fn evaluate(&self, request: &PolicyRequest<'_>) -> PolicyOutcome {
        let mut verdict = Verdict::default();
        for gate in &self.gates {
            gate.check(request, &mut verdict);
        }
        if verdict.rules.is_empty() {
            verdict.push(
                "engine",
                "no_objection",
                Decision::Allow,
                format!(
                    "no gate objected ({}); `{}` is {} for {} provenance",
                    self.gates
                        .iter()
                        .map(|g| g.name())
                        .collect::<Vec<_>>()
                        .join(", "),
                    request.tool.name,
                    request.assessment.risk.as_str(),
                    request.provenance
                ),
            );
        }
        let mut decision = verdict.decision();
        if decision == Decision::Prompt && !self.has_approver {
            verdict.push(
                "engine",
                "no_approver",
                Decision::Forbid,
                "this call needs a human's approval and no approver is configured, so it is refused",
            );
            decision = Decision::Forbid;
        }
        PolicyOutcome { decision, verdict }
    }
}
