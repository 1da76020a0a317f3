//! Webhook verification and parsing against real vendor payloads (`shared/fixtures/`) and
//! against every delivery the simulator builds, signed and authenticated as it sends them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use http::{HeaderMap, HeaderName, HeaderValue};
use syncline_connectors::webhook::{parse_webhook, verify, ParsedWebhook, WebhookVerification};
use syncline_connectors::zoho_desk::jwt::{verify_token, Jwks, JwtError};
use syncline_connectors::{ConnectorKind, Secret};
use syncline_core::{parse_timestamp, EventAction, Millis};
use syncline_simulator::world::{ChangeEvent, World};
use syncline_simulator::{webhooks, ChangeAction, Connector, HaloWebhookAuth, PipedriveWebhookVersion, SimulatorConfig};

const RECEIVED_AT: Millis = 1_800_000_000_000;

fn fixtures_dir() -> PathBuf {
    match std::env::var("SYNCLINE_FIXTURES") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures"),
    }
}

fn fixture_bytes(relative: &str) -> Vec<u8> {
    let path = fixtures_dir().join(relative);
    std::fs::read(&path).unwrap_or_else(|error| panic!("read {}: {error}", path.display()))
}

fn parse_fixture(relative: &str) -> ParsedWebhook {
    parse_webhook(ConnectorKind::Pipedrive, "pipedrive", &fixture_bytes(relative), None, RECEIVED_AT)
        .unwrap_or_else(|error| panic!("{relative}: {error}"))
}

fn summary(parsed: &ParsedWebhook) -> Vec<(String, String, EventAction, Millis)> {
    parsed
        .events
        .iter()
        .map(|event| (event.entity.clone(), event.id.clone(), event.action, event.event_time))
        .collect()
}

fn one(entity: &str, id: &str, action: EventAction, time: Millis) -> Vec<(String, String, EventAction, Millis)> {
    vec![(entity.to_string(), id.to_string(), action, time)]
}

fn rfc(text: &str) -> Millis {
    parse_timestamp(text).unwrap_or_else(|| panic!("timestamp {text}"))
}

#[test]
fn every_pipedrive_webhook_fixture_parses_to_its_event() {
    use EventAction::{Delete, Upsert};
    // (file, entity, id, action, event time, delivery id)
    let expected: &[(&str, &str, &str, EventAction, Millis, &str)] = &[
        (
            "pipedrive/v1_webhook_deal_create.json",
            "deal",
            "1347",
            Upsert,
            1_531_235_094_634,
            "pipedrive-v1:13311:added.deal:1347:1531235094634900",
        ),
        (
            "pipedrive/v1_webhook_deal_update.json",
            "deal",
            "1315",
            Upsert,
            1_530_689_875_430,
            "pipedrive-v1:13310:updated.deal:1315:1530689875430300",
        ),
        (
            "pipedrive/v1_webhook_organization_create.json",
            "organization",
            "999",
            Upsert,
            1_564_408_513_394,
            "pipedrive-v1:69112:added.organization:999:1564408513394952",
        ),
        (
            "pipedrive/v1_webhook_person_update.json",
            "person",
            "622",
            Upsert,
            1_571_751_598_776,
            "pipedrive-v1:88161:updated.person:622:1571751598776014",
        ),
        (
            "pipedrive/v1_webhook_updated_deal_2024_trimmed.json",
            "deal",
            "49",
            Upsert,
            1_723_793_131_829,
            "pipedrive-v1:520458:updated.deal:49:1723793131829509",
        ),
        (
            "pipedrive/v2_webhook_change_deal.json",
            "deal",
            "8",
            Upsert,
            rfc("2022-11-24T15:11:55.724Z"),
            "pipedrive-v2:deal:8:change:2022-11-24T15:11:55.724Z:df47d877-b58c-4886-91cd-1aa83e1d7366",
        ),
        (
            "pipedrive/v2_webhook_change_organization.json",
            "organization",
            "1",
            Upsert,
            rfc("2022-11-24T15:21:23.152Z"),
            "pipedrive-v2:organization:1:change:2022-11-24T15:21:23.152Z:ea17c64f-ec7e-4e47-a321-5d84b7735fef",
        ),
        (
            "pipedrive/v2_webhook_change_person.json",
            "person",
            "8",
            Upsert,
            rfc("2022-11-24T15:18:35.616Z"),
            "pipedrive-v2:person:8:change:2022-11-24T15:18:35.616Z:7c812ffd-8f50-45ea-a597-b8fcba2da9c0",
        ),
        (
            "pipedrive/v2_webhook_change_pipeline.json",
            "pipeline",
            "9",
            Upsert,
            rfc("2024-09-02T10:28:29.173Z"),
            "pipedrive-v2:pipeline:9:change:2024-09-02T10:28:29.173Z:5c005fea-d653-4bed-a843-a9df3faf0421",
        ),
        (
            "pipedrive/v2_webhook_create_deal.json",
            "deal",
            "8",
            Upsert,
            rfc("2022-11-24T13:18:56.089Z"),
            "pipedrive-v2:deal:8:create:2022-11-24T13:18:56.089Z:71825ee0-0054-4267-b5fd-d28b7a414212",
        ),
        (
            "pipedrive/v2_webhook_delete_deal.json",
            "deal",
            "8",
            Delete,
            rfc("2022-11-24T15:16:53.335Z"),
            "pipedrive-v2:deal:8:delete:2022-11-24T15:16:53.335Z:a66e9392-fe41-4425-9bef-a1d32bf2df8c",
        ),
        (
            "pipedrive/v2_webhook_delete_organization.json",
            "organization",
            "1",
            Delete,
            rfc("2022-11-24T15:22:17.705Z"),
            "pipedrive-v2:organization:1:delete:2022-11-24T15:22:17.705Z:ae06c983-cc11-496f-86aa-45cc24f60695",
        ),
        (
            "pipedrive/v2_webhook_delete_stage.json",
            "stage",
            "48",
            Delete,
            rfc("2024-09-02T10:37:51.404Z"),
            "pipedrive-v2:stage:48:delete:2024-09-02T10:37:51.404Z:e4a9b8c4-af1e-4e26-a84e-a47d72266c13",
        ),
        // A user "delete" is a change with active_flag false: an upsert; the re-fetch sees it.
        (
            "pipedrive/v2_webhook_user_deleted_is_change_active_flag_false.json",
            "user",
            "15702024",
            Upsert,
            1_669_304_802_000,
            "pipedrive-v2:user:15702024:change:1669304802:15702024",
        ),
    ];
    let on_disk: Vec<String> = std::fs::read_dir(fixtures_dir().join("pipedrive"))
        .expect("fixtures dir")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains("_webhook_") && name.ends_with(".json"))
        .map(|name| format!("pipedrive/{name}"))
        .collect();
    for file in &on_disk {
        assert!(
            expected.iter().any(|(name, ..)| name == file),
            "webhook fixture {file} has no expectation here; add one"
        );
    }
    for (file, entity, id, action, time, delivery) in expected {
        let parsed = parse_fixture(file);
        assert_eq!(summary(&parsed), one(entity, id, *action, *time), "{file}");
        assert_eq!(parsed.delivery_id, *delivery, "{file}");
        assert!(parsed.unknown_entities.is_empty(), "{file}");
        assert!(parsed
            .events
            .iter()
            .all(|event| event.source == "pipedrive" && event.delivery_id == *delivery));
    }
}

#[test]
fn a_retried_v1_fixture_keeps_its_delivery_id() {
    let mut body: serde_json::Value = serde_json::from_slice(&fixture_bytes("pipedrive/v1_webhook_deal_update.json")).unwrap();
    let first = parse_webhook(
        ConnectorKind::Pipedrive,
        "pd",
        &serde_json::to_vec(&body).unwrap(),
        None,
        RECEIVED_AT,
    )
    .unwrap();
    body["retry"] = serde_json::json!(2);
    let retried = parse_webhook(
        ConnectorKind::Pipedrive,
        "pd",
        &serde_json::to_vec(&body).unwrap(),
        None,
        RECEIVED_AT,
    )
    .unwrap();
    assert_eq!(first.delivery_id, retried.delivery_id);
}

#[test]
fn non_webhook_fixtures_are_refused() {
    // A list page is JSON but not a webhook: 400, not a panic or a silent ack.
    for (connector, file) in [
        (ConnectorKind::Pipedrive, "pipedrive/v2_deals_list_page.json"),
        (ConnectorKind::ZohoDesk, "zoho_desk/oauth_refresh_token_response.json"),
        (ConnectorKind::Halopsa, "halopsa/attachment_upload_response.json"),
    ] {
        let result = parse_webhook(connector, "s", &fixture_bytes(file), None, RECEIVED_AT);
        assert!(result.is_err(), "{file}: {result:?}");
    }
}

fn header_map(pairs: &[(String, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    map
}

fn connector_kind(connector: Connector) -> ConnectorKind {
    match connector {
        Connector::Pipedrive => ConnectorKind::Pipedrive,
        Connector::ZohoDesk => ConnectorKind::ZohoDesk,
        Connector::Halopsa => ConnectorKind::Halopsa,
    }
}

fn expected_action(event: &ChangeEvent) -> EventAction {
    match (event.action, &event.after) {
        (ChangeAction::Delete, _) | (_, None) => EventAction::Delete,
        _ => EventAction::Upsert,
    }
}

/// Builds `changes` random changes in a simulator world, renders every delivery as the
/// simulator would send it (attempt 1 and a retry), verifies and parses it, and checks the
/// events against the change events.
/// Returns how many events were seen per entity name and per change action (`Merge`, ...).
/// Builds the simulator's deliveries for `changes` changes, checks each with `verification`
/// (`None`: the caller checks them, as Zoho Desk's JWT needs keys) and parses them.
fn round_trip(config: SimulatorConfig, verification: Option<&WebhookVerification>, changes: usize) -> BTreeMap<String, usize> {
    let connector = config.connector;
    let mut world = World::new(config.clone()).expect("world");
    let events = world.step_changes(changes);
    assert!(!events.is_empty());
    let by_sequence: BTreeMap<u64, &ChangeEvent> = events.iter().map(|event| (event.sequence, event)).collect();
    let deliveries = webhooks::build(&mut world, &events);
    let now = world.ctx.now_ms();
    let mut seen = BTreeMap::new();
    for outgoing in &deliveries {
        let (body, headers) = webhooks::render_attempt(&config, outgoing, 1);
        let headers = header_map(&headers);
        if let Some(verification) = verification {
            verify(verification, &headers, &body, now).unwrap_or_else(|error| panic!("{connector:?} delivery refused: {error}"));
        }
        let parsed = parse_webhook(connector_kind(connector), "sim", &body, None, now).expect("simulator delivery parses");
        assert!(parsed.unknown_entities.is_empty(), "{:?}", parsed.unknown_entities);
        let got: Vec<(String, String, EventAction)> = parsed
            .events
            .iter()
            .map(|event| (event.entity.clone(), event.id.clone(), event.action))
            .collect();
        let want: Vec<(String, String, EventAction)> = outgoing
            .events
            .iter()
            .flat_map(|reference| {
                let event = by_sequence[&reference.sequence];
                let own = (
                    reference.entity.name().to_string(),
                    reference.id.to_string(),
                    expected_action(event),
                );
                // A v2 merged-away record's delivery names its survivor (`merged_to_id`),
                // which is re-fetched too.
                let survivor = event
                    .merged_into
                    .filter(|_| connector == Connector::Pipedrive && config.webhooks.pipedrive_version == PipedriveWebhookVersion::V2)
                    .map(|into| (reference.entity.name().to_string(), into.to_string(), EventAction::Upsert));
                std::iter::once(own).chain(survivor)
            })
            .collect();
        assert_eq!(got, want, "{connector:?} body {}", String::from_utf8_lossy(&body));
        for (parsed_event, reference) in parsed.events.iter().zip(&outgoing.events) {
            let at_ms = by_sequence[&reference.sequence].at_ms;
            // Pipedrive v2 user webhooks carry whole seconds; everything else milliseconds.
            let want_time = if connector == Connector::Pipedrive
                && reference.entity.name() == "user"
                && config.webhooks.pipedrive_version == PipedriveWebhookVersion::V2
            {
                at_ms / 1000 * 1000
            } else {
                at_ms
            };
            assert_eq!(parsed_event.event_time, want_time, "{connector:?} {}", reference.entity.name());
            *seen.entry(reference.entity.name().to_string()).or_insert(0) += 1;
            *seen.entry(format!("{:?}", reference.action)).or_insert(0) += 1;
        }
        // A retry is the same delivery where the vendor gives an id (Pipedrive).
        let (retry_body, retry_headers) = webhooks::render_attempt(&config, outgoing, 2);
        if let Some(verification) = verification {
            verify(verification, &header_map(&retry_headers), &retry_body, now).expect("retry verifies");
        }
        let retried = parse_webhook(connector_kind(connector), "sim", &retry_body, None, now).expect("retry parses");
        assert_eq!(retried.delivery_id, parsed.delivery_id);
        // A tampered body does not verify where the body is signed.
        if let Some(verification @ WebhookVerification::Hmac(_)) = verification {
            let mut tampered = body.clone();
            tampered.push(b' ');
            assert!(verify(verification, &headers, &tampered, now).is_err());
        }
    }
    seen
}

fn pipedrive_verification(config: &SimulatorConfig) -> WebhookVerification {
    let auth = config.webhooks.pipedrive_basic_auth.clone().expect("basic auth");
    WebhookVerification::Basic {
        username: auth.username,
        password: Secret::new(auth.password),
    }
}

#[test]
fn simulator_pipedrive_v2_deliveries_verify_and_parse() {
    let mut config = SimulatorConfig::for_connector(Connector::Pipedrive);
    config.seed = 21;
    let verification = pipedrive_verification(&config);
    let seen = round_trip(config, Some(&verification), 400);
    for key in ["deal", "person", "organization", "user", "Merge", "Delete", "Deactivate"] {
        assert!(seen.contains_key(key), "no {key} event in {seen:?}");
    }
}

#[test]
fn simulator_pipedrive_v1_deliveries_verify_and_parse() {
    let mut config = SimulatorConfig::for_connector(Connector::Pipedrive);
    config.seed = 22;
    config.webhooks.pipedrive_version = PipedriveWebhookVersion::V1;
    let verification = pipedrive_verification(&config);
    let seen = round_trip(config, Some(&verification), 400);
    for key in ["deal", "person", "Merge", "Delete"] {
        assert!(seen.contains_key(key), "no {key} event in {seen:?}");
    }
}

#[test]
fn simulator_pipedrive_wrong_password_is_refused() {
    let config = SimulatorConfig::for_connector(Connector::Pipedrive);
    let mut world = World::new(config.clone()).expect("world");
    let events = world.step_changes(3);
    let deliveries = webhooks::build(&mut world, &events);
    let (body, headers) = webhooks::render_attempt(&config, &deliveries[0], 1);
    let wrong = WebhookVerification::Basic {
        username: "sim-webhook-user".into(),
        password: Secret::new("not-the-password"),
    };
    assert!(verify(&wrong, &header_map(&headers), &body, 0).is_err());
}

#[test]
fn simulator_zoho_desk_deliveries_verify_and_parse() {
    let mut config = SimulatorConfig::for_connector(Connector::ZohoDesk);
    config.seed = 23;
    config.webhooks.zoho_max_events_per_delivery = 4;
    let seen = round_trip(config.clone(), None, 300);
    for entity in ["ticket", "contact", "thread", "comment", "Delete"] {
        assert!(seen.contains_key(entity), "no {entity} event in {seen:?}");
    }
    // The body carries no signature: a delivery is authenticated by the JWT the engine adds per
    // attempt, and only by it.
    let mut world = World::new(config.clone()).expect("world");
    let events = world.step_changes(2);
    let deliveries = webhooks::build(&mut world, &events);
    let (_, headers) = webhooks::render_attempt(&config, &deliveries[0], 1);
    assert!(
        headers.iter().all(|(name, _)| name == "content-type"),
        "no hmac or other header: {headers:?}"
    );
    let signer = syncline_simulator::zoho_desk::jwt::ZohoSigner::default();
    let token = signer.token(&config.auth.zoho_org_id, &config.webhooks.zoho_webhook_id);
    let keys = Jwks::parse(signer.jwks().to_string().as_bytes()).expect("jwks");
    let now = syncline_connectors::reconcile::wall_clock_ms();
    assert_eq!(
        verify_token(&token, &keys, &config.auth.zoho_org_id, &config.webhooks.zoho_webhook_id, now),
        Ok(())
    );
    assert_eq!(
        verify_token(&token, &keys, &config.auth.zoho_org_id, "another-webhook", now),
        Err(JwtError::WrongAudience)
    );
}

#[test]
fn simulator_halopsa_deliveries_verify_and_parse() {
    let mut config = SimulatorConfig::for_connector(Connector::Halopsa);
    config.seed = 24;
    let verification = WebhookVerification::Basic {
        username: "sim-halo-webhook-user".into(),
        password: Secret::new("sim-halo-webhook-password"),
    };
    let seen = round_trip(config.clone(), Some(&verification), 300);
    for entity in ["ticket", "invoice", "quotation", "Delete"] {
        assert!(seen.contains_key(entity), "no {entity} event in {seen:?}");
    }

    config.webhooks.halopsa_auth = HaloWebhookAuth::Header {
        name: "X-Halo-Secret".into(),
        value: "s3cret".into(),
    };
    let verification = WebhookVerification::Header {
        header: "X-Halo-Secret".into(),
        value: Secret::new("s3cret"),
    };
    round_trip(config.clone(), Some(&verification), 50);
    let wrong = WebhookVerification::Header {
        header: "X-Halo-Secret".into(),
        value: Secret::new("s3cret-not"),
    };
    let mut world = World::new(config.clone()).expect("world");
    let events = world.step_changes(2);
    let deliveries = webhooks::build(&mut world, &events);
    let (body, headers) = webhooks::render_attempt(&config, &deliveries[0], 1);
    assert!(verify(&wrong, &header_map(&headers), &body, 0).is_err());
}

#[test]
fn v2_merges_close_the_merged_away_record_and_refetch_the_survivor() {
    let mut body: serde_json::Value = serde_json::from_slice(&fixture_bytes("pipedrive/v2_webhook_delete_organization.json")).unwrap();
    let time = rfc(body["meta"]["timestamp"].as_str().unwrap());
    let merged_away = body["meta"]["entity_id"].as_str().unwrap().to_string();
    body["meta"]["merged_to_id"] = serde_json::json!("77");
    let parsed = parse_webhook(
        ConnectorKind::Pipedrive,
        "pd",
        &serde_json::to_vec(&body).unwrap(),
        None,
        RECEIVED_AT,
    )
    .unwrap();
    assert_eq!(
        summary(&parsed),
        vec![
            ("organization".to_string(), merged_away.clone(), EventAction::Delete, time),
            ("organization".to_string(), "77".to_string(), EventAction::Upsert, time),
        ]
    );
    // The survivor's own delivery naming the records merged into it.
    let mut survivor: serde_json::Value = serde_json::from_slice(&fixture_bytes("pipedrive/v2_webhook_change_organization.json")).unwrap();
    let survivor_id = survivor["meta"]["entity_id"].as_str().unwrap().to_string();
    let survivor_time = rfc(survivor["meta"]["timestamp"].as_str().unwrap());
    survivor["meta"]["merged_from_id"] = serde_json::json!([5, "6", survivor_id.clone()]);
    let parsed = parse_webhook(
        ConnectorKind::Pipedrive,
        "pd",
        &serde_json::to_vec(&survivor).unwrap(),
        None,
        RECEIVED_AT,
    )
    .unwrap();
    assert_eq!(
        summary(&parsed),
        vec![
            ("organization".to_string(), "5".to_string(), EventAction::Delete, survivor_time),
            ("organization".to_string(), "6".to_string(), EventAction::Delete, survivor_time),
            ("organization".to_string(), survivor_id, EventAction::Upsert, survivor_time),
        ]
    );
}

#[test]
fn v2_delivery_ids_keep_retries_and_separate_later_changes_with_the_same_meta_id() {
    let original: serde_json::Value =
        serde_json::from_slice(&fixture_bytes("pipedrive/v2_webhook_user_deleted_is_change_active_flag_false.json")).unwrap();
    let parse = |body: &serde_json::Value| {
        parse_webhook(
            ConnectorKind::Pipedrive,
            "pd",
            &serde_json::to_vec(body).unwrap(),
            None,
            RECEIVED_AT,
        )
        .unwrap()
    };
    let first = parse(&original);
    let mut retry = original.clone();
    retry["meta"]["attempt"] = serde_json::json!(3);
    assert_eq!(parse(&retry).delivery_id, first.delivery_id, "a retry keeps its delivery id");
    let mut later = original.clone();
    later["meta"]["timestamp"] = serde_json::json!(original["meta"]["timestamp"].as_i64().unwrap() + 60);
    let later = parse(&later);
    assert_ne!(later.delivery_id, first.delivery_id, "a later change with the same meta.id is new");
    assert!(later.events[0].event_time > first.events[0].event_time);
    // Without meta.timestamp, data.update_time tells changes apart.
    let mut no_stamp: serde_json::Value = serde_json::from_slice(&fixture_bytes("pipedrive/v2_webhook_change_person.json")).unwrap();
    no_stamp["meta"].as_object_mut().unwrap().remove("timestamp");
    let mut newer = no_stamp.clone();
    newer["data"]["update_time"] = serde_json::json!("2030-01-01T00:00:00Z");
    assert_ne!(parse(&no_stamp).delivery_id, parse(&newer).delivery_id);
}
