//! The script queue, the fallback, and the server's lifetime.

use std::time::Duration;

use automaton_test_support::{Reply, ScriptedModel};
use tokio::net::TcpStream;

use super::http::{chat, conversation};

#[tokio::test]
async fn replies_are_served_in_queue_order_and_remaining_counts_down() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("one"));
    model.push_all([Reply::text("two"), Reply::text("three")]);
    assert_eq!(model.remaining(), 3);

    for expected in ["one", "two", "three"] {
        let body = chat(&model.base_url(), &conversation("next")).await.body;
        assert_eq!(body["choices"][0]["message"]["content"], expected);
    }
    assert_eq!(model.remaining(), 0);
}

#[tokio::test]
async fn exhausted_queue_answers_500_script_exhausted() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("only"));
    chat(&model.base_url(), &conversation("first")).await;

    let response = chat(&model.base_url(), &conversation("one too many")).await;

    assert_eq!(response.status, 500);
    assert_eq!(
        response.body["error"]["message"],
        "scripted model: script exhausted"
    );
    assert_eq!(response.body["error"]["code"], "script_exhausted");
}

#[tokio::test]
async fn fallback_answers_once_the_queue_is_empty_and_can_be_cleared() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("scripted"));
    model.set_fallback(Some(Reply::text("fallback")));

    let mut contents = Vec::new();
    for _ in 0..3 {
        let body = chat(&model.base_url(), &conversation("again")).await.body;
        contents.push(
            body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(contents, ["scripted", "fallback", "fallback"]);

    model.set_fallback(None);
    assert_eq!(
        chat(&model.base_url(), &conversation("again")).await.status,
        500
    );
}

#[tokio::test]
async fn base_url_is_loopback_with_the_v1_prefix() {
    let model = ScriptedModel::start().await.unwrap();

    let url = model.base_url();

    assert_eq!(url, format!("http://127.0.0.1:{}/v1", model.addr().port()));
    assert_ne!(model.addr().port(), 0);
}

#[tokio::test]
async fn shutdown_closes_the_listener() {
    let model = ScriptedModel::start().await.unwrap();
    let addr = model.addr();
    assert!(TcpStream::connect(addr).await.is_ok());

    model.shutdown().await;

    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener must be gone"
    );
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_reply_finish() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("finished").delayed(200));
    let url = model.base_url();
    let in_flight = tokio::spawn(async move { chat(&url, &conversation("slow")).await });
    while model.remaining() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    model.shutdown().await;

    let response = in_flight.await.unwrap();
    assert_eq!(
        response.body["choices"][0]["message"]["content"],
        "finished"
    );
}

#[tokio::test]
async fn drop_closes_the_listener() {
    let model = ScriptedModel::start().await.unwrap();
    let addr = model.addr();

    drop(model);

    // The abort lands at the task's next poll; give it a bounded moment.
    let mut closed = false;
    for _ in 0..200 {
        if TcpStream::connect(addr).await.is_err() {
            closed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(closed, "the listener must close after drop");
}
