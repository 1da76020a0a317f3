//! The conformance suite every [`StateStore`] backend must pass. Backends call [`run`] from
//! their own tests with a fresh, empty store.

use syncline_core::CurrentVersion;

use crate::{IndexWrite, StateStore};

fn version(start: i64, end: Option<i64>, hash: &str) -> CurrentVersion {
    CurrentVersion {
        start,
        end,
        row_hash: hash.to_string(),
        modified: start,
        hashes_at_modified: vec![hash.to_string(), "x".into()],
    }
}

fn write(id: &str, version: CurrentVersion, record: Option<&str>) -> IndexWrite {
    IndexWrite {
        id: id.to_string(),
        version,
        terminal: false,
        record: record.map(str::to_string),
    }
}

/// Runs every check against an empty store. Panics with a description on the first failure.
pub async fn run(store: &dyn StateStore) {
    index_round_trips(store).await;
    lookups_are_scoped_by_source_and_entity(store).await;
    large_lookups_match_small_ones(store).await;
    deletes_keep_the_last_record(store).await;
    cursors_round_trip(store).await;
    tokens_and_markers_round_trip(store).await;
    assert!(
        store.schema_version().await.expect("schema version") >= 1,
        "schema version must be at least 1"
    );
}

async fn index_round_trips(store: &dyn StateStore) {
    let first = version(10, None, "a");
    store
        .write_index("conf", "deal", vec![write("1", first.clone(), Some(r#"{"id":1}"#))], 100)
        .await
        .expect("write");
    let found = store
        .current_versions("conf", "deal", &["1".into(), "2".into()])
        .await
        .expect("read");
    assert_eq!(found.len(), 1, "only written ids are returned");
    assert_eq!(found["1"], first, "an entry reads back as written");
    let second = version(20, None, "b");
    store
        .write_index("conf", "deal", vec![write("1", second.clone(), Some(r#"{"id":1,"v":2}"#))], 200)
        .await
        .expect("overwrite");
    let record = store.record("conf", "deal", "1").await.expect("record").expect("record present");
    assert_eq!(record.version, second, "a later write replaces the entry");
    assert_eq!(record.record.as_deref(), Some(r#"{"id":1,"v":2}"#));
    assert_eq!(record.updated_at, 200);
    assert!(store.record("conf", "deal", "missing").await.expect("record").is_none());
}

async fn lookups_are_scoped_by_source_and_entity(store: &dyn StateStore) {
    store
        .write_index("other", "deal", vec![write("1", version(1, None, "z"), None)], 1)
        .await
        .expect("write");
    store
        .write_index("conf", "person", vec![write("1", version(2, None, "y"), None)], 1)
        .await
        .expect("write");
    let deals = store.all_current_versions("conf", "deal").await.expect("scan");
    assert_eq!(deals.len(), 1);
    assert_eq!(deals["1"].row_hash, "b", "entries of other sources or entities must not leak");
}

async fn large_lookups_match_small_ones(store: &dyn StateStore) {
    let entries: Vec<IndexWrite> = (0..3_000)
        .map(|n| write(&format!("id{n}"), version(n, None, &format!("h{n}")), None))
        .collect();
    store.write_index("conf", "bulk", entries, 5).await.expect("bulk write");
    let wanted: Vec<String> = (0..2_500)
        .step_by(2)
        .map(|n| format!("id{n}"))
        .chain(["nope".to_string()])
        .collect();
    let small = store.current_versions("conf", "bulk", &wanted[..10]).await.expect("small read");
    assert_eq!(small.len(), 10);
    let large = store.current_versions("conf", "bulk", &wanted).await.expect("large read");
    assert_eq!(large.len(), 1_250, "every requested id that exists, and only those");
    assert_eq!(large["id2"].row_hash, "h2");
    assert_eq!(store.all_current_versions("conf", "bulk").await.expect("scan").len(), 3_000);
}

async fn deletes_keep_the_last_record(store: &dyn StateStore) {
    store
        .write_index("conf", "ticket", vec![write("t", version(1, None, "a"), Some(r#"{"id":"t"}"#))], 1)
        .await
        .expect("write");
    let deleted = version(1, Some(9), "a");
    store
        .write_index("conf", "ticket", vec![write("t", deleted.clone(), None)], 2)
        .await
        .expect("delete");
    let record = store.record("conf", "ticket", "t").await.expect("record").expect("tombstone kept");
    assert_eq!(record.version.end, Some(9), "a deleted id keeps its tombstone");
    assert_eq!(record.record.as_deref(), Some(r#"{"id":"t"}"#), "a delete keeps the last record");
}

async fn cursors_round_trip(store: &dyn StateStore) {
    assert!(store.cursor("conf", "deal").await.expect("cursor").is_none());
    store.set_cursor("conf", "deal", "c1", 1).await.expect("set");
    store.set_cursor("conf", "deal", "c2", 2).await.expect("set");
    store.set_cursor("conf", "person", "p", 2).await.expect("set");
    assert_eq!(store.cursor("conf", "deal").await.expect("cursor").as_deref(), Some("c2"));
}

async fn tokens_and_markers_round_trip(store: &dyn StateStore) {
    assert!(store.token("conf", "refresh_token").await.expect("token").is_none());
    store.set_token("conf", "refresh_token", "r1", 1).await.expect("set token");
    store.set_token("conf", "refresh_token", "r2", 2).await.expect("rotate token");
    store.set_token("other", "refresh_token", "x", 2).await.expect("set token");
    assert_eq!(
        store.token("conf", "refresh_token").await.expect("token").as_deref(),
        Some("r2"),
        "the rotated token wins"
    );
    store.set_marker("conf", "initial_sync", "done", 3).await.expect("set marker");
    assert_eq!(store.marker("conf", "initial_sync").await.expect("marker").as_deref(), Some("done"));
    assert!(
        store.marker("other", "initial_sync").await.expect("marker").is_none(),
        "markers are per source"
    );
}
