//! The policy lattice: every gate answers with a [`Decision`], and the engine keeps the
//! strictest one together with every rule that matched, so the audit row can say why.

use serde::{Deserialize, Serialize};

/// A gate's verdict. Ordered so that `max()` over all gates is the strictest answer:
/// `Allow < Prompt < Forbid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The call may run.
    Allow,
    /// A human must approve; with no approver configured this is treated as `Forbid`.
    Prompt,
    /// The call must not run.
    Forbid,
}

impl Decision {
    /// The lower-case wire name (`allow`, `prompt`, `forbid`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Prompt => "prompt",
            Self::Forbid => "forbid",
        }
    }
}

/// One rule that matched while evaluating a call, kept for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleMatch {
    /// The gate that produced the rule (`authority`, `command_safety`, `path_protection`, …).
    pub gate: String,
    /// A stable identifier of the rule inside its gate (`rm_recursive_root`, `pipe_to_shell`, …).
    pub rule: String,
    /// What the rule decided.
    pub decision: Decision,
    /// Why, in words the model and the creator can act on.
    pub reason: String,
}

/// The combined verdict of a set of rules: the strictest decision and every rule behind it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Verdict {
    /// Every rule that matched, in evaluation order.
    pub rules: Vec<RuleMatch>,
}

impl Verdict {
    /// The strictest decision among the matched rules; `Allow` when none matched.
    pub fn decision(&self) -> Decision {
        self.rules
            .iter()
            .map(|rule| rule.decision)
            .max()
            .unwrap_or(Decision::Allow)
    }

    /// Records a matched rule.
    pub fn push(&mut self, gate: &str, rule: &str, decision: Decision, reason: impl Into<String>) {
        self.rules.push(RuleMatch {
            gate: gate.to_owned(),
            rule: rule.to_owned(),
            decision,
            reason: reason.into(),
        });
    }

    /// Appends every rule of another verdict.
    pub fn merge(&mut self, other: Verdict) {
        self.rules.extend(other.rules);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strictest_decision_wins() {
        let mut verdict = Verdict::default();
        assert_eq!(verdict.decision(), Decision::Allow);
        verdict.push("a", "r1", Decision::Prompt, "ask");
        verdict.push("b", "r2", Decision::Allow, "fine");
        assert_eq!(verdict.decision(), Decision::Prompt);
        verdict.push("c", "r3", Decision::Forbid, "no");
        assert_eq!(verdict.decision(), Decision::Forbid);
        assert_eq!(verdict.rules.len(), 3);
    }
}
