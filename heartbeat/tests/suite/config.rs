//! `heartbeat.yml`: the defaults, the round trip, and every refusal naming the entry and fix.

use automaton_heartbeat::{EntryRef, Error, HeartbeatConfig, HeartbeatEntry, normalize_schedule};

/// A valid file with two entries, into which each test writes one fault.
fn two_entries(second: &str) -> String {
    format!(
        "entries:\n  - name: heartbeat_ping\n    schedule: \"*/15 * * * *\"\n    task: heartbeat_ping\n{second}defaultIntervalMs: 60000\nlowComputeMultiplier: 4\n"
    )
}

/// Unwraps an `Error::Entry`, checking it names the expected entry in its message too.
fn entry_error(error: Error, index: usize, name: Option<&str>) -> Error {
    let message = error.to_string();
    match error {
        Error::Entry { entry, source } => {
            assert_eq!(
                entry,
                EntryRef {
                    index,
                    name: name.map(str::to_owned)
                }
            );
            assert!(message.contains(&format!("entries[{index}]")), "{message}");
            if let Some(name) = name {
                assert!(message.contains(&format!("{name:?}")), "{message}");
            }
            *source
        }
        other => panic!("expected an entry error, got {other:?}"),
    }
}

#[test]
fn defaults_round_trip_through_yaml() {
    let defaults = HeartbeatConfig::default_schedule();
    let yaml = defaults.to_yaml().unwrap();
    assert!(yaml.contains("defaultIntervalMs: 60000"), "{yaml}");
    assert!(yaml.contains("lowComputeMultiplier: 4"), "{yaml}");
    assert_eq!(HeartbeatConfig::parse(&yaml).unwrap(), defaults);
}

#[test]
fn defaults_are_the_documented_schedule() {
    let defaults = HeartbeatConfig::default_schedule();
    let schedule: Vec<(&str, &str, &str, bool)> = defaults
        .entries
        .iter()
        .map(|e| {
            (
                e.name.as_str(),
                e.schedule.as_str(),
                e.task.as_str(),
                e.enabled,
            )
        })
        .collect();
    assert_eq!(
        schedule,
        [
            ("heartbeat_ping", "*/15 * * * *", "heartbeat_ping", true),
            ("check_credits", "*/5 * * * *", "check_credits", true),
            ("health_check", "*/30 * * * *", "health_check", true),
            (
                "check_for_updates",
                "0 */4 * * *",
                "check_for_updates",
                true
            ),
            ("refresh_models", "0 */6 * * *", "refresh_models", true),
            ("report_metrics", "*/15 * * * *", "report_metrics", true),
        ]
    );
    assert_eq!(defaults.default_interval_ms, 60_000);
    assert_eq!(defaults.low_compute_multiplier, 4);
    defaults.validate().unwrap();
}

#[test]
fn enabled_and_params_have_defaults_and_params_round_trip() {
    let yaml = two_entries(
        "  - name: check_credits\n    schedule: \"*/5 * * * *\"\n    task: check_credits\n    enabled: false\n    params:\n      thresholdCents: 500\n      notify: [creator]\n",
    );
    let config = HeartbeatConfig::parse(&yaml).unwrap();
    assert!(config.entries[0].enabled);
    assert!(config.entries[0].params.is_empty());
    assert!(!config.entries[1].enabled);
    assert_eq!(
        serde_json::Value::Object(config.entries[1].params.clone()),
        serde_json::json!({"thresholdCents": 500, "notify": ["creator"]})
    );
    assert_eq!(
        HeartbeatConfig::parse(&config.to_yaml().unwrap()).unwrap(),
        config
    );
}

#[test]
fn pacing_keys_default_when_absent() {
    let yaml = "entries:\n  - name: heartbeat_ping\n    schedule: \"*/15 * * * *\"\n    task: heartbeat_ping\n";
    let config = HeartbeatConfig::parse(yaml).unwrap();
    assert_eq!(config.default_interval_ms, 60_000);
    assert_eq!(config.low_compute_multiplier, 4);
}

#[test]
fn typo_key_is_rejected_naming_the_key_and_entry() {
    let yaml = two_entries(
        "  - name: check_credits\n    shedule: \"*/5 * * * *\"\n    task: check_credits\n",
    );
    let error = HeartbeatConfig::parse(&yaml).unwrap_err();
    let hint = error.hint();
    let message = error.to_string();
    assert!(message.contains("unknown field `shedule`"), "{message}");
    assert!(hint.contains("`schedule`"), "{hint}");
    assert!(matches!(
        entry_error(error, 1, Some("check_credits")),
        Error::EntryShape { .. }
    ));
}

#[test]
fn malformed_entry_without_a_name_is_named_by_index() {
    for second in [
        "  - just a string\n",
        "  - schedule: \"* * * * *\"\n    task: t\n",
    ] {
        let error = HeartbeatConfig::parse(&two_entries(second)).unwrap_err();
        assert!(matches!(
            entry_error(error, 1, None),
            Error::EntryShape { .. }
        ));
    }
}

#[test]
fn unknown_top_level_key_is_rejected_naming_the_key() {
    let yaml = format!("{}lowComputeMultiplyer: 4\n", two_entries(""));
    let error = HeartbeatConfig::parse(&yaml).unwrap_err();
    assert!(matches!(error, Error::Yaml { .. }), "{error:?}");
    assert!(
        error.to_string().contains("lowComputeMultiplyer"),
        "{error}"
    );
    assert!(error.hint().contains("lowComputeMultiplier"));
}

#[test]
fn missing_entries_or_broken_yaml_is_refused() {
    for yaml in ["defaultIntervalMs: 60000\n", "entries: [\n", ""] {
        let error = HeartbeatConfig::parse(yaml).unwrap_err();
        assert!(matches!(error, Error::Yaml { .. }), "{yaml:?}: {error:?}");
    }
}

#[test]
fn duplicate_name_names_both_entries() {
    let yaml = two_entries(
        "  - name: heartbeat_ping\n    schedule: \"*/5 * * * *\"\n    task: check_credits\n",
    );
    let error = HeartbeatConfig::parse(&yaml).unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(&error, Error::DuplicateName { name, first: 0, second: 1 } if name == "heartbeat_ping"),
        "{error:?}"
    );
    assert!(
        message.contains("entries[0]") && message.contains("entries[1]"),
        "{message}"
    );
    assert!(error.hint().contains("rename or remove"));
}

#[test]
fn invalid_names_name_the_entry() {
    let too_long = "a".repeat(65);
    let cases: [(&str, Option<&str>, &str); 5] = [
        ("\"\"", None, "empty"),
        ("Check_Credits", Some("Check_Credits"), "only a-z"),
        ("check-credits", Some("check-credits"), "only a-z"),
        ("\"check credits\"", Some("check credits"), "only a-z"),
        (&too_long, Some(&too_long), "longer than 64"),
    ];
    for (written, name, reason) in cases {
        let yaml = two_entries(&format!(
            "  - name: {written}\n    schedule: \"*/5 * * * *\"\n    task: check_credits\n"
        ));
        let error = HeartbeatConfig::parse(&yaml).unwrap_err();
        assert!(error.hint().contains("a-z, 0-9 and `_`"), "{written}");
        match entry_error(error, 1, name) {
            Error::InvalidName { reason: got, .. } => assert!(got.contains(reason), "{written}"),
            other => panic!("{written}: {other:?}"),
        }
    }
    // The longest allowed name is accepted.
    let yaml = two_entries(&format!(
        "  - name: {}\n    schedule: \"*/5 * * * *\"\n    task: check_credits\n",
        "a".repeat(64)
    ));
    HeartbeatConfig::parse(&yaml).unwrap();
}

#[test]
fn invalid_schedule_names_the_entry() {
    for schedule in [
        "every five minutes",
        "*/5 * * *",
        "*/61 * * * *",
        "0 9 * * 9",
    ] {
        let yaml = two_entries(&format!(
            "  - name: check_credits\n    schedule: \"{schedule}\"\n    task: check_credits\n"
        ));
        let error = HeartbeatConfig::parse(&yaml).unwrap_err();
        assert!(error.to_string().contains(schedule), "{error}");
        assert!(error.hint().contains("*/15 * * * *"));
        assert!(
            matches!(
                entry_error(error, 1, Some("check_credits")),
                Error::InvalidSchedule { .. }
            ),
            "{schedule}"
        );
    }
}

#[test]
fn invalid_task_names_the_entry() {
    for task in ["\"\"", "Check-Credits", "check credits"] {
        let yaml = two_entries(&format!(
            "  - name: check_credits\n    schedule: \"*/5 * * * *\"\n    task: {task}\n"
        ));
        let error = HeartbeatConfig::parse(&yaml).unwrap_err();
        assert!(error.hint().contains("heartbeat task"));
        assert!(
            matches!(
                entry_error(error, 1, Some("check_credits")),
                Error::InvalidTask { .. }
            ),
            "{task}"
        );
    }
}

#[test]
fn default_interval_must_be_at_least_one_second() {
    let yaml = |ms: u64| {
        two_entries("").replace(
            "defaultIntervalMs: 60000",
            &format!("defaultIntervalMs: {ms}"),
        )
    };
    let error = HeartbeatConfig::parse(&yaml(999)).unwrap_err();
    assert!(
        matches!(error, Error::DefaultIntervalTooShort { value_ms: 999 }),
        "{error:?}"
    );
    assert!(error.to_string().contains("defaultIntervalMs"));
    assert!(error.hint().contains("1000"));
    assert_eq!(
        HeartbeatConfig::parse(&yaml(1000))
            .unwrap()
            .default_interval_ms,
        1000
    );
}

#[test]
fn low_compute_multiplier_must_be_1_to_100() {
    let yaml = |m: u32| {
        two_entries("").replace(
            "lowComputeMultiplier: 4",
            &format!("lowComputeMultiplier: {m}"),
        )
    };
    for bad in [0, 101] {
        let error = HeartbeatConfig::parse(&yaml(bad)).unwrap_err();
        assert!(
            matches!(error, Error::LowComputeMultiplierOutOfRange { value } if value == bad),
            "{error:?}"
        );
        assert!(error.hint().contains("between 1 and 100"));
    }
    for good in [1, 100] {
        assert_eq!(
            HeartbeatConfig::parse(&yaml(good))
                .unwrap()
                .low_compute_multiplier,
            good
        );
    }
}

#[test]
fn five_field_schedules_are_normalised_and_kept_as_written() {
    assert_eq!(normalize_schedule("*/5 * * * *").unwrap(), "0 */5 * * * *");
    assert_eq!(normalize_schedule("0 9 * * 1-5").unwrap(), "0 0 9 * * 2-6");
    assert_eq!(
        normalize_schedule("0 */5 * * * *").unwrap(),
        "0 */5 * * * *"
    );
    let config = HeartbeatConfig::parse(&two_entries(
        "  - name: weekday_report\n    schedule: \"0 9 * * 1-5\"\n    task: report_metrics\n",
    ))
    .unwrap();
    assert_eq!(config.entries[1].schedule, "0 9 * * 1-5");
}

#[test]
fn to_yaml_refuses_an_invalid_config() {
    let mut config = HeartbeatConfig::default_schedule();
    config.entries.push(HeartbeatEntry {
        name: "check_credits".to_owned(),
        ..config.entries[0].clone()
    });
    assert!(matches!(config.to_yaml(), Err(Error::DuplicateName { .. })));
}

#[test]
fn load_reads_the_file_and_names_the_path_when_it_cannot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("heartbeat.yml");
    std::fs::write(
        &path,
        HeartbeatConfig::default_schedule().to_yaml().unwrap(),
    )
    .unwrap();
    assert_eq!(
        HeartbeatConfig::load(&path).unwrap(),
        HeartbeatConfig::default_schedule()
    );

    let missing = dir.path().join("missing.yml");
    let error = HeartbeatConfig::load(&missing).unwrap_err();
    assert!(matches!(&error, Error::Io { path, .. } if path == &missing));
    assert!(error.to_string().contains(&missing.display().to_string()));
    assert!(error.hint().contains(&missing.display().to_string()));
}
