//! Loading a skills directory: sorted, partial failure, and the edges of what counts as a skill.

use std::fs;
use std::path::Path;

use automaton_skills::{Error, load_skills};

fn write_skill(dir: &Path, name: &str, text: &str) {
    fs::create_dir_all(dir.join(name)).unwrap();
    fs::write(dir.join(name).join("SKILL.md"), text).unwrap();
}

fn good(name: &str) -> String {
    format!("---\nname: {name}\ndescription: The {name} skill\n---\nUse {name} well.\n")
}

#[test]
fn two_good_and_one_bad_give_two_skills_and_one_error_naming_the_file() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("skills");
    write_skill(&dir, "survival", &good("survival"));
    write_skill(
        &dir,
        "broken",
        "---\nname: broken\nsummary: oops\n---\nHi.\n",
    );
    write_skill(&dir, "conway-compute", &good("conway-compute"));

    let report = load_skills(&dir);
    let names: Vec<&str> = report.skills.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["conway-compute", "survival"]);
    assert_eq!(report.skills[1].path, dir.join("survival").join("SKILL.md"));
    assert_eq!(report.errors.len(), 1, "{:?}", report.errors);
    let bad_file = dir.join("broken").join("SKILL.md");
    let error = &report.errors[0];
    assert!(
        matches!(error, Error::FrontMatter { path, .. } if path == &bad_file),
        "{error:?}"
    );
    assert!(error.to_string().contains(&bad_file.display().to_string()));
    assert!(error.to_string().contains("summary"), "{error}");
}

#[test]
fn skills_load_sorted_by_name() {
    let home = tempfile::tempdir().unwrap();
    for name in ["zeta", "alpha", "mid-2", "mid-10"] {
        write_skill(home.path(), name, &good(name));
    }
    let report = load_skills(home.path());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let names: Vec<&str> = report.skills.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["alpha", "mid-10", "mid-2", "zeta"]);
}

#[test]
fn a_missing_dir_is_an_empty_report() {
    let home = tempfile::tempdir().unwrap();
    let report = load_skills(&home.path().join("skills"));
    assert!(report.skills.is_empty());
    assert!(report.errors.is_empty());
}

#[test]
fn a_skills_path_that_is_a_file_is_one_error_naming_it() {
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("skills");
    fs::write(&file, "not a directory").unwrap();
    let report = load_skills(&file);
    assert!(report.skills.is_empty());
    assert!(
        matches!(report.errors.as_slice(), [Error::Io { path, .. }] if path == &file),
        "{:?}",
        report.errors
    );
}

#[test]
fn plain_files_and_hidden_dirs_are_skipped() {
    let home = tempfile::tempdir().unwrap();
    write_skill(home.path(), "survival", &good("survival"));
    write_skill(home.path(), ".git", "not a skill");
    fs::write(home.path().join("README.md"), "# My skills\n").unwrap();
    let report = load_skills(home.path());
    assert_eq!(report.skills.len(), 1);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[test]
fn a_dir_without_skill_md_is_an_error_with_a_fix() {
    let home = tempfile::tempdir().unwrap();
    write_skill(home.path(), "survival", &good("survival"));
    fs::create_dir(home.path().join("empty")).unwrap();
    let report = load_skills(home.path());
    assert_eq!(report.skills.len(), 1);
    let expected = home.path().join("empty").join("SKILL.md");
    let [error] = report.errors.as_slice() else {
        panic!("{:?}", report.errors)
    };
    assert!(
        matches!(error, Error::Io { path, .. } if path == &expected),
        "{error:?}"
    );
    assert!(
        error
            .hint()
            .starts_with(&format!("create {}", expected.display()))
    );
}

#[test]
fn a_name_that_does_not_match_its_directory_is_reported_not_loaded() {
    let home = tempfile::tempdir().unwrap();
    write_skill(home.path(), "conway-payments", &good("payments"));
    write_skill(home.path(), "survival", &good("survival"));
    let report = load_skills(home.path());
    assert_eq!(report.skills.len(), 1);
    assert!(
        matches!(report.errors.as_slice(), [Error::NameMismatch { directory, .. }] if directory == "conway-payments"),
        "{:?}",
        report.errors
    );
}
