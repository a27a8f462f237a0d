//! `automaton status`: the JSON shape and the not-initialised error.

use super::*;

#[test]
fn status_json_shows_the_identity() {
    let home = TestHome::new();
    let init = home.init();
    let out = home.run(&["status", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status = json(&out);
    assert_eq!(status["name"], "Atlas");
    assert_eq!(status["address"], init["address"]);
    assert_eq!(status["creator"], CREATOR);
    assert_eq!(status["state"], "created");
    assert_eq!(status["turns"], 0);
    assert_eq!(status["tools"], 21);
    assert_eq!(status["unfinished_calls"], 0);
    assert_eq!(status["heartbeats"]["total"], 6);
    assert_eq!(status["heartbeats"]["enabled"], 6);
    assert_eq!(status["skills"]["loaded"], 0);
    assert_eq!(status["constitution"]["intact"], true);
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["wallet_encrypted"], false);
    assert!(status["providers"].as_array().unwrap().is_empty());
}

#[test]
fn status_without_a_home_says_how_to_make_one() {
    let home = TestHome::new();
    let err = error_json(&home.run(&["status", "--json"]));
    assert_eq!(err["code"], "NOT_INITIALIZED");
    assert!(err["hint"].as_str().unwrap().contains("automaton init"));
}
