//! What the platform's tests share: packed sources, a small Python app, a plain HTTP GET.

use std::path::{Path, PathBuf};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes `files` into a fresh source directory `work/name` and packs it beside it.
pub fn packed(work: &Path, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let src = work.join(name);
    for (file, content) in files {
        let path = src.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    crate::source::pack(
        &src,
        &work.join(format!("{name}.tgz")),
        crate::source::MAX_SOURCE_BYTES,
    )
    .unwrap()
    .path
}

/// A Python server on `$PORT` answering every GET with the value of the Python `expression`.
pub fn python_app_with(expression: &str) -> String {
    format!(
        "import os, http.server\nclass H(http.server.BaseHTTPRequestHandler):\n    def do_GET(self):\n        body = ({expression}).encode()\n        self.send_response(200)\n        self.send_header('Content-Length', str(len(body)))\n        self.end_headers()\n        self.wfile.write(body)\n    def log_message(self, *a):\n        pass\nprint('listening on', os.environ['PORT'], flush=True)\nhttp.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
    )
}

/// A Python server on `$PORT` answering every GET with `body` (plain ASCII).
pub fn python_app(body: &str) -> String {
    python_app_with(&format!("{body:?}"))
}

/// `GET url` over a plain socket: (status, body).
pub async fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    // `*.localhost` is the loopback address (as browsers and curl resolve it); the Host
    // header keeps the name, which is what the proxy routes by.
    let address = match authority.split_once(':') {
        Some((host, port)) if host.ends_with(".localhost") => format!("127.0.0.1:{port}"),
        _ => authority.to_owned(),
    };
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}
