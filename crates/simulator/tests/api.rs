//! Vendor API behaviour: exact pagination at the edges, since-filter inclusivity, auth.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::{client, config, start};
use serde_json::{json, Value};
use syncline_simulator::clock::{format_halo, format_rfc3339_millis, format_rfc3339_seconds};
use syncline_simulator::{ChangeRequest, Connector, Entity, SimulatorHandle};

const PAGE: usize = 5;
const EDGES: [usize; 4] = [0, 1, PAGE, PAGE + 1];

async fn simulator_with(connector: Connector, entity: Entity, count: usize) -> SimulatorHandle {
    let mut config = config(connector, 9);
    config.initial_records.insert(entity, count);
    start(config).await
}

fn ids_of(records: &[Value]) -> BTreeSet<String> {
    records
        .iter()
        .map(|record| record["id"].to_string().trim_matches('"').to_string())
        .collect()
}

#[tokio::test]
async fn pipedrive_v2_cursor_pagination_is_exact_at_the_edges() {
    for count in EDGES {
        let simulator = simulator_with(Connector::Pipedrive, Entity::Deal, count).await;
        let token = simulator.credentials().api_token.expect("api token");
        let mut cursor: Option<String> = None;
        let mut seen = Vec::new();
        let mut requests = 0;
        loop {
            let mut url = format!("{}/api/v2/deals?limit={PAGE}&api_token={token}", simulator.base_url());
            if let Some(cursor) = &cursor {
                url.push_str(&format!("&cursor={cursor}"));
            }
            let page: Value = client().get(url).send().await.expect("get").json().await.expect("json");
            requests += 1;
            seen.extend(page["data"].as_array().expect("data array").iter().cloned());
            match page["additional_data"]["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), count, "count {count}");
        assert_eq!(ids_of(&seen), ids_of(&simulator.truth(Entity::Deal).expect("truth")));
        assert_eq!(requests, if count > PAGE { 2 } else { 1 }, "count {count}");
        simulator.shutdown().await;
    }
}

#[tokio::test]
async fn pipedrive_v1_offset_pagination_is_exact_at_the_edges() {
    for count in EDGES {
        let simulator = simulator_with(Connector::Pipedrive, Entity::Person, count).await;
        let token = simulator.credentials().api_token.expect("api token");
        let mut start_at = 0;
        let mut seen = Vec::new();
        let mut requests = 0;
        loop {
            let url = format!("{}/api/v1/persons?start={start_at}&limit={PAGE}", simulator.base_url());
            let page: Value = client()
                .get(url)
                .header("x-api-token", &token)
                .send()
                .await
                .expect("get")
                .json()
                .await
                .expect("json");
            requests += 1;
            // An empty v1 page says `"data": null`, as upstream.
            if let Some(data) = page["data"].as_array() {
                seen.extend(data.iter().cloned());
            } else {
                assert!(page["data"].is_null());
            }
            let pagination = &page["additional_data"]["pagination"];
            if pagination["more_items_in_collection"] == json!(true) {
                start_at = pagination["next_start"].as_u64().expect("next_start") as usize;
            } else {
                assert!(pagination.get("next_start").is_none());
                break;
            }
        }
        assert_eq!(seen.len(), count, "count {count}");
        assert_eq!(requests, if count > PAGE { 2 } else { 1 });
        simulator.shutdown().await;
    }
}

async fn zoho_get(simulator: &SimulatorHandle, path: &str) -> reqwest::Response {
    let credentials = simulator.credentials();
    client()
        .get(format!("{}{path}", simulator.base_url()))
        .header("Authorization", format!("Zoho-oauthtoken {}", credentials.access_token))
        .header("orgId", credentials.org_id.unwrap_or_default())
        .send()
        .await
        .expect("get")
}

#[tokio::test]
async fn zoho_desk_from_limit_pagination_is_exact_at_the_edges() {
    for count in EDGES {
        let mut config = config(Connector::ZohoDesk, 9);
        config.initial_records.insert(Entity::Contact, count);
        let simulator = start(config).await;
        let mut from = 0;
        let mut seen = Vec::new();
        loop {
            let response = zoho_get(&simulator, &format!("/api/v1/contacts?from={from}&limit={PAGE}")).await;
            if response.status() == reqwest::StatusCode::NO_CONTENT {
                break;
            }
            let page: Value = response.json().await.expect("json");
            let data = page["data"].as_array().expect("data").clone();
            from += data.len();
            let short = data.len() < PAGE;
            seen.extend(data);
            if short {
                break;
            }
        }
        assert_eq!(seen.len(), count, "count {count}");
        assert_eq!(ids_of(&seen), ids_of(&simulator.truth(Entity::Contact).expect("truth")));
        simulator.shutdown().await;
    }
}

async fn halo_get(simulator: &SimulatorHandle, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", simulator.base_url()))
        .bearer_auth(simulator.credentials().access_token)
        .send()
        .await
        .expect("get")
}

#[tokio::test]
async fn halopsa_page_number_pagination_is_exact_at_the_edges() {
    for count in EDGES {
        let simulator = simulator_with(Connector::Halopsa, Entity::Quotation, count).await;
        let mut seen = Vec::new();
        let mut page_no = 1;
        loop {
            let page: Value = halo_get(
                &simulator,
                &format!("/api/Quotation?pageinate=true&page_size={PAGE}&page_no={page_no}"),
            )
            .await
            .json()
            .await
            .expect("json");
            assert_eq!(page["record_count"], json!(count));
            assert_eq!(page["page_no"], json!(page_no));
            let quotes = page["quotes"].as_array().expect("quotes").clone();
            if quotes.is_empty() {
                break;
            }
            seen.extend(quotes);
            if seen.len() >= count {
                break;
            }
            page_no += 1;
        }
        assert_eq!(seen.len(), count, "count {count}");
        assert_eq!(page_no, if count > PAGE { 2 } else { 1 });
        // `count` caps an unpaginated pull (the capped pull for entities without a since-filter).
        let capped: Value = halo_get(&simulator, "/api/Quotation?count=1&order=id&orderdesc=true")
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(capped["quotes"].as_array().expect("quotes").len(), count.min(1));
        assert_eq!(capped["record_count"], json!(count));
        simulator.shutdown().await;
    }
}

/// Creates three records one second apart and returns their creation times (epoch ms).
fn three_creations(simulator: &SimulatorHandle, entity: Entity) -> Vec<(u64, i64)> {
    (0..3)
        .map(|_| {
            simulator.advance_clock(Duration::from_secs(1));
            let event = simulator.apply_change(&ChangeRequest::Create { entity }).expect("create").remove(0);
            (event.id, event.at_ms)
        })
        .collect()
}

#[tokio::test]
async fn pipedrive_updated_since_is_inclusive_and_updated_until_exclusive() {
    let simulator = simulator_with(Connector::Pipedrive, Entity::Deal, 0).await;
    let token = simulator.credentials().api_token.expect("token");
    let created = three_creations(&simulator, Entity::Deal);
    let since = format_rfc3339_seconds(created[1].1);
    let until = format_rfc3339_seconds(created[2].1);
    let url = format!(
        "{}/api/v2/deals?updated_since={since}&updated_until={until}&api_token={token}",
        simulator.base_url()
    );
    let page: Value = client().get(url).send().await.expect("get").json().await.expect("json");
    let ids: Vec<u64> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|deal| deal["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, vec![created[1].0], "since is inclusive, until exclusive");
    let url = format!(
        "{}/api/v2/deals?updated_since={since}&sort_by=update_time&sort_direction=desc&api_token={token}",
        simulator.base_url()
    );
    let page: Value = client().get(url).send().await.expect("get").json().await.expect("json");
    let ids: Vec<u64> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|deal| deal["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, vec![created[2].0, created[1].0]);
    simulator.shutdown().await;
}

async fn pipedrive_get(simulator: &SimulatorHandle, query: &str) -> reqwest::Response {
    let token = simulator.credentials().api_token.expect("token");
    client()
        .get(format!("{}/api/v2/deals?{query}", simulator.base_url()))
        .header("x-api-token", token)
        .send()
        .await
        .expect("get")
}

async fn pipedrive_deals(simulator: &SimulatorHandle, query: &str) -> Vec<Value> {
    let response = pipedrive_get(simulator, query).await;
    assert_eq!(response.status(), 200, "{query}");
    let page: Value = response.json().await.expect("json");
    page["data"].as_array().expect("data").clone()
}

fn deal_ids(deals: &[Value]) -> Vec<u64> {
    deals.iter().map(|deal| deal["id"].as_u64().expect("id")).collect()
}

#[tokio::test]
async fn pipedrive_status_deleted_lists_deleted_and_merged_deals_for_thirty_days() {
    let mut config = config(Connector::Pipedrive, 9);
    config.initial_records.insert(Entity::Deal, 6);
    config.faults.eventual_consistency_lag_ms = 5_000;
    let simulator = start(config).await;
    let ids = deal_ids(&simulator.truth(Entity::Deal).expect("truth"));
    simulator.advance_clock(Duration::from_secs(60));
    let since = format_rfc3339_seconds(simulator.now_ms());
    let deleted = simulator
        .apply_change(&ChangeRequest::Delete {
            entity: Entity::Deal,
            id: ids[1],
        })
        .expect("delete")
        .remove(0);
    simulator.advance_clock(Duration::from_millis(1_500));
    simulator
        .apply_change(&ChangeRequest::Merge {
            entity: Entity::Deal,
            id: ids[3],
            into: ids[0],
        })
        .expect("merge");
    simulator
        .apply_change(&ChangeRequest::Update {
            entity: Entity::Deal,
            id: ids[2],
        })
        .expect("update");

    // Without a since-filter the list reads the current state: both deletes at once.
    let listed = pipedrive_deals(&simulator, "status=deleted").await;
    assert_eq!(deal_ids(&listed), vec![ids[1], ids[3]]);
    let first = &listed[0];
    assert_eq!(first["status"], json!("deleted"));
    assert_eq!(first["is_deleted"], json!(true));
    assert_eq!(first["update_time"], json!(format_rfc3339_seconds(deleted.at_ms)));
    let before = deleted.before.expect("the deal before the delete");
    assert_eq!(first["title"], before["title"]);
    assert_eq!(first["add_time"], before["add_time"]);
    // Omitted: every not-deleted deal; values combine.
    let live = deal_ids(&pipedrive_deals(&simulator, "").await);
    assert_eq!(live.len(), 4);
    assert!(!live.contains(&ids[1]) && !live.contains(&ids[3]));
    let open_and_deleted = deal_ids(&pipedrive_deals(&simulator, "status=open,deleted").await);
    assert_eq!(open_and_deleted.len(), 6);
    assert!(pipedrive_deals(&simulator, "status=won").await.is_empty());

    // The since-filter reads the lagging index: the deletes show once the lag has passed.
    let query = format!("status=deleted&updated_since={since}&sort_by=update_time&sort_direction=asc&limit=1");
    assert!(pipedrive_deals(&simulator, &query).await.is_empty(), "within the consistency lag");
    simulator.advance_clock(Duration::from_secs(6));
    let response = pipedrive_get(&simulator, &query).await;
    let page: Value = response.json().await.expect("json");
    assert_eq!(deal_ids(page["data"].as_array().expect("data")), vec![ids[1]]);
    let cursor = page["additional_data"]["next_cursor"].as_str().expect("a second page").to_string();
    let second = pipedrive_deals(&simulator, &format!("{query}&cursor={cursor}")).await;
    assert_eq!(deal_ids(&second), vec![ids[3]]);
    let later = format_rfc3339_seconds(deleted.at_ms + 1_000);
    let after_first = pipedrive_deals(&simulator, &format!("status=deleted&updated_since={later}")).await;
    assert_eq!(deal_ids(&after_first), vec![ids[3]], "updated_since applies to the delete time");

    // Unknown values are refused as the rest of the API refuses bad parameters.
    let response = pipedrive_get(&simulator, "status=all_not_deleted").await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["success"], json!(false));

    // Deleted deals drop out of the listing after 30 days.
    simulator.advance_clock(Duration::from_secs(30 * 86_400));
    assert!(pipedrive_deals(&simulator, "status=deleted").await.is_empty());
    simulator.shutdown().await;
}

#[tokio::test]
async fn zoho_modified_time_range_is_inclusive_at_both_ends() {
    let mut config = config(Connector::ZohoDesk, 9);
    config.initial_records.insert(Entity::Ticket, 0);
    config.initial_records.insert(Entity::Thread, 0);
    config.initial_records.insert(Entity::Comment, 0);
    let simulator = start(config).await;
    let created = three_creations(&simulator, Entity::Ticket);
    let range = format!("{},{}", format_rfc3339_millis(created[1].1), format_rfc3339_millis(created[2].1));
    let response = zoho_get(
        &simulator,
        &format!("/api/v1/tickets/search?modifiedTimeRange={range}&sortBy=-modifiedTime"),
    )
    .await;
    let page: Value = response.json().await.expect("json");
    let ids: Vec<String> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|t| t["id"].as_str().expect("id").to_string())
        .collect();
    assert_eq!(ids, vec![created[2].0.to_string(), created[1].0.to_string()]);
    assert_eq!(page["count"], json!(2));
    let empty = format!(
        "{},{}",
        format_rfc3339_millis(created[2].1 + 1),
        format_rfc3339_millis(created[2].1 + 5000)
    );
    let response = zoho_get(&simulator, &format!("/api/v1/tickets/search?modifiedTimeRange={empty}")).await;
    assert_eq!(response.status(), reqwest::StatusCode::NO_CONTENT);
    simulator.shutdown().await;
}

#[tokio::test]
async fn halo_datesearch_startdate_is_inclusive() {
    let simulator = simulator_with(Connector::Halopsa, Entity::Ticket, 0).await;
    let created = three_creations(&simulator, Entity::Ticket);
    let path = format!(
        "/api/Tickets?datesearch=last_update&startdate={}&enddate={}",
        format_halo(created[1].1),
        format_halo(created[2].1)
    );
    let page: Value = halo_get(&simulator, &path).await.json().await.expect("json");
    let ids: Vec<u64> = page["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| t["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, vec![created[1].0, created[2].0]);
    assert_eq!(page["record_count"], json!(2));
    simulator.shutdown().await;
}

async fn halo_ids(simulator: &SimulatorHandle, path: &str, key: &str) -> Vec<u64> {
    let response = halo_get(simulator, path).await;
    assert!(response.status().is_success(), "{path}: {}", response.status());
    let page: Value = response.json().await.expect("json");
    page[key]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["id"].as_u64().expect("id"))
        .collect()
}

/// Each list has exactly the since-filter HaloPSA documents for it, over its modified field.
#[tokio::test]
async fn halo_since_filters_are_the_documented_ones() {
    for (entity, key, filter) in [
        (
            Entity::Ticket,
            "tickets",
            "/api/Tickets?lastupdatefromdate={from}&lastupdatetodate={to}",
        ),
        (
            Entity::Ticket,
            "tickets",
            "/api/Tickets?datesearch=last_update&startdate={from}&enddate={to}",
        ),
        (
            Entity::Invoice,
            "invoices",
            "/api/Invoice?datesearch=last_modified&start_date={from}",
        ),
        (
            Entity::Client,
            "clients",
            "/api/Client?lastupdatefromdate={from}&lastupdatetodate={to}",
        ),
    ] {
        let simulator = simulator_with(Connector::Halopsa, entity, 0).await;
        let created = three_creations(&simulator, entity);
        let path = filter
            .replace("{from}", &format_halo(created[1].1))
            .replace("{to}", &format_halo(created[2].1));
        let ids = halo_ids(&simulator, &path, key).await;
        assert_eq!(ids, vec![created[1].0, created[2].0], "{path}");
        simulator.shutdown().await;
    }
    // What a list does not document, it ignores (as upstream ignores unknown parameters): the
    // ticket-style `startdate` on invoices, any date on quotations.
    let simulator = simulator_with(Connector::Halopsa, Entity::Invoice, 0).await;
    let created = three_creations(&simulator, Entity::Invoice);
    let since = format_halo(created[2].1);
    assert_eq!(
        halo_ids(&simulator, &format!("/api/Invoice?startdate={since}"), "invoices")
            .await
            .len(),
        3
    );
    let quotations = simulator.truth(Entity::Quotation).expect("truth").len();
    let path = format!("/api/Quotation?lastupdatefromdate={since}&datesearch=last_update_time&start_date={since}");
    assert_eq!(halo_ids(&simulator, &path, "quotes").await.len(), quotations);
    let response = halo_get(&simulator, &format!("/api/Invoice?datesearch=invoice_date&start_date={since}")).await;
    assert_eq!(
        response.status(),
        reqwest::StatusCode::BAD_REQUEST,
        "only last_modified is searched"
    );
    simulator.shutdown().await;

    // A tenant configured to ignore the client filter lists every client.
    let mut config = config(Connector::Halopsa, 9);
    config.halopsa_client_filter_ignored = true;
    let simulator = start(config).await;
    let created = three_creations(&simulator, Entity::Client);
    let all = simulator.truth(Entity::Client).expect("truth").len();
    let path = format!("/api/Client?lastupdatefromdate={}", format_halo(created[2].1));
    assert_eq!(halo_ids(&simulator, &path, "clients").await.len(), all);
    assert!(all > 3);
    simulator.shutdown().await;
}

#[tokio::test]
async fn wrong_credentials_get_the_vendors_401_bodies() {
    let pipedrive = start(config(Connector::Pipedrive, 1)).await;
    let response = client()
        .get(format!("{}/api/v2/deals?api_token=wrong", pipedrive.base_url()))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["success"], json!(false));
    assert_eq!(body["error"], json!("unauthorized access"));
    assert_eq!(body["errorCode"], json!(401));
    let response = client()
        .get(format!("{}/api/v1/users", pipedrive.base_url()))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401, "no credentials at all");
    let response = client()
        .get(format!("{}/api/v2/deals", pipedrive.base_url()))
        .bearer_auth("v1u:not-a-token")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401);
    pipedrive.shutdown().await;

    let zoho = start(config(Connector::ZohoDesk, 1)).await;
    let response = client()
        .get(format!("{}/api/v1/tickets", zoho.base_url()))
        .header("Authorization", "Zoho-oauthtoken 1000.wrong")
        .header("orgId", zoho.credentials().org_id.expect("org"))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.expect("json");
    assert_eq!(
        body,
        json!({"errorCode": "INVALID_OAUTH", "message": "The OAuth Token you provided is invalid."})
    );
    let response = client()
        .get(format!("{}/api/v1/tickets", zoho.base_url()))
        .header("Authorization", format!("Zoho-oauthtoken {}", zoho.credentials().access_token))
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 422, "orgId header is required");
    zoho.shutdown().await;

    let halo = start(config(Connector::Halopsa, 1)).await;
    let response = client()
        .get(format!("{}/api/Tickets", halo.base_url()))
        .bearer_auth("nope")
        .send()
        .await
        .expect("get");
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().expect("text").starts_with("Bearer"));
    let response = client()
        .post(halo.credentials().token_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=sim-client-id&client_secret=wrong&scope=all")
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.expect("json"), json!({"error": "invalid_client"}));
    halo.shutdown().await;
}

#[tokio::test]
async fn pipedrive_oauth_tokens_expire_and_rotated_refresh_tokens_are_refused() {
    let mut config = config(Connector::Pipedrive, 1);
    config.auth.access_token_lifetime_secs = Some(60);
    config.auth.rotate_refresh_tokens = true;
    let simulator = start(config).await;
    let credentials = simulator.credentials();
    let refresh = |token: String| {
        let credentials = credentials.clone();
        async move {
            client()
                .post(&credentials.token_url)
                .basic_auth(&credentials.client_id, Some(&credentials.client_secret))
                .body(format!("grant_type=refresh_token&refresh_token={token}"))
                .send()
                .await
                .expect("post")
        }
    };
    let response = refresh(credentials.refresh_token.clone().expect("refresh")).await;
    assert_eq!(response.status(), 200);
    let issued: Value = response.json().await.expect("json");
    let access = issued["access_token"].as_str().expect("access").to_string();
    let rotated = issued["refresh_token"].as_str().expect("refresh").to_string();
    assert_ne!(rotated, credentials.refresh_token.clone().expect("refresh"));
    assert_eq!(issued["expires_in"], json!(60));

    let deals = |token: String| {
        let url = format!("{}/api/v2/deals?limit=1", simulator.base_url());
        async move { client().get(url).bearer_auth(token).send().await.expect("get").status() }
    };
    assert_eq!(deals(access.clone()).await, 200);
    simulator.advance_clock(Duration::from_secs(60));
    assert_eq!(deals(access.clone()).await, 401, "expired after its lifetime");

    let response = refresh(credentials.refresh_token.clone().expect("refresh")).await;
    assert_eq!(response.status(), 400, "the rotated-out refresh token is refused");
    assert_eq!(response.json::<Value>().await.expect("json")["error"], json!("invalid_grant"));
    let response = refresh(rotated).await;
    assert_eq!(response.status(), 200, "the new refresh token works");
    let fresh = response.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(deals(fresh.clone()).await, 200);
    simulator.revoke_tokens(false);
    assert_eq!(deals(fresh).await, 401, "revoked");
    assert!(simulator.stats().tokens.rotated >= 2);
    simulator.shutdown().await;
}

#[tokio::test]
async fn zoho_refresh_does_not_rotate_by_default_and_refuses_rotated_tokens_when_rotating() {
    for rotate in [false, true] {
        let mut config = config(Connector::ZohoDesk, 1);
        config.auth.rotate_refresh_tokens = rotate;
        let simulator = start(config).await;
        let credentials = simulator.credentials();
        let url = |token: &str| {
            format!(
                "{}?refresh_token={token}&client_id={}&client_secret={}&grant_type=refresh_token",
                credentials.token_url, credentials.client_id, credentials.client_secret
            )
        };
        let initial = credentials.refresh_token.clone().expect("refresh");
        let first: Value = client().post(url(&initial)).send().await.expect("post").json().await.expect("json");
        assert_eq!(first["expires_in"], json!(3600));
        assert_eq!(first.get("refresh_token").is_some(), rotate);
        let second: Value = client().post(url(&initial)).send().await.expect("post").json().await.expect("json");
        if rotate {
            assert_eq!(second, json!({"error": "invalid_code"}));
        } else {
            assert!(second["access_token"].is_string());
        }
        // The new access token works for an hour of virtual time.
        let access = first["access_token"].as_str().expect("access");
        let status = |access: String| {
            let url = format!("{}/api/v1/agents", simulator.base_url());
            let org = credentials.org_id.clone().unwrap_or_default();
            async move {
                client()
                    .get(url)
                    .header("Authorization", format!("Zoho-oauthtoken {access}"))
                    .header("orgId", org)
                    .send()
                    .await
                    .expect("get")
                    .status()
            }
        };
        assert_eq!(status(access.to_string()).await, 200);
        simulator.advance_clock(Duration::from_secs(3600));
        assert_eq!(status(access.to_string()).await, 401);
        simulator.shutdown().await;
    }
}

#[tokio::test]
async fn halo_client_credentials_issue_tokens_that_expire() {
    let mut config = config(Connector::Halopsa, 1);
    config.auth.access_token_lifetime_secs = Some(30);
    let simulator = start(config).await;
    let credentials = simulator.credentials();
    let issued: Value = client()
        .post(&credentials.token_url)
        .body(format!(
            "grant_type=client_credentials&client_id={}&client_secret={}&scope=all",
            credentials.client_id, credentials.client_secret
        ))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(issued["token_type"], json!("Bearer"));
    assert_eq!(issued["expires_in"], json!(30));
    let token = issued["access_token"].as_str().expect("token").to_string();
    let status = || async {
        client()
            .get(format!("{}/api/Client", simulator.base_url()))
            .bearer_auth(&token)
            .send()
            .await
            .expect("get")
            .status()
    };
    assert_eq!(status().await, 200);
    simulator.advance_clock(Duration::from_secs(31));
    assert_eq!(status().await, 401);
    simulator.shutdown().await;
}

async fn pipedrive_v2(simulator: &SimulatorHandle, path: &str) -> reqwest::Response {
    let token = simulator.credentials().api_token.expect("token");
    client()
        .get(format!("{}/api/v2/{path}", simulator.base_url()))
        .header("x-api-token", token)
        .send()
        .await
        .expect("get")
}

#[tokio::test]
async fn pipedrive_deleted_persons_stay_listed_with_is_deleted_and_merged_ones_leave() {
    let mut config = config(Connector::Pipedrive, 11);
    config.initial_records.insert(Entity::Person, 6);
    let simulator = start(config).await;
    let ids: Vec<u64> = simulator
        .truth(Entity::Person)
        .expect("truth")
        .iter()
        .map(|person| person["id"].as_u64().expect("id"))
        .collect();
    simulator.advance_clock(Duration::from_secs(60));
    let since = format_rfc3339_seconds(simulator.now_ms());
    let deleted = simulator
        .apply_change(&ChangeRequest::Delete {
            entity: Entity::Person,
            id: ids[1],
        })
        .expect("delete")
        .remove(0);
    simulator.advance_clock(Duration::from_secs(1));
    let merge = simulator
        .apply_change(&ChangeRequest::Merge {
            entity: Entity::Person,
            id: ids[2],
            into: ids[0],
        })
        .expect("merge");
    let response = pipedrive_v2(&simulator, &format!("persons?updated_since={since}&limit=500")).await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.expect("json");
    let listed = page["data"].as_array().expect("data").clone();
    let soft = listed
        .iter()
        .find(|person| person["id"] == json!(ids[1]))
        .expect("the deleted person is listed");
    assert_eq!(soft["is_deleted"], json!(true));
    assert_eq!(soft["update_time"], json!(format_rfc3339_seconds(deleted.at_ms)));
    assert!(
        listed.iter().all(|person| person["id"] != json!(ids[2])),
        "the merged-away person leaves the list"
    );
    let survivor = listed
        .iter()
        .find(|person| person["id"] == json!(ids[0]))
        .expect("the survivor is listed");
    assert_eq!(survivor["update_time"], json!(format_rfc3339_seconds(merge[0].at_ms)));
    // Without a since-filter, only not-deleted persons.
    let all: Value = pipedrive_v2(&simulator, "persons?limit=500").await.json().await.expect("json");
    assert!(all["data"]
        .as_array()
        .expect("data")
        .iter()
        .all(|person| person["id"] != json!(ids[1])));
    // Details: the deleted one with is_deleted, the merged-away one 404.
    let detail: Value = pipedrive_v2(&simulator, &format!("persons/{}", ids[1]))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(detail["data"]["is_deleted"], json!(true));
    assert_eq!(pipedrive_v2(&simulator, &format!("persons/{}", ids[2])).await.status(), 404);
}

fn header_number(response: &reqwest::Response, name: &str) -> u64 {
    response.headers()[name].to_str().expect("ascii").parse().expect("a number")
}

#[tokio::test]
async fn zoho_desk_charges_credits_by_offset_tier_and_refills_daily() {
    const WEIGHT: &str = "x-rate-limit-request-weight-v3";
    const REMAINING: &str = "x-rate-limit-remaining-v3";
    let mut config = config(Connector::ZohoDesk, 9);
    config.zoho_daily_credits = 40;
    let simulator = start(config).await;
    let id = simulator.truth(Entity::Ticket).expect("truth")[0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    // A list page at offset 0 costs 3, a page past 2,000 costs 5 (an empty page too), a get by
    // id 1; both headers on every answer.
    let mut left = 40;
    for (path, weight) in [
        ("/api/v1/tickets?from=0&limit=10".to_string(), 3),
        ("/api/v1/tickets?from=2500&limit=10".to_string(), 5),
        ("/api/v1/tickets/search?from=10001&limit=10&sortBy=modifiedTime".to_string(), 10),
        (format!("/api/v1/tickets/{id}"), 1),
        (format!("/api/v1/tickets/{id}/threads?from=0&limit=10"), 3),
    ] {
        let response = zoho_get(&simulator, &path).await;
        left -= weight;
        assert!(
            response.status().is_success() || response.status() == 422,
            "{path}: {}",
            response.status()
        );
        if response.status() == 422 {
            // `from` past the search cap is refused (Zoho's 422 INVALID_DATA), and costs nothing.
            left += weight;
            assert_eq!(header_number(&response, WEIGHT), 0, "{path}");
        } else {
            assert_eq!(header_number(&response, WEIGHT), weight, "{path}");
        }
        assert_eq!(header_number(&response, REMAINING), left, "{path}");
    }
    assert_eq!(simulator.zoho_credits_left(), left);
    // Spend the rest of the day's pool: the request it cannot pay is a 429 with the wait until
    // the refill at midnight (UTC, virtual clock), charged nothing.
    while simulator.zoho_credits_left() >= 3 {
        let response = zoho_get(&simulator, "/api/v1/agents?from=0&limit=10").await;
        assert!(response.status().is_success());
    }
    let response = zoho_get(&simulator, "/api/v1/agents?from=0&limit=10").await;
    assert_eq!(response.status(), 429);
    let now = simulator.now_ms();
    let to_midnight = (86_400_000 - now.rem_euclid(86_400_000) + 999) / 1000;
    assert_eq!(header_number(&response, "retry-after"), to_midnight as u64);
    assert_eq!(header_number(&response, WEIGHT), 0);
    assert!(header_number(&response, REMAINING) < 3);
    // A detail still fits while a credit is left; then the next day refills the pool.
    simulator.advance_clock(Duration::from_secs(to_midnight as u64));
    let response = client()
        .get(format!("{}/api/v1/agents?from=0&limit=10", simulator.base_url()))
        .header("Authorization", format!("Zoho-oauthtoken {}", simulator.issue_access_token()))
        .header("orgId", simulator.credentials().org_id.unwrap_or_default())
        .send()
        .await
        .expect("get");
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(header_number(&response, REMAINING), 37);
    assert_eq!(simulator.stats().api.rate_limited, 1);
    simulator.shutdown().await;
}

#[tokio::test]
async fn zoho_tickets_list_sorts_only_as_the_vendor_documents() {
    let simulator = start(config(Connector::ZohoDesk, 9)).await;
    for sort in ["createdTime", "-createdTime", "responseDueDate", "customerResponseTime"] {
        let response = zoho_get(&simulator, &format!("/api/v1/tickets?sortBy={sort}&limit=5")).await;
        assert!(response.status().is_success(), "{sort}: {}", response.status());
    }
    for sort in ["modifiedTime", "-modifiedTime", "id", "ticketNumber", "dueDate"] {
        let response = zoho_get(&simulator, &format!("/api/v1/tickets?sortBy={sort}&limit=5")).await;
        // Refused as Zoho refuses a bad parameter: 422 `INVALID_DATA`.
        assert_eq!(response.status(), 422, "{sort}");
    }
    let page: Value = zoho_get(&simulator, "/api/v1/tickets?sortBy=createdTime&limit=100")
        .await
        .json()
        .await
        .expect("json");
    let created: Vec<&str> = page["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|row| row["createdTime"].as_str().expect("createdTime"))
        .collect();
    let mut sorted = created.clone();
    sorted.sort();
    assert_eq!(created, sorted);
    simulator.shutdown().await;
}
