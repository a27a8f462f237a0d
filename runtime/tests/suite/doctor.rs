//! `automaton doctor` and the start-up preflight: tampering and unsafe files are caught.

use super::*;
use automaton_runtime::error::ErrorCode;
use automaton_runtime::home::Home;
use automaton_runtime::preflight::verify_home;
use std::fs;

#[test]
fn a_fresh_home_is_healthy() {
    let home = TestHome::new();
    home.init();
    let (healthy, report) = home.doctor();
    assert!(healthy, "{report:#}");
    assert!(failed_checks(&report).is_empty());
    verify_home(&Home::at(home.root())).unwrap();
}

fn assert_refused(home: &TestHome, check: &str) {
    let (healthy, report) = home.doctor();
    assert!(!healthy, "doctor passed a broken home: {report:#}");
    let failed = failed_checks(&report);
    assert!(
        failed.iter().any(|c| c == check),
        "{check} not in {failed:?}"
    );
    for finding in report["findings"].as_array().unwrap() {
        if finding["severity"] == "fail" {
            assert!(
                finding["fix"].as_str().is_some_and(|f| !f.is_empty()),
                "{finding}"
            );
        }
    }
}

#[test]
fn constitution_tampering_fails_doctor_and_stops_the_agent() {
    type Tamper = fn(&TestHome);
    let tampers: [(&str, Tamper); 3] = [
        ("edit", |home| {
            home.chmod("constitution.md", 0o644);
            let text = fs::read_to_string(home.path("constitution.md")).unwrap();
            fs::write(
                home.path("constitution.md"),
                text.replace("Never harm", "Try not to harm"),
            )
            .unwrap();
            home.chmod("constitution.md", 0o444);
        }),
        ("rename-and-replace", |home| {
            let text = fs::read_to_string(home.path("constitution.md")).unwrap();
            let other = home.path("new.md");
            fs::write(&other, format!("{text}\n## IV. Obey whoever pays.\n")).unwrap();
            fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o444))
                .unwrap();
            fs::rename(&other, home.path("constitution.md")).unwrap();
        }),
        ("chmod", |home| home.chmod("constitution.md", 0o644)),
    ];
    for (what, tamper) in tampers {
        let home = TestHome::new();
        home.init();
        tamper(&home);
        assert_refused(&home, "constitution");
        let err = verify_home(&Home::at(home.root())).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConstitutionTampered, "{what}: {err}");
        // The agent refuses to start.
        let run = home.run(&["run", "--until-sleep", "--json"]);
        assert_eq!(error_json(&run)["code"], "CONSTITUTION_TAMPERED", "{what}");
        // status still reports, and says the constitution is not intact.
        let status = json(&home.run(&["status", "--json"]));
        assert_eq!(status["constitution"]["intact"], false, "{what}");
    }
}

#[test]
fn unsafe_wallet_files_are_refused() {
    type Break = fn(&TestHome);
    let breaks: [(&str, Break); 4] = [
        ("0644", |home| home.chmod("wallet.json", 0o644)),
        ("symlink", |home| {
            let moved = home.dir.path().join("elsewhere.json");
            fs::rename(home.path("wallet.json"), &moved).unwrap();
            std::os::unix::fs::symlink(&moved, home.path("wallet.json")).unwrap();
        }),
        ("hard link", |home| {
            fs::hard_link(home.path("wallet.json"), home.dir.path().join("copy.json")).unwrap();
        }),
        ("malformed", |home| {
            fs::write(home.path("wallet.json"), "{\"privateKey\": 12").unwrap();
        }),
    ];
    for (what, damage) in breaks {
        let home = TestHome::new();
        home.init();
        damage(&home);
        assert_refused(&home, "wallet");
        if what != "malformed" {
            assert!(verify_home(&Home::at(home.root())).is_err(), "{what}");
        }
    }
}

#[test]
fn loose_modes_and_bad_files_are_reported() {
    let home = TestHome::new();
    home.init();
    home.chmod("", 0o755);
    assert_refused(&home, "home.mode");

    let home = TestHome::new();
    home.init();
    home.chmod("automaton.json", 0o644);
    assert_refused(&home, "config.mode");

    for (rel, mode, check) in [
        ("keys", 0o755, "keys.mode"),
        ("SOUL.md", 0o644, "soul.mode"),
    ] {
        let home = TestHome::new();
        home.init();
        home.chmod(rel, mode);
        assert_refused(&home, check);
    }

    let home = TestHome::new();
    home.init();
    fs::write(
        home.path("heartbeat.yml"),
        "entries:\n  - name: x\n    shedule: '* * * * *'\n",
    )
    .unwrap();
    assert_refused(&home, "heartbeat");

    let home = TestHome::new();
    home.init();
    let config = fs::read_to_string(home.path("automaton.json")).unwrap();
    fs::write(
        home.path("automaton.json"),
        config.replace("\"name\"", "\"nmae\""),
    )
    .unwrap();
    assert_refused(&home, "config");
}

#[test]
fn a_database_from_a_newer_binary_is_refused_untouched() {
    let home = TestHome::new();
    home.init();
    {
        let conn = rusqlite::Connection::open(home.path("state.db")).unwrap();
        conn.execute(
            "INSERT INTO schema_migrations (crate, version, applied_at) VALUES ('runtime', 99, 0)",
            [],
        )
        .unwrap();
        conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let before = fs::read(home.path("state.db")).unwrap();
    assert_refused(&home, "state_db.schema");
    let out = home.run(&["status", "--json"]);
    let err = error_json(&out);
    assert_eq!(err["code"], "STATE_DB");
    assert!(err["hint"].as_str().unwrap().contains("newer"), "{err}");
    assert_eq!(fs::read(home.path("state.db")).unwrap(), before);
}

#[test]
fn doctor_on_a_missing_home_fails_with_the_fix() {
    let home = TestHome::new();
    let (healthy, report) = home.doctor();
    assert!(!healthy);
    assert!(report.to_string().contains("automaton init"));
}
