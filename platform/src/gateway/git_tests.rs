//! The forge through the real gateway: the REST verbs' scenario with the HTTP client, and the
//! real `git` CLI cloning and pushing over smart HTTP with platform tokens — push-to-deploy
//! serving what was pushed through the live URLs' proxy, and every token that must not get
//! in refused.

use crate::api::Platform;
use crate::error::ErrorCode;
use crate::http::HttpPlatform;
use crate::http_tests::{Gateway, fast_retry};
use crate::local::repos::tests::{commit, repo_verbs_scenario, text};
use crate::model::{Capability, OperationStatus, RepoRequest, TokenRequest};
use std::path::Path;
use std::time::{Duration, Instant};

/// Runs the `git` CLI in `dir` with a private HOME and no prompts; (success, stderr).
async fn git(dir: &Path, args: &[&str]) -> (bool, String) {
    let home = dir.parent().unwrap().join("git-home");
    std::fs::create_dir_all(&home).unwrap();
    let output = tokio::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("HOME", &home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Ada")
        .env("GIT_AUTHOR_EMAIL", "ada@example.com")
        .env("GIT_COMMITTER_NAME", "Ada")
        .env("GIT_COMMITTER_EMAIL", "ada@example.com")
        .output()
        .await
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The clone URL with `token` as the password.
fn with_token(clone_url: &str, token: &str) -> String {
    clone_url.replacen("http://", &format!("http://x:{token}@"), 1)
}

fn repo(name: &str, deploy_service: Option<&str>) -> RepoRequest {
    RepoRequest {
        name: name.to_owned(),
        deploy_service: deploy_service.map(str::to_owned),
    }
}

async fn head_of(dir: &Path) -> String {
    let output = tokio::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(dir)
        .output()
        .await
        .unwrap();
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Waits for the repository's push-to-deploy of `commit` to finish; the live URL.
async fn deployed(client: &HttpPlatform, project: &str, name: &str, commit: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let operation = loop {
        let info = client.get_repo(project, name).await.unwrap();
        if let Some(last) = info
            .last_deploy
            .clone()
            .filter(|last| last.commit == commit)
        {
            assert_eq!(last.error, None, "{last:?}");
            break last.operation_id.unwrap();
        }
        assert!(Instant::now() < deadline, "no deploy of {commit}: {info:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let done = client
        .wait_operation(&operation, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    done.result.unwrap()["url"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_http_client_runs_the_repo_verbs_scenario_through_the_gateway() {
    let gateway = Gateway::start().await;
    let client = gateway.client();
    repo_verbs_scenario(&client).await;
    let info = client.get_repo("forge", "docs").await.unwrap();
    assert_eq!(
        info.clone_url,
        format!("{}/git/forge/docs.git", gateway.url)
    );
    let spec = reqwest::get(format!("{}/v1/openapi.yaml", gateway.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for operation in [
        "createRepo",
        "listRepos",
        "getRepo",
        "deleteRepo",
        "listRepoRefs",
        "listRepoCommits",
        "getRepoTree",
        "getRepoFile",
        "commitRepoFiles",
    ] {
        assert!(spec.contains(operation), "{operation}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn git_clone_and_push_through_the_gateway_and_a_push_deploys_what_was_pushed() {
    let gateway = Gateway::start().await;
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = proxy.local_addr().unwrap().port();
    tokio::spawn({
        let (local, stop) = (gateway.local.clone(), gateway.stop.clone());
        async move { local.serve_proxy(proxy, stop).await }
    });
    let client = gateway.client();
    client.create_project("shop", None).await.unwrap();
    let info = client
        .create_repo("shop", &repo("site", Some("web")), None)
        .await
        .unwrap()
        .repo;
    assert_eq!(info.clone_url, format!("{}/git/shop/site.git", gateway.url));
    let url = with_token(&info.clone_url, &gateway.token);

    // Clone the empty repository, commit, push: the push deploys the pushed commit.
    let work = &gateway.work;
    let (ok, err) = git(work, &["clone", &url, "site"]).await;
    assert!(ok, "{err}");
    let checkout = work.join("site");
    std::fs::write(checkout.join("index.html"), "pushed v1").unwrap();
    assert!(git(&checkout, &["add", "."]).await.0);
    assert!(git(&checkout, &["commit", "-m", "v1"]).await.0);
    let started = Instant::now();
    let (ok, err) = git(&checkout, &["push", "origin", "HEAD:main"]).await;
    let push_ms = started.elapsed().as_millis();
    assert!(ok, "{err}");
    let v1 = head_of(&checkout).await;
    let live = deployed(&client, "shop", "site", &v1).await;
    assert_eq!(live, format!("http://web-shop.localhost:{proxy_port}/"));
    assert_eq!(
        crate::test_support::get(&live).await,
        (200, "pushed v1".to_owned())
    );

    // A commit through the API deploys too, and `git pull` sees it.
    let api = client
        .commit_files(
            "shop",
            "site",
            &commit("from the API", vec![text("index.html", "api v2")]),
            None,
        )
        .await
        .unwrap();
    deployed(&client, "shop", "site", &api.commit).await;
    assert_eq!(crate::test_support::get(&live).await.1, "api v2");
    let (ok, err) = git(&checkout, &["pull", "--ff-only", "origin", "main"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        std::fs::read_to_string(checkout.join("index.html")).unwrap(),
        "api v2"
    );

    // A push bigger than git's post buffer goes chunked; it lands whole and deploys.
    let big: Vec<u8> = (0..3_000_000_u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(checkout.join("big.bin"), &big).unwrap();
    std::fs::write(checkout.join("index.html"), "pushed v3").unwrap();
    assert!(git(&checkout, &["add", "."]).await.0);
    assert!(
        git(&checkout, &["commit", "-m", "v3 with a big file"])
            .await
            .0
    );
    let (ok, err) = git(&checkout, &["push", "origin", "HEAD:main"]).await;
    assert!(ok, "{err}");
    let v3 = head_of(&checkout).await;
    deployed(&client, "shop", "site", &v3).await;
    assert_eq!(crate::test_support::get(&live).await.1, "pushed v3");
    let tree = client.get_tree("shop", "site", None, "").await.unwrap();
    assert!(
        tree.entries
            .iter()
            .any(|e| e.path == "big.bin" && e.size == Some(3_000_000)),
        "{tree:?}"
    );
    let log = client.list_commits("shop", "site", None, 10).await.unwrap();
    let messages: Vec<&str> = log.iter().map(|c| c.message.trim()).collect();
    assert_eq!(messages, ["v3 with a big file", "from the API", "v1"]);

    // A push to another branch deploys nothing.
    assert!(
        git(&checkout, &["push", "origin", "HEAD:refs/heads/side"])
            .await
            .0
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let info = client.get_repo("shop", "site").await.unwrap();
    assert_eq!(info.last_deploy.unwrap().commit, v3);

    // A fresh clone has everything.
    let started = Instant::now();
    let (ok, err) = git(work, &["clone", &url, "again"]).await;
    let clone_ms = started.elapsed().as_millis();
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(work.join("again/big.bin")).unwrap(), big);
    println!("git through the gateway: push {push_ms} ms, clone {clone_ms} ms");

    // A first push of another branch to an empty repository makes it the default branch,
    // and deploys.
    let legacy = client
        .create_repo("shop", &repo("legacy", Some("old")), None)
        .await
        .unwrap()
        .repo;
    let legacy_url = with_token(&legacy.clone_url, &gateway.token);
    assert!(
        git(&checkout, &["push", &legacy_url, "HEAD:master"])
            .await
            .0
    );
    deployed(&client, "shop", "legacy", &v3).await;
    let info = client.get_repo("shop", "legacy").await.unwrap();
    assert_eq!(info.default_branch, "master");
    assert_eq!(info.head.as_deref(), Some(v3.as_str()));

    // A push never waits for its deploy: with a build of 3.3 s, the push is back long before
    // and the deploy it started is still running.
    let slow = client
        .create_repo("shop", &repo("slow", Some("slow")), None)
        .await
        .unwrap()
        .repo;
    let slow_dir = work.join("slow-src");
    std::fs::create_dir_all(&slow_dir).unwrap();
    assert!(git(&slow_dir, &["init", "-q", "-b", "main"]).await.0);
    std::fs::write(
        slow_dir.join("conway.toml"),
        "build = \"sleep 3.3\"\nstatic_dir = \".\"\n",
    )
    .unwrap();
    std::fs::write(slow_dir.join("index.html"), "slow").unwrap();
    assert!(git(&slow_dir, &["add", "."]).await.0);
    assert!(git(&slow_dir, &["commit", "-qm", "slow build"]).await.0);
    let started = Instant::now();
    let slow_url = with_token(&slow.clone_url, &gateway.token);
    let (ok, err) = git(&slow_dir, &["push", &slow_url, "HEAD:main"]).await;
    assert!(ok, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the push waited"
    );
    let commit = head_of(&slow_dir).await;
    let operation = loop {
        let info = client.get_repo("shop", "slow").await.unwrap();
        if let Some(operation) = info.last_deploy.and_then(|last| last.operation_id) {
            break operation;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let running = client.get_operation(&operation).await.unwrap();
    assert!(!running.status.is_done(), "{running:?}");
    let live = deployed(&client, "shop", "slow", &commit).await;
    assert_eq!(crate::test_support::get(&live).await.1, "slow");
    gateway.stop().await;
}

#[tokio::test]
async fn git_refuses_tokens_without_the_capability_or_scope_and_revoked_ones_at_once() {
    let gateway = Gateway::start().await;
    let admin = gateway.client();
    admin.create_project("shop", None).await.unwrap();
    admin.create_project("other", None).await.unwrap();
    let info = admin
        .create_repo("shop", &repo("site", None), None)
        .await
        .unwrap()
        .repo;
    admin
        .commit_files(
            "shop",
            "site",
            &commit("first", vec![text("README.md", "hello")]),
            None,
        )
        .await
        .unwrap();
    let issue = |capabilities: &[Capability], project: &str| {
        let request = TokenRequest {
            name: Some("git".to_owned()),
            capabilities: capabilities.to_vec(),
            projects: Some(vec![project.to_owned()]),
        };
        let admin = gateway.client();
        async move { admin.issue_token(&request).await.unwrap() }
    };
    let work = &gateway.work;

    // No credentials: 401 with a Basic challenge, so git asks for (or sends) the token.
    let anonymous = reqwest::Client::new();
    let response = anonymous
        .get(format!(
            "{}/info/refs?service=git-upload-pack",
            info.clone_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert!(response.text().await.unwrap().contains("TOKEN"));
    let (ok, err) = git(work, &["clone", &info.clone_url, "anonymous"]).await;
    assert!(!ok);
    assert!(
        err.contains("could not read Username") || err.contains("Authentication failed"),
        "{err}"
    );
    let (ok, _) = git(
        work,
        &["clone", &with_token(&info.clone_url, "cwy_wrong"), "wrong"],
    )
    .await;
    assert!(!ok);
    // Only the smart protocol is served.
    let dumb = anonymous
        .get(format!("{}/info/refs", info.clone_url))
        .basic_auth("x", Some(&gateway.token))
        .send()
        .await
        .unwrap();
    assert_eq!(dumb.status(), 403);

    // Read only: clone yes, push no.
    let reader = issue(&[Capability::Read], "shop").await;
    let (ok, err) = git(
        work,
        &[
            "clone",
            &with_token(&info.clone_url, &reader.secret),
            "read",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let checkout = work.join("read");
    std::fs::write(checkout.join("README.md"), "changed").unwrap();
    assert!(git(&checkout, &["commit", "-am", "try"]).await.0);
    let (ok, err) = git(&checkout, &["push", "origin", "HEAD:main"]).await;
    assert!(!ok);
    assert!(err.contains("403"), "{err}");
    let as_reader = HttpPlatform::with_retry(&gateway.url, &reader.secret, fast_retry()).unwrap();
    assert_eq!(
        as_reader.get_repo("shop", "site").await.unwrap().name,
        "site"
    );
    let err = as_reader
        .commit_files(
            "shop",
            "site",
            &commit("no", vec![text("a.txt", "a")]),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::CapabilityMissing);
    assert!(err.hint.contains("manage_repos"), "{err:?}");
    assert_eq!(
        as_reader
            .create_repo("shop", &repo("more", None), None)
            .await
            .unwrap_err()
            .code,
        ErrorCode::CapabilityMissing
    );

    // Without `read` no clone; outside the scope nothing.
    let deployer = issue(&[Capability::Deploy], "shop").await;
    let (ok, err) = git(
        work,
        &[
            "clone",
            &with_token(&info.clone_url, &deployer.secret),
            "deploy",
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("403"), "{err}");
    let elsewhere = issue(&[Capability::Read, Capability::ManageRepos], "other").await;
    let (ok, err) = git(
        work,
        &[
            "clone",
            &with_token(&info.clone_url, &elsewhere.secret),
            "elsewhere",
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("403"), "{err}");
    let as_elsewhere =
        HttpPlatform::with_retry(&gateway.url, &elsewhere.secret, fast_retry()).unwrap();
    assert_eq!(
        as_elsewhere.list_repos("shop").await.unwrap_err().code,
        ErrorCode::CapabilityMissing
    );

    // A repo token pushes; revoked, it stops at once.
    let writer = issue(&[Capability::Read, Capability::ManageRepos], "shop").await;
    let writer_url = with_token(&info.clone_url, &writer.secret);
    assert!(
        git(&checkout, &["remote", "set-url", "origin", &writer_url])
            .await
            .0
    );
    let (ok, err) = git(&checkout, &["push", "origin", "HEAD:main"]).await;
    assert!(ok, "{err}");
    assert_eq!(
        admin
            .get_file("shop", "site", None, "README.md")
            .await
            .unwrap()
            .content,
        "changed"
    );
    admin.revoke_token(&writer.token.id).await.unwrap();
    std::fs::write(checkout.join("README.md"), "after revoke").unwrap();
    assert!(git(&checkout, &["commit", "-am", "after revoke"]).await.0);
    let (ok, err) = git(&checkout, &["push", "origin", "HEAD:main"]).await;
    assert!(!ok);
    assert!(err.contains("Authentication failed"), "{err}");
    let (ok, _) = git(work, &["clone", &writer_url, "revoked"]).await;
    assert!(!ok);
    assert_eq!(
        admin
            .get_file("shop", "site", None, "README.md")
            .await
            .unwrap()
            .content,
        "changed",
        "nothing of the refused push landed"
    );

    // An unknown repository is a 404, whatever the token.
    let missing = info.clone_url.replace("site.git", "nope.git");
    let (ok, err) = git(
        work,
        &["clone", &with_token(&missing, &gateway.token), "missing"],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("404") || err.contains("not found"), "{err}");
    gateway.stop().await;
}

#[tokio::test]
async fn a_gzipped_chunked_upload_pack_request_is_inflated_and_answered_with_a_pack() {
    use std::io::Write;
    let gateway = Gateway::start().await;
    let admin = gateway.client();
    admin.create_project("shop", None).await.unwrap();
    let info = admin
        .create_repo("shop", &repo("site", None), None)
        .await
        .unwrap()
        .repo;
    let head = admin
        .commit_files(
            "shop",
            "site",
            &commit("first", vec![text("README.md", "hello")]),
            None,
        )
        .await
        .unwrap()
        .commit;
    // Protocol v0: want the head, done. Gzipped, and streamed so it goes chunked.
    let request = format!("0032want {head}\n00000009done\n");
    let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gzip.write_all(request.as_bytes()).unwrap();
    let body = gzip.finish().unwrap();
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(7).map(|chunk| Ok(chunk.to_vec())).collect();
    let response = reqwest::Client::new()
        .post(format!("{}/git-upload-pack", info.clone_url))
        .basic_auth("x", Some(&gateway.token))
        .header("Content-Type", "application/x-git-upload-pack-request")
        .header("Content-Encoding", "gzip")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/x-git-upload-pack-result"
    );
    let answer = response.bytes().await.unwrap();
    assert!(answer.starts_with(b"0008NAK\n"), "{answer:?}");
    assert!(answer.windows(4).any(|w| w == b"PACK"));
    gateway.stop().await;
}

/// Review finding: the gateway authorizes the first `service=` of the query, and
/// `git http-backend` serves the last: a `read` token got the receive-pack advertisement.
#[tokio::test]
async fn a_second_service_parameter_does_not_change_what_was_authorized() {
    let gateway = Gateway::start().await;
    let admin = gateway.client();
    admin.create_project("shop", None).await.unwrap();
    let info = admin
        .create_repo("shop", &repo("site", None), None)
        .await
        .unwrap()
        .repo;
    let reader = admin
        .issue_token(&TokenRequest {
            name: None,
            capabilities: vec![Capability::Read],
            projects: Some(vec!["shop".to_owned()]),
        })
        .await
        .unwrap();
    let response = reqwest::Client::new()
        .get(format!(
            "{}/info/refs?service=git-upload-pack&service=git-receive-pack",
            info.clone_url
        ))
        .basic_auth("x", Some(&reader.secret))
        .send()
        .await
        .unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        !content_type.contains("receive-pack"),
        "{} {content_type}",
        response.status()
    );
    gateway.stop().await;
}
