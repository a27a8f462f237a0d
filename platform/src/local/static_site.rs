//! The platform's own server for static sites: `GET`/`HEAD` of the files under a release's
//! site directory, `index.html` for directories, never a path outside the directory (`..`,
//! encoded or not, and symlinks leading out are refused).

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use std::path::{Component, Path, PathBuf};
use tokio_util::sync::CancellationToken;

/// Serves `root` on `127.0.0.1:port` until `stop` is cancelled.
pub async fn serve(root: PathBuf, port: u16, stop: CancellationToken) {
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(port, error = %err, "the static site cannot listen");
            return;
        }
    };
    let root = std::sync::Arc::new(root);
    let app = axum::Router::new().fallback(move |request: Request<Body>| {
        let root = std::sync::Arc::clone(&root);
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        async move { respond(&root, &method, &path).await }
    });
    let _ = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await;
}

async fn respond(root: &Path, method: &Method, path: &str) -> Response<Body> {
    if method != Method::GET && method != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD");
    }
    let Some(relative) = decode_path(path) else {
        return plain(StatusCode::BAD_REQUEST, "bad path");
    };
    // Dotfiles (.env, the release marker, .git leftovers) are never served.
    if relative
        .components()
        .any(|part| part.as_os_str().to_string_lossy().starts_with('.'))
    {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    let Ok(root) = tokio::fs::canonicalize(root).await else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    let mut path = root.join(&relative);
    if tokio::fs::metadata(&path)
        .await
        .is_ok_and(|meta| meta.is_dir())
    {
        path.push("index.html");
    }
    let Ok(resolved) = tokio::fs::canonicalize(&path).await else {
        return plain(StatusCode::NOT_FOUND, "not found");
    };
    if !resolved.starts_with(&root) {
        return plain(StatusCode::NOT_FOUND, "not found");
    }
    match tokio::fs::read(&resolved).await {
        Ok(bytes) => {
            let mut response = Response::new(if method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(bytes)
            });
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(content_type(&resolved)),
            );
            response
        }
        Err(_) => plain(StatusCode::NOT_FOUND, "not found"),
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    *response.status_mut() = status;
    response
}

/// The request path as a relative path of normal components, percent-decoded; `None` when
/// it climbs (`..`) or does not decode.
fn decode_path(raw: &str) -> Option<PathBuf> {
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            decoded.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            decoded.push(bytes[i]);
            i += 1;
        }
    }
    let text = String::from_utf8(decoded).ok()?;
    let mut out = PathBuf::new();
    for component in Path::new(&text).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_never_climb_out() {
        assert_eq!(decode_path("/a/b.html"), Some(PathBuf::from("a/b.html")));
        assert_eq!(decode_path("/"), Some(PathBuf::new()));
        assert_eq!(decode_path("/a%20b"), Some(PathBuf::from("a b")));
        assert_eq!(decode_path("/../etc/passwd"), None);
        assert_eq!(decode_path("/%2e%2e/etc/passwd"), None);
        assert_eq!(decode_path("/a/%2E%2E/%2E%2E/x"), None);
        assert_eq!(decode_path("/%zz"), None);
    }
}
