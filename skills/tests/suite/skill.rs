//! `SKILL.md`: the format, its defaults, and each refusal naming the file and the fix.

use std::path::{Path, PathBuf};

use automaton_skills::{Error, Skill};

/// Where a skill called `name` lives; parsing checks the name against this directory.
fn path_for(name: &str) -> PathBuf {
    Path::new("/home/auto/.automaton/skills")
        .join(name)
        .join("SKILL.md")
}

fn skill_md(front: &str, body: &str) -> String {
    format!("---\n{front}---\n{body}")
}

/// Parses `text` as `<skills>/my-skill/SKILL.md`, expecting a refusal that names the file.
fn refusal(text: &str) -> Error {
    let path = path_for("my-skill");
    let error = Skill::parse(text, &path).unwrap_err();
    assert!(
        error.to_string().starts_with(&path.display().to_string()),
        "{error}"
    );
    error
}

#[test]
fn the_documented_example_parses() {
    let text = "---\nname: my-skill\ndescription: \"What this skill does\"\nauto-activate: true\ntriggers: [keyword1, keyword2]\n---\n# Skill Instructions\n\nStep-by-step instructions for the agent...\n";
    let path = path_for("my-skill");
    let skill = Skill::parse(text, &path).unwrap();
    assert_eq!(
        skill,
        Skill {
            name: "my-skill".to_owned(),
            description: "What this skill does".to_owned(),
            auto_activate: true,
            triggers: vec!["keyword1".to_owned(), "keyword2".to_owned()],
            instructions: "# Skill Instructions\n\nStep-by-step instructions for the agent..."
                .to_owned(),
            path,
        }
    );
}

#[test]
fn optional_keys_default_to_off_and_none() {
    let text = skill_md(
        "name: my-skill\ndescription: Does things\n",
        "\r\nDo the thing.\r\n",
    );
    let skill = Skill::parse(&text, &path_for("my-skill")).unwrap();
    assert!(!skill.auto_activate);
    assert!(skill.triggers.is_empty());
    assert_eq!(skill.instructions, "Do the thing.");
}

#[test]
fn missing_front_matter_is_refused() {
    for text in [
        "# Just instructions\n",
        "---\nname: my-skill\ndescription: x\n# never closed\n",
        "",
    ] {
        let error = refusal(text);
        assert!(
            matches!(error, Error::MissingFrontMatter { .. }),
            "{error:?}"
        );
        assert!(error.hint().contains("start the file with `---`"));
    }
}

#[test]
fn unknown_front_matter_key_is_rejected_naming_it() {
    for key in ["auto_activate", "trigger", "version"] {
        let text = skill_md(
            &format!("name: my-skill\ndescription: x\n{key}: true\n"),
            "Do it.\n",
        );
        let error = refusal(&text);
        assert!(matches!(error, Error::FrontMatter { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.contains(&format!("unknown field `{key}`")),
            "{message}"
        );
        // Lines count from the top of the file: the key is on line 4.
        assert!(message.contains("line 4"), "{message}");
        assert!(error.hint().contains("`auto-activate`"));
    }
}

#[test]
fn missing_or_mistyped_keys_are_refused() {
    for (front, needle) in [
        ("name: my-skill\n", "description"),
        ("description: x\n", "name"),
        (
            "name: my-skill\ndescription: x\nauto-activate: sometimes\n",
            "auto-activate",
        ),
        (
            "name: my-skill\ndescription: x\ntriggers: {a: b}\n",
            "triggers",
        ),
    ] {
        let error = refusal(&skill_md(front, "Do it.\n"));
        assert!(
            matches!(error, Error::FrontMatter { .. }),
            "{front}: {error:?}"
        );
        assert!(error.to_string().contains(needle), "{error}");
    }
}

#[test]
fn invalid_names_are_refused() {
    let too_long = "a".repeat(65);
    for (name, reason) in [
        ("\"\"", "empty"),
        ("My-Skill", "only a-z"),
        ("my_skill", "only a-z"),
        ("my skill", "only a-z"),
        (too_long.as_str(), "longer than 64"),
    ] {
        let error = refusal(&skill_md(
            &format!("name: {name}\ndescription: x\n"),
            "Do it.\n",
        ));
        assert!(
            matches!(&error, Error::InvalidName { reason: r, .. } if r.contains(reason)),
            "{name}: {error:?}"
        );
        assert!(error.hint().contains("a-z, 0-9 and `-`"));
    }
    let longest = "a".repeat(64);
    let text = skill_md(&format!("name: {longest}\ndescription: x\n"), "Do it.\n");
    Skill::parse(&text, &path_for(&longest)).unwrap();
}

#[test]
fn name_must_match_its_directory() {
    let error = refusal(&skill_md("name: other-skill\ndescription: x\n", "Do it.\n"));
    assert!(
        matches!(&error, Error::NameMismatch { name, directory, .. }
            if name == "other-skill" && directory == "my-skill"),
        "{error:?}"
    );
    let hint = error.hint();
    assert!(
        hint.contains("rename the directory to \"other-skill\"")
            && hint.contains("`name: my-skill`"),
        "{hint}"
    );
}

#[test]
fn empty_description_trigger_or_body_is_refused() {
    for (front, body, field) in [
        (
            "name: my-skill\ndescription: \"  \"\n",
            "Do it.\n",
            "description",
        ),
        (
            "name: my-skill\ndescription: x\ntriggers: [ok, \"\"]\n",
            "Do it.\n",
            "a trigger",
        ),
        ("name: my-skill\ndescription: x\n", "\n  \n", "the body"),
    ] {
        let error = refusal(&skill_md(front, body));
        assert!(
            matches!(&error, Error::EmptyField { field: f, .. } if *f == field),
            "{error:?}"
        );
        assert!(error.hint().contains(field));
    }
}
