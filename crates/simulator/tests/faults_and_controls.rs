//! API faults, eventual consistency, determinism, accounting and the `/_sim/` controls.

mod common;

use std::time::Duration;

use common::{client, config, start, Receiver};
use serde_json::{json, Value};
use syncline_simulator::clock::format_rfc3339_seconds;
use syncline_simulator::{ChangeRequest, Connector, Entity};

#[tokio::test]
async fn rate_limits_server_errors_and_outages_answer_as_configured() {
    let mut config = config(Connector::Pipedrive, 1);
    config.faults.rate_limit_rate = 1.0;
    config.faults.retry_after_secs = 7;
    let simulator = start(config).await;
    let url = format!("{}/api/v2/deals?api_token=sim-pipedrive-api-token", simulator.base_url());
    let response = client().get(&url).send().await.expect("get");
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(response.json::<Value>().await.expect("json")["errorCode"], json!(429));
    assert_eq!(simulator.stats().api.rate_limited, 1);
    assert_eq!(simulator.stats().api.cost, 0, "refused calls cost nothing");
    simulator.shutdown().await;

    let mut config = common::config(Connector::ZohoDesk, 1);
    config.faults.server_error_rate = 1.0;
    let simulator = start(config).await;
    let credentials = simulator.credentials();
    let response = client()
        .get(format!("{}/api/v1/tickets", simulator.base_url()))
        .header("Authorization", format!("Zoho-oauthtoken {}", credentials.access_token))
        .header("orgId", credentials.org_id.expect("org"))
        .send()
        .await
        .expect("get");
    assert!(response.status().is_server_error());
    simulator.shutdown().await;

    let simulator = start(common::config(Connector::Halopsa, 1)).await;
    let get = || async {
        client()
            .get(format!("{}/api/Client", simulator.base_url()))
            .bearer_auth(simulator.credentials().access_token)
            .send()
            .await
            .expect("get")
            .status()
    };
    assert_eq!(get().await, 200);
    client()
        .post(format!("{}/_sim/outage/start", simulator.base_url()))
        .send()
        .await
        .expect("post");
    assert_eq!(get().await, 503);
    simulator.set_outage(false);
    assert_eq!(get().await, 200);
    assert_eq!(simulator.stats().api.outage_rejections, 1);
    simulator.shutdown().await;
}

#[tokio::test]
async fn slow_responses_and_token_expiry_mid_run() {
    let mut config = config(Connector::Halopsa, 2);
    config.faults.slow_response_rate = 1.0;
    config.faults.slow_response_ms = 80;
    let simulator = start(config).await;
    let started = std::time::Instant::now();
    let status = client()
        .get(format!("{}/api/Tickets?count=1", simulator.base_url()))
        .bearer_auth(simulator.credentials().access_token)
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(80));
    simulator.shutdown().await;

    let mut config = common::config(Connector::Halopsa, 2);
    config.faults.token_expiry_rate = 1.0;
    let simulator = start(config).await;
    let status = client()
        .get(format!("{}/api/Tickets", simulator.base_url()))
        .bearer_auth(simulator.credentials().access_token)
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, 401, "the token expired early");
    assert_eq!(simulator.stats().tokens.rejected_expired, 1);
    simulator.shutdown().await;
}

#[tokio::test]
async fn since_filters_see_changes_only_after_the_consistency_lag() {
    let mut config = config(Connector::Pipedrive, 3);
    config.faults.eventual_consistency_lag_ms = 5_000;
    let simulator = start(config).await;
    let since = format_rfc3339_seconds(simulator.now_ms());
    simulator.advance_clock(Duration::from_secs(1));
    let event = simulator
        .apply_change(&ChangeRequest::Update {
            entity: Entity::Deal,
            id: 1,
        })
        .expect("update")
        .remove(0);
    let filtered = || async {
        let url = format!(
            "{}/api/v2/deals?updated_since={since}&api_token=sim-pipedrive-api-token",
            simulator.base_url()
        );
        let page: Value = client().get(url).send().await.expect("get").json().await.expect("json");
        page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|d| d["id"].as_u64().expect("id"))
            .collect::<Vec<_>>()
    };
    assert!(filtered().await.is_empty(), "not yet in the since-filter index");
    let detail: Value = client()
        .get(format!("{}/api/v2/deals/1?api_token=sim-pipedrive-api-token", simulator.base_url()))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(detail["data"], event.after.clone().expect("after"), "detail GETs see it at once");
    simulator.advance_clock(Duration::from_secs(5));
    assert_eq!(filtered().await, vec![1]);
    simulator.shutdown().await;
}

#[tokio::test]
async fn records_inserted_while_paging_shift_offset_pages() {
    let mut config = config(Connector::Pipedrive, 4);
    config.faults.insert_while_paging_rate = 1.0;
    config.faults.insert_while_paging_count = 2;
    config.initial_records.insert(Entity::Deal, 6);
    let simulator = start(config).await;
    let page = |start: usize| {
        let url = format!(
            "{}/api/v1/deals?start={start}&limit=3&sort=id%20DESC&api_token=sim-pipedrive-api-token",
            simulator.base_url()
        );
        async move { client().get(url).send().await.expect("get").json::<Value>().await.expect("json") }
    };
    let first = page(0).await;
    let second = page(3).await;
    let ids = |page: &Value| {
        page["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|d| d["id"].as_u64().expect("id"))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), vec![6, 5, 4]);
    // Two deals (7, 8) arrived before the second page: newest-first offsets now repeat 5 and 4.
    assert_eq!(ids(&second), vec![5, 4, 3]);
    assert_eq!(simulator.stats().api.inserted_while_paging, 2);
    assert_eq!(simulator.truth(Entity::Deal).expect("truth").len(), 8);
    simulator.shutdown().await;
}

#[tokio::test]
async fn the_same_seed_gives_the_same_records_changes_and_faults() {
    let run = || async {
        let mut config = config(Connector::Pipedrive, 42);
        config.faults.webhook_drop_rate = 0.3;
        config.faults.webhook_duplicate_rate = 0.2;
        let simulator = start(config).await;
        simulator.step_changes(50);
        let truth: Vec<Value> = Connector::Pipedrive
            .entities()
            .iter()
            .map(|entity| serde_json::to_value(simulator.versions(*entity).expect("versions")).expect("json"))
            .collect();
        let fates: Vec<Value> = simulator
            .webhook_log()
            .iter()
            .map(|entry| json!([entry.events, entry.fate]))
            .collect();
        simulator.shutdown().await;
        (truth, fates)
    };
    let (truth_a, fates_a) = run().await;
    let (truth_b, fates_b) = run().await;
    assert_eq!(truth_a, truth_b);
    assert_eq!(fates_a, fates_b);
    assert!(fates_a.iter().any(|fate| fate[1]["drop"] == json!(true)));
}

#[tokio::test]
async fn ground_truth_accounting_and_controls_over_http() {
    let receiver = Receiver::start(0).await;
    let mut config = config(Connector::Pipedrive, 5);
    config.webhooks.target_url = Some(receiver.url.clone());
    let simulator = start(config).await;
    let base = simulator.base_url();
    let http = client();
    let token = "api_token=sim-pipedrive-api-token";

    http.get(format!("{base}/api/v2/deals?{token}")).send().await.expect("list");
    http.get(format!("{base}/api/v2/deals/1?{token}")).send().await.expect("detail");
    http.get(format!("{base}/api/v1/users?{token}")).send().await.expect("users");
    let stats: Value = http
        .get(format!("{base}/_sim/stats"))
        .send()
        .await
        .expect("stats")
        .json()
        .await
        .expect("json");
    assert_eq!(stats["api"]["cost"], json!(10 + 1 + 20), "v2 list 10, detail 1, v1 list 20");
    assert_eq!(stats["api"]["endpoints"]["GET /api/v2/deals/{id}"]["calls"], json!(1));
    assert_eq!(stats["api"]["calls"], json!(3));

    let clock: Value = http
        .post(format!("{base}/_sim/clock/advance?seconds=90"))
        .send()
        .await
        .expect("advance")
        .json()
        .await
        .expect("json");
    assert_eq!(clock["now"], json!("2026-01-01T00:01:30.000Z"));
    let events: Value = http
        .post(format!("{base}/_sim/changes/step?count=4"))
        .send()
        .await
        .expect("step")
        .json()
        .await
        .expect("json");
    assert!(events.as_array().expect("events").len() >= 4);
    let applied: Value = http
        .post(format!("{base}/_sim/changes/apply"))
        .body(r#"{"action":"update","entity":"deal","id":3}"#)
        .send()
        .await
        .expect("apply")
        .json()
        .await
        .expect("json");
    assert_eq!(applied[0]["id"], json!(3));
    let bad = http
        .post(format!("{base}/_sim/changes/apply"))
        .body(r#"{"action":"update","entity":"ticket","id":3}"#)
        .send()
        .await
        .expect("apply");
    assert_eq!(bad.status(), 400);

    let truth: Value = http
        .get(format!("{base}/_sim/truth/deal"))
        .send()
        .await
        .expect("truth")
        .json()
        .await
        .expect("json");
    let deal_3 = truth
        .as_array()
        .expect("records")
        .iter()
        .find(|deal| deal["id"] == json!(3))
        .expect("deal 3")
        .clone();
    assert_eq!(deal_3, applied[0]["after"]);
    let versions: Value = http
        .get(format!("{base}/_sim/versions/deal"))
        .send()
        .await
        .expect("versions")
        .json()
        .await
        .expect("json");
    let history = versions
        .as_array()
        .expect("histories")
        .iter()
        .find(|h| h["id"] == json!(3))
        .expect("deal 3");
    let versions = history["versions"].as_array().expect("versions");
    assert!(versions.len() >= 2);
    let last = versions.last().expect("last");
    assert_eq!(last["record"], deal_3);
    assert_eq!(
        last["modified_ms"].as_i64().expect("ms") % 1000,
        0,
        "pipedrive modified times are whole seconds"
    );
    assert_eq!(
        http.get(format!("{base}/_sim/truth/ticket")).send().await.expect("get").status(),
        404
    );

    http.post(format!("{base}/_sim/webhooks/flush")).send().await.expect("flush");
    let log: Value = http
        .get(format!("{base}/_sim/webhooks"))
        .send()
        .await
        .expect("log")
        .json()
        .await
        .expect("json");
    assert!(log
        .as_array()
        .expect("log")
        .iter()
        .all(|entry| entry["status"] == json!("delivered")));
    assert_eq!(receiver.received().len(), log.as_array().expect("log").len());

    http.post(format!("{base}/_sim/tokens/revoke")).send().await.expect("revoke");
    let status = http
        .get(format!("{base}/api/v2/deals"))
        .bearer_auth(simulator.credentials().access_token)
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, 401);
    let credentials: Value = http
        .get(format!("{base}/_sim/credentials"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(credentials["api_token"], json!("sim-pipedrive-api-token"));
    simulator.shutdown().await;
}

#[tokio::test]
async fn the_background_generator_makes_changes_in_real_time() {
    let mut config = config(Connector::ZohoDesk, 6);
    config.changes_per_second = 200.0;
    config.realtime_clock = true;
    let simulator = start(config).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    let changes = simulator.stats().changes;
    assert!(changes.created + changes.updated + changes.deleted >= 5, "{changes:?}");
    simulator.shutdown().await;
}

#[tokio::test]
async fn the_request_log_keeps_each_served_request_with_its_body() {
    let mut config = config(Connector::Pipedrive, 3);
    config.request_log_limit = 2;
    let simulator = start(config).await;
    let base = simulator.base_url();
    let token = simulator.credentials().api_token.expect("token");
    for path in [
        "/api/v2/deals?limit=2&sort_by=update_time",
        "/api/v2/deals/1",
        "/api/v2/persons?limit=1&ids=1,2",
    ] {
        let response = client()
            .get(format!("{base}{path}"))
            .header("x-api-token", &token)
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 200, "{path}");
        // The body reaches the client unchanged by the logging.
        assert_eq!(response.json::<Value>().await.expect("json")["success"], json!(true));
    }
    let refused = client().get(format!("{base}/api/v2/deals")).send().await.expect("get");
    assert_eq!(refused.status(), 401);

    let log: Value = client()
        .get(format!("{base}/_sim/requests"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(log["limit"], json!(2));
    assert_eq!(log["dropped"], json!(1), "{log}");
    let requests = log["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 2, "refused requests are not logged: {log}");
    let detail = &requests[0];
    assert_eq!(detail["sequence"], json!(2));
    assert_eq!(detail["endpoint"], json!("/api/v2/deals/{id}"));
    assert_eq!(detail["status"], json!(200));
    assert_eq!(detail["body"]["data"]["id"], json!(1));
    let persons = &requests[1];
    assert_eq!(persons["method"], json!("GET"));
    assert_eq!(persons["path"], json!("/api/v2/persons"));
    assert_eq!(persons["query"], json!([["limit", "1"], ["ids", "1,2"]]));
    assert_eq!(persons["body"]["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(simulator.request_log().requests.len(), 2);

    let cleared: Value = client()
        .delete(format!("{base}/_sim/requests"))
        .send()
        .await
        .expect("delete")
        .json()
        .await
        .expect("json");
    assert_eq!(cleared["requests"], json!([]));
    simulator.shutdown().await;

    // Off by default: nothing is kept.
    let simulator = start(common::config(Connector::Halopsa, 3)).await;
    let status = client()
        .get(format!("{}/api/Client", simulator.base_url()))
        .bearer_auth(simulator.credentials().access_token)
        .send()
        .await
        .expect("get")
        .status();
    assert_eq!(status, 200);
    let log = simulator.request_log();
    assert_eq!((log.limit, log.requests.len()), (0, 0));
    simulator.shutdown().await;
}
