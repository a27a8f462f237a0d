//! The error type of `automaton-memory`: why a soul document was refused.
//!
//! Every variant says what is wrong; [`Error::hint`] says what to do about it.

use crate::soul::SoulSection;

/// Errors from parsing or changing a soul document.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text does not start with a `---` front matter block closed by another `---` line.
    #[error(
        "SOUL.md has no front matter: it must start with a `---` line and close it with another"
    )]
    MissingFrontMatter,
    /// The front matter is not YAML, lacks a key, has an unknown key or a value of the wrong type.
    #[error("SOUL.md front matter: {detail}")]
    FrontMatter {
        /// What the YAML parser said.
        detail: String,
    },
    /// The front matter names a format other than soul/v1.
    #[error("SOUL.md is version {found:?}; this automaton reads only \"soul/v1\"")]
    WrongVersion {
        /// The version as written.
        found: String,
    },
    /// The body does not hash to the recorded `contentHash`: it was changed outside `update_soul`.
    #[error("SOUL.md body has sha256 {actual} but its contentHash is {recorded}")]
    HashMismatch {
        /// The hash in the front matter.
        recorded: String,
        /// The hash of the body as found.
        actual: String,
    },
    /// The body does not start with a `# <Name>` title.
    #[error("SOUL.md has no `# <Name>` title after the front matter")]
    MissingTitle,
    /// Text sits between the title and the first section, where nothing may.
    #[error("SOUL.md line {line} is outside any section: {text:?}")]
    StrayText {
        /// The 1-based line number in the file.
        line: usize,
        /// The line.
        text: String,
    },
    /// A section heading appears twice.
    #[error("SOUL.md has the section `## {}` twice", section.heading())]
    DuplicateSection {
        /// The repeated section.
        section: SoulSection,
    },
    /// One or more sections are absent.
    #[error("SOUL.md lacks the section(s): {}", headings(missing))]
    MissingSections {
        /// The absent sections, in document order.
        missing: Vec<SoulSection>,
    },
    /// A section name is not one of the soul/v1 sections.
    #[error("{name:?} is not a soul section")]
    UnknownSection {
        /// The name as given.
        name: String,
    },
    /// The agent's name is empty or spans lines.
    #[error("the soul's name {name:?} is invalid: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Section text contains a line that would read back as a section heading.
    #[error("text for `## {}` contains the heading line {line:?}", section.heading())]
    HeadingInText {
        /// The section being written.
        section: SoulSection,
        /// The offending line.
        line: String,
    },
    /// The genesis prompt is empty, so the soul would have no core purpose.
    #[error("the genesis prompt is empty, so the soul has no core purpose")]
    EmptyGenesisPrompt,
}

impl Error {
    /// The next action for whoever sees this error.
    pub fn hint(&self) -> String {
        match self {
            Self::MissingFrontMatter | Self::WrongVersion { .. } => {
                "restore SOUL.md from the home's git history \
                 (`git -C ~/.automaton log -p -- SOUL.md`)"
                    .to_owned()
            }
            Self::FrontMatter { .. } => "the front matter holds exactly `version: soul/v1`, \
                 `lastModified: <epoch milliseconds, an integer>` and `contentHash: <sha256 hex \
                 of the body>`; restore SOUL.md from the home's git history if it was hand-edited"
                .to_owned(),
            Self::HashMismatch { .. } => "SOUL.md was changed outside `update_soul`, which \
                 validates and versions every change; restore the last version from the home's \
                 git history (`git -C ~/.automaton checkout -- SOUL.md`), then make the change \
                 through `update_soul`"
                .to_owned(),
            Self::MissingTitle | Self::StrayText { .. } => format!(
                "after the front matter, write `# <Name>` and then only the sections {}",
                headings(&SoulSection::ALL)
            ),
            Self::DuplicateSection { .. } => {
                "merge the two sections into one; each section appears exactly once".to_owned()
            }
            Self::MissingSections { .. } => "add each missing section heading; a section not \
                 yet learned says \"Nothing recorded yet.\""
                .to_owned(),
            Self::UnknownSection { .. } => {
                format!("use one of {}", headings(&SoulSection::ALL))
            }
            Self::InvalidName { .. } => "give the automaton a one-line, non-empty name".to_owned(),
            Self::HeadingInText { .. } => "remove or reword that line (for example make it \
                 `### …`); a line `## <Section>` would split the section on reading"
                .to_owned(),
            Self::EmptyGenesisPrompt => {
                "give the automaton a genesis prompt: the purpose its creator seeds it with"
                    .to_owned()
            }
        }
    }
}

/// The headings of `sections` as `## A`, `## B`.
fn headings(sections: &[SoulSection]) -> String {
    sections
        .iter()
        .map(|section| format!("`## {}`", section.heading()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
