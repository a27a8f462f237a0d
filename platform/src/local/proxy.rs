//! The live URLs: one HTTP/1.1 listener that routes each connection by its `Host` header
//! (`<service>-<project>.localhost[:port]`) to the service's current instances, round-robin
//! across replicas. The request head is read (64 KiB at most, 30 s at most) and forwarded
//! with our own `X-Forwarded-For`, `-Host` and `-Proto` (a client's own are dropped: an app
//! may trust them), then bytes are spliced both ways until both sides close or nothing moves
//! for [`IDLE_TIMEOUT`]. A plain request goes upstream with `Connection: close`, so each
//! request comes through here on its own connection: it is routed afresh (a deploy, a
//! rollback, a scale applies to the very next request) and stamped afresh, and no later
//! request on a kept-alive connection slips through unstamped. Upgrades (WebSocket) keep
//! their connection.
//!
//! `*.localhost` resolves to the loopback address in browsers and curl; other clients connect
//! to the proxy's address and send the `Host` header.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The largest request head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// How long a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to an instance may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a spliced connection may sit with no byte moving either way.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Headers about the client that only this proxy may set.
const FORWARDING_HEADERS: [&str; 5] = [
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "forwarded",
    "x-real-ip",
];
/// How long connections in flight may go on once the proxy stops; keep-alive and WebSocket
/// connections would otherwise hold a platform shutdown open for good.
const DRAIN_GRACE: Duration = Duration::from_secs(5);

/// The host name of a service's live URL.
pub fn host_for(project: &str, service: &str) -> String {
    format!("{service}-{project}.localhost")
}

#[derive(Debug, Default)]
struct Backends {
    addresses: Vec<SocketAddr>,
    next: AtomicUsize,
}

/// Which instances serve which host. Cheap to clone; shared by the platform and the proxy.
#[derive(Debug, Clone, Default)]
pub struct Routes(Arc<RwLock<HashMap<String, Arc<Backends>>>>);

impl Routes {
    /// Routes `host` to `backends` from the next connection on; none removes the route.
    pub fn set(&self, host: &str, backends: Vec<SocketAddr>) {
        let mut routes = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if backends.is_empty() {
            routes.remove(&host.to_ascii_lowercase());
        } else {
            routes.insert(
                host.to_ascii_lowercase(),
                Arc::new(Backends {
                    addresses: backends,
                    next: AtomicUsize::new(0),
                }),
            );
        }
    }

    /// The hosts routed now.
    pub fn hosts(&self) -> Vec<String> {
        let routes = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let mut hosts: Vec<String> = routes.keys().cloned().collect();
        hosts.sort();
        hosts
    }

    /// The backends of `host`, starting with the next in turn.
    fn pick(&self, host: &str) -> Option<Vec<SocketAddr>> {
        let routes = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let backends = routes.get(host)?;
        let count = backends.addresses.len();
        let start = backends.next.fetch_add(1, Ordering::Relaxed) % count;
        Some(
            (0..count)
                .map(|i| backends.addresses[(start + i) % count])
                .collect(),
        )
    }
}

/// Accepts connections on `listener` until `stop` is cancelled; then closes the port, gives
/// the connections in flight [`DRAIN_GRACE`] to finish and cuts the rest.
pub async fn serve(listener: TcpListener, routes: Routes, stop: CancellationToken) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // Reap finished connections so the set holds only live ones.
            Some(_) = connections.join_next() => continue,
            () = stop.cancelled() => break,
        };
        match accepted {
            Ok((client, peer)) => {
                let routes = routes.clone();
                connections.spawn(async move {
                    if let Err(err) = relay(client, peer, &routes).await {
                        tracing::debug!(%peer, error = %err, "a proxied connection ended with an error");
                    }
                });
            }
            Err(err) => {
                // Out of file descriptors and the like: wait a moment rather than spin.
                tracing::warn!(error = %err, "the proxy could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::debug!(
            cut = connections.len(),
            "proxied connections still open after the grace period are cut"
        );
    }
}

async fn relay(mut client: TcpStream, peer: SocketAddr, routes: &Routes) -> std::io::Result<()> {
    let head = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut client)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(HeadError::TooLarge)) => {
            return answer(
                &mut client,
                431,
                "Request Header Fields Too Large",
                "the request head is over 64 KiB",
            )
            .await;
        }
        Ok(Err(HeadError::Io(err))) => return Err(err),
        Err(_) => {
            return answer(
                &mut client,
                408,
                "Request Timeout",
                "the request head did not arrive in time",
            )
            .await;
        }
    };
    let Some((head_end, host)) = parse_head(&head) else {
        return answer(
            &mut client,
            400,
            "Bad Request",
            "a well-formed HTTP/1.1 request head with exactly one Host header was expected",
        )
        .await;
    };
    let Some(backends) = routes.pick(&host) else {
        return answer(
            &mut client,
            404,
            "Not Found",
            &format!("no service at {host}; deploy one, or check the URL"),
        )
        .await;
    };
    let mut upstream = None;
    for address in backends {
        if let Ok(Ok(stream)) =
            tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await
        {
            upstream = Some(stream);
            break;
        }
    }
    let Some(mut upstream) = upstream else {
        return answer(
            &mut client,
            502,
            "Bad Gateway",
            "the service is not accepting connections (it may be restarting); check get_service",
        )
        .await;
    };
    // A relay passes on what it reads as it reads it: with Nagle's algorithm on, the body
    // written after the head waits for an ACK the peer delays (~40 ms, `benches/proxy.rs`).
    client.set_nodelay(true)?;
    upstream.set_nodelay(true)?;
    // The head rewritten, then whatever body bytes came with it.
    let (request_head, rest) = head.split_at(head_end);
    let mut forwarded = forwarded_head(request_head, peer, &host);
    forwarded.extend_from_slice(rest);
    upstream.write_all(&forwarded).await?;
    splice(&mut client, &mut upstream, IDLE_TIMEOUT).await
}

/// The request head as the app gets it: the client's forwarding headers dropped and ours
/// added; a request that is not an upgrade asks for `Connection: close` (see the module
/// doc). `head` is a head [`parse_head`] accepted, `\r\n\r\n` included.
fn forwarded_head(head: &[u8], peer: SocketAddr, host: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.trim_end_matches("\r\n").split("\r\n");
    let mut out = String::with_capacity(head.len() + 128);
    out.push_str(lines.next().unwrap_or_default());
    out.push_str("\r\n");
    let headers: Vec<(&str, &str)> = lines.filter_map(|line| line.split_once(':')).collect();
    let upgrade = headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("upgrade"));
    for (name, value) in &headers {
        let lower = name.to_ascii_lowercase();
        let hop_by_hop = !upgrade && (lower == "connection" || lower == "keep-alive");
        if FORWARDING_HEADERS.contains(&lower.as_str()) || hop_by_hop {
            continue;
        }
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push_str("\r\n");
    }
    if !upgrade {
        out.push_str("Connection: close\r\n");
    }
    out.push_str(&format!(
        "X-Forwarded-For: {}\r\nX-Forwarded-Host: {host}\r\nX-Forwarded-Proto: http\r\n\r\n",
        peer.ip()
    ));
    out.into_bytes()
}

/// Copies bytes both ways until both sides have closed, or until nothing moved for `idle`.
async fn splice(
    client: &mut TcpStream,
    upstream: &mut TcpStream,
    idle: Duration,
) -> std::io::Result<()> {
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    let mut to_upstream = vec![0_u8; 16 * 1024];
    let mut to_client = vec![0_u8; 16 * 1024];
    let (mut client_open, mut upstream_open) = (true, true);
    while client_open || upstream_open {
        tokio::select! {
            read = client_read.read(&mut to_upstream), if client_open => match read? {
                0 => {
                    client_open = false;
                    upstream_write.shutdown().await?;
                }
                n => upstream_write.write_all(&to_upstream[..n]).await?,
            },
            read = upstream_read.read(&mut to_client), if upstream_open => match read? {
                0 => {
                    upstream_open = false;
                    client_write.shutdown().await?;
                }
                n => client_write.write_all(&to_client[..n]).await?,
            },
            () = tokio::time::sleep(idle) => {
                tracing::debug!("a proxied connection sat idle past its limit and was closed");
                return Ok(());
            }
        }
    }
    Ok(())
}

enum HeadError {
    TooLarge,
    Io(std::io::Error),
}

/// Reads until the end of the request head (`\r\n\r\n`); `None` when the client closed first.
async fn read_head(client: &mut TcpStream) -> Result<Option<Vec<u8>>, HeadError> {
    let mut head = Vec::with_capacity(1024);
    let mut buffer = [0_u8; 8192];
    loop {
        let read = client.read(&mut buffer).await.map_err(HeadError::Io)?;
        if read == 0 {
            return Ok(None);
        }
        let searched_from = head.len().saturating_sub(3);
        head.extend_from_slice(&buffer[..read]);
        let end = head[searched_from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|at| searched_from + at + 4);
        match end {
            Some(end) if end > MAX_HEAD => return Err(HeadError::TooLarge),
            Some(_) => return Ok(Some(head)),
            None if head.len() > MAX_HEAD => return Err(HeadError::TooLarge),
            None => {}
        }
    }
}

/// Where the head ends (just past `\r\n\r\n`) and its host, lowercased, without the port.
/// `None` for a head a proxy must refuse (RFC 9112): no or two `Host` headers, a header name
/// that is not a token (`Host :`, a folded line) — the ambiguities requests are smuggled by.
fn parse_head(head: &[u8]) -> Option<(usize, String)> {
    let at = head.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&head[..at]).ok()?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next()?;
    if request_line.split(' ').count() != 3 {
        return None;
    }
    let mut host = None;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return None;
        }
        if name.eq_ignore_ascii_case("host") && host.replace(value.trim()).is_some() {
            return None;
        }
    }
    let host = host?;
    let host = host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.chars().all(|c| c.is_ascii_digit()) {
            name
        } else {
            host
        }
    });
    (!host.is_empty()).then(|| (at + 4, host.to_ascii_lowercase()))
}

/// A byte of an HTTP token (RFC 9110 §5.6.2), which header names are.
fn is_token_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

async fn answer(
    client: &mut TcpStream,
    status: u16,
    reason: &str,
    body: &str,
) -> std::io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await?;
    // Read what the client still sends (briefly), so closing does not reset the connection
    // before it has read the answer.
    let mut sink = [0_u8; 8192];
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
    Ok(())
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
