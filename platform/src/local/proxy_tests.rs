//! Tests of the live-URL proxy against real backends on loopback sockets: routing and
//! round-robin, bodies, upgrades, route swaps, the 400/404/408/431/502 answers, and stopping.

use super::*;

/// A backend answering every request with `name` (and echoing a POST body's length).
async fn backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let head = read_head(&mut stream)
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let (end, _) = parse_head(&head).unwrap_or((head.len(), String::new()));
                let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
                let length: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = head[end..].to_vec();
                while body.len() < length {
                    let mut chunk = vec![0; 65536];
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    body.extend_from_slice(&chunk[..n]);
                }
                // Ours, and only ours.
                let forwarded = text.matches("x-forwarded-for:").count() == 1
                    && text.contains("x-forwarded-for: 127.0.0.1");
                let reply = format!("{name} {} {forwarded}", body.len());
                let _ = stream
                    .write_all(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}", reply.len()).as_bytes())
                    .await;
            });
        }
    });
    address
}

async fn proxy(routes: &Routes) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, routes.clone(), CancellationToken::new()));
    address
}

async fn send(proxy: SocketAddr, raw: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn get(host: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").into_bytes()
}

#[tokio::test]
async fn hosts_route_to_their_service_round_robin_across_replicas() {
    let routes = Routes::default();
    let (a, b, other) = (
        backend("a").await,
        backend("b").await,
        backend("other").await,
    );
    routes.set("app-shop.localhost", vec![a, b]);
    routes.set(&host_for("blog", "web"), vec![other]);
    let proxy = proxy(&routes).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(send(proxy, &get("app-shop.localhost:8080")).await.1);
    }
    assert_eq!(seen, ["a 0 true", "b 0 true", "a 0 true", "b 0 true"]);
    assert_eq!(
        send(proxy, &get("WEB-blog.localhost")).await.1,
        "other 0 true"
    );
    assert_eq!(routes.hosts(), ["app-shop.localhost", "web-blog.localhost"]);

    // A swap applies to the next connection; an empty route removes the service.
    routes.set("app-shop.localhost", vec![other]);
    assert_eq!(
        send(proxy, &get("app-shop.localhost")).await.1,
        "other 0 true"
    );
    routes.set("app-shop.localhost", Vec::new());
    let (status, body) = send(proxy, &get("app-shop.localhost")).await;
    assert_eq!(status, 404);
    assert!(
        body.contains("no service at app-shop.localhost") && !body.contains("blog"),
        "{body}"
    );
}

#[tokio::test]
async fn bodies_pass_whole_and_bad_requests_get_clear_answers() {
    let routes = Routes::default();
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let alive = backend("alive").await;
    routes.set("api-shop.localhost", vec![dead, alive]);
    routes.set("down-shop.localhost", vec![dead]);
    let proxy = proxy(&routes).await;
    let body = vec![b'x'; 1_000_000];
    let mut request = format!(
        "POST /upload HTTP/1.1\r\nHost: api-shop.localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(&body);
    // Twice, so each replica comes first once: the dead one is skipped either way.
    for _ in 0..2 {
        assert_eq!(
            send(proxy, &request).await,
            (200, "alive 1000000 true".to_owned())
        );
    }
    let (status, body) = send(proxy, &get("down-shop.localhost")).await;
    assert_eq!(status, 502);
    assert!(body.contains("not accepting connections"));
    assert_eq!(
        send(proxy, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            .await
            .0,
        400
    );
    assert_eq!(send(proxy, b"garbage\r\n\r\n").await.0, 400);
    let mut huge = b"GET / HTTP/1.1\r\nHost: api-shop.localhost\r\n".to_vec();
    huge.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
    huge.extend_from_slice(b"\r\n\r\n");
    assert_eq!(send(proxy, &huge).await.0, 431);
}

/// A backend that keeps connections alive, answering each request with `name`, and that
/// answers an upgrade with `101` and then echoes every byte.
async fn conversational(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                while let Ok(Some(head)) = read_head(&mut stream).await {
                    if String::from_utf8_lossy(&head)
                        .to_ascii_lowercase()
                        .contains("upgrade: websocket")
                    {
                        let _ = stream
                            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
                            .await;
                        let (mut from, mut to) = stream.split();
                        let _ = tokio::io::copy(&mut from, &mut to).await;
                        return;
                    }
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{name}",
                        name.len()
                    );
                    if stream.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    address
}

/// Reads one response with a `Content-Length` (or none, for a `101`) off a live connection.
async fn response(stream: &mut TcpStream) -> (u16, String) {
    let head = read_head(stream).await.ok().flatten().unwrap();
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
    let length: usize = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = head[end..].to_vec();
    body.resize(length, 0);
    stream
        .read_exact(&mut body[head.len() - end..])
        .await
        .unwrap();
    (status, String::from_utf8(body).unwrap())
}

fn keep_alive(host: &str) -> Vec<u8> {
    format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").into_bytes()
}

const WEBSOCKET: &[u8] = b"GET /ws HTTP/1.1\r\nHost: live-shop.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";

/// Opens a connection through the proxy, upgrades it and checks that bytes go both ways.
async fn upgraded(proxy: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(WEBSOCKET).await.unwrap();
    assert_eq!(response(&mut stream).await.0, 101);
    stream.write_all(b"ping").await.unwrap();
    let mut echo = [0; 4];
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
    stream
}

#[tokio::test]
async fn an_open_connection_keeps_its_backend_when_the_route_moves() {
    let routes = Routes::default();
    let (old, new) = (conversational("old").await, conversational("new").await);
    routes.set("app-shop.localhost", vec![old]);
    let proxy = proxy(&routes).await;
    let mut open = TcpStream::connect(proxy).await.unwrap();
    open.write_all(&keep_alive("app-shop.localhost"))
        .await
        .unwrap();
    assert_eq!(response(&mut open).await, (200, "old".to_owned()));

    routes.set("app-shop.localhost", vec![new]);
    open.write_all(&keep_alive("app-shop.localhost"))
        .await
        .unwrap();
    assert_eq!(response(&mut open).await, (200, "old".to_owned()));
    let mut fresh = TcpStream::connect(proxy).await.unwrap();
    fresh
        .write_all(&keep_alive("app-shop.localhost"))
        .await
        .unwrap();
    assert_eq!(response(&mut fresh).await, (200, "new".to_owned()));
}

#[tokio::test]
async fn upgraded_connections_carry_bytes_both_ways() {
    let routes = Routes::default();
    routes.set("live-shop.localhost", vec![conversational("ws").await]);
    let mut stream = upgraded(proxy(&routes).await).await;
    let message = vec![7_u8; 200_000];
    let (mut from, mut to) = stream.split();
    let (written, echoed) = tokio::join!(to.write_all(&message), async {
        let mut echoed = vec![0; message.len()];
        from.read_exact(&mut echoed).await.map(|_| echoed)
    });
    written.unwrap();
    assert!(echoed.unwrap() == message);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_finishes_its_head_is_answered_408_after_the_timeout() {
    let routes = Routes::default();
    routes.set("app-shop.localhost", vec![backend("app").await]);
    let proxy = proxy(&routes).await;
    let started = tokio::time::Instant::now();
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    // A slowloris: part of a head, then nothing.
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: app-shop.localhost\r\nX-Slow: ")
        .await
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 408 "), "{answer:?}");
    assert!(started.elapsed() >= HEAD_TIMEOUT);
}

#[tokio::test]
async fn stopping_closes_the_port_and_lets_open_connections_finish() {
    let routes = Routes::default();
    routes.set("live-shop.localhost", vec![conversational("ws").await]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let served = tokio::spawn(serve(listener, routes, stop.clone()));
    let mut open = upgraded(address).await;

    stop.cancel();
    let refused = async {
        while TcpStream::connect(address).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), refused)
        .await
        .unwrap();
    open.write_all(b"still here").await.unwrap();
    let mut echo = [0; 10];
    open.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"still here");
    assert!(!served.is_finished());

    drop(open);
    tokio::time::timeout(Duration::from_secs(2), served)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn stopping_cuts_connections_still_open_after_the_grace_period() {
    let routes = Routes::default();
    routes.set("live-shop.localhost", vec![conversational("ws").await]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let served = tokio::spawn(serve(listener, routes, stop.clone()));
    let mut open = upgraded(address).await;

    let stopped = tokio::time::Instant::now();
    stop.cancel();
    served.await.unwrap();
    assert!(stopped.elapsed() >= DRAIN_GRACE);
    let mut rest = Vec::new();
    assert_eq!(open.read_to_end(&mut rest).await.unwrap(), 0);
}

#[test]
fn heads_a_proxy_must_refuse_have_no_host() {
    let cases: &[(&str, Option<&str>)] = &[
        (
            "GET / HTTP/1.1\r\nHost: App-Shop.localhost\r\n\r\n",
            Some("app-shop.localhost"),
        ),
        (
            "GET / HTTP/1.1\r\nhost:app-shop.localhost:8080\r\n\r\n",
            Some("app-shop.localhost"),
        ),
        (
            "GET / HTTP/1.1\r\nAccept: */*\r\nHost:  a.localhost \r\n\r\n",
            Some("a.localhost"),
        ),
        ("GET / HTTP/1.1\r\n\r\n", None),
        ("GET / HTTP/1.1\r\nHost:\r\n\r\n", None),
        ("GET / HTTP/1.1\r\nHost: :80\r\n\r\n", None),
        ("GET /\r\nHost: a.localhost\r\n\r\n", None),
        (
            "GET / HTTP/1.1\r\nHost: a.localhost\r\nHost: b.localhost\r\n\r\n",
            None,
        ),
        ("GET / HTTP/1.1\r\nHost : a.localhost\r\n\r\n", None),
        (
            "GET / HTTP/1.1\r\nHost: a.localhost\r\n folded\r\n\r\n",
            None,
        ),
        ("GET / HTTP/1.1\r\nno colon\r\n\r\n", None),
    ];
    for (head, host) in cases {
        let parsed = parse_head(head.as_bytes());
        assert_eq!(parsed.as_ref().map(|(_, h)| h.as_str()), *host, "{head:?}");
        if let Some((end, _)) = parsed {
            assert_eq!(end, head.len(), "{head:?}");
        }
    }
}

#[test]
fn the_app_gets_our_forwarding_headers_not_the_client_s_and_a_close_per_request() {
    let peer: SocketAddr = "10.1.2.3:5555".parse().unwrap();
    let head = b"GET /x HTTP/1.1\r\nHost: web-shop.localhost\r\nX-Forwarded-For: 6.6.6.6\r\nforwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.6\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\nAccept: */*\r\n\r\n";
    let out = String::from_utf8(forwarded_head(head, peer, "web-shop.localhost")).unwrap();
    assert!(!out.contains("6.6.6.6"), "{out}");
    assert!(!out.to_ascii_lowercase().contains("keep-alive"), "{out}");
    assert!(
        out.starts_with("GET /x HTTP/1.1\r\nHost: web-shop.localhost\r\n"),
        "{out}"
    );
    assert!(out.contains("Accept: */*\r\n"));
    assert!(out.contains("Connection: close\r\n"));
    assert!(out.ends_with(
        "X-Forwarded-For: 10.1.2.3\r\nX-Forwarded-Host: web-shop.localhost\r\nX-Forwarded-Proto: http\r\n\r\n"
    ));
    assert_eq!(parse_head(out.as_bytes()).unwrap().1, "web-shop.localhost");

    // An upgrade keeps its connection headers.
    let upgrade = b"GET /ws HTTP/1.1\r\nHost: h.localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let out = String::from_utf8(forwarded_head(upgrade, peer, "h.localhost")).unwrap();
    assert!(out.contains("Connection: Upgrade\r\n") && !out.contains("Connection: close"));
}

#[tokio::test]
async fn a_forged_forwarded_for_never_reaches_the_app() {
    let routes = Routes::default();
    routes.set("web-shop.localhost", vec![backend("web").await]);
    let proxy = proxy(&routes).await;
    // The backend says whether it saw x-forwarded-for: 127.0.0.1 (ours); a forged one
    // placed first would otherwise be what most frameworks read.
    let (status, body) = send(
        proxy,
        b"GET / HTTP/1.1\r\nHost: web-shop.localhost\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body, "web 0 true");
}

#[tokio::test]
async fn a_spliced_connection_idle_past_its_limit_is_closed() {
    let (mut client_side, mut proxy_client) = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = TcpStream::connect(address).await.unwrap();
        (client, listener.accept().await.unwrap().0)
    };
    let (mut app_side, mut proxy_upstream) = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let upstream = TcpStream::connect(address).await.unwrap();
        (listener.accept().await.unwrap().0, upstream)
    };
    let spliced = tokio::spawn(async move {
        splice(
            &mut proxy_client,
            &mut proxy_upstream,
            Duration::from_millis(200),
        )
        .await
    });
    client_side.write_all(b"ping").await.unwrap();
    let mut buffer = [0_u8; 4];
    app_side.read_exact(&mut buffer).await.unwrap();
    assert_eq!(&buffer, b"ping");
    // Then nothing: the splice gives up and both ends see the close.
    tokio::time::timeout(Duration::from_secs(2), spliced)
        .await
        .expect("the idle splice ended")
        .unwrap()
        .unwrap();
    assert_eq!(client_side.read(&mut buffer).await.unwrap(), 0);
    assert_eq!(app_side.read(&mut buffer).await.unwrap(), 0);
}
