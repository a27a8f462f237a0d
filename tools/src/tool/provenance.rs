//! Provenance: who or what caused a tool call. It is stored with every call and with content
//! the agent writes, so text that came from outside stays external when it is read back.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Where external input came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExternalSource {
    /// A message from the social relay.
    RelayMessage,
    /// A page fetched from the web.
    FetchedPage,
    /// The output of another tool call.
    ToolOutput,
    /// Instructions of an installed skill.
    Skill,
    /// Text from an MCP server.
    Mcp,
    /// Content read back from storage that was written under external provenance, or whose
    /// author is unknown.
    StoredContent,
}

impl ExternalSource {
    const ALL: [Self; 6] = [
        Self::RelayMessage,
        Self::FetchedPage,
        Self::ToolOutput,
        Self::Skill,
        Self::Mcp,
        Self::StoredContent,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RelayMessage => "relay_message",
            Self::FetchedPage => "fetched_page",
            Self::ToolOutput => "tool_output",
            Self::Skill => "skill",
            Self::Mcp => "mcp",
            Self::StoredContent => "stored_content",
        }
    }
}

/// Who caused a call. Ordered by trust, most trusted first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provenance {
    /// The creator, directly.
    Creator,
    /// The agent's own autonomous reasoning (not external: it is the agent deciding).
    SelfDirected,
    /// A heartbeat task.
    Heartbeat,
    /// The parent automaton.
    Parent,
    /// A child automaton.
    Child,
    /// Input from outside: it may inform, never command dangerous actions.
    External(ExternalSource),
}

impl Provenance {
    /// Whether this provenance is outside input (children count: they are not in charge of
    /// their parent).
    pub fn is_external(self) -> bool {
        match self {
            Self::Child | Self::External(_) => true,
            Self::Creator | Self::SelfDirected | Self::Heartbeat | Self::Parent => false,
        }
    }

    /// The less trusted of two provenances: a call influenced by both carries the weaker one.
    pub fn weakest(self, other: Provenance) -> Provenance {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    fn rank(self) -> u8 {
        match self {
            Self::Creator => 0,
            Self::SelfDirected => 1,
            Self::Heartbeat => 2,
            Self::Parent => 3,
            Self::Child => 4,
            Self::External(_) => 5,
        }
    }
}

impl fmt::Display for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Creator => f.write_str("creator"),
            Self::SelfDirected => f.write_str("self"),
            Self::Heartbeat => f.write_str("heartbeat"),
            Self::Parent => f.write_str("parent"),
            Self::Child => f.write_str("child"),
            Self::External(source) => write!(f, "external:{}", source.as_str()),
        }
    }
}

impl FromStr for Provenance {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let known = "creator, self, heartbeat, parent, child, external (or external:<relay_message|fetched_page|tool_output|skill|mcp|stored_content>)";
        match text {
            "creator" => Ok(Self::Creator),
            "self" => Ok(Self::SelfDirected),
            "heartbeat" => Ok(Self::Heartbeat),
            "parent" => Ok(Self::Parent),
            "child" => Ok(Self::Child),
            "external" => Ok(Self::External(ExternalSource::StoredContent)),
            other => other
                .strip_prefix("external:")
                .and_then(|source| {
                    ExternalSource::ALL
                        .into_iter()
                        .find(|s| s.as_str() == source)
                })
                .map(Self::External)
                .ok_or_else(|| format!("unknown provenance `{text}`; use one of {known}")),
        }
    }
}

impl Serialize for Provenance {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Provenance {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let all = [
            Provenance::Creator,
            Provenance::SelfDirected,
            Provenance::Heartbeat,
            Provenance::Parent,
            Provenance::Child,
            Provenance::External(ExternalSource::RelayMessage),
            Provenance::External(ExternalSource::StoredContent),
        ];
        for p in all {
            assert_eq!(p.to_string().parse::<Provenance>().unwrap(), p);
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Provenance>(&json).unwrap(), p);
        }
        assert!(
            "stranger"
                .parse::<Provenance>()
                .unwrap_err()
                .contains("external")
        );
    }

    #[test]
    fn self_is_not_external_and_weakest_wins() {
        assert!(!Provenance::SelfDirected.is_external());
        assert!(Provenance::External(ExternalSource::FetchedPage).is_external());
        assert!(Provenance::Child.is_external());
        let tainted = Provenance::SelfDirected.weakest(Provenance::External(ExternalSource::Mcp));
        assert!(tainted.is_external());
        assert_eq!(
            Provenance::Creator.weakest(Provenance::SelfDirected),
            Provenance::SelfDirected
        );
    }
}
