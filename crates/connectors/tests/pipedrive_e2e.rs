//! End-to-end reconciliation against the Pipedrive simulator: incremental, full, faults, cost.

mod common;

use std::time::Duration;

use common::{by_entity, harness, no_deletes, quiet_config, totals, AuthKind, SOURCE};
use syncline_connectors::http::REFRESH_TOKEN_NAME;
use syncline_connectors::reconcile::SyncMode;
use syncline_simulator::{ChangeMix, ChangeRequest, Connector, Entity};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_run_heals_every_dropped_webhook() {
    let mut config = quiet_config(Connector::Pipedrive, 11);
    config.change_mix = no_deletes();
    config.initial_records = [(Entity::Deal, 300), (Entity::Person, 200), (Entity::Organization, 100)].into();
    let harness = harness(config, AuthKind::ApiToken, "").await;
    let first = harness.run(SyncMode::Incremental).await;
    assert!(
        first.iter().all(|report| report.method == "full"),
        "first run is a full initial sync"
    );
    harness.assert_matches_truth().await;

    harness.simulator.step_changes(3_000);
    let reports = harness.run(SyncMode::Incremental).await;
    let entities = by_entity(&reports);
    assert_eq!(entities["deal"].method, "incremental");
    assert_eq!(entities["stage"].method, "capped");
    assert!(totals(&reports).0 > 1_000, "{reports:?}");
    harness.assert_matches_truth().await;

    let again = harness.run(SyncMode::Incremental).await;
    assert_eq!(totals(&again), (0, 0, 0), "a second run right after changes nothing: {again:?}");
    harness.assert_matches_truth().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_detects_deletes_and_writes_nothing_when_unchanged() {
    let mut config = quiet_config(Connector::Pipedrive, 12);
    config.initial_records = [(Entity::Deal, 200), (Entity::Person, 100)].into();
    let harness = harness(config, AuthKind::ApiToken, "").await;
    harness.run(SyncMode::Full).await;
    harness.assert_matches_truth().await;
    let unchanged = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&unchanged), (0, 0, 0), "{unchanged:?}");
    assert!(unchanged.iter().all(|report| report.fetched == 0));

    harness.simulator.step_changes(800);
    let reports = harness.run(SyncMode::Full).await;
    let (versions, _, deleted) = totals(&reports);
    assert!(versions > 0);
    assert!(deleted > 0, "{reports:?}");
    harness.assert_matches_truth().await;
    let again = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&again), (0, 0, 0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_do_not_change_the_result() {
    let mut config = quiet_config(Connector::Pipedrive, 13);
    config.change_mix = no_deletes();
    config.initial_records = [(Entity::Deal, 300), (Entity::Person, 150), (Entity::Organization, 80)].into();
    config.faults.rate_limit_rate = 0.1;
    config.faults.retry_after_secs = 0;
    config.faults.server_error_rate = 0.1;
    config.faults.token_expiry_rate = 0.05;
    config.faults.insert_while_paging_rate = 0.3;
    config.faults.insert_while_paging_count = 2;
    config.faults.eventual_consistency_lag_ms = 120_000;
    config.auth.rotate_refresh_tokens = true;
    let initial_refresh = config.auth.initial_refresh_token.clone();
    let harness = harness(config, AuthKind::OAuth, "page_size = 50").await;
    harness.run(SyncMode::Incremental).await;
    harness.simulator.step_changes(1_500);
    harness.run(SyncMode::Incremental).await;
    // Changes of the last two minutes were invisible to the since-filter; once the index
    // catches up they fall inside the lookback window.
    harness.simulator.advance_clock(Duration::from_secs(180));
    let last_run_started = harness.simulator.now_ms();
    harness.run(SyncMode::Incremental).await;
    harness.assert_matches_truth_but_created_since(Some(last_run_started)).await;

    let stats = harness.simulator.stats();
    assert!(stats.api.rate_limited > 0 && stats.api.server_errors > 0, "{:?}", stats.api);
    assert!(stats.api.inserted_while_paging > 0, "{:?}", stats.api);
    let stored = harness.state.token(SOURCE, REFRESH_TOKEN_NAME).await.unwrap();
    assert!(
        stored.is_some_and(|token| token != initial_refresh),
        "the rotated refresh token is stored"
    );
    // The full reconcile agrees and has nothing left to do.
    let full = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&full).2, 0, "{full:?}");
    harness.assert_matches_truth().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_is_twenty_times_cheaper_than_a_full_pull() {
    let mut config = quiet_config(Connector::Pipedrive, 14);
    config.initial_records = [(Entity::Deal, 20_000)].into();
    config.change_mix = ChangeMix {
        create: 0.0,
        update: 1.0,
        delete: 0.0,
        merge: 0.0,
        deactivate_user: 0.0,
    };
    let harness = harness(config, AuthKind::ApiToken, "entities = [\"deal\"]").await;
    harness.run(SyncMode::Full).await;
    let deal_ids: Vec<u64> = harness
        .simulator
        .truth(Entity::Deal)
        .unwrap()
        .iter()
        .filter_map(|deal| deal["id"].as_u64())
        .collect();
    for id in deal_ids.iter().step_by(100) {
        harness.simulator.advance_clock(Duration::from_millis(700));
        harness
            .simulator
            .apply_change(&ChangeRequest::Update {
                entity: Entity::Deal,
                id: *id,
            })
            .unwrap();
    }
    let incremental = harness.run(SyncMode::Incremental).await;
    let full = harness.run(SyncMode::Full).await;
    harness.assert_matches_truth().await;
    let (inc, ful) = (incremental[0].calls, full[0].calls);
    println!("N = 20000 deals, 200 changed (1%)");
    println!(
        "{:<12} {:>9} {:>6} {:>7} {:>13}",
        "run", "api calls", "cost", "listed", "new versions"
    );
    println!(
        "{:<12} {:>9} {:>6} {:>7} {:>13}",
        "incremental", inc.calls, inc.cost, incremental[0].listed, incremental[0].new_versions
    );
    println!(
        "{:<12} {:>9} {:>6} {:>7} {:>13}",
        "full", ful.calls, ful.cost, full[0].listed, full[0].new_versions
    );
    assert_eq!(incremental[0].new_versions, 200, "{incremental:?}");
    assert_eq!(full[0].new_versions, 0);
    assert!(inc.cost * 20 <= ful.cost, "incremental {inc:?} vs full {ful:?}");
    assert!(inc.calls * 20 <= ful.calls, "incremental {inc:?} vs full {ful:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline_first_run_pulls_nothing_and_later_runs_pull_only_changes() {
    let mut config = quiet_config(Connector::Pipedrive, 15);
    config.initial_records = [(Entity::Deal, 300)].into();
    let harness = harness(config, AuthKind::ApiToken, "entities = [\"deal\"]\ninitial_sync = \"baseline\"").await;
    let first = harness.run(SyncMode::Incremental).await;
    assert_eq!(first[0].method, "baseline");
    assert_eq!((first[0].listed, first[0].new_versions), (0, 0));
    assert!(first[0].calls.calls <= 3, "{first:?}");

    // The lookback window also re-reads deals modified in the ten minutes before the baseline.
    let modified: Vec<(u64, i64)> = harness
        .simulator
        .truth(Entity::Deal)
        .unwrap()
        .iter()
        .map(|deal| {
            let time = syncline_core::parse_timestamp(deal["update_time"].as_str().unwrap()).unwrap();
            (deal["id"].as_u64().unwrap(), time)
        })
        .collect();
    let baseline = modified.iter().map(|(_, time)| *time).max().unwrap();
    let in_lookback = modified.iter().filter(|(id, time)| *id > 7 && *time >= baseline - 600_000).count();

    harness.simulator.advance_clock(Duration::from_secs(3600));
    let deal_ids: Vec<u64> = modified.iter().map(|(id, _)| *id).filter(|id| *id <= 7).collect();
    assert_eq!(deal_ids.len(), 7);
    for id in deal_ids.iter() {
        harness
            .simulator
            .apply_change(&ChangeRequest::Update {
                entity: Entity::Deal,
                id: *id,
            })
            .unwrap();
    }
    let second = harness.run(SyncMode::Incremental).await;
    assert_eq!(second[0].method, "incremental");
    assert_eq!(second[0].new_versions, 7 + in_lookback, "{second:?}");
    let table = harness.config.history.table_name("deal");
    let versions = harness
        .destination
        .read_versions(&table, "id", &harness.config.history.profile())
        .await
        .unwrap();
    assert_eq!(
        versions.len(),
        7 + in_lookback,
        "only the changed deals (and the lookback) were pulled"
    );
    assert!(versions.len() < 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_fields_get_names_and_an_unknown_key_refreshes_the_cache() {
    let mut config = quiet_config(Connector::Pipedrive, 16);
    config.initial_records = [(Entity::Deal, 60)].into();
    let harness = harness(config, AuthKind::ApiToken, "entities = [\"deal\"]").await;
    // A stale cache that knows no custom field: the first record with a hash key refreshes it.
    harness
        .state
        .set_marker(SOURCE, "pipedrive_field_names:deal", "{}", 0)
        .await
        .unwrap();
    harness.run(SyncMode::Incremental).await;
    let names = syncline_connectors::pipedrive::stored_field_names(harness.state.as_ref(), SOURCE, "deal")
        .await
        .unwrap()
        .unwrap();
    assert!(!names.is_empty(), "the cache was refreshed");
    let table = harness.config.history.table_name("deal");
    let schema = harness
        .destination
        .table_schema(&table, &harness.config.history.profile())
        .await
        .unwrap()
        .unwrap();
    let custom: Vec<&str> = schema
        .columns
        .iter()
        .map(|column| column.name.as_str())
        .filter(|name| name.starts_with("custom_fields_"))
        .collect();
    assert!(!custom.is_empty());
    let is_hash = |name: &str| name.len() >= 40 && name.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    assert!(
        custom.iter().all(|name| !is_hash(name.trim_start_matches("custom_fields_"))),
        "no hash-key columns: {custom:?}"
    );
    harness.assert_matches_truth().await;
    let calls = harness.simulator.stats().api.endpoints["GET /api/v2/dealFields"].calls;
    harness.run(SyncMode::Incremental).await;
    assert_eq!(
        harness.simulator.stats().api.endpoints["GET /api/v2/dealFields"].calls,
        calls,
        "names come from the cache on later runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_run_closes_deals_whose_delete_webhook_was_lost() {
    let mut config = quiet_config(Connector::Pipedrive, 17);
    config.initial_records = [(Entity::Deal, 200), (Entity::Person, 60)].into();
    let harness = harness(config, AuthKind::ApiToken, "entities = [\"person\", \"deal\"]").await;
    let first = harness.run(SyncMode::Incremental).await;
    assert!(first.iter().all(|report| report.method == "full"), "{first:?}");
    harness.assert_matches_truth().await;

    let deal_ids: Vec<u64> = harness
        .simulator
        .truth(Entity::Deal)
        .unwrap()
        .iter()
        .filter_map(|deal| deal["id"].as_u64())
        .collect();
    harness.simulator.advance_clock(Duration::from_secs(600));
    let mut delete_times = Vec::new();
    for id in deal_ids.iter().take(4) {
        harness.simulator.advance_clock(Duration::from_secs(1));
        let event = harness
            .simulator
            .apply_change(&ChangeRequest::Delete {
                entity: Entity::Deal,
                id: *id,
            })
            .unwrap()
            .remove(0);
        delete_times.push((id.to_string(), event.at_ms));
    }
    // A merged-away deal is deleted too; its survivor changes.
    harness.simulator.advance_clock(Duration::from_secs(1));
    let merge = harness
        .simulator
        .apply_change(&ChangeRequest::Merge {
            entity: Entity::Deal,
            id: deal_ids[4],
            into: deal_ids[5],
        })
        .unwrap();
    delete_times.push((deal_ids[4].to_string(), merge[1].at_ms));
    for id in deal_ids.iter().skip(10).take(5) {
        harness.simulator.advance_clock(Duration::from_secs(1));
        harness
            .simulator
            .apply_change(&ChangeRequest::Update {
                entity: Entity::Deal,
                id: *id,
            })
            .unwrap();
    }
    // A person is soft-deleted: its webhook lost, it stays in the `updated_since` list with
    // `is_deleted: true`, which the next incremental run observes as a delete.
    let person_id = harness.simulator.truth(Entity::Person).unwrap()[0]["id"].as_u64().unwrap();
    harness.simulator.advance_clock(Duration::from_secs(1));
    let person_deleted_at = harness
        .simulator
        .apply_change(&ChangeRequest::Delete {
            entity: Entity::Person,
            id: person_id,
        })
        .unwrap()
        .remove(0)
        .at_ms;

    let reports = harness.run(SyncMode::Incremental).await;
    let entities = by_entity(&reports);
    let deal = &entities["deal"];
    assert_eq!(deal.method, "incremental");
    assert_eq!(deal.deleted, 5, "{deal:?}");
    assert_eq!(deal.new_versions, 6, "five updates and the merge survivor: {deal:?}");
    assert_eq!(deal.calls.calls, 2, "one since-filtered list and one deleted listing: {deal:?}");
    assert_eq!(entities["person"].deleted, 1, "{:?}", entities["person"]);
    assert_eq!(entities["person"].new_versions, 0, "never an active version with is_deleted true");
    harness.assert_matches_truth().await;
    let person_table = harness.config.history.table_name("person");
    let person_rows: Vec<_> = harness
        .destination
        .read_versions(&person_table, "id", &harness.config.history.profile())
        .await
        .unwrap()
        .into_iter()
        .filter(|version| version.id == person_id.to_string())
        .collect();
    assert_eq!(person_rows.len(), 1, "{person_rows:?}");
    assert!(!person_rows[0].active);
    assert_eq!(
        person_rows[0].end.map(|end| end / 1000),
        Some(person_deleted_at / 1000),
        "closed at its delete"
    );

    let table = harness.config.history.table_name("deal");
    let profile = harness.config.history.profile();
    let versions = harness.destination.read_versions(&table, "id", &profile).await.unwrap();
    for (id, deleted_at) in &delete_times {
        let rows: Vec<_> = versions.iter().filter(|version| &version.id == id).collect();
        assert_eq!(rows.len(), 1, "deal {id}: {rows:?}");
        assert!(!rows[0].active, "deal {id} is closed");
        assert_eq!(rows[0].end, Some(*deleted_at), "deal {id} ends at its delete time");
    }

    let again = harness.run(SyncMode::Incremental).await;
    assert_eq!(totals(&again), (0, 0, 0), "a second run right after changes nothing: {again:?}");
    assert_eq!(by_entity(&again)["deal"].calls.calls, 2);

    let full = harness.run(SyncMode::Full).await;
    let full = by_entity(&full);
    assert_eq!((full["person"].deleted, full["deal"].deleted), (0, 0), "{full:?}");
    harness.assert_matches_truth().await;
}
