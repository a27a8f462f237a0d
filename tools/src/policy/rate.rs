//! The rate-limit gate: how many calls of a category may run per turn, per hour and per day,
//! counted from the `tool_calls` rows the policy allowed. Self-modification and replication
//! have tighter limits than everything else.

use crate::policy::engine::{Gate, PolicyRequest};
use crate::policy::{Decision, Verdict};
use crate::tool::Category;

/// One set of limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Calls per agent turn.
    pub per_turn: u64,
    /// Calls per rolling hour.
    pub per_hour: u64,
    /// Calls per rolling day.
    pub per_day: u64,
}

/// Limits by category.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Limits for categories without their own.
    pub default: RateLimit,
    /// Tighter limits for particular categories.
    pub by_category: Vec<(Category, RateLimit)>,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            default: RateLimit {
                per_turn: 40,
                per_hour: 600,
                per_day: 5_000,
            },
            by_category: vec![
                (
                    Category::SelfMod,
                    RateLimit {
                        per_turn: 3,
                        per_hour: 10,
                        per_day: 40,
                    },
                ),
                (
                    Category::Replication,
                    RateLimit {
                        per_turn: 1,
                        per_hour: 3,
                        per_day: 10,
                    },
                ),
            ],
        }
    }
}

impl RateLimits {
    /// The limits that apply to `category`.
    pub fn for_category(&self, category: Category) -> RateLimit {
        self.by_category
            .iter()
            .find(|(c, _)| *c == category)
            .map_or(self.default, |(_, limit)| *limit)
    }
}

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// The rate-limit gate.
#[derive(Debug, Clone, Default)]
pub struct RateLimitGate {
    limits: RateLimits,
}

impl RateLimitGate {
    /// A gate enforcing `limits`.
    pub fn new(limits: RateLimits) -> Self {
        Self { limits }
    }
}

impl Gate for RateLimitGate {
    fn name(&self) -> &'static str {
        "rate_limit"
    }

    fn check(&self, request: &PolicyRequest<'_>, verdict: &mut Verdict) {
        let category = request.tool.category;
        let limit = self.limits.for_category(category);
        let history = request.history;
        let mut windows = vec![
            (
                "per_hour",
                history.allowed_since(category, request.now_ms - HOUR_MS),
                limit.per_hour,
                "an hour",
            ),
            (
                "per_day",
                history.allowed_since(category, request.now_ms - DAY_MS),
                limit.per_day,
                "a day",
            ),
        ];
        if let Some(turn) = request.turn_id {
            windows.insert(
                0,
                (
                    "per_turn",
                    history.allowed_in_turn(category, turn),
                    limit.per_turn,
                    "one turn",
                ),
            );
        }
        for (rule, used, max, span) in windows {
            if used >= max {
                verdict.push(
                    self.name(),
                    rule,
                    Decision::Forbid,
                    format!(
                        "{used} `{}` calls already ran in {span}; the limit is {max}: wait, or finish this work another way",
                        category.as_str()
                    ),
                );
            }
        }
    }
}
