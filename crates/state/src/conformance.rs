//! The conformance suite every [`StateStore`] backend must pass. Backends call [`run`] from
//! their own tests with a fresh, empty store, and [`claimers_never_share_an_event`] with two
//! handles on one store (two connections where the backend has them).

use std::collections::HashSet;

use syncline_core::{CurrentVersion, EventAction, Millis, WebhookEvent};

use crate::{inbox_retry_delay_ms, join_all, IndexWrite, StateStore};

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
    active_ids_come_in_ordered_pages(store).await;
    cursors_round_trip(store).await;
    tokens_and_markers_round_trip(store).await;
    inbox_appends_absorb_duplicates(store).await;
    inbox_claims_oldest_first_under_a_lease(store).await;
    inbox_failures_back_off_then_go_dead(store).await;
    inbox_deferrals_spend_no_attempts(store).await;
    inbox_dead_letters_retry_and_drop(store).await;
    inbox_stats_and_prune(store).await;
    inbox_concurrent_appends_store_each_event_once(store).await;
    claimers_never_share_an_event(store, store).await;
    inbox_keeps_the_parent_of_a_sub_resource(store).await;
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

async fn active_ids_come_in_ordered_pages(store: &dyn StateStore) {
    let entries: Vec<IndexWrite> = ["b", "a", "d", "c", "e"]
        .into_iter()
        .map(|id| write(id, version(10, None, "h"), None))
        .chain([write("cc", version(10, Some(20), "h"), None)])
        .collect();
    store.write_index("paged", "deal", entries, 1).await.expect("write");
    store
        .write_index("paged", "person", vec![write("a0", version(1, None, "h"), None)], 1)
        .await
        .expect("write");
    let first = store.active_ids_page("paged", "deal", None, 2).await.expect("page");
    assert_eq!(first, ["a", "b"]);
    let second = store.active_ids_page("paged", "deal", Some("b"), 2).await.expect("page");
    assert_eq!(second, ["c", "d"], "deleted ids are not listed");
    let last = store.active_ids_page("paged", "deal", Some("d"), 2).await.expect("page");
    assert_eq!(last, ["e"]);
    assert!(store.active_ids_page("paged", "deal", Some("e"), 2).await.expect("page").is_empty());
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

/// A webhook event of the conformance source.
pub fn event(entity: &str, id: &str, action: EventAction, event_time: Millis, delivery_id: &str) -> WebhookEvent {
    WebhookEvent {
        source: "conf".into(),
        entity: entity.into(),
        id: id.into(),
        action,
        event_time,
        delivery_id: delivery_id.into(),
        parent_id: None,
    }
}

/// Far beyond every time the suite uses: every lease and retry time has passed.
const LATE: Millis = 4_000_000_000_000;

/// Empties the inbox so each inbox check starts from nothing.
async fn empty_inbox(store: &dyn StateStore) {
    loop {
        let claimed = store.inbox_claim(1_000, LATE, 1).await.expect("claim to empty the inbox");
        if claimed.is_empty() {
            break;
        }
        let seqs: Vec<i64> = claimed.iter().map(|entry| entry.seq).collect();
        store.inbox_done(&seqs, 0).await.expect("done to empty the inbox");
    }
    store.inbox_prune(LATE).await.expect("prune to empty the inbox");
    store.inbox_drop_dead(None).await.expect("drop dead to empty the inbox");
    let stats = store.inbox_stats(LATE).await.expect("stats");
    assert_eq!((stats.pending, stats.dead, stats.done), (0, 0, 0), "the inbox must be empty now");
}

fn seqs_of(entries: &[crate::InboxEntry]) -> Vec<i64> {
    entries.iter().map(|entry| entry.seq).collect()
}

async fn inbox_appends_absorb_duplicates(store: &dyn StateStore) {
    empty_inbox(store).await;
    let first = event("deal", "1", EventAction::Upsert, 1_000, "d1");
    let second = event("deal", "2", EventAction::Delete, 1_000, "d1");
    assert_eq!(store.inbox_append(&[], 10).await.expect("empty append"), 0);
    assert_eq!(
        store.inbox_append(&[first.clone(), second.clone()], 10).await.expect("append"),
        2,
        "two events of one delivery are both new"
    );
    // Same delivery and record, whatever the rest says: a redelivery.
    let redelivered = WebhookEvent {
        event_time: 5_000,
        ..first.clone()
    };
    // Same record, action and time under another delivery id: the same change twice.
    let same_change = WebhookEvent {
        delivery_id: "d2".into(),
        ..second.clone()
    };
    // A later change of the same record under another delivery: new.
    let later = event("deal", "1", EventAction::Upsert, 2_000, "d3");
    // Duplicates within one append are stored once.
    let stored = store
        .inbox_append(&[redelivered, same_change, later.clone(), later.clone()], 20)
        .await
        .expect("append duplicates");
    assert_eq!(stored, 1, "only the later change is new");
    // Other sources never collide.
    let other_source = WebhookEvent {
        source: "other".into(),
        ..first.clone()
    };
    assert_eq!(store.inbox_append(&[other_source], 20).await.expect("append"), 1);

    let claimed = store.inbox_claim(100, 30, 60_000).await.expect("claim");
    let events: Vec<&WebhookEvent> = claimed.iter().map(|entry| &entry.event).collect();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0], &first, "an event reads back as appended");
    assert_eq!(events[1], &second);
    assert_eq!(events[2], &later);
    assert_eq!(claimed[0].received_at, 10);
    assert_eq!(claimed[2].received_at, 20);
    assert!(claimed.iter().all(|entry| entry.attempts == 0 && entry.last_error.is_none()));

    // Done events still absorb duplicates until pruned.
    assert_eq!(store.inbox_done(&seqs_of(&claimed), 40).await.expect("done"), 4);
    assert_eq!(store.inbox_append(&[first.clone(), later.clone()], 50).await.expect("append"), 0);
    let after_done = WebhookEvent {
        delivery_id: "d9".into(),
        ..later.clone()
    };
    assert_eq!(
        store.inbox_append(&[after_done], 50).await.expect("append"),
        0,
        "the same change under a new delivery id after done is a duplicate"
    );
    assert_eq!(store.inbox_prune(41).await.expect("prune"), 4);
    assert_eq!(
        store.inbox_append(&[first], 60).await.expect("append"),
        1,
        "after pruning, the de-duplication window is over"
    );
    empty_inbox(store).await;
}

async fn inbox_claims_oldest_first_under_a_lease(store: &dyn StateStore) {
    empty_inbox(store).await;
    for n in 0..5 {
        let appended = store
            .inbox_append(
                &[event("ticket", &format!("t{n}"), EventAction::Upsert, n, &format!("c{n}"))],
                100 + n,
            )
            .await
            .expect("append");
        assert_eq!(appended, 1);
    }
    let first = store.inbox_claim(2, 1_000, 500).await.expect("claim");
    let ids: Vec<&str> = first.iter().map(|entry| entry.event.id.as_str()).collect();
    assert_eq!(ids, ["t0", "t1"], "the oldest events first, at most `limit`");
    assert!(first[0].seq < first[1].seq, "seqs increase in received order");
    let second = store.inbox_claim(10, 1_000, 500).await.expect("claim");
    let ids: Vec<&str> = second.iter().map(|entry| entry.event.id.as_str()).collect();
    assert_eq!(ids, ["t2", "t3", "t4"], "leased events are not claimed twice");
    assert!(
        store.inbox_claim(10, 1_499, 500).await.expect("claim").is_empty(),
        "leases hold until they expire"
    );
    assert_eq!(store.inbox_claim(0, 9_000, 500).await.expect("claim"), vec![]);
    store.inbox_done(&seqs_of(&first), 1_200).await.expect("done");
    // t2..t4 were claimed by a worker that crashed: they come back when the lease expires.
    let again = store.inbox_claim(10, 1_500, 500).await.expect("claim");
    assert_eq!(
        seqs_of(&again),
        seqs_of(&second),
        "expired leases are claimable again, done events are not"
    );
    let stats = store.inbox_stats(1_600).await.expect("stats");
    assert_eq!((stats.pending, stats.due, stats.done), (3, 0, 2), "{stats:?}");
    assert_eq!(store.inbox_release_leases().await.expect("release"), 3);
    assert_eq!(
        store.inbox_stats(1_600).await.expect("stats").due,
        3,
        "released leases are due at once"
    );
    assert_eq!(store.inbox_done(&seqs_of(&again), 1_700).await.expect("done"), 3);
    assert_eq!(
        store.inbox_done(&seqs_of(&again), 1_800).await.expect("done twice"),
        0,
        "marking done twice changes nothing"
    );
    assert!(store.inbox_claim(10, LATE, 500).await.expect("claim").is_empty());
    empty_inbox(store).await;
}

async fn inbox_failures_back_off_then_go_dead(store: &dyn StateStore) {
    empty_inbox(store).await;
    let failing = event("deal", "f", EventAction::Upsert, 1, "f1");
    store.inbox_append(std::slice::from_ref(&failing), 1).await.expect("append");
    let mut now = 10_000;
    for attempt in 1..=3_u32 {
        let claimed = store.inbox_claim(10, now, 60_000).await.expect("claim");
        assert_eq!(claimed.len(), 1, "attempt {attempt}: the failed event is due again");
        assert_eq!(claimed[0].attempts, attempt - 1);
        let dead = store
            .inbox_fail(&seqs_of(&claimed), &format!("api said 500 ({attempt})"), now, 4)
            .await
            .expect("fail");
        assert_eq!(dead, 0, "not dead before max_attempts");
        let delay = inbox_retry_delay_ms(attempt);
        assert!(
            store.inbox_claim(10, now + delay - 1, 60_000).await.expect("claim").is_empty(),
            "attempt {attempt}: not due before the backoff ends (the lease is released)"
        );
        now += delay;
    }
    let claimed = store.inbox_claim(10, now, 60_000).await.expect("claim");
    assert_eq!(claimed[0].attempts, 3);
    assert_eq!(claimed[0].last_error.as_deref(), Some("api said 500 (3)"));
    assert_eq!(
        store.inbox_fail(&seqs_of(&claimed), "gone", now, 4).await.expect("fail"),
        1,
        "the 4th failure is dead"
    );
    assert!(
        store.inbox_claim(10, LATE, 1).await.expect("claim").is_empty(),
        "dead events are never claimed"
    );
    assert_eq!(
        store.inbox_fail(&seqs_of(&claimed), "again", now, 4).await.expect("fail"),
        0,
        "a dead event fails no further"
    );
    let dead = store.inbox_dead(10).await.expect("dead list");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].event, failing);
    assert_eq!(dead[0].attempts, 4);
    assert_eq!(dead[0].last_error.as_deref(), Some("gone"));
    assert_eq!(
        store.inbox_append(&[failing], 2).await.expect("append"),
        0,
        "a dead event still absorbs its duplicates"
    );
    // max_attempts 0 behaves as 1.
    store
        .inbox_append(&[event("deal", "g", EventAction::Delete, 1, "g1")], 3)
        .await
        .expect("append");
    let claimed = store.inbox_claim(10, now, 60_000).await.expect("claim");
    assert_eq!(store.inbox_fail(&seqs_of(&claimed), "no", now, 0).await.expect("fail"), 1);
    assert_eq!(store.inbox_fail(&[], "no", now, 0).await.expect("fail"), 0);
    empty_inbox(store).await;
}

async fn inbox_deferrals_spend_no_attempts(store: &dyn StateStore) {
    empty_inbox(store).await;
    store
        .inbox_append(&[event("deal", "d", EventAction::Upsert, 1, "d1")], 1)
        .await
        .expect("append");
    let mut now = 10_000;
    // Many more deferrals than max_attempts: an outage never dead-letters an event.
    for round in 0..6 {
        let claimed = store.inbox_claim(10, now, 60_000).await.expect("claim");
        assert_eq!(claimed.len(), 1, "round {round}: the deferred event is due again");
        assert_eq!(claimed[0].attempts, 0, "a deferral counts no attempt");
        let deferred = store
            .inbox_defer(&seqs_of(&claimed), "warehouse locked", now + 5_000)
            .await
            .expect("defer");
        assert_eq!(deferred, 1);
        assert!(
            store.inbox_claim(10, now + 4_999, 60_000).await.expect("claim").is_empty(),
            "not due before the deferral ends (the lease is released)"
        );
        now += 5_000;
    }
    let claimed = store.inbox_claim(10, now, 60_000).await.expect("claim");
    assert_eq!(claimed[0].last_error.as_deref(), Some("warehouse locked"));
    assert_eq!(store.inbox_fail(&seqs_of(&claimed), "bad", now, 2).await.expect("fail"), 0);
    assert_eq!(store.inbox_defer(&[], "x", now).await.expect("defer"), 0);
    let claimed = store.inbox_claim(10, now + 60_000, 60_000).await.expect("claim");
    assert_eq!(claimed[0].attempts, 1, "only the real failure counted");
    store.inbox_done(&seqs_of(&claimed), now).await.expect("done");
    assert_eq!(
        store.inbox_defer(&seqs_of(&claimed), "late", now).await.expect("defer"),
        0,
        "a done event is not put back"
    );
    empty_inbox(store).await;
}

async fn inbox_dead_letters_retry_and_drop(store: &dyn StateStore) {
    empty_inbox(store).await;
    let events: Vec<WebhookEvent> = (0..4)
        .map(|n| event("quote", &format!("q{n}"), EventAction::Upsert, n, &format!("q{n}")))
        .collect();
    store.inbox_append(&events, 5).await.expect("append");
    let claimed = store.inbox_claim(10, 100, 1_000).await.expect("claim");
    assert_eq!(store.inbox_fail(&seqs_of(&claimed), "bad", 100, 1).await.expect("fail"), 4);
    let dead = store.inbox_dead(10).await.expect("dead");
    assert_eq!(seqs_of(&dead), seqs_of(&claimed), "the dead list is oldest first");
    assert_eq!(seqs_of(&store.inbox_dead(2).await.expect("dead")), seqs_of(&claimed)[..2]);

    assert_eq!(store.inbox_retry_dead(Some(&[dead[0].seq])).await.expect("retry one"), 1);
    assert_eq!(store.inbox_retry_dead(Some(&[dead[0].seq])).await.expect("retry again"), 0);
    let retried = store.inbox_claim(10, 100, 1_000).await.expect("claim");
    assert_eq!(seqs_of(&retried), [dead[0].seq], "a retried event is due at once");
    assert_eq!(retried[0].attempts, 0, "attempts are reset");
    assert_eq!(retried[0].last_error.as_deref(), Some("bad"), "the last error is kept");
    store.inbox_done(&seqs_of(&retried), 200).await.expect("done");

    assert_eq!(store.inbox_drop_dead(Some(&[dead[1].seq])).await.expect("drop one"), 1);
    assert_eq!(store.inbox_drop_dead(Some(&[dead[0].seq])).await.expect("done is not dead"), 0);
    assert_eq!(store.inbox_retry_dead(Some(&[])).await.expect("retry none"), 0);
    assert_eq!(store.inbox_dead(10).await.expect("dead").len(), 2);
    assert_eq!(store.inbox_retry_dead(None).await.expect("retry all"), 2);
    assert_eq!(store.inbox_dead(10).await.expect("dead").len(), 0);
    let claimed = store.inbox_claim(10, 300, 1_000).await.expect("claim");
    assert_eq!(seqs_of(&claimed), [dead[2].seq, dead[3].seq]);
    store.inbox_fail(&seqs_of(&claimed), "bad", 300, 1).await.expect("fail");
    assert_eq!(store.inbox_drop_dead(None).await.expect("drop all"), 2);
    let stats = store.inbox_stats(400).await.expect("stats");
    assert_eq!((stats.pending, stats.dead, stats.done), (0, 0, 1), "{stats:?}");
    empty_inbox(store).await;
}

async fn inbox_stats_and_prune(store: &dyn StateStore) {
    empty_inbox(store).await;
    let empty = store.inbox_stats(0).await.expect("stats");
    assert_eq!(empty, crate::InboxStats::default(), "an empty inbox has no oldest event");
    store
        .inbox_append(&[event("deal", "a", EventAction::Upsert, 1, "s1")], 1_000)
        .await
        .expect("append");
    store
        .inbox_append(
            &[
                event("deal", "b", EventAction::Upsert, 1, "s2"),
                event("deal", "c", EventAction::Upsert, 1, "s2"),
            ],
            900,
        )
        .await
        .expect("append");
    store
        .inbox_append(&[event("deal", "d", EventAction::Upsert, 1, "s3")], 2_000)
        .await
        .expect("append");
    let stats = store.inbox_stats(3_000).await.expect("stats");
    assert_eq!(stats.pending, 4);
    assert_eq!(stats.due, 4);
    assert_eq!(
        stats.oldest_pending_received_at,
        Some(900),
        "the oldest receive time, not the first seq"
    );
    let claimed = store.inbox_claim(2, 3_000, 10_000).await.expect("claim");
    store.inbox_done(&[claimed[0].seq], 5_000).await.expect("done");
    store.inbox_fail(&[claimed[1].seq], "x", 3_000, 1).await.expect("fail");
    let stats = store.inbox_stats(3_000).await.expect("stats");
    assert_eq!(
        stats,
        crate::InboxStats {
            pending: 2,
            due: 2,
            oldest_pending_received_at: Some(900),
            dead: 1,
            done: 1
        }
    );
    let claimed = store.inbox_claim(5, 3_000, 10_000).await.expect("claim");
    assert_eq!(store.inbox_stats(3_000).await.expect("stats").due, 0, "leased events are not due");
    store.inbox_done(&[claimed[0].seq], 6_000).await.expect("done");
    store.inbox_done(&[claimed[1].seq], 7_000).await.expect("done");
    assert_eq!(store.inbox_stats(3_000).await.expect("stats").oldest_pending_received_at, None);
    assert_eq!(
        store.inbox_prune(5_000).await.expect("prune"),
        0,
        "prune keeps rows done at or after the time"
    );
    assert_eq!(store.inbox_prune(6_500).await.expect("prune"), 2);
    let stats = store.inbox_stats(3_000).await.expect("stats");
    assert_eq!((stats.done, stats.dead), (1, 1), "prune removes only done rows");
    empty_inbox(store).await;
}

async fn inbox_concurrent_appends_store_each_event_once(store: &dyn StateStore) {
    empty_inbox(store).await;
    // 32 "handlers", 20 webhooks each; every webhook is delivered twice by two handlers.
    let appends = (0..32_i64).map(|handler| async move {
        let mut stored = 0;
        for n in 0..20_i64 {
            let delivery = (handler / 2) * 20 + n;
            let webhook = [
                event(
                    "deal",
                    &format!("c{delivery}"),
                    EventAction::Upsert,
                    delivery,
                    &format!("w{delivery}"),
                ),
                event(
                    "person",
                    &format!("c{delivery}"),
                    EventAction::Upsert,
                    delivery,
                    &format!("w{delivery}"),
                ),
            ];
            stored += store.inbox_append(&webhook, delivery).await.expect("concurrent append");
        }
        stored
    });
    let stored: usize = join_all(appends.collect()).await.into_iter().sum();
    assert_eq!(stored, 16 * 20 * 2, "every event counted as new exactly once");
    let stats = store.inbox_stats(0).await.expect("stats");
    assert_eq!(stats.pending, 640);
    let claimed = store.inbox_claim(10_000, 0, 1).await.expect("claim");
    let unique: HashSet<(String, String)> = claimed
        .iter()
        .map(|entry| (entry.event.entity.clone(), entry.event.id.clone()))
        .collect();
    assert_eq!(unique.len(), 640, "every event stored exactly once");
    empty_inbox(store).await;
}

/// Several workers claim concurrently through `first` and `second` (two handles on the same
/// store: two connections, or one store passed twice): no seq is ever handed out twice while
/// its lease holds, and every event is handed out.
pub async fn claimers_never_share_an_event(first: &dyn StateStore, second: &dyn StateStore) {
    empty_inbox(first).await;
    let events: Vec<WebhookEvent> = (0..300)
        .map(|n| event("claim", &format!("e{n}"), EventAction::Upsert, n, &format!("e{n}")))
        .collect();
    assert_eq!(first.inbox_append(&events, 1).await.expect("append"), 300);
    let workers = (0..8).map(|worker| async move {
        let store = if worker % 2 == 0 { first } else { second };
        let mut mine = Vec::new();
        loop {
            let claimed = store.inbox_claim(7, 1_000, 600_000).await.expect("concurrent claim");
            if claimed.is_empty() {
                return mine;
            }
            mine.extend(seqs_of(&claimed));
            tokio::task::yield_now().await;
        }
    });
    let claimed: Vec<Vec<i64>> = join_all(workers.collect()).await;
    let total: usize = claimed.iter().map(Vec::len).sum();
    let unique: HashSet<i64> = claimed.iter().flatten().copied().collect();
    assert_eq!(unique.len(), 300, "every event was claimed");
    assert_eq!(total, 300, "no event was claimed twice");
    empty_inbox(first).await;
}

/// A sub-resource event keeps its parent through the inbox (the re-fetch path needs it).
async fn inbox_keeps_the_parent_of_a_sub_resource(store: &dyn StateStore) {
    let threaded = WebhookEvent {
        parent_id: Some("ticket-77".into()),
        ..event("thread", "parent-test", EventAction::Upsert, 7_000, "parent-delivery")
    };
    assert_eq!(store.inbox_append(std::slice::from_ref(&threaded), 7_000).await.expect("append"), 1);
    let claimed = store.inbox_claim(10_000, LATE, 1_000).await.expect("claim");
    let found = claimed
        .iter()
        .find(|entry| entry.event.id == "parent-test")
        .expect("the event is claimed");
    assert_eq!(found.event, threaded);
    store.inbox_done(&seqs_of(&claimed), LATE).await.expect("done");
}
