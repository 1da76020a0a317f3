//! End-to-end reconciliation against the HaloPSA simulator (clients, tickets, invoices,
//! quotations): client-credentials OAuth2, `pageinate`/`page_no` paging with `record_count`,
//! the since-filters (tickets and clients `lastupdatefromdate`, invoices `datesearch=last_modified`
//! with `start_date`, the capped pull when a tenant ignores the client filter), capped
//! quotations, partial list rows completed by detail GETs of new or changed ids only, faults.

mod common;

use std::time::Duration;

use common::{by_entity, harness, no_deletes, quiet_config, totals, AuthKind, Harness};
use syncline_connectors::reconcile::SyncMode;
use syncline_simulator::{ChangeRequest, Connector, Entity, RequestLogEntry};

const ENTITIES: &str = "";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_incremental_run_heals_every_dropped_webhook() {
    let mut config = quiet_config(Connector::Halopsa, 21);
    config.change_mix = no_deletes();
    config.initial_records = [(Entity::Ticket, 250), (Entity::Invoice, 120)].into();
    // Quotations have no since-filter: the capped pull must cover every quotation changed
    // between two runs, or the full reconcile heals it.
    let harness = harness(config, AuthKind::ClientCredentials, "capped_limit = 400").await;
    let first = harness.run(SyncMode::Incremental).await;
    assert!(first.iter().all(|report| report.method == "full"));
    harness.assert_matches_truth().await;

    harness.simulator.step_changes(2_000);
    let reports = harness.run(SyncMode::Incremental).await;
    let entities = by_entity(&reports);
    for entity in ["ticket", "invoice", "client"] {
        assert_eq!(entities[entity].method, "incremental", "{entity}");
    }
    assert_eq!(entities["quotation"].method, "capped");
    assert!(totals(&reports).0 > 300, "{reports:?}");
    harness.assert_matches_truth().await;

    let again = harness.run(SyncMode::Incremental).await;
    assert_eq!(totals(&again).0, 0, "{again:?}");
    harness.assert_matches_truth().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_full_run_detects_deletes_and_writes_nothing_when_unchanged() {
    let mut config = quiet_config(Connector::Halopsa, 22);
    config.initial_records = [(Entity::Ticket, 150), (Entity::Invoice, 80)].into();
    let harness = harness(config, AuthKind::ClientCredentials, ENTITIES).await;
    harness.run(SyncMode::Full).await;
    harness.assert_matches_truth().await;
    let unchanged = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&unchanged), (0, 0, 0), "{unchanged:?}");

    harness.simulator.step_changes(600);
    let reports = harness.run(SyncMode::Full).await;
    assert!(totals(&reports).2 > 0, "{reports:?}");
    harness.assert_matches_truth().await;
    let again = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&again), (0, 0, 0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_faults_do_not_change_the_result() {
    let mut config = quiet_config(Connector::Halopsa, 23);
    config.change_mix = no_deletes();
    config.initial_records = [(Entity::Ticket, 200), (Entity::Invoice, 80)].into();
    config.faults.rate_limit_rate = 0.1;
    config.faults.server_error_rate = 0.1;
    config.faults.token_expiry_rate = 0.05;
    config.faults.insert_while_paging_rate = 0.3;
    config.faults.insert_while_paging_count = 2;
    config.faults.eventual_consistency_lag_ms = 120_000;
    let harness = harness(config, AuthKind::ClientCredentials, &format!("{ENTITIES}\npage_size = 40")).await;
    harness.run(SyncMode::Incremental).await;
    harness.simulator.step_changes(1_000);
    harness.run(SyncMode::Incremental).await;
    harness.simulator.advance_clock(Duration::from_secs(180));
    let last_run_started = harness.simulator.now_ms();
    harness.run(SyncMode::Incremental).await;
    harness.assert_matches_truth_but_created_since(Some(last_run_started)).await;
    let stats = harness.simulator.stats();
    assert!(stats.api.rate_limited > 0 && stats.api.server_errors > 0, "{:?}", stats.api);
    assert!(stats.tokens.issued > 1, "the expired token was replaced: {:?}", stats.tokens);
    let full = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&full).2, 0, "{full:?}");
    harness.assert_matches_truth().await;
}

/// Updates records upstream one by one, a minute apart (past the lookback of the last run).
fn update(harness: &Harness, entity: Entity, ids: &[u64]) {
    for id in ids {
        harness.simulator.advance_clock(Duration::from_secs(60));
        harness
            .simulator
            .apply_change(&ChangeRequest::Update { entity, id: *id })
            .expect("update");
    }
}

/// The simulator's list requests of one endpoint (`/api/Invoice`), oldest first.
fn list_requests(harness: &Harness, path: &str) -> Vec<RequestLogEntry> {
    harness
        .simulator
        .request_log()
        .requests
        .into_iter()
        .filter(|entry| entry.path == path)
        .collect()
}

fn query_has(entry: &RequestLogEntry, name: &str, value: Option<&str>) -> bool {
    entry
        .query
        .iter()
        .any(|(key, sent)| key == name && value.is_none_or(|value| sent == value))
}

/// The ids of an entity in ascending order of their modified time (oldest first).
fn oldest_first(harness: &Harness, entity: Entity, field: &str) -> Vec<u64> {
    let mut records = harness.simulator.truth(entity).expect("truth");
    records.sort_by_key(|record| record[field].as_str().map(str::to_string));
    records.iter().map(|record| record["id"].as_u64().expect("id")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_invoices_are_incremental_on_last_modified_and_fetch_only_changed_details() {
    let mut config = quiet_config(Connector::Halopsa, 24);
    config.change_mix = no_deletes();
    config.request_log_limit = 100_000;
    config.initial_records = [(Entity::Invoice, 60), (Entity::Quotation, 30)].into();
    let harness = harness(config, AuthKind::ClientCredentials, "").await;
    harness.run(SyncMode::Incremental).await;
    harness.assert_matches_truth().await;

    // The oldest invoices and two quotations change; nothing else does.
    let invoices = oldest_first(&harness, Entity::Invoice, "last_modified");
    update(&harness, Entity::Invoice, &invoices[..3]);
    let quotations = oldest_first(&harness, Entity::Quotation, "last_update_time");
    update(&harness, Entity::Quotation, &quotations[..2]);
    let reports = harness.run(SyncMode::Incremental).await;
    let entities = by_entity(&reports);
    let invoice = &entities["invoice"];
    assert_eq!(invoice.method, "incremental");
    assert!(
        invoice.listed < 10,
        "the since-filter lists the changes, not the 60 invoices: {invoice:?}"
    );
    assert_eq!((invoice.fetched, invoice.new_versions), (3, 3), "{invoice:?}");
    // The capped quotation pull lists every quotation but fetches only the two that changed.
    let quotation = &entities["quotation"];
    assert_eq!(quotation.method, "capped");
    assert_eq!(quotation.listed, 30, "{quotation:?}");
    assert_eq!((quotation.fetched, quotation.new_versions), (2, 2), "{quotation:?}");
    harness.assert_matches_truth().await;

    // The last invoice listing sent HaloPSA's invoice filter, not the ticket one.
    let last = list_requests(&harness, "/api/Invoice").pop().expect("an invoice listing");
    assert!(query_has(&last, "datesearch", Some("last_modified")), "{:?}", last.query);
    assert!(query_has(&last, "start_date", None), "{:?}", last.query);
    assert!(!query_has(&last, "startdate", None), "{:?}", last.query);
    let again = harness.run(SyncMode::Incremental).await;
    assert_eq!(totals(&again), (0, 0, 0), "{again:?}");
    assert!(again.iter().all(|report| report.fetched == 0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_an_edit_to_an_old_client_is_picked_up_by_the_incremental_run() {
    let mut config = quiet_config(Connector::Halopsa, 25);
    config.change_mix = no_deletes();
    config.request_log_limit = 100_000;
    config.initial_records = [(Entity::Client, 40)].into();
    let harness = harness(config, AuthKind::ClientCredentials, "capped_limit = 5").await;
    harness.run(SyncMode::Incremental).await;
    // The oldest client, the one a capped pull by id or by newest would never reach.
    let oldest = oldest_first(&harness, Entity::Client, "alastupdate")[0];
    update(&harness, Entity::Client, &[oldest]);
    let reports = harness.run(SyncMode::Incremental).await;
    let client = &by_entity(&reports)["client"];
    assert_eq!(client.method, "incremental");
    assert!(!client.since_filter_ignored);
    assert!(client.listed < 5, "{client:?}");
    assert_eq!((client.fetched, client.new_versions), (1, 1), "{client:?}");
    harness.assert_matches_truth().await;
    let last = list_requests(&harness, "/api/Client").pop().expect("a client listing");
    assert!(query_has(&last, "lastupdatefromdate", None), "{:?}", last.query);
    assert!(query_has(&last, "order", Some("alastupdate")), "{:?}", last.query);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_a_tenant_ignoring_the_client_filter_falls_back_to_the_capped_pull() {
    let mut config = quiet_config(Connector::Halopsa, 26);
    config.change_mix = no_deletes();
    config.request_log_limit = 100_000;
    config.halopsa_client_filter_ignored = true;
    config.initial_records = [(Entity::Client, 40)].into();
    let harness = harness(config, AuthKind::ClientCredentials, "capped_limit = 5\npage_size = 10").await;
    harness.run(SyncMode::Incremental).await;
    let oldest = oldest_first(&harness, Entity::Client, "alastupdate");
    update(&harness, Entity::Client, &oldest[..2]);
    let reports = harness.run(SyncMode::Incremental).await;
    let client = &by_entity(&reports)["client"];
    assert!(client.since_filter_ignored, "{client:?}");
    assert_eq!(client.method, "capped");
    // One page of the ignored filter, then the newest 5 by alastupdate: the two edits.
    assert_eq!(client.listed, 5, "{client:?}");
    assert_eq!((client.fetched, client.new_versions), (2, 2), "{client:?}");
    harness.assert_matches_truth().await;
    let listings = list_requests(&harness, "/api/Client");
    let last = listings.last().expect("a client listing");
    assert!(
        query_has(last, "order", Some("alastupdate")) && query_has(last, "orderdesc", Some("true")),
        "{:?}",
        last.query
    );
    assert!(!query_has(last, "lastupdatefromdate", None), "{:?}", last.query);
    assert!(listings
        .iter()
        .rev()
        .nth(1)
        .is_some_and(|first| query_has(first, "lastupdatefromdate", None)));
}
