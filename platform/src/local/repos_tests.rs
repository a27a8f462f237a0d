//! The forge on the local platform, against real bare repositories: the REST verbs'
//! scenario (also run through the gateway by `http_tests`), bad inputs, and push-to-deploy
//! from `commitRepoFiles`.

use super::*;
use crate::api::Platform;
use crate::local::LocalOptions;
use crate::model::{Author, ContentEncoding, EntryKind, FileChange, OperationStatus};
use automaton_tools::clock::SystemClock;
use base64::Engine as _;
use std::sync::Arc;

pub(crate) fn text(path: &str, content: &str) -> FileChange {
    FileChange {
        path: path.to_owned(),
        content: Some(content.to_owned()),
        encoding: ContentEncoding::Utf8,
        delete: false,
    }
}

fn deletion(path: &str) -> FileChange {
    FileChange {
        path: path.to_owned(),
        content: None,
        encoding: ContentEncoding::Utf8,
        delete: true,
    }
}

pub(crate) fn commit(message: &str, files: Vec<FileChange>) -> CommitRequest {
    CommitRequest {
        branch: None,
        message: message.to_owned(),
        files,
        author: None,
    }
}

fn repo(name: &str, deploy_service: Option<&str>) -> RepoRequest {
    RepoRequest {
        name: name.to_owned(),
        deploy_service: deploy_service.map(str::to_owned),
    }
}

fn platform(dir: &std::path::Path) -> LocalPlatform {
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

/// Every REST verb of the forge, its answers and its errors; run on both backends.
pub(crate) async fn repo_verbs_scenario(platform: &dyn Platform) {
    platform.create_project("forge", None).await.unwrap();
    let err = platform
        .create_repo("nope", &repo("site", None), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err:?}");

    // Create: once, then the existing one; bad names say what to use.
    let created = platform
        .create_repo("forge", &repo("site", None), None)
        .await
        .unwrap();
    assert!(created.created);
    assert_eq!(created.repo.default_branch, "main");
    assert_eq!(created.repo.head, None);
    assert!(
        created.repo.clone_url.ends_with("/forge/site.git"),
        "{created:?}"
    );
    let again = platform
        .create_repo("forge", &repo("site", Some("web")), None)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(
        again.repo.deploy_service, None,
        "the existing one, unchanged"
    );
    for (bad, hint) in [("site.git", "leave out `.git`"), ("My Site", "`my-site`")] {
        let err = platform
            .create_repo("forge", &repo(bad, None), None)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput, "{bad}");
        assert!(err.hint.contains(hint), "{bad}: {err:?}");
    }
    let err = platform
        .create_repo("forge", &repo("api", Some("Web Site")), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);

    // An empty repository: no commits, no refs, and a tree read says how to fill it.
    assert!(
        platform
            .list_commits("forge", "site", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        platform
            .list_refs("forge", "site")
            .await
            .unwrap()
            .is_empty()
    );
    let err = platform
        .get_tree("forge", "site", None, "")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.hint.contains("commit files"), "{err:?}");

    // The first commit creates main: text, a nested file and binary content in one commit.
    let logo = [0_u8, 159, 146, 150, 255, 0, 1];
    let mut files = vec![
        text("index.html", "<h1>v1</h1>"),
        text("src/app.py", "print('hi')\n"),
    ];
    files.push(FileChange {
        path: "logo.bin".to_owned(),
        content: Some(base64::engine::general_purpose::STANDARD.encode(logo)),
        encoding: ContentEncoding::Base64,
        delete: false,
    });
    let mut first_request = commit("first page", files);
    first_request.author = Some(Author {
        name: "Ada".to_owned(),
        email: "ada@example.com".to_owned(),
    });
    let first = platform
        .commit_files("forge", "site", &first_request, None)
        .await
        .unwrap();
    assert!(first.changed && first.created_branch, "{first:?}");
    assert_eq!(first.branch, "main");
    assert_eq!(first.commit.len(), 40);
    assert_eq!(first.deploy, None, "no deploy_service, no deploy");
    let info = platform.get_repo("forge", "site").await.unwrap();
    assert_eq!(info.head.as_deref(), Some(first.commit.as_str()));

    let tree = platform.get_tree("forge", "site", None, "").await.unwrap();
    assert_eq!(tree.commit, first.commit);
    let listed: Vec<(&str, EntryKind, Option<u64>)> = tree
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e.kind, e.size))
        .collect();
    assert_eq!(
        listed,
        [
            ("src", EntryKind::Dir, None),
            ("index.html", EntryKind::File, Some(11)),
            ("logo.bin", EntryKind::File, Some(7)),
        ]
    );
    let src = platform
        .get_tree("forge", "site", None, "src/")
        .await
        .unwrap();
    assert_eq!(src.entries[0].path, "src/app.py");
    let page = platform
        .get_file("forge", "site", None, "index.html")
        .await
        .unwrap();
    assert_eq!(
        (page.encoding, page.content.as_str()),
        (ContentEncoding::Utf8, "<h1>v1</h1>")
    );
    let binary = platform
        .get_file("forge", "site", None, "logo.bin")
        .await
        .unwrap();
    assert_eq!(binary.encoding, ContentEncoding::Base64);
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(&binary.content)
            .unwrap(),
        logo
    );

    // A second commit changes one file and deletes another; the log reads newest first, and
    // old content stays readable at the old commit.
    let second = platform
        .commit_files(
            "forge",
            "site",
            &commit(
                "second page\n\nwith a body",
                vec![text("index.html", "<h1>v2</h1>"), deletion("src/app.py")],
            ),
            None,
        )
        .await
        .unwrap();
    assert!(second.changed && !second.created_branch);
    let log = platform
        .list_commits("forge", "site", None, 10)
        .await
        .unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].id, second.commit);
    assert_eq!(log[0].message, "second page\n\nwith a body");
    assert_eq!(log[0].parents, std::slice::from_ref(&first.commit));
    assert_eq!(
        (log[1].author_name.as_str(), log[1].author_email.as_str()),
        ("Ada", "ada@example.com")
    );
    assert_eq!(
        platform
            .list_commits("forge", "site", None, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    let old = platform
        .get_file("forge", "site", Some(&first.commit), "src/app.py")
        .await
        .unwrap();
    assert_eq!(old.content, "print('hi')\n");
    let names: Vec<String> = platform
        .get_tree("forge", "site", Some("main"), "")
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(names, ["index.html", "logo.bin"]);

    // The same content again changes nothing; an idempotency key replays the first answer.
    let same = platform
        .commit_files(
            "forge",
            "site",
            &commit("again", vec![text("index.html", "<h1>v2</h1>")]),
            None,
        )
        .await
        .unwrap();
    assert!(!same.changed);
    assert_eq!(same.commit, second.commit);
    let keyed = commit("keyed", vec![text("notes.txt", "one")]);
    let once = platform
        .commit_files("forge", "site", &keyed, Some("commit-1"))
        .await
        .unwrap();
    let twice = platform
        .commit_files("forge", "site", &keyed, Some("commit-1"))
        .await
        .unwrap();
    assert_eq!(once, twice);
    assert_eq!(
        platform
            .list_commits("forge", "site", None, 10)
            .await
            .unwrap()
            .len(),
        3
    );

    // Another branch starts from main; refs list both.
    let mut feature = commit("feature work", vec![text("feature.txt", "wip")]);
    feature.branch = Some("feature/login".to_owned());
    let on_feature = platform
        .commit_files("forge", "site", &feature, None)
        .await
        .unwrap();
    assert!(on_feature.created_branch);
    assert_eq!(on_feature.branch, "feature/login");
    let refs = platform.list_refs("forge", "site").await.unwrap();
    let ref_names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(ref_names, ["refs/heads/feature/login", "refs/heads/main"]);
    assert_eq!(
        platform
            .list_commits("forge", "site", Some("feature/login"), 10)
            .await
            .unwrap()
            .len(),
        4
    );
    assert_eq!(
        platform.get_repo("forge", "site").await.unwrap().head,
        Some(once.commit.clone())
    );

    // Bad inputs: clear errors, nothing written.
    for bad in [
        "../escape.txt",
        "/etc/passwd",
        ".git/config",
        "src/.GIT/x",
        "a//b",
        "a/./b",
        "back\\slash",
    ] {
        let err = platform
            .commit_files("forge", "site", &commit("bad", vec![text(bad, "x")]), None)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput, "{bad}: {err:?}");
        assert!(err.hint.contains("relative path"), "{bad}: {err:?}");
        let err = platform
            .get_file("forge", "site", None, bad)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput, "{bad}: {err:?}");
    }
    for (request, word) in [
        (commit("  ", vec![text("a.txt", "x")]), "message"),
        (commit("no files", vec![]), "no files"),
        (
            commit("twice", vec![text("a.txt", "x"), text("a.txt", "y")]),
            "twice",
        ),
        (
            commit("dir", vec![text("index.html/inner", "x")]),
            "fit the tree",
        ),
    ] {
        let err = platform
            .commit_files("forge", "site", &request, None)
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput, "{word}: {err:?}");
        assert!(err.message.contains(word), "{word}: {err:?}");
    }
    let mut bad_branch = commit("branch", vec![text("a.txt", "x")]);
    bad_branch.branch = Some("no..dots".to_owned());
    assert_eq!(
        platform
            .commit_files("forge", "site", &bad_branch, None)
            .await
            .unwrap_err()
            .code,
        ErrorCode::InvalidInput
    );
    let err = platform
        .commit_files(
            "forge",
            "site",
            &commit("gone", vec![deletion("missing.txt")]),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.hint.contains("index.html"), "{err:?}");
    assert_eq!(
        platform
            .list_commits("forge", "site", None, 10)
            .await
            .unwrap()
            .len(),
        3,
        "nothing committed"
    );

    let err = platform
        .list_commits("forge", "site", Some("nope"), 10)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.hint.contains("main"), "{err:?}");
    assert_eq!(err.state.unwrap()["refs"][1], "main");
    let err = platform
        .get_file("forge", "site", None, "src/app.py")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.hint.contains("index.html"), "{err:?}");
    let err = platform
        .get_file("forge", "site", None, "")
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let err = platform
        .get_tree("forge", "site", None, "index.html")
        .await
        .unwrap_err();
    assert!(err.hint.contains("getRepoFile"), "{err:?}");
    let err = platform.get_repo("forge", "stie").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.hint.contains("did you mean `site`"), "{err:?}");

    // List, then delete: confirmation needed, idempotent.
    platform
        .create_repo("forge", &repo("docs", None), None)
        .await
        .unwrap();
    let names: Vec<String> = platform
        .list_repos("forge")
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["docs", "site"]);
    let err = platform
        .delete_repo("forge", "site", false, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.hint.contains("confirm=true"), "{err:?}");
    assert!(
        platform
            .delete_repo("forge", "site", true, None)
            .await
            .unwrap()
            .deleted
    );
    assert!(
        !platform
            .delete_repo("forge", "site", true, None)
            .await
            .unwrap()
            .deleted
    );
    assert_eq!(
        platform.get_repo("forge", "site").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    // A repository created again under the same name starts empty.
    let fresh = platform
        .create_repo("forge", &repo("site", None), None)
        .await
        .unwrap();
    assert!(fresh.created && fresh.repo.head.is_none());
}

#[tokio::test]
async fn the_local_platform_runs_the_repo_verbs_scenario() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    repo_verbs_scenario(&platform).await;
    // In process, without a gateway, the clone URL is the bare repository itself.
    let info = platform.get_repo("forge", "docs").await.unwrap();
    assert!(info.clone_url.starts_with("file://"), "{info:?}");
    let dir = info.clone_url.trim_start_matches("file://").to_owned();
    assert!(git2::Repository::open_bare(&dir).is_ok());
    // Deleting the project deletes its repositories, on disk too.
    platform.delete_project("forge", true, None).await.unwrap();
    assert!(!std::path::Path::new(&dir).exists());
    assert!(!platform.repos_root().join("forge").exists());
}

#[tokio::test]
async fn a_commit_to_the_default_branch_deploys_the_repository_s_service() {
    let work = tempfile::tempdir().unwrap();
    let platform = platform(work.path());
    platform.create_project("shop", None).await.unwrap();
    platform
        .create_repo("shop", &repo("site", Some("web")), None)
        .await
        .unwrap();
    let committed = platform
        .commit_files(
            "shop",
            "site",
            &commit("the page", vec![text("index.html", "from the forge")]),
            None,
        )
        .await
        .unwrap();
    let deploy = committed.deploy.clone().unwrap();
    assert_eq!(
        (deploy.commit.as_str(), deploy.service.as_str()),
        (committed.commit.as_str(), "web")
    );
    let operation = platform
        .wait_operation(
            deploy.operation_id.as_deref().unwrap(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        operation.status,
        OperationStatus::Succeeded,
        "{operation:?}"
    );
    let url = operation.result.unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        crate::test_support::get(&url).await,
        (200, "from the forge".to_owned())
    );
    let info = platform.get_repo("shop", "site").await.unwrap();
    assert_eq!(info.last_deploy, Some(deploy));
    // Another branch deploys nothing; a push with nothing new deploys nothing.
    let mut side = commit("side", vec![text("index.html", "side")]);
    side.branch = Some("side".to_owned());
    assert_eq!(
        platform
            .commit_files("shop", "site", &side, None)
            .await
            .unwrap()
            .deploy,
        None
    );
    assert_eq!(platform.repo_pushed("shop", "site").await.unwrap(), None);
    let events: Vec<String> = platform
        .get_project("shop")
        .await
        .unwrap()
        .recent_events
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert!(events.iter().any(|k| k == "repo.deploy"), "{events:?}");
    platform.shutdown().await;
}
