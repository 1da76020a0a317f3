//! End-to-end reconciliation against the Zoho Desk simulator (tickets, contacts, agents,
//! departments, and threads and comments listed ticket by ticket): OAuth2 refresh with the
//! `Zoho-oauthtoken` header and `orgId`, `from`/`limit` paging with `204 No Content`, the
//! `/tickets/search` and `/contacts/search` since-filters, partial rows completed by detail
//! GETs, threads compared with the stored record, credits and the credit reserve, soft deletes,
//! faults.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{by_entity, harness, quiet_config, totals, AuthKind, SOURCE};
use serde_json::Value;
use syncline_connectors::http::REFRESH_TOKEN_NAME;
use syncline_connectors::reconcile::SyncMode;
use syncline_connectors::refetch::{apply_entity_events, coalesce, EventRun};
use syncline_connectors::webhook::parse_webhook;
use syncline_connectors::{ConnectorKind, HttpEngine, WriteLocks};
use syncline_simulator::{ChangeMix, ChangeRequest, Connector, Entity, RequestLogEntry};

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
    assert_eq!(entities["contact"].method, "incremental");
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

fn query_value<'a>(request: &'a RequestLogEntry, name: &str) -> Option<&'a str> {
    request.query.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
}

fn ids_of(entity: Entity, harness: &common::Harness) -> Vec<u64> {
    harness
        .simulator
        .truth(entity)
        .unwrap()
        .iter()
        .map(|record| record["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Zoho's credit pool is shared with the customer's other integrations: once what is left falls
/// under `credit_reserve`, the run stops, the current and every later entity are deferred (not
/// failed), and the run after the refill goes on from where it stopped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_credit_reserve_defers_the_rest_of_the_run_and_the_next_run_goes_on() {
    let mut config = quiet_config(Connector::ZohoDesk, 24);
    config.change_mix = zoho_no_deletes();
    config.initial_records = [
        (Entity::Department, 3),
        (Entity::Agent, 5),
        (Entity::Contact, 10),
        (Entity::Ticket, 20),
        (Entity::Thread, 60),
        (Entity::Comment, 20),
    ]
    .into();
    // A full run costs about 230 credits (every ticket and contact fetched by id, threads and
    // comments listed ticket by ticket); a day leaves 100 above the reserve, so it stops in the
    // threads.
    config.zoho_daily_credits = 300;
    let harness = harness(config, AuthKind::OAuth, &format!("{ENTITIES}\ncredit_reserve = 200")).await;
    let first = harness.run(SyncMode::Incremental).await;
    let outcomes: Vec<(&str, &str)> = first.iter().map(|report| (report.entity.as_str(), report.outcome())).collect();
    assert_eq!(
        outcomes,
        [
            ("department", "ok"),
            ("agent", "ok"),
            ("contact", "ok"),
            ("ticket", "ok"),
            ("thread", "deferred"),
            ("comment", "deferred"),
        ],
        "{first:?}"
    );
    let entities = by_entity(&first);
    assert!(entities["thread"].new_versions > 0, "the threads started: {first:?}");
    assert_eq!(entities["comment"].calls.calls, 0, "a later entity sends nothing: {first:?}");
    // The last request was sent with at least the reserve left, and cost at most a page.
    let left = harness.simulator.zoho_credits_left();
    assert!((197..200).contains(&left), "{left} credits left");
    assert_eq!(harness.simulator.stats().api.rate_limited, 0, "the pool was never run dry");
    // Still under the reserve the same day: a run learns the pool from its first answer and
    // defers everything after it.
    let waiting = harness.run(SyncMode::Incremental).await;
    assert!(
        waiting[1..].iter().all(|report| report.deferred && report.calls.calls == 0),
        "{waiting:?}"
    );
    assert!(harness.simulator.zoho_credits_left() + 3 >= left);

    // Each new day refills the pool and the run goes on where the last one stopped (the thread
    // listing resumes after the last ticket done), until nothing is deferred.
    harness.simulator.step_changes(10);
    let mut days = 0;
    loop {
        days += 1;
        assert!(days <= 5, "the run never caught up");
        harness.simulator.advance_clock(Duration::from_secs(86_400));
        let reports = harness.run(SyncMode::Incremental).await;
        assert!(
            reports.iter().any(|report| !report.deferred && report.calls.calls > 0),
            "{reports:?}"
        );
        if reports.iter().all(|report| !report.deferred) {
            let entities = by_entity(&reports);
            assert_eq!(entities["ticket"].method, "incremental");
            assert_eq!(entities["comment"].method, "full", "its first run finishes now");
            break;
        }
    }
    assert!(days >= 2, "a day of credits cannot pay for the rest of the first run");
    harness.assert_matches_truth().await;
    // Caught up, a day's run fits well inside the credits above the reserve.
    harness.simulator.advance_clock(Duration::from_secs(86_400));
    let settled = harness.run(SyncMode::Incremental).await;
    assert!(settled.iter().all(|report| !report.deferred), "{settled:?}");
    assert_eq!(totals(&settled).0, 0, "{settled:?}");
}

/// Contact list and search rows are partial, as the vendor serves them: the reconciler fetches
/// the detail of each new or changed contact, runs incrementally through `/contacts/search`
/// (modified-time windows) and lists every contact by `createdTime` in a full run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_contact_rows_are_partial_and_contacts_search_by_modified_time() {
    let mut config = quiet_config(Connector::ZohoDesk, 25);
    config.initial_records = [(Entity::Contact, 150), (Entity::Ticket, 5)].into();
    config.request_log_limit = 5_000;
    let harness = harness(config, AuthKind::OAuth, "entities = [\"contact\"]").await;
    let first = harness.run(SyncMode::Incremental).await;
    assert_eq!(
        (first[0].method.as_str(), first[0].fetched, first[0].new_versions),
        ("full", 150, 150)
    );
    harness.assert_matches_truth().await;
    let log = harness.simulator.request_log();
    let lists: Vec<&RequestLogEntry> = log.requests.iter().filter(|request| request.path.ends_with("/contacts")).collect();
    assert!(!lists.is_empty());
    for list in &lists {
        assert_eq!(query_value(list, "sortBy"), Some("createdTime"), "{:?}", list.query);
        for row in list.body["data"].as_array().into_iter().flatten() {
            let row = row.as_object().unwrap();
            for missing in ["modifiedTime", "description", "city", "country", "accountName"] {
                assert!(!row.contains_key(missing), "a contact list row carries {missing}: {row:?}");
            }
            assert!(row.contains_key("createdTime") && row.contains_key("email"));
        }
    }
    let details = log
        .requests
        .iter()
        .filter(|request| request.endpoint.ends_with("/contacts/{id}"))
        .count();
    assert_eq!(details, 150, "every new contact is fetched by id");
    let detail = log
        .requests
        .iter()
        .find(|request| request.endpoint.ends_with("/contacts/{id}"))
        .unwrap();
    assert!(
        detail.body["modifiedTime"].is_string() && detail.body.get("city").is_some(),
        "{}",
        detail.body
    );

    harness.simulator.advance_clock(Duration::from_secs(3_600));
    let changed: Vec<u64> = ids_of(Entity::Contact, &harness).into_iter().step_by(10).collect();
    for id in &changed {
        harness
            .simulator
            .apply_change(&ChangeRequest::Update {
                entity: Entity::Contact,
                id: *id,
            })
            .unwrap();
        harness.simulator.advance_clock(Duration::from_millis(5));
    }
    let before = harness.simulator.request_log().requests.len();
    let reports = harness.run(SyncMode::Incremental).await;
    let contact = &by_entity(&reports)["contact"];
    assert_eq!(contact.method, "incremental");
    assert_eq!(contact.new_versions, changed.len(), "{reports:?}");
    // Only what the window returns is fetched: the changed contacts, and those modified within
    // the lookback before the cursor (the newest seeded one at least).
    assert!(
        contact.fetched >= changed.len() && contact.fetched <= changed.len() + 3,
        "{reports:?}"
    );
    harness.assert_matches_truth().await;
    let log = harness.simulator.request_log();
    let searches: Vec<&RequestLogEntry> = log.requests[before..]
        .iter()
        .filter(|request| request.path.ends_with("/contacts/search"))
        .collect();
    assert!(!searches.is_empty());
    for search in &searches {
        assert_eq!(query_value(search, "sortBy"), Some("modifiedTime"));
        assert!(query_value(search, "modifiedTimeRange").is_some_and(|range| range.contains(',')));
        for row in search.body["data"].as_array().into_iter().flatten() {
            assert!(row["modifiedTime"].is_string() && row.get("city").is_none(), "{row}");
        }
    }
    assert!(
        !log.requests[before..].iter().any(|request| request.path.ends_with("/contacts")),
        "no full listing in an incremental run"
    );
    let again = harness.run(SyncMode::Incremental).await;
    assert_eq!(totals(&again).0, 0, "{again:?}");
}

/// A thread edit moves neither the thread's `createdTime` nor its ticket and sends no webhook:
/// the incremental run re-lists the threads of every changed ticket and compares each row with
/// the stored record, so the edited thread is written and the others cost no detail GET; the
/// full run compares every thread the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zoho_incremental_run_writes_an_edited_thread_of_a_changed_ticket() {
    let mut config = quiet_config(Connector::ZohoDesk, 26);
    config.initial_records = [(Entity::Ticket, 40), (Entity::Thread, 120), (Entity::Contact, 5)].into();
    config.request_log_limit = 5_000;
    let harness = harness(config, AuthKind::OAuth, "entities = [\"ticket\", \"thread\"]").await;
    harness.run(SyncMode::Incremental).await;
    harness.assert_matches_truth().await;
    let unchanged = harness.run(SyncMode::Full).await;
    assert_eq!(totals(&unchanged), (0, 0, 0), "{unchanged:?}");
    assert_eq!(
        by_entity(&unchanged)["thread"].fetched,
        0,
        "unchanged rows need no detail: {unchanged:?}"
    );

    let threads = harness.simulator.truth(Entity::Thread).unwrap();
    let thread_of = |index: usize| -> (u64, u64) {
        let thread = &threads[index];
        (
            thread["id"].as_str().unwrap().parse().unwrap(),
            thread["ticketId"].as_str().unwrap().parse().unwrap(),
        )
    };
    let (edited, ticket) = thread_of(0);
    harness.simulator.advance_clock(Duration::from_secs(60));
    harness
        .simulator
        .apply_change(&ChangeRequest::Update {
            entity: Entity::Thread,
            id: edited,
        })
        .unwrap();
    harness
        .simulator
        .apply_change(&ChangeRequest::Update {
            entity: Entity::Ticket,
            id: ticket,
        })
        .unwrap();
    harness.simulator.advance_clock(Duration::from_secs(60));
    let reports = harness.run(SyncMode::Incremental).await;
    let entities = by_entity(&reports);
    assert_eq!(entities["thread"].method, "incremental");
    assert_eq!((entities["thread"].new_versions, entities["thread"].fetched), (1, 1), "{reports:?}");
    harness.assert_matches_truth().await;

    // An edited thread of a ticket that did not change waits for the full run, which finds it.
    let (quiet_edit, quiet_ticket) = (1..threads.len()).map(thread_of).find(|(_, parent)| *parent != ticket).unwrap();
    harness
        .simulator
        .apply_change(&ChangeRequest::Update {
            entity: Entity::Thread,
            id: quiet_edit,
        })
        .unwrap();
    let _ = quiet_ticket;
    let full = harness.run(SyncMode::Full).await;
    let thread = &by_entity(&full)["thread"];
    assert_eq!((thread.new_versions, thread.fetched), (1, 1), "{full:?}");
    harness.assert_matches_truth().await;
    // Every ticket listing uses a sort `GET /tickets` offers.
    for request in harness.simulator.request_log().requests {
        if request.path.ends_with("/tickets") {
            let sort = query_value(&request, "sortBy").unwrap_or("createdTime");
            assert!(
                ["createdTime", "responseDueDate", "customerResponseTime"].contains(&sort.trim_start_matches('-')),
                "{sort}"
            );
            assert!(request.status < 300, "{request:?}");
        }
    }
}

/// A Zoho payload flagged `isTrashed` is a delete event; the worker closes the record only once
/// the API confirms it (404, or the flag on the detail), and keeps it while the API says alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zoho_payload_flagged_trashed_closes_the_record_once_confirmed() {
    let mut config = quiet_config(Connector::ZohoDesk, 27);
    config.initial_records = [(Entity::Ticket, 20), (Entity::Contact, 5)].into();
    let harness = harness(config, AuthKind::OAuth, "entities = [\"ticket\"]").await;
    harness.run(SyncMode::Full).await;
    let ticket = harness.simulator.truth(Entity::Ticket).unwrap()[3].clone();
    let id = ticket["id"].as_str().unwrap().to_string();
    let mut trashed = ticket.clone();
    trashed["isTrashed"] = Value::Bool(true);
    let body = serde_json::json!([{
        "eventType": "Ticket_Update",
        "eventTime": harness.simulator.now_ms().to_string(),
        "orgId": "298902",
        "payload": trashed,
    }]);
    let parsed = parse_webhook(
        ConnectorKind::ZohoDesk,
        SOURCE,
        &serde_json::to_vec(&body).unwrap(),
        None,
        harness.simulator.now_ms(),
    )
    .unwrap();
    assert_eq!(parsed.events.len(), 1);
    assert_eq!(parsed.events[0].action, syncline_core::EventAction::Delete);
    let engine = HttpEngine::new(SOURCE, &harness.config.sources[SOURCE], Arc::clone(&harness.state)).unwrap();
    let locks = WriteLocks::new();
    let run = EventRun {
        config: &harness.config,
        source: SOURCE,
        destination: harness.destination.as_ref(),
        state: harness.state.as_ref(),
        engine: &engine,
        locks: &locks,
    };
    let events = coalesce(&parsed.events);
    let active = |versions: &std::collections::HashMap<String, syncline_core::CurrentVersion>| versions[&id].end.is_none();

    // The API still returns the ticket: the flagged payload is refuted, nothing is closed.
    let refuted = apply_entity_events(&run, "ticket", &events, syncline_connectors::reconcile::wall_clock_ms())
        .await
        .unwrap();
    assert_eq!((refuted.refuted_deletes, refuted.confirmed_deletes), (1, 0), "{refuted:?}");
    let versions = harness
        .state
        .current_versions(SOURCE, "ticket", std::slice::from_ref(&id))
        .await
        .unwrap();
    assert!(active(&versions));
    harness.assert_matches_truth().await;

    // Trashed upstream (its detail answers 404): the same delivery now closes it.
    harness
        .simulator
        .apply_change(&ChangeRequest::Delete {
            entity: Entity::Ticket,
            id: id.parse().unwrap(),
        })
        .unwrap();
    let confirmed = apply_entity_events(&run, "ticket", &events, syncline_connectors::reconcile::wall_clock_ms())
        .await
        .unwrap();
    assert_eq!(confirmed.confirmed_deletes, 1, "{confirmed:?}");
    let versions = harness
        .state
        .current_versions(SOURCE, "ticket", std::slice::from_ref(&id))
        .await
        .unwrap();
    assert!(!active(&versions));
    harness.assert_matches_truth().await;
}
