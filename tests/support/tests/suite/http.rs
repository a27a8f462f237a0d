//! A minimal HTTP/1.1 client over a raw `TcpStream`, so the fixture's own tests need no HTTP
//! client crate (the runtime's tests use the real async-openai client against it).

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A parsed response: status, headers (lower-case names) and the body as JSON.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Sends one request to `base_url` + `path` with `Connection: close` and reads the whole answer.
pub async fn send(
    base_url: &str,
    method: &str,
    path: &str,
    extra_headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let rest = base_url.strip_prefix("http://").expect("http base url");
    let (authority, prefix) = rest.split_once('/').expect("base url has a path");
    let mut request =
        format!("{method} /{prefix}{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n");
    for (name, value) in extra_headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        request.push_str("Content-Type: application/json\r\n");
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    let mut stream = TcpStream::connect(authority).await.expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write head");
    if let Some(body) = body {
        stream.write_all(body).await.expect("write body");
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("read response");
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("response head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let body = serde_json::from_str(body).unwrap_or(Value::Null);
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// `POST /chat/completions` with `body`.
pub async fn chat(base_url: &str, body: &Value) -> HttpResponse {
    let bytes = serde_json::to_vec(body).expect("serialize");
    send(base_url, "POST", "/chat/completions", &[], Some(&bytes)).await
}

/// A small valid conversation: system, user.
pub fn conversation(user: &str) -> Value {
    serde_json::json!({
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are an automaton."},
            {"role": "user", "content": user},
        ],
    })
}
