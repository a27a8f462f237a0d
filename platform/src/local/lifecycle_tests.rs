//! The life of what the local platform runs, past the happy path: processes a crashed
//! platform left behind, every replica back after a restart, a service that cannot start not
//! stopping the others, a crash loop that ends, changes that survive their caller going away,
//! one idempotency key used twice at once, and an env change that breaks one service.

use super::*;
use crate::test_support::{get, packed, python_app, python_app_with};
use automaton_tools::clock::SystemClock;
use std::os::unix::process::CommandExt;

fn platform(dir: &Path) -> LocalPlatform {
    LocalPlatform::open_with(
        &dir.join("platform"),
        Arc::new(SystemClock),
        LocalOptions {
            health_timeout: Duration::from_secs(10),
            build_timeout: Duration::from_secs(60),
            stable_after: Duration::from_secs(2),
            confine_with: None,
        },
    )
    .unwrap()
}

async fn deploy(platform: &LocalPlatform, service: &str, archive: &Path) -> serde_json::Value {
    let accepted = platform
        .deploy("shop", service, archive, None)
        .await
        .unwrap();
    let operation = platform
        .wait_operation(&accepted.operation_id, Duration::from_secs(60))
        .await
        .unwrap();
    operation
        .result
        .clone()
        .unwrap_or_else(|| panic!("{operation:?}"))
}

async fn recorded_groups(platform: &LocalPlatform) -> Vec<(i32, String)> {
    platform
        .on_db(|db, _| {
            Ok(db
                .conn()
                .prepare("SELECT pgid, service FROM app_processes ORDER BY pgid")?
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
        .unwrap()
}

async fn running_ports(platform: &LocalPlatform, service: &str) -> Vec<u16> {
    platform.inner.running.lock().await[&("shop".to_owned(), service.to_owned())]
        .iter()
        .map(|i| i.port)
        .collect()
}

fn alive(pid: i32) -> bool {
    // A zombie still has /proc/<pid>; its state is `Z`.
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
}

async fn events(platform: &LocalPlatform) -> Vec<String> {
    platform
        .get_project("shop")
        .await
        .unwrap()
        .recent_events
        .into_iter()
        .map(|e| e.kind)
        .collect()
}

#[tokio::test]
async fn what_a_crashed_platform_left_running_is_stopped_and_every_replica_comes_back() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let app = packed(work.path(), "app", &[("main.py", &python_app("again"))]);
    deploy(&platform, "api", &app).await;
    deploy(&platform, "broken", &app).await;
    platform.scale("shop", "api", 2, None).await.unwrap();
    // Every running group is on record while it runs.
    let groups = recorded_groups(&platform).await;
    assert_eq!(
        groups.iter().filter(|(_, s)| s == "api").count(),
        2,
        "{groups:?}"
    );
    assert_eq!(groups.iter().filter(|(_, s)| s == "broken").count(), 1);

    // A crash: the platform's memory is gone, its apps are not. Stand-ins: a group of our
    // own recorded as an app's, and a record whose pid now belongs to someone else.
    let mut orphan = std::process::Command::new("sleep")
        .arg("300.25")
        .process_group(0)
        .spawn()
        .unwrap();
    let orphan_pid = i32::try_from(orphan.id()).unwrap();
    let ticks = processes::start_ticks(orphan_pid).unwrap();
    let mut bystander = std::process::Command::new("sleep")
        .arg("300.5")
        .process_group(0)
        .spawn()
        .unwrap();
    let bystander_pid = i32::try_from(bystander.id()).unwrap();
    let bystander_ticks = processes::start_ticks(bystander_pid).unwrap();
    platform.shutdown().await;
    assert!(
        recorded_groups(&platform).await.is_empty(),
        "a clean stop forgets its groups"
    );
    platform
        .on_db(move |db, now| {
            db.write(|tx| {
                for (pgid, ticks) in [(orphan_pid, ticks), (bystander_pid, bystander_ticks + 7)] {
                    tx.execute(
                        "INSERT INTO app_processes (pgid, start_ticks, project, service, release, started_at) VALUES (?1, ?2, 'shop', 'api', 'rel_x', ?3)",
                        rusqlite::params![pgid, i64::try_from(ticks).unwrap(), now],
                    )?;
                }
                // The other service's release lost its plan: it cannot start again.
                tx.execute(
                    "UPDATE releases SET plan_json = 'garbage' WHERE service = 'broken'",
                    [],
                )?;
                Ok(())
            })
        })
        .await
        .unwrap();
    drop(platform);

    let reopened = self::platform(work.path());
    let started = reopened.resume().await.unwrap();
    assert_eq!(
        started,
        ["api-shop"],
        "the broken service does not stop the others"
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(orphan_pid) && orphan.try_wait().unwrap().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the orphan still runs"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(alive(bystander_pid), "a reused pid is never signalled");
    bystander.kill().unwrap();
    bystander.wait().unwrap();
    orphan.wait().unwrap();
    let ports = running_ports(&reopened, "api").await;
    assert_eq!(ports.len(), 2, "both replicas are back");
    for port in ports {
        assert_eq!(get(&format!("http://127.0.0.1:{port}/")).await.1, "again");
    }
    let kinds = events(&reopened).await;
    assert!(
        kinds.iter().any(|k| k == "service.orphan_stopped"),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "service.unhealthy"), "{kinds:?}");
    reopened.shutdown().await;
}

#[tokio::test]
async fn a_crash_loop_ends_when_the_app_stays_up() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    // Listens, then dies on its first four starts (a counter in its HOME), then stays up.
    let moody = "import os, socket, time, sys\nn_path = os.path.join(os.environ['HOME'], 'starts')\nn = int(open(n_path).read()) if os.path.exists(n_path) else 0\nopen(n_path, 'w').write(str(n + 1))\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', int(os.environ['PORT'])))\ns.listen()\nif n < 4:\n    time.sleep(0.2)\n    print('dying', n, flush=True)\n    sys.exit(1)\nwhile True:\n    c, _ = s.accept()\n    c.close()\n";
    let app = packed(work.path(), "moody", &[("main.py", moody)]);
    deploy(&platform, "api", &app).await;
    let started = std::time::Instant::now();
    let mut saw_loop = false;
    loop {
        let detail = platform.get_service("shop", "api", 0).await.unwrap();
        if detail.health.reason.as_deref() == Some("crash_loop") {
            saw_loop = true;
            assert_eq!(detail.status, ServiceStatus::CrashLoop);
        } else if saw_loop && detail.status == ServiceStatus::Active {
            assert_eq!(detail.health.status, "healthy", "{detail:?}");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(40), "{detail:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        events(&platform)
            .await
            .iter()
            .any(|k| k == "service.recovered")
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn changes_finish_when_their_caller_goes_away_and_one_key_runs_once() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let app = packed(work.path(), "app", &[("main.py", &python_app("steady"))]);
    deploy(&platform, "api", &app).await;

    // A caller that gives up after 50 ms: the restart goes on and ends consistent.
    let gave_up = tokio::time::timeout(
        Duration::from_millis(50),
        platform.restart("shop", "api", None),
    )
    .await;
    assert!(gave_up.is_err(), "the restart outlived its caller");
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if events(&platform)
            .await
            .iter()
            .any(|k| k == "service.restarted")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ports = running_ports(&platform, "api").await;
    assert_eq!(ports.len(), 1);
    assert_eq!(
        get(&format!("http://127.0.0.1:{}/", ports[0])).await.1,
        "steady"
    );
    assert_eq!(
        recorded_groups(&platform).await.len(),
        1,
        "no process left over"
    );

    // The same key twice at once: one restart runs; the other gets its answer or is told
    // to retry, and a retry afterwards replays the answer.
    let (first, second) = tokio::join!(
        platform.restart("shop", "api", Some("k-twice")),
        platform.restart("shop", "api", Some("k-twice")),
    );
    let restarts = events(&platform)
        .await
        .iter()
        .filter(|k| *k == "service.restarted")
        .count();
    assert_eq!(restarts, 2, "one for the abandoned caller, one for the key");
    let answers: Vec<_> = [first, second].into_iter().collect();
    assert!(answers.iter().any(Result::is_ok), "{answers:?}");
    for answer in &answers {
        if let Err(err) = answer {
            assert_eq!(err.code, ErrorCode::Conflict, "{err:?}");
            assert!(err.retryable, "{err:?}");
        }
    }
    let replay = platform
        .restart("shop", "api", Some("k-twice"))
        .await
        .unwrap();
    assert_eq!(
        replay.current_release,
        answers.iter().flatten().next().unwrap().current_release
    );
    platform.shutdown().await;
}

#[tokio::test]
async fn scaled_to_zero_then_deployed_runs_one_replica() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let app = packed(work.path(), "app", &[("main.py", &python_app("one"))]);
    deploy(&platform, "api", &app).await;
    let stopped = platform.scale("shop", "api", 0, None).await.unwrap();
    assert_eq!(stopped.status, ServiceStatus::Stopped);
    let v2 = packed(work.path(), "v2", &[("main.py", &python_app("two"))]);
    let result = deploy(&platform, "api", &v2).await;
    let detail = platform.get_service("shop", "api", 0).await.unwrap();
    assert_eq!(detail.replicas, 1, "{detail:?}");
    assert_eq!(detail.status, ServiceStatus::Active);
    assert_eq!(get(result["url"].as_str().unwrap()).await.1, "two");
    platform.shutdown().await;
}

#[tokio::test]
async fn an_env_change_that_breaks_a_service_says_what_already_restarted() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let fine = packed(work.path(), "fine", &[("main.py", &python_app("fine"))]);
    let picky = packed(
        work.path(),
        "picky",
        &[(
            "main.py",
            &format!(
                "import os, sys\nif os.environ.get('MODE') == 'bad':\n    print('MODE=bad is not a mode', flush=True)\n    sys.exit(3)\n{}",
                python_app_with("'picky'")
            ),
        )],
    );
    deploy(&platform, "alpha", &fine).await;
    deploy(&platform, "beta", &picky).await;
    let err = platform
        .set_env("shop", &[("MODE".to_owned(), "bad".to_owned())], None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::HealthCheckFailed, "{err:?}");
    let state = err.state.as_deref().unwrap();
    assert_eq!(state["restarted_services"], serde_json::json!(["alpha"]));
    assert_eq!(state["failed_service"], "beta");
    assert!(err.message.contains("MODE is saved"), "{err:?}");
    assert!(
        err.log_tail.iter().any(|l| l.contains("MODE=bad")),
        "{err:?}"
    );
    // beta still serves with its old env.
    let port = running_ports(&platform, "beta").await[0];
    assert_eq!(get(&format!("http://127.0.0.1:{port}/")).await.1, "picky");
    platform.shutdown().await;
}

#[tokio::test]
async fn deleting_a_project_stops_it_and_removes_its_releases_and_logs() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    let app = packed(work.path(), "app", &[("main.py", &python_app("bye"))]);
    deploy(&platform, "api", &app).await;
    let data = work.path().join("platform");
    assert!(data.join("releases/shop/api").is_dir());
    assert!(data.join("logs/shop/api.log").is_file());
    let groups = recorded_groups(&platform).await;
    assert_eq!(groups.len(), 1);

    let deleted = platform.delete_project("shop", true, None).await.unwrap();
    assert_eq!(deleted.removed_services, ["api"]);
    assert!(!data.join("releases/shop").exists());
    assert!(!data.join("logs/shop").exists());
    assert!(platform.inner.running.lock().await.is_empty());
    assert!(recorded_groups(&platform).await.is_empty());
    // (Not its port: under a parallel test run another app may take it at once.)
    assert!(!alive(groups[0].0), "the app's process is gone");
    platform.shutdown().await;
}
