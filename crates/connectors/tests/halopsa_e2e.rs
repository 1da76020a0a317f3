//! End-to-end reconciliation against the HaloPSA simulator (clients, tickets, invoices,
//! quotations): client-credentials OAuth2, `pageinate`/`page_no` paging with `record_count`,
//! the `datesearch` since-filter on tickets, capped pulls elsewhere, faults.

mod common;

use std::time::Duration;

use common::{by_entity, harness, no_deletes, quiet_config, totals, AuthKind};
use syncline_connectors::reconcile::SyncMode;
use syncline_simulator::{Connector, Entity};

const ENTITIES: &str = "";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halopsa_incremental_run_heals_every_dropped_webhook() {
    let mut config = quiet_config(Connector::Halopsa, 21);
    config.change_mix = no_deletes();
    config.initial_records = [(Entity::Ticket, 250), (Entity::Invoice, 120)].into();
    // Invoices, quotations and clients have no since-filter: the capped pull must cover every
    // record changed between two runs (here about 250 invoices), or the full reconcile heals it.
    let harness = harness(config, AuthKind::ClientCredentials, "capped_limit = 400").await;
    let first = harness.run(SyncMode::Incremental).await;
    assert!(first.iter().all(|report| report.method == "full"));
    harness.assert_matches_truth().await;

    harness.simulator.step_changes(2_000);
    let reports = harness.run(SyncMode::Incremental).await;
    let entities = by_entity(&reports);
    assert_eq!(entities["ticket"].method, "incremental");
    assert_eq!(entities["invoice"].method, "capped");
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
