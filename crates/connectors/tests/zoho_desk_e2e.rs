//! End-to-end reconciliation against the Zoho Desk simulator (tickets, contacts, agents,
//! departments, and threads and comments listed ticket by ticket): OAuth2 refresh with the
//! `Zoho-oauthtoken` header and `orgId`, `from`/`limit` paging with `204 No Content`, the
//! `/tickets/search` since-filter, capped pulls, faults.

mod common;

use std::time::Duration;

use common::{by_entity, harness, quiet_config, totals, AuthKind, SOURCE};
use syncline_connectors::http::REFRESH_TOKEN_NAME;
use syncline_connectors::reconcile::SyncMode;
use syncline_simulator::{ChangeMix, Connector, Entity};

const ENTITIES: &str = "entities = [\"department\", \"agent\", \"contact\", \"ticket\", \"thread\", \"comment\"]";

fn zoho_no_deletes() -> ChangeMix {
    ChangeMix {
        create: 0.25,
        update: 0.6,
        delete: 0.0,
        merge: 0.0,
        deactivate_user: 0.0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_incremental_run_heals_every_dropped_webhook() {
    let mut config = quiet_config(Connector::ZohoDesk, 21);
    config.change_mix = zoho_no_deletes();
    config.initial_records = [
        (Entity::Ticket, 250),
        (Entity::Contact, 120),
        (Entity::Thread, 400),
        (Entity::Comment, 200),
    ]
    .into();
    let harness = harness(config, AuthKind::OAuth, ENTITIES).await;
    let first = harness.run(SyncMode::Incremental).await;
    assert!(first.iter().all(|report| report.method == "full"));
    let first_entities = by_entity(&first);
    assert_eq!(first_entities["thread"].new_versions, 400, "{first:?}");
    assert_eq!(first_entities["comment"].new_versions, 200, "{first:?}");
    harness.assert_matches_truth().await;

    harness.simulator.step_changes(2_000);
    let reports = harness.run(SyncMode::Incremental).await;
    let entities = by_entity(&reports);
    assert_eq!(entities["ticket"].method, "incremental");
    assert_eq!(entities["thread"].method, "incremental");
    assert_eq!(entities["comment"].method, "incremental");
    assert_eq!(entities["contact"].method, "capped");
    assert!(totals(&reports).0 > 300, "{reports:?}");
    assert!(
        entities["thread"].new_versions > 0 && entities["comment"].new_versions > 0,
        "{reports:?}"
    );
    // Only the tickets changed since the cursor have their children listed.
    assert!(entities["thread"].calls.calls < first_entities["thread"].calls.calls, "{reports:?}");
    // A comment edited after its ticket last changed does not bump the ticket, so the ticket
    // since-filter cannot find it; the full reconcile does.
    harness.assert_matches_truth_except(None, &["comment"]).await;

    let again = harness.run(SyncMode::Incremental).await;
    assert_eq!(totals(&again).0, 0, "{again:?}");
    harness.assert_matches_truth_except(None, &["comment"]).await;

    let full = harness.run(SyncMode::Full).await;
    for report in &full {
        if report.entity != "comment" {
            assert_eq!((report.new_versions, report.deleted), (0, 0), "{full:?}");
        }
    }
    harness.assert_matches_truth().await;
    let settled = harness.run(SyncMode::Incremental).await;
    assert_eq!(totals(&settled).0, 0, "{settled:?}");
    harness.assert_matches_truth().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_full_run_detects_deletes_and_writes_nothing_when_unchanged() {
    let mut config = quiet_config(Connector::ZohoDesk, 22);
    config.initial_records = [
        (Entity::Ticket, 150),
        (Entity::Contact, 80),
        (Entity::Thread, 300),
        (Entity::Comment, 150),
    ]
    .into();
    let harness = harness(config, AuthKind::OAuth, ENTITIES).await;
    harness.run(SyncMode::Full).await;
    harness.assert_matches_truth().await;
    let unchanged = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&unchanged), (0, 0, 0), "{unchanged:?}");

    harness.simulator.step_changes(600);
    let reports = harness.run(SyncMode::Full).await;
    assert!(totals(&reports).2 > 0, "{reports:?}");
    // Threads are deleted only with their ticket: the full run closes the children of deleted
    // tickets.
    let entities = by_entity(&reports);
    assert!(entities["ticket"].deleted > 0, "{reports:?}");
    assert!(entities["thread"].deleted > 0, "{reports:?}");
    harness.assert_matches_truth().await;
    let again = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&again), (0, 0, 0), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_faults_do_not_change_the_result() {
    let mut config = quiet_config(Connector::ZohoDesk, 23);
    config.change_mix = zoho_no_deletes();
    config.initial_records = [
        (Entity::Ticket, 200),
        (Entity::Contact, 80),
        (Entity::Thread, 250),
        (Entity::Comment, 120),
    ]
    .into();
    config.faults.rate_limit_rate = 0.1;
    config.faults.server_error_rate = 0.1;
    config.faults.token_expiry_rate = 0.05;
    config.faults.insert_while_paging_rate = 0.3;
    config.faults.insert_while_paging_count = 2;
    config.faults.eventual_consistency_lag_ms = 120_000;
    config.auth.rotate_refresh_tokens = true;
    let initial_refresh = config.auth.initial_refresh_token.clone();
    let harness = harness(config, AuthKind::OAuth, &format!("{ENTITIES}\npage_size = 40")).await;
    harness.run(SyncMode::Incremental).await;
    harness.simulator.step_changes(1_000);
    harness.run(SyncMode::Incremental).await;
    harness.simulator.advance_clock(Duration::from_secs(180));
    let last_run_started = harness.simulator.now_ms();
    harness.run(SyncMode::Incremental).await;
    // Comments edited without a ticket change wait for the full run below.
    harness.assert_matches_truth_except(Some(last_run_started), &["comment"]).await;
    let stats = harness.simulator.stats();
    assert!(stats.api.rate_limited > 0 && stats.api.server_errors > 0, "{:?}", stats.api);
    let stored = harness.state.token(SOURCE, REFRESH_TOKEN_NAME).await.unwrap();
    assert!(stored.is_some_and(|token| token != initial_refresh));
    let full_started = harness.simulator.now_ms();
    let full = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&full).2, 0, "{full:?}");
    // Threads and comments list the tickets again, after the ticket entity ran: tickets inserted
    // while those pages were read arrive with the next run.
    harness.assert_matches_truth_but_created_since(Some(full_started)).await;
}

/// Zoho's search pages only reach `from` 4999: an incremental window with 6,000 changed
/// tickets goes on in a second window instead of stopping at 5,000.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_search_window_of_6000_changed_tickets_is_split_without_loss() {
    let mut config = quiet_config(Connector::ZohoDesk, 23);
    config.change_mix = zoho_no_deletes();
    config.initial_records = [(Entity::Ticket, 6_000), (Entity::Contact, 5)].into();
    // Room for every request: 6,000 detail GETs per run (ticket rows are partial) and the pages.
    config.request_log_limit = 20_000;
    let harness = harness(config, AuthKind::OAuth, "entities = [\"ticket\"]").await;
    harness.run(SyncMode::Incremental).await;
    harness.simulator.advance_clock(Duration::from_secs(60));
    let ids: Vec<u64> = harness
        .simulator
        .truth(Entity::Ticket)
        .unwrap()
        .iter()
        .map(|ticket| ticket["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ids.len(), 6_000);
    for id in &ids {
        harness
            .simulator
            .apply_change(&syncline_simulator::ChangeRequest::Update {
                entity: Entity::Ticket,
                id: *id,
            })
            .unwrap();
        harness.simulator.advance_clock(Duration::from_millis(3));
    }
    let reports = harness.run(SyncMode::Incremental).await;
    let ticket = &by_entity(&reports)["ticket"];
    assert_eq!(ticket.method, "incremental");
    assert_eq!(ticket.new_versions, 6_000, "{reports:?}");
    harness.assert_matches_truth().await;
    let log = harness.simulator.request_log();
    assert_eq!(log.dropped, 0);
    let searches: Vec<_> = log
        .requests
        .into_iter()
        .filter(|request| request.path.ends_with("/tickets/search"))
        .collect();
    assert!(
        searches.iter().all(|request| request.status < 300),
        "no page past the cap was asked for"
    );
    let windows: std::collections::HashSet<String> = searches
        .iter()
        .flat_map(|request| {
            request
                .query
                .iter()
                .filter(|(name, _)| name == "modifiedTimeRange")
                .map(|(_, value)| value.clone())
        })
        .collect();
    assert!(windows.len() >= 2, "the listing moved to a second window: {windows:?}");
}
