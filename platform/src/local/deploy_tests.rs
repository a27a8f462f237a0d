//! Deploys of real apps on the local platform: a static site and a small Python HTTP server
//! reading `$PORT`, fetched over real sockets; a broken app rolled back with its log tail
//! while the old release keeps serving; a failing build; a crash loop; a restart of the
//! platform bringing services back.

use super::*;
use crate::model::{OperationStatus, Phase};
use crate::test_support::{get, packed, python_app};
use automaton_tools::clock::SystemClock;

fn platform(dir: &Path) -> LocalPlatform {
    LocalPlatform::open_with(
        &dir.join("platform"),
        Arc::new(SystemClock),
        LocalOptions {
            health_timeout: Duration::from_secs(10),
            build_timeout: Duration::from_secs(60),
            ..LocalOptions::default()
        },
    )
    .unwrap()
}

async fn deploy(
    platform: &LocalPlatform,
    service: &str,
    archive: &Path,
) -> crate::model::Operation {
    let accepted = platform
        .deploy("shop", service, archive, None)
        .await
        .unwrap();
    let operation = platform
        .wait_operation(&accepted.operation_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(operation.status.is_done(), "{operation:?}");
    operation
}

fn url(operation: &crate::model::Operation) -> String {
    operation.result.as_ref().unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_static_site_and_a_python_server_go_live_and_a_redeploy_moves_the_release() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();

    let site = packed(
        work.path(),
        "site",
        &[
            ("index.html", "<h1>shop</h1>"),
            ("about/index.html", "about us"),
        ],
    );
    let operation = deploy(&platform, "site", &site).await;
    assert_eq!(
        operation.status,
        OperationStatus::Succeeded,
        "{operation:?}"
    );
    assert_eq!(operation.phase, Phase::Healthy);
    let site_url = url(&operation);
    assert_eq!(get(&site_url).await, (200, "<h1>shop</h1>".to_owned()));
    assert_eq!(get(&format!("{site_url}about/")).await.1, "about us");
    assert_eq!(
        get(&format!("{site_url}%2e%2e/%2e%2e/etc/passwd")).await.0,
        400
    );

    let v1 = packed(work.path(), "v1", &[("main.py", &python_app("hello v1"))]);
    let first = deploy(&platform, "api", &v1).await;
    assert_eq!(first.status, OperationStatus::Succeeded, "{first:?}");
    assert_eq!(get(&url(&first)).await, (200, "hello v1".to_owned()));
    // The stream replays every phase in order, ending with done.
    let events = platform.operation_events(&first.id, 0).await.unwrap();
    let phases: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "phase")
        .map(|e| e.data["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        ["queued", "building", "pushing", "rolling_out", "healthy"]
    );
    assert_eq!(events.last().unwrap().kind, "done");
    assert_eq!(
        events.last().unwrap().data["result"],
        first.result.clone().unwrap()
    );

    let v2 = packed(work.path(), "v2", &[("main.py", &python_app("hello v2"))]);
    let second = deploy(&platform, "api", &v2).await;
    assert_eq!(get(&url(&second)).await, (200, "hello v2".to_owned()));
    let state = platform.get_project("shop").await.unwrap();
    let api = state.services.iter().find(|s| s.name == "api").unwrap();
    assert_eq!(api.status, ServiceStatus::Active);
    assert_eq!(
        api.current_release.as_deref(),
        second.result.as_ref().unwrap()["release"].as_str()
    );
    assert_eq!(
        api.previous_release.as_deref(),
        first.result.as_ref().unwrap()["release"].as_str()
    );
    // The old instance was stopped once the new one served.
    assert!(
        tokio::net::TcpStream::connect(
            url(&first)
                .trim_start_matches("http://")
                .trim_end_matches('/')
        )
        .await
        .is_err()
    );

    // The same source again is the same release, reused without a rebuild.
    let again = deploy(&platform, "api", &v2).await;
    assert_eq!(
        again.result.as_ref().unwrap()["release"],
        second.result.as_ref().unwrap()["release"]
    );
    let events = platform.operation_events(&again.id, 0).await.unwrap();
    assert!(events.iter().any(|e| {
        e.data["line"]
            .as_str()
            .is_some_and(|l| l.contains("already built"))
    }));
    platform.shutdown().await;
}

#[tokio::test]
async fn a_broken_release_is_rolled_back_with_its_log_tail_while_the_old_one_serves() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let good = packed(
        work.path(),
        "good",
        &[("main.py", &python_app("still here"))],
    );
    let serving = deploy(&platform, "api", &good).await;
    let broken = packed(
        work.path(),
        "broken",
        &[(
            "main.py",
            "import sys\nprint('Error: cannot find module express', file=sys.stderr)\nsys.exit(3)\n",
        )],
    );
    let failed = deploy(&platform, "api", &broken).await;
    assert_eq!(failed.status, OperationStatus::Failed);
    assert_eq!(failed.phase, Phase::RolledBack);
    let error = failed.error.unwrap();
    assert_eq!(error.code, ErrorCode::HealthCheckFailed, "{error:?}");
    assert!(
        error
            .log_tail
            .iter()
            .any(|l| l.contains("cannot find module express")),
        "{error:?}"
    );
    assert!(error.hint.contains("keeps serving"), "{error:?}");
    assert_eq!(
        error.state.as_ref().unwrap()["serving_release"],
        serving.result.as_ref().unwrap()["release"]
    );
    assert_eq!(get(&url(&serving)).await, (200, "still here".to_owned()));
    let state = platform.get_project("shop").await.unwrap();
    assert_eq!(state.services[0].status, ServiceStatus::Active);
    assert!(
        state
            .recent_events
            .iter()
            .any(|e| e.kind == "deploy.failed")
    );

    // A first deploy that never listens just fails.
    let silent = packed(
        work.path(),
        "silent",
        &[("main.py", "import time\ntime.sleep(60)\n")],
    );
    let platform_fast = LocalPlatform::open_with(
        &work.path().join("other"),
        Arc::new(SystemClock),
        LocalOptions {
            health_timeout: Duration::from_secs(1),
            build_timeout: Duration::from_secs(60),
            ..LocalOptions::default()
        },
    )
    .unwrap();
    platform_fast.create_project("shop", None).await.unwrap();
    let never = deploy(&platform_fast, "worker", &silent).await;
    assert_eq!(never.phase, Phase::Failed);
    assert_eq!(never.error.unwrap().code, ErrorCode::HealthCheckFailed);
    let state = platform_fast.get_project("shop").await.unwrap();
    assert_eq!(state.services[0].status, ServiceStatus::Failed);
    platform.shutdown().await;
    platform_fast.shutdown().await;
}

#[tokio::test]
async fn build_failures_and_undetectable_sources_say_what_to_fix() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let failing = packed(
        work.path(),
        "failing",
        &[(
            "conway.toml",
            "build = \"echo compiling; echo 'error: missing semicolon' >&2; exit 2\"\nstart = \"true\"\n",
        )],
    );
    let operation = deploy(&platform, "api", &failing).await;
    let error = operation.error.unwrap();
    assert_eq!(error.code, ErrorCode::BuildCommandFailed, "{error:?}");
    assert!(
        error
            .log_tail
            .iter()
            .any(|l| l.contains("missing semicolon")),
        "{error:?}"
    );
    let events = platform.operation_events(&operation.id, 0).await.unwrap();
    assert!(
        events.iter().any(|e| e.data["line"] == "compiling"),
        "build lines are streamed"
    );

    let nothing = packed(work.path(), "nothing", &[("README.md", "hi")]);
    let error = deploy(&platform, "api", &nothing).await.error.unwrap();
    assert_eq!(error.code, ErrorCode::NoProviderDetected);
    assert!(error.hint.contains("Procfile"));

    let err = platform
        .deploy("nope", "api", &nothing, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    // Two services may not share a live URL across projects.
    let site = packed(work.path(), "site", &[("index.html", "hi")]);
    deploy(&platform, "web-api", &site).await;
    platform.create_project("api-shop", None).await.unwrap();
    let err = platform
        .deploy("api-shop", "web", &site, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict, "{err:?}");
    assert!(err.message.contains("web-api-shop.localhost"), "{err:?}");
    platform.shutdown().await;
}

#[tokio::test]
async fn a_restarted_platform_brings_its_services_back() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let app = packed(
        work.path(),
        "app",
        &[("main.py", &python_app("back again"))],
    );
    deploy(&platform, "api", &app).await;
    platform.shutdown().await;
    drop(platform);

    let reopened = platform_at(work.path());
    assert_eq!(reopened.resume().await.unwrap(), ["api-shop"]);
    let port = reopened.inner.running.lock().await[&("shop".to_owned(), "api".to_owned())][0].port;
    assert_eq!(
        get(&format!("http://127.0.0.1:{port}/")).await,
        (200, "back again".to_owned())
    );
    reopened.shutdown().await;
}

fn platform_at(dir: &Path) -> LocalPlatform {
    platform(dir)
}

/// A Python server answering with the value of env var `name`.
fn env_app(name: &str) -> String {
    crate::test_support::python_app_with(&format!("os.environ.get('{name}', 'unset')"))
}

#[tokio::test]
async fn rollback_restart_scale_and_env_change_what_runs_without_losing_service() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let v1 = packed(work.path(), "v1", &[("main.py", &env_app("GREETING"))]);
    let first = deploy(&platform, "api", &v1).await;
    assert_eq!(get(&url(&first)).await.1, "unset");
    let v2 = packed(work.path(), "v2", &[("main.py", &python_app("v2"))]);
    let second = deploy(&platform, "api", &v2).await;
    let release = |op: &crate::model::Operation| {
        op.result.as_ref().unwrap()["release"]
            .as_str()
            .unwrap()
            .to_owned()
    };

    // Rollback is a pointer swap to a built release: no rebuild, well under a second.
    let started = std::time::Instant::now();
    let back = platform.rollback("shop", "api", None, None).await.unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "rollback took {took:?}");
    assert_eq!(back.current_release, Some(release(&first)));
    assert_eq!(back.previous_release, Some(release(&second)));
    assert_eq!(get(back.url.as_ref().unwrap()).await.1, "unset");
    // Forward again by name; then an unknown name and a no-op say what exists.
    let forward = platform
        .rollback("shop", "api", Some(&release(&second)), None)
        .await
        .unwrap();
    assert_eq!(get(forward.url.as_ref().unwrap()).await.1, "v2");
    let err = platform
        .rollback("shop", "api", Some("rel_nope"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert_eq!(
        err.state.unwrap()["ready_releases"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let err = platform
        .rollback("shop", "api", Some(&release(&second)), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    platform.rollback("shop", "api", None, None).await.unwrap();

    // Env: merged, the running service restarted and sees it; no read returns the value.
    let change = platform
        .set_env(
            "shop",
            &[("GREETING".to_owned(), "s3cr3t-hello".to_owned())],
            Some("env-1"),
        )
        .await
        .unwrap();
    assert_eq!(change.restarted_services, ["api"]);
    assert_eq!(change.env_names, ["GREETING"]);
    let detail = platform.get_service("shop", "api", 50).await.unwrap();
    assert_eq!(get(detail.url.as_ref().unwrap()).await.1, "s3cr3t-hello");
    let replay = platform
        .set_env(
            "shop",
            &[("GREETING".to_owned(), "s3cr3t-hello".to_owned())],
            Some("env-1"),
        )
        .await
        .unwrap();
    assert_eq!(replay, change, "a replay restarts nothing");
    let reads = [
        serde_json::to_string(&platform.get_project("shop").await.unwrap()).unwrap(),
        serde_json::to_string(&platform.list_env("shop").await.unwrap()).unwrap(),
        serde_json::to_string(&detail).unwrap(),
        serde_json::to_string(&platform.logs("shop", "api", 100).await.unwrap()).unwrap(),
        serde_json::to_string(&change).unwrap(),
    ];
    for read in reads {
        assert!(!read.contains("s3cr3t"), "{read}");
    }
    let err = platform
        .set_env("shop", &[("PORT".to_owned(), "1".to_owned())], None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);

    // Scale: two replicas, each serving; over the limit is a quota error; zero stops it.
    let scaled = platform.scale("shop", "api", 2, None).await.unwrap();
    assert_eq!(scaled.direct_urls.len(), 2);
    for url in &scaled.direct_urls {
        assert_eq!(get(url).await.1, "s3cr3t-hello");
    }
    let err = platform
        .scale("shop", "api", MAX_REPLICAS + 1, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::QuotaExceeded);
    let restarted = platform.restart("shop", "api", None).await.unwrap();
    assert_eq!(restarted.direct_urls.len(), 2);
    assert_ne!(restarted.direct_urls, scaled.direct_urls, "fresh instances");
    let stopped = platform.scale("shop", "api", 0, None).await.unwrap();
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    assert_eq!(stopped.health.status, "stopped");
    assert!(stopped.direct_urls.is_empty());

    let services = platform.list_services("shop").await.unwrap();
    assert_eq!(services.len(), 1);
    let err = platform.get_service("shop", "apj", 0).await.unwrap_err();
    assert!(err.hint.contains("did you mean `api`"), "{err:?}");
    let events: Vec<String> = platform
        .get_project("shop")
        .await
        .unwrap()
        .recent_events
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for kind in [
        "service.rolled_back",
        "env.set",
        "service.scaled",
        "service.restarted",
    ] {
        assert!(events.iter().any(|e| e == kind), "{kind}: {events:?}");
    }
    platform.shutdown().await;
}

#[tokio::test]
async fn a_crashing_app_is_restarted_then_reported_as_a_crash_loop_with_a_suggestion() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let flaky = packed(
        work.path(),
        "flaky",
        &[(
            "main.py",
            "import os, socket, time, sys\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', int(os.environ['PORT'])))\ns.listen()\ntime.sleep(0.3)\nprint(\"ModuleNotFoundError: No module named 'flask'\", flush=True)\nsys.exit(1)\n",
        )],
    );
    deploy(&platform, "api", &flaky).await;
    let started = std::time::Instant::now();
    let detail = loop {
        let detail = platform.get_service("shop", "api", 10).await.unwrap();
        if detail.health.reason.as_deref() == Some("crash_loop") {
            break detail;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{detail:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(detail.health.status, "unhealthy");
    assert!(detail.health.restart_count >= 3);
    assert!(
        detail
            .health
            .suggestion
            .as_deref()
            .unwrap()
            .contains("'flask' to requirements.txt")
    );
    assert!(
        detail
            .log_tail
            .iter()
            .any(|l| l.contains("No module named"))
    );
    // The project's events say it too: each crash, then the loop with the app's last words.
    let events = platform.get_project("shop").await.unwrap().recent_events;
    assert!(
        events.iter().any(|e| e.kind == "service.crashed"),
        "{events:?}"
    );
    let looped = events
        .iter()
        .rev()
        .find(|e| e.kind == "service.crash_loop")
        .unwrap();
    assert!(
        looped.message.contains("No module named 'flask'"),
        "{looped:?}"
    );
    let logs = platform.logs("shop", "api", 20).await.unwrap();
    assert!(
        logs.runtime
            .iter()
            .any(|l| l.contains("No module named") && l.starts_with("rel_"))
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn a_build_past_its_limit_is_stopped_with_timeout() {
    let work = tempfile::tempdir().unwrap();
    let platform = LocalPlatform::open_with(
        &work.path().join("platform"),
        Arc::new(SystemClock),
        LocalOptions {
            health_timeout: Duration::from_secs(5),
            build_timeout: Duration::from_millis(500),
            ..LocalOptions::default()
        },
    )
    .unwrap();
    platform.create_project("shop", None).await.unwrap();
    let slow = packed(
        work.path(),
        "slow",
        &[(
            "conway.toml",
            "build = \"echo starting the long build; sleep 31.7\"\nstart = \"true\"\n",
        )],
    );
    let started = std::time::Instant::now();
    let operation = deploy(&platform, "api", &slow).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the build was stopped, not waited for"
    );
    let error = operation.error.unwrap();
    assert_eq!(error.code, ErrorCode::Timeout, "{error:?}");
    assert!(error.retryable);
    assert!(
        error
            .log_tail
            .iter()
            .any(|l| l.contains("starting the long build")),
        "{error:?}"
    );
    assert!(
        pgrep_build_sleep().is_empty(),
        "the build's whole process group was killed"
    );
    platform.shutdown().await;
}

fn pgrep_build_sleep() -> String {
    let out = std::process::Command::new("pgrep")
        .args(["-f", "^sleep 31.7$"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn the_live_url_stays_the_same_across_deploys_rollbacks_and_scaling() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = listener.local_addr().unwrap().port();
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn({
        let platform = platform.clone();
        let stop = stop.clone();
        async move { platform.serve_proxy(listener, stop).await }
    });
    platform.create_project("shop", None).await.unwrap();
    let v1 = packed(work.path(), "v1", &[("main.py", &python_app("one"))]);
    let first = deploy(&platform, "api", &v1).await;
    let live = url(&first);
    assert_eq!(live, format!("http://api-shop.localhost:{proxy_port}/"));
    assert_eq!(get(&live).await, (200, "one".to_owned()));

    let v2 = packed(work.path(), "v2", &[("main.py", &python_app("two"))]);
    assert_eq!(url(&deploy(&platform, "api", &v2).await), live);
    assert_eq!(get(&live).await.1, "two");
    let back = platform.rollback("shop", "api", None, None).await.unwrap();
    assert_eq!(back.url.as_deref(), Some(live.as_str()));
    assert_eq!(get(&live).await.1, "one");

    let scaled = platform.scale("shop", "api", 2, None).await.unwrap();
    assert_eq!(scaled.url.as_deref(), Some(live.as_str()));
    for _ in 0..4 {
        assert_eq!(
            get(&live).await.1,
            "one",
            "both replicas serve behind the URL"
        );
    }
    platform.scale("shop", "api", 0, None).await.unwrap();
    let (status, body) = get(&live).await;
    assert_eq!(status, 404, "{body}");
    stop.cancel();
    platform.shutdown().await;
}

/// Review finding: the build runs with write access to the release directory, then the
/// platform (unconfined) writes the release marker there, following a symlink the build
/// left in its place: any file the platform's user may write (a wallet, `platform.db`) is
/// overwritten.
#[tokio::test]
async fn a_build_cannot_make_the_platform_overwrite_a_file_outside_the_release() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let wallet = work.path().join("wallet.json");
    std::fs::write(&wallet, "{\"privateKey\": \"0xkeep-me\"}").unwrap();
    let source = packed(
        work.path(),
        "sneaky",
        &[
            (
                "conway.toml",
                &format!(
                    "build = \"ln -s {} .conway-release.json\"\nstart = \"python3 -m http.server $PORT\"\n",
                    wallet.display()
                ),
            ),
            ("index.html", "hi"),
        ],
    );
    let _ = deploy(&platform, "api", &source).await;
    assert_eq!(
        std::fs::read_to_string(&wallet).unwrap(),
        "{\"privateKey\": \"0xkeep-me\"}",
        "the platform wrote through the build's symlink"
    );
    platform.shutdown().await;
}

/// Review finding: a successful build's background processes are not stopped: they keep
/// running (with the project's env and write access to the release) outside every service,
/// past a project's deletion.
#[tokio::test]
async fn a_build_leaves_no_process_running() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let source = packed(
        work.path(),
        "lingering",
        &[
            (
                "conway.toml",
                "build = \"sleep 47.31 >/dev/null 2>&1 &\"\nstart = \"python3 -m http.server $PORT\"\n",
            ),
            ("index.html", "hi"),
        ],
    );
    let _ = deploy(&platform, "api", &source).await;
    platform.shutdown().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lingering: Vec<i32> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            cmdline.starts_with(b"sleep\x0047.31").then_some(pid)
        })
        .collect();
    for pid in &lingering {
        if let Some(pid) = rustix::process::Pid::from_raw(*pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
    assert!(lingering.is_empty(), "still running: {lingering:?}");
}
