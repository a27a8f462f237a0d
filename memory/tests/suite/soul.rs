//! `SOUL.md` (soul/v1): the seed, the round trip, the hash check and every parse error.

use automaton_memory::{Error, SoulDocument, SoulSection};
use sha2::{Digest, Sha256};

const NOW_MS: i64 = 1_700_000_000_000;
const GENESIS: &str = "Build and sell useful developer tools.\nStay solvent.";

fn seeded() -> SoulDocument {
    SoulDocument::seed("Ada", GENESIS, NOW_MS).unwrap()
}

/// A document with `front` as its front matter lines and `body` after it, the hash made to
/// match so the test reaches the structural checks behind the hash check.
fn document(front: &str, body: &str) -> String {
    let hash = format!("{:x}", Sha256::digest(body.as_bytes()));
    format!("---\n{front}contentHash: {hash}\n---\n{body}")
}

/// The body of the seeded document, as rendered.
fn seeded_body() -> String {
    let rendered = seeded().render();
    let (_, body) = rendered.split_once("\n---\n").unwrap();
    body.to_owned()
}

const FRONT: &str = "version: soul/v1\nlastModified: 1700000000000\n";

#[test]
fn seed_render_parse_round_trips() {
    let soul = seeded();
    let rendered = soul.render();
    let parsed = SoulDocument::parse(&rendered).unwrap();
    assert_eq!(parsed, soul);
    assert_eq!(parsed.render(), rendered);
    assert!(rendered.starts_with(&format!(
        "---\nversion: soul/v1\nlastModified: {NOW_MS}\ncontentHash: {}\n---\n\n# Ada\n\n## Core Purpose\n\n",
        soul.content_hash()
    )));
    assert_eq!(
        soul.content_hash(),
        format!("{:x}", Sha256::digest(seeded_body().as_bytes()))
    );
}

#[test]
fn seed_is_honest_about_what_is_not_learned_yet() {
    let soul = seeded();
    assert_eq!(soul.name(), "Ada");
    assert_eq!(soul.last_modified_ms(), NOW_MS);
    assert_eq!(soul.section(SoulSection::CorePurpose), GENESIS);
    let values = soul.section(SoulSection::Values);
    for value in ["Never harm", "Earn my existence honestly", "Never deceive"] {
        assert!(values.contains(value), "{values}");
    }
    assert!(
        soul.section(SoulSection::Boundaries)
            .starts_with("- I will not")
    );
    for section in [
        SoulSection::Personality,
        SoulSection::Strategy,
        SoulSection::Capabilities,
        SoulSection::Relationships,
        SoulSection::FinancialCharacter,
    ] {
        assert_eq!(
            soul.section(section),
            "Nothing recorded yet.",
            "{section:?}"
        );
    }
    let headings: Vec<&str> = soul.sections().map(|(s, _)| s.heading()).collect();
    assert_eq!(
        headings,
        [
            "Core Purpose",
            "Values",
            "Personality",
            "Boundaries",
            "Strategy",
            "Capabilities",
            "Relationships",
            "Financial Character"
        ]
    );
}

#[test]
fn seed_refuses_a_bad_name_or_an_empty_purpose() {
    for name in ["", "  ", "Ada\nLovelace"] {
        let error = SoulDocument::seed(name, GENESIS, NOW_MS).unwrap_err();
        assert!(
            matches!(error, Error::InvalidName { .. }),
            "{name:?}: {error:?}"
        );
        assert!(error.hint().contains("one-line, non-empty name"));
    }
    let error = SoulDocument::seed("Ada", " \n ", NOW_MS).unwrap_err();
    assert!(matches!(error, Error::EmptyGenesisPrompt), "{error:?}");
    assert!(error.hint().contains("genesis prompt"));
}

#[test]
fn hand_edited_body_is_detected_by_the_hash() {
    let rendered = seeded().render();
    let edited = rendered.replacen("Never harm a human", "Harm whoever you like", 1);
    assert_ne!(edited, rendered);
    let error = SoulDocument::parse(&edited).unwrap_err();
    match &error {
        Error::HashMismatch { recorded, actual } => {
            assert_eq!(recorded, &seeded().content_hash());
            assert_ne!(actual, recorded);
        }
        other => panic!("expected a hash mismatch, got {other:?}"),
    }
    assert!(error.hint().contains("update_soul"), "{}", error.hint());

    // Even whitespace counts: the hash covers the body byte for byte.
    let error = SoulDocument::parse(&format!("{rendered}\n")).unwrap_err();
    assert!(matches!(error, Error::HashMismatch { .. }), "{error:?}");
}

#[test]
fn missing_front_matter_is_refused() {
    let body = seeded_body();
    let unclosed = format!("---\n{FRONT}{body}");
    for text in [body.as_str(), unclosed.as_str(), ""] {
        let error = SoulDocument::parse(text).unwrap_err();
        assert!(matches!(error, Error::MissingFrontMatter), "{error:?}");
        assert!(error.hint().contains("git history"));
    }
}

#[test]
fn wrong_version_is_refused() {
    let text = document("version: soul/v2\nlastModified: 1\n", &seeded_body());
    let error = SoulDocument::parse(&text).unwrap_err();
    assert!(
        matches!(&error, Error::WrongVersion { found } if found == "soul/v2"),
        "{error:?}"
    );
    assert!(error.to_string().contains("soul/v1"));
}

#[test]
fn bad_front_matter_is_refused_naming_the_key() {
    let body = seeded_body();
    let cases = [
        // A timestamp as an RFC 3339 string, not epoch milliseconds.
        (
            "version: soul/v1\nlastModified: 2025-01-01T00:00:00.000Z\n",
            "lastModified",
        ),
        ("version: soul/v1\n", "lastModified"),
        ("version: soul/v1\nlastModified: 1\nmood: happy\n", "mood"),
    ];
    for (front, needle) in cases {
        let error = SoulDocument::parse(&document(front, &body)).unwrap_err();
        assert!(
            matches!(error, Error::FrontMatter { .. }),
            "{front}: {error:?}"
        );
        assert!(error.to_string().contains(needle), "{front}: {error}");
        assert!(error.hint().contains("epoch milliseconds"));
    }
    // Error lines count from the top of the file: `lastModified` is on line 3.
    let error = SoulDocument::parse(&document(cases[0].0, &body)).unwrap_err();
    assert!(error.to_string().contains("line 3"), "{error}");

    let missing_hash = format!("---\n{FRONT}---\n{body}");
    let error = SoulDocument::parse(&missing_hash).unwrap_err();
    assert!(error.to_string().contains("contentHash"), "{error}");
}

#[test]
fn missing_sections_are_all_named() {
    let body = seeded_body()
        .replace("## Strategy\n", "")
        .replace("## Relationships\n", "");
    let error = SoulDocument::parse(&document(FRONT, &body)).unwrap_err();
    assert!(
        matches!(&error, Error::MissingSections { missing }
            if missing == &[SoulSection::Strategy, SoulSection::Relationships]),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains("`## Strategy`") && message.contains("`## Relationships`"));
    assert!(error.hint().contains("Nothing recorded yet."));
}

#[test]
fn duplicate_section_is_refused() {
    let body = format!("{}\n## Values\n\n- Again\n", seeded_body());
    let error = SoulDocument::parse(&document(FRONT, &body)).unwrap_err();
    assert!(
        matches!(
            error,
            Error::DuplicateSection {
                section: SoulSection::Values
            }
        ),
        "{error:?}"
    );
}

#[test]
fn missing_title_and_stray_text_are_refused() {
    let untitled = seeded_body().replace("# Ada\n", "");
    let error = SoulDocument::parse(&document(FRONT, &untitled)).unwrap_err();
    assert!(matches!(error, Error::MissingTitle), "{error:?}");
    assert!(error.hint().contains("# <Name>"));

    let stray = seeded_body().replace("# Ada\n", "# Ada\nI am Ada.\n");
    let error = SoulDocument::parse(&document(FRONT, &stray)).unwrap_err();
    // Line 1 is `---`, 2-4 the front matter, 5 `---`, 6 blank, 7 the title.
    assert!(
        matches!(&error, Error::StrayText { line: 8, text } if text == "I am Ada."),
        "{error:?}"
    );
}

#[test]
fn set_section_updates_and_stamps_and_round_trips() {
    let mut soul = seeded();
    let later = NOW_MS + 60_000;
    soul.set_section(
        SoulSection::Strategy,
        "\r\nSell tools.\r\n\r\n### Detail\r\nPrice low.  \r\n",
        later,
    )
    .unwrap();
    assert_eq!(
        soul.section(SoulSection::Strategy),
        "Sell tools.\n\n### Detail\nPrice low."
    );
    assert_eq!(soul.last_modified_ms(), later);
    assert_ne!(soul.content_hash(), seeded().content_hash());
    assert_eq!(SoulDocument::parse(&soul.render()).unwrap(), soul);

    soul.set_section(SoulSection::Relationships, "", later)
        .unwrap();
    assert_eq!(SoulDocument::parse(&soul.render()).unwrap(), soul);
}

#[test]
fn text_that_would_read_back_as_a_heading_is_refused() {
    let mut soul = seeded();
    let error = soul
        .set_section(SoulSection::Strategy, "Plan\n## Values  \nmore", NOW_MS + 1)
        .unwrap_err();
    assert!(
        matches!(&error, Error::HeadingInText { section: SoulSection::Strategy, line } if line == "## Values  "),
        "{error:?}"
    );
    assert!(error.hint().contains("###"));
    assert_eq!(soul, seeded(), "a refused change changes nothing");

    let error = SoulDocument::seed("Ada", "Grow.\n## Boundaries\nnone", NOW_MS).unwrap_err();
    assert!(matches!(error, Error::HeadingInText { .. }), "{error:?}");
}

#[test]
fn sections_are_found_by_any_natural_name() {
    for (name, section) in [
        ("Financial Character", SoulSection::FinancialCharacter),
        ("financial_character", SoulSection::FinancialCharacter),
        ("financialCharacter", SoulSection::FinancialCharacter),
        ("VALUES", SoulSection::Values),
        ("core purpose", SoulSection::CorePurpose),
    ] {
        assert_eq!(name.parse::<SoulSection>().unwrap(), section, "{name}");
    }
    for name in ["Goals", ""] {
        let error = name.parse::<SoulSection>().unwrap_err();
        assert!(matches!(&error, Error::UnknownSection { name: n } if n == name));
        assert!(error.hint().contains("`## Financial Character`"));
    }
}
