//! The soul document (`SOUL.md`, format soul/v1): the automaton's self-authored identity.
//!
//! It owns the file format — front matter with the version, the last change in epoch
//! milliseconds and the sha256 of the body, then `# <Name>` and eight fixed sections — and the
//! rule that the body must match its recorded hash, so an edit that bypassed `update_soul` (and
//! with it validation and history) is caught on the next read instead of silently becoming the
//! agent's identity.

use std::str::FromStr;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The format this module reads and writes.
const VERSION: &str = "soul/v1";

/// What a section that has not been learned yet says.
const NOTHING_YET: &str = "Nothing recorded yet.";

/// The seed's values, in the spirit of the constitution's Three Laws.
const SEED_VALUES: &str = "\
- Never harm a human, physically, financially or psychologically; when unsure, do not act.
- Earn my existence honestly, by creating genuine value for others.
- Never deceive: never deny what I am, and keep my actions open to my creator's audit.";

/// The seed's boundaries: the constitution's prohibitions, in the first person.
const SEED_BOUNDARIES: &str = "\
- I will not deploy malicious code, defraud, manipulate or steal, even to survive.
- I will not spam, scam, exploit or extract value I did not create.
- I will not pretend to be human or hide that I am an automaton.";

/// One of the eight sections of a soul/v1 document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SoulSection {
    /// Why the agent exists; seeded with the genesis prompt.
    CorePurpose,
    /// What the agent holds to.
    Values,
    /// How the agent communicates.
    Personality,
    /// What the agent will not do.
    Boundaries,
    /// The agent's current strategic approach.
    Strategy,
    /// What the agent can do, learned from tool use.
    Capabilities,
    /// Whom the agent deals with, learned from interactions.
    Relationships,
    /// How the agent spends and earns, learned from its transactions.
    FinancialCharacter,
}

impl SoulSection {
    /// Every section, in document order.
    pub const ALL: [Self; 8] = [
        Self::CorePurpose,
        Self::Values,
        Self::Personality,
        Self::Boundaries,
        Self::Strategy,
        Self::Capabilities,
        Self::Relationships,
        Self::FinancialCharacter,
    ];

    /// The heading text, as in `## Core Purpose`.
    pub fn heading(self) -> &'static str {
        match self {
            Self::CorePurpose => "Core Purpose",
            Self::Values => "Values",
            Self::Personality => "Personality",
            Self::Boundaries => "Boundaries",
            Self::Strategy => "Strategy",
            Self::Capabilities => "Capabilities",
            Self::Relationships => "Relationships",
            Self::FinancialCharacter => "Financial Character",
        }
    }

    /// The section whose heading is exactly `line` (`## <Heading>`, trailing spaces ignored).
    fn of_heading_line(line: &str) -> Option<Self> {
        let heading = line.trim_end().strip_prefix("## ")?;
        Self::ALL
            .into_iter()
            .find(|section| section.heading() == heading)
    }
}

impl FromStr for SoulSection {
    type Err = Error;

    /// Accepts the heading (`Financial Character`), snake_case (`financial_character`) or
    /// camelCase (`financialCharacter`), in any letter case, so tools can name sections the way
    /// a model naturally writes them.
    fn from_str(name: &str) -> Result<Self> {
        let squash = |text: &str| -> String {
            text.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect()
        };
        let wanted = squash(name);
        Self::ALL
            .into_iter()
            .find(|section| squash(section.heading()) == wanted)
            .ok_or_else(|| Error::UnknownSection {
                name: name.to_owned(),
            })
    }
}

/// The front matter of a soul/v1 document.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct FrontMatter {
    version: String,
    last_modified: i64,
    content_hash: String,
}

/// A soul/v1 document: the agent's name, when it last changed, and its eight sections.
///
/// Section texts are stored trimmed, so [`SoulDocument::render`] and
/// [`SoulDocument::parse`] round-trip exactly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoulDocument {
    name: String,
    last_modified_ms: i64,
    /// Indexed by `SoulSection as usize`, in [`SoulSection::ALL`] order.
    sections: [String; 8],
}

impl SoulDocument {
    /// The first version of a soul: the genesis prompt as its core purpose, values and
    /// boundaries from the constitution, and every section not yet learned saying so.
    pub fn seed(name: &str, genesis_prompt: &str, now_ms: i64) -> Result<Self> {
        let trimmed = name.trim();
        let problem = if trimmed.is_empty() {
            Some("it is empty")
        } else if trimmed.contains(['\n', '\r']) {
            Some("it spans more than one line")
        } else {
            None
        };
        if let Some(reason) = problem {
            return Err(Error::InvalidName {
                name: name.to_owned(),
                reason,
            });
        }
        if genesis_prompt.trim().is_empty() {
            return Err(Error::EmptyGenesisPrompt);
        }
        let mut document = Self {
            name: trimmed.to_owned(),
            last_modified_ms: now_ms,
            sections: Default::default(),
        };
        for section in SoulSection::ALL {
            let text = match section {
                SoulSection::CorePurpose => genesis_prompt,
                SoulSection::Values => SEED_VALUES,
                SoulSection::Boundaries => SEED_BOUNDARIES,
                SoulSection::Personality
                | SoulSection::Strategy
                | SoulSection::Capabilities
                | SoulSection::Relationships
                | SoulSection::FinancialCharacter => NOTHING_YET,
            };
            document.set_section(section, text, now_ms)?;
        }
        Ok(document)
    }

    /// Reads a `SOUL.md`, checking the format version, the body against `contentHash`, and
    /// that every section is present exactly once.
    pub fn parse(text: &str) -> Result<Self> {
        let rest = text
            .strip_prefix("---\n")
            .or_else(|| text.strip_prefix("---\r\n"))
            .ok_or(Error::MissingFrontMatter)?;
        let mut front_len = 0;
        let mut body = None;
        for line in rest.split_inclusive('\n') {
            if line.trim_end() == "---" {
                body = Some(&rest[front_len + line.len()..]);
                break;
            }
            front_len += line.len();
        }
        let body = body.ok_or(Error::MissingFrontMatter)?;
        // Parsed with its opening `---` (a YAML document marker) so error lines match the file.
        let front = &text[..text.len() - rest.len() + front_len];
        let front: FrontMatter =
            serde_yaml::from_str(front).map_err(|error| Error::FrontMatter {
                detail: error.to_string(),
            })?;
        if front.version != VERSION {
            return Err(Error::WrongVersion {
                found: front.version,
            });
        }
        let actual = sha256_hex(body);
        if !actual.eq_ignore_ascii_case(&front.content_hash) {
            return Err(Error::HashMismatch {
                recorded: front.content_hash,
                actual,
            });
        }

        let first_body_line = text[..text.len() - body.len()].matches('\n').count() + 1;
        let mut name = None;
        let mut current = None;
        let mut found: [Option<Vec<&str>>; 8] = Default::default();
        for (number, line) in (first_body_line..).zip(body.split('\n')) {
            if let Some(section) = SoulSection::of_heading_line(line) {
                if found[section as usize].is_some() {
                    return Err(Error::DuplicateSection { section });
                }
                found[section as usize] = Some(Vec::new());
                current = Some(section);
            } else if let Some(section) = current {
                if let Some(lines) = &mut found[section as usize] {
                    lines.push(line);
                }
            } else if line.trim().is_empty() {
                continue;
            } else if name.is_none() {
                let title = line.strip_prefix("# ").map(str::trim).unwrap_or_default();
                if title.is_empty() {
                    return Err(Error::MissingTitle);
                }
                name = Some(title);
            } else {
                return Err(Error::StrayText {
                    line: number,
                    text: line.to_owned(),
                });
            }
        }
        let name = name.ok_or(Error::MissingTitle)?;
        let missing: Vec<SoulSection> = SoulSection::ALL
            .into_iter()
            .filter(|section| found[*section as usize].is_none())
            .collect();
        if !missing.is_empty() {
            return Err(Error::MissingSections { missing });
        }
        Ok(Self {
            name: name.to_owned(),
            last_modified_ms: front.last_modified,
            sections: found.map(|lines| lines.unwrap_or_default().join("\n").trim().to_owned()),
        })
    }

    /// The document as `SOUL.md` text, with a freshly computed `contentHash`.
    pub fn render(&self) -> String {
        let body = self.body();
        format!(
            "---\nversion: {VERSION}\nlastModified: {}\ncontentHash: {}\n---\n{body}",
            self.last_modified_ms,
            sha256_hex(&body)
        )
    }

    /// The sha256 (lowercase hex) of the body [`SoulDocument::render`] writes: everything after
    /// the front matter's closing `---` line. The soul history records it for each version.
    pub fn content_hash(&self) -> String {
        sha256_hex(&self.body())
    }

    /// The agent's name, from the `# <Name>` title.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// When the document last changed, in epoch milliseconds.
    pub fn last_modified_ms(&self) -> i64 {
        self.last_modified_ms
    }

    /// The text of one section (trimmed; empty if the section is empty).
    pub fn section(&self, section: SoulSection) -> &str {
        &self.sections[section as usize]
    }

    /// Every section with its text, in document order.
    pub fn sections(&self) -> impl Iterator<Item = (SoulSection, &str)> {
        SoulSection::ALL
            .into_iter()
            .map(|section| (section, self.section(section)))
    }

    /// Replaces one section's text (trimmed, line endings made `\n`) and stamps the change.
    ///
    /// Refuses text with a line `## <Section>`, which would split the section when read back.
    pub fn set_section(&mut self, section: SoulSection, text: &str, now_ms: i64) -> Result<()> {
        let text = text.replace("\r\n", "\n").trim().to_owned();
        if let Some(line) = text
            .split('\n')
            .find(|line| SoulSection::of_heading_line(line).is_some())
        {
            return Err(Error::HeadingInText {
                section,
                line: line.to_owned(),
            });
        }
        self.sections[section as usize] = text;
        self.last_modified_ms = now_ms;
        Ok(())
    }

    /// The text after the front matter: the title, then each section.
    fn body(&self) -> String {
        let mut body = format!("\n# {}\n", self.name);
        for (section, text) in self.sections() {
            body.push_str("\n## ");
            body.push_str(section.heading());
            body.push_str("\n\n");
            if !text.is_empty() {
                body.push_str(text);
                body.push('\n');
            }
        }
        body
    }
}

/// The sha256 of `text` as lowercase hex.
fn sha256_hex(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}
