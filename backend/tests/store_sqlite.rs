//! The storage story on SQLite.

mod common {
    pub mod story;
}

#[tokio::test]
async fn sqlite_story() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/sub/dir/story.db", dir.path().display());
    let store = backend::store::connect(&url).await.expect("open");
    assert_eq!(store.backend(), "sqlite");
    common::story::story(store.as_ref()).await;
    store.close().await;
    assert!(store.ping().await.is_err(), "a closed store refuses work");
    assert!(store.ingest(&[], 0).await.is_err());
    // Reopening runs the migrations again without harm and keeps the data.
    let reopened = backend::store::connect(&url).await.expect("reopen");
    let stats = reopened.storage_stats().await.expect("stats");
    assert_eq!(stats.observations, 12);
}

#[tokio::test]
async fn bad_urls_are_config_errors() {
    for url in ["mysql://x", "sqlite://", "sqlite::memory:"] {
        match backend::store::connect(url).await {
            Err(backend::store::StoreError::Config(_)) => {}
            Err(e) => panic!("{url}: unexpected error {e}"),
            Ok(_) => panic!("{url}: opened"),
        }
    }
}
