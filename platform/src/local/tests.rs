//! The local platform's verbs against a real `platform.db` in a temporary data directory.

use super::*;
use automaton_tools::clock::ManualClock;

fn platform() -> (tempfile::TempDir, LocalPlatform, ManualClock) {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(1_800_000_000_000);
    let platform =
        LocalPlatform::open(&dir.path().join("platform"), Arc::new(clock.clone())).unwrap();
    (dir, platform, clock)
}

#[tokio::test]
async fn projects_are_created_once_listed_shown_and_deleted_with_confirmation() {
    let (_dir, platform, _clock) = platform();
    let first = platform.create_project("shop", None).await.unwrap();
    assert!(first.created);
    assert_eq!(first.project.name, "shop");
    assert_eq!(first.project.recent_events[0].kind, "project.created");
    let again = platform.create_project("shop", None).await.unwrap();
    assert!(!again.created, "init is idempotent");
    assert_eq!(
        again.project.recent_events.len(),
        1,
        "and records nothing new"
    );
    platform.create_project("blog", None).await.unwrap();
    let names: Vec<String> = platform
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["blog", "shop"]);

    let err = platform
        .delete_project("shop", false, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.hint.contains("confirm=true"), "{err:?}");
    assert_eq!(
        platform.list_projects().await.unwrap().len(),
        2,
        "nothing lost"
    );
    let deleted = platform.delete_project("shop", true, None).await.unwrap();
    assert!(deleted.deleted);
    let again = platform.delete_project("shop", true, None).await.unwrap();
    assert!(!again.deleted, "deleting what is gone succeeds");
}

#[tokio::test]
async fn unknown_projects_and_bad_names_say_what_to_do() {
    let (_dir, platform, _clock) = platform();
    let err = platform.get_project("shop").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.hint.contains("no projects yet"), "{err:?}");
    platform.create_project("shop", None).await.unwrap();
    let err = platform.get_project("shpo").await.unwrap_err();
    assert!(err.hint.contains("did you mean `shop`"), "{err:?}");
    assert_eq!(err.state.unwrap()["projects"][0], "shop");
    let err = platform.create_project("My Shop", None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    assert!(err.hint.contains("`my-shop`"), "{err:?}");
}

#[tokio::test]
async fn an_idempotency_key_replays_the_same_request_and_refuses_another() {
    let (_dir, platform, clock) = platform();
    let first = platform.create_project("shop", Some("k1")).await.unwrap();
    assert!(first.created);
    // A network retry of the same call: the first answer, nothing done twice.
    let replay = platform.create_project("shop", Some("k1")).await.unwrap();
    assert_eq!(replay, first);
    let err = platform
        .create_project("blog", Some("k1"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert!(err.hint.contains("new idempotency_key"), "{err:?}");
    assert_eq!(err.state.unwrap()["verb"], "createProject");
    let err = platform
        .delete_project("shop", true, Some("k1"))
        .await
        .unwrap_err();
    assert_eq!(
        err.code,
        ErrorCode::Conflict,
        "another verb is another request"
    );
    // After 24 hours the key is forgotten.
    clock.advance(24 * 3600 * 1000 + 1);
    let later = platform.create_project("blog", Some("k1")).await.unwrap();
    assert!(later.created);
}

#[tokio::test]
async fn state_survives_reopening_the_data_directory() {
    let (dir, platform, clock) = platform();
    platform.create_project("shop", None).await.unwrap();
    drop(platform);
    let reopened = LocalPlatform::open(&dir.path().join("platform"), Arc::new(clock)).unwrap();
    assert_eq!(reopened.get_project("shop").await.unwrap().name, "shop");
}
