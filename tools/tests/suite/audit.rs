//! Receipts and the intent/result trail.

use super::*;
use automaton_tools::audit;

async fn some_calls(f: &Fixture) {
    for i in 0..3 {
        let r = f
            .call(
                "write_file",
                serde_json::json!({ "path": format!("f{i}.txt"), "content": "x" }),
            )
            .await;
        assert!(r.receipt.is_some());
    }
    let read = f
        .call("read_file", serde_json::json!({ "path": "f0.txt" }))
        .await;
    assert!(read.receipt.is_none(), "reads leave no receipt");
}

fn verify(f: &Fixture) -> audit::VerifyReport {
    audit::verify(f.db.lock().unwrap().conn()).unwrap()
}

fn tamper(f: &Fixture, sql: &str) {
    f.db.lock().unwrap().conn().execute_batch(sql).unwrap();
}

#[tokio::test]
async fn receipts_chain_and_verify() {
    let f = Fixture::new();
    some_calls(&f).await;
    let report = verify(&f);
    assert!(report.ok, "{report:?}");
    assert_eq!(report.receipts, 3);
    assert_eq!(report.head.len(), 64);
}

#[tokio::test]
async fn secret_arguments_stay_out_of_the_trail_and_the_chain_still_verifies() {
    let f = Fixture::new();
    let record = f
        .call(
            "secret_note",
            serde_json::json!({ "text": "sk-live-4242", "sleep_ms": 0 }),
        )
        .await;
    assert!(record.result.is_ok(), "{:?}", record.result);
    assert!(record.receipt.is_some());
    let args = f.row(&record.call_id, "args_json").unwrap();
    assert!(!args.contains("sk-live-4242"), "{args}");
    assert!(args.contains("[redacted: 12 bytes]"), "{args}");
    assert!(args.contains("\"sleep_ms\":0"), "the rest is kept: {args}");
    let report = verify(&f);
    assert!(report.ok, "{report:?}");
}

/// Review finding: arguments that do not parse into the tool's type (a wrong type, a typo'd
/// or extra field with `deny_unknown_fields`, as `set_env` has) are rejected before
/// `secret_args` can name the secrets, and the rejection records them verbatim.
#[tokio::test]
async fn secret_arguments_of_a_rejected_call_stay_out_of_the_trail() {
    let f = Fixture::new();
    let record = f
        .call(
            "secret_note",
            serde_json::json!({ "text": "sk-live-4242", "sleep_ms": "soon" }),
        )
        .await;
    assert!(record.result.is_err(), "{:?}", record.result);
    let args = f.row(&record.call_id, "args_json").unwrap();
    assert!(!args.contains("sk-live-4242"), "{args}");
    assert!(
        args.contains("\"sleep_ms\":\"soon\""),
        "the rest is kept: {args}"
    );
}

#[tokio::test]
async fn every_kind_of_rewrite_is_caught_and_named() {
    let cases = [
        (
            "UPDATE tool_calls SET args_json = '{\"content\":\"y\",\"path\":\"f1.txt\"}' WHERE id = (SELECT call_id FROM receipts WHERE seq = 2)",
            2,
            "args_json",
        ),
        (
            "UPDATE tool_calls SET result_json = '{}' WHERE id = (SELECT call_id FROM receipts WHERE seq = 1)",
            1,
            "result_json",
        ),
        (
            "UPDATE receipts SET created_at = created_at + 1 WHERE seq = 3",
            3,
            "edited",
        ),
        ("DELETE FROM receipts WHERE seq = 2", 3, "missing"),
        (
            "UPDATE receipts SET prev_hash = '0000000000000000000000000000000000000000000000000000000000000000' WHERE seq = 2",
            2,
            "prev_hash",
        ),
        ("DELETE FROM receipts WHERE seq = 3", 0, "no receipt"),
        (
            "UPDATE tool_calls SET provenance = 'creator' WHERE id = (SELECT call_id FROM receipts WHERE seq = 1)",
            1,
            "provenance",
        ),
    ];
    for (sql, seq, problem) in cases {
        let f = Fixture::new();
        some_calls(&f).await;
        tamper(&f, sql);
        let report = verify(&f);
        assert!(!report.ok, "{sql}");
        let broken = report.first_broken.unwrap();
        assert_eq!(broken.seq, seq, "{sql}: {broken:?}");
        assert!(broken.problem.contains(problem), "{sql}: {broken:?}");
    }
}

#[tokio::test]
async fn an_intent_without_a_result_is_reported_as_interrupted() {
    let f = Fixture::new();
    some_calls(&f).await;
    // Simulate a crash between the intent row and the result row.
    tamper(
        &f,
        "INSERT INTO tool_calls (id, name, args_json, provenance, decision, status, started_at)
         VALUES ('call_crashed', 'exec', '{}', 'self', 'allow', 'running', 1)",
    );
    let mut db = f.db.lock().unwrap();
    let running = audit::running_calls(db.conn()).unwrap();
    assert_eq!(running.len(), 1);
    assert_eq!(running[0].call_id, "call_crashed");
    let marked = db.write(|tx| audit::mark_interrupted(tx, 2)).unwrap();
    assert_eq!(marked, 1);
    assert_eq!(
        audit::interrupted_calls(db.conn()).unwrap()[0].call_id,
        "call_crashed"
    );
    assert!(audit::running_calls(db.conn()).unwrap().is_empty());
}
