//! What the live URL's proxy adds to a request: 2,000 sequential requests, each on a fresh
//! connection (the proxy's worst case: it reads and routes every head), straight to a local
//! backend and then through the proxy; p50 / p99 of each and the difference. Then 500 small
//! POSTs on one keep-alive connection, head and body written separately as HTTP clients do
//! (the pattern where Nagle's algorithm meets delayed ACKs and a relay can stall ~40 ms).
//!
//! ```text
//! cargo bench -p automaton-platform --bench proxy
//! ```

use automaton_platform::local::proxy::{Routes, serve};
use std::error::Error;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

type BenchResult<T = ()> = Result<T, Box<dyn Error>>;

const REQUESTS: usize = 2_000;
const KEEP_ALIVE_REQUESTS: usize = 500;

fn main() -> BenchResult {
    tokio::runtime::Runtime::new()?.block_on(bench())
}

async fn bench() -> BenchResult {
    let backend = backend().await?;
    let routes = Routes::default();
    routes.set("app-bench.localhost", vec![backend]);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let proxy = listener.local_addr()?;
    let stop = CancellationToken::new();
    tokio::spawn(serve(listener, routes, stop.clone()));
    // Warm both paths.
    for _ in 0..100 {
        request(backend).await?;
        request(proxy).await?;
    }
    let mut direct = Vec::with_capacity(REQUESTS);
    let mut proxied = Vec::with_capacity(REQUESTS);
    for _ in 0..REQUESTS {
        let started = Instant::now();
        request(backend).await?;
        direct.push(started.elapsed());
        let started = Instant::now();
        request(proxy).await?;
        proxied.push(started.elapsed());
    }
    let (direct50, direct99) = quantiles(&mut direct);
    let (proxied50, proxied99) = quantiles(&mut proxied);
    println!("direct   n={REQUESTS} p50 {direct50:>7.1} µs  p99 {direct99:>7.1} µs");
    println!("proxied  n={REQUESTS} p50 {proxied50:>7.1} µs  p99 {proxied99:>7.1} µs");
    println!(
        "overhead p50 {:>7.1} µs  p99 {:>7.1} µs per request (fresh connection each)",
        proxied50 - direct50,
        proxied99 - direct99
    );

    let mut direct = keep_alive(backend).await?;
    let mut proxied = keep_alive(proxy).await?;
    for (path, times) in [("direct", &mut direct), ("proxied", &mut proxied)] {
        let (p50, p99) = quantiles(times);
        let max = times.last().map_or(0.0, |t| t.as_secs_f64() * 1e6);
        println!(
            "keep-alive POST {path:<7} n={KEEP_ALIVE_REQUESTS} p50 {p50:>7.1} µs  p99 {p99:>7.1} µs  max {max:>8.1} µs"
        );
    }
    stop.cancel();
    Ok(())
}

/// Round trips of small POSTs on one connection, head and body in two writes.
async fn keep_alive(address: SocketAddr) -> BenchResult<Vec<Duration>> {
    let mut stream = TcpStream::connect(address).await?;
    // As curl and hyper do: the client itself does not hold small writes back.
    stream.set_nodelay(true)?;
    let body = [b'x'; 100];
    let head = format!(
        "POST / HTTP/1.1\r\nHost: app-bench.localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut times = Vec::with_capacity(KEEP_ALIVE_REQUESTS);
    let mut answer = [0_u8; OK.len()];
    for _ in 0..KEEP_ALIVE_REQUESTS {
        let started = Instant::now();
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.read_exact(&mut answer).await?;
        times.push(started.elapsed());
        if answer != *OK {
            return Err(format!("unexpected answer: {}", String::from_utf8_lossy(&answer)).into());
        }
    }
    Ok(times)
}

/// The backend's answer on a kept-alive connection.
const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

async fn request(address: SocketAddr) -> BenchResult {
    let mut stream = TcpStream::connect(address).await?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: app-bench.localhost\r\nConnection: close\r\n\r\n")
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    if !response.starts_with(b"HTTP/1.1 200") {
        return Err(format!("unexpected answer: {}", String::from_utf8_lossy(&response)).into());
    }
    Ok(())
}

/// Answers each request with `ok`: `GET`s close the connection, anything with a body keeps it.
async fn backend() -> BenchResult<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut pending = Vec::new();
                let mut buffer = [0_u8; 4096];
                loop {
                    let Some(at) = pending.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&buffer[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&pending[..at]).to_ascii_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while pending.len() < at + 4 + length {
                        match stream.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => pending.extend_from_slice(&buffer[..n]),
                        }
                    }
                    pending.drain(..at + 4 + length);
                    let answer: &[u8] = if length == 0 {
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    } else {
                        OK
                    };
                    if stream.write_all(answer).await.is_err() || length == 0 {
                        return;
                    }
                }
            });
        }
    });
    Ok(address)
}

fn quantiles(times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let at = |q: f64| times[((times.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}
