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

/// `inference_spent_today_micro_usdc` sums the last 24 hours of `inference_costs`, no more.
#[test]
fn status_json_shows_today_s_inference_spend() {
    let home = TestHome::new();
    home.init();
    let now_ms = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    let conn = rusqlite::Connection::open(home.path("state.db")).unwrap();
    let insert =
        "INSERT INTO inference_costs (task, provider, model, prompt_tokens, completion_tokens,
                      cost_micro_usdc, latency_ms, outcome, created_at)
                  VALUES ('agent_turn', 'a', 'm', 1000, 50, ?1, 10, 'ok', ?2)";
    conn.execute(insert, rusqlite::params![2_400, now_ms - 60_000])
        .unwrap();
    conn.execute(insert, rusqlite::params![100, now_ms - 3_600_000])
        .unwrap();
    // Two days ago: not today's.
    conn.execute(insert, rusqlite::params![900_000, now_ms - 2 * 86_400_000])
        .unwrap();
    drop(conn);
    let status = json(&home.run(&["status", "--json"]));
    assert_eq!(status["inference_spent_today_micro_usdc"], 2_500);
}
