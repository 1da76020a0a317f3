//! Hostile input never panics: arbitrary bytes and arbitrary JSON through webhook parsing (every
//! connector), the id checks, and record flattening. Runs briefly in the normal test suite
//! (`PROPTEST_CASES` raises the count for a longer fuzzing run).

use proptest::prelude::*;
use serde_json::{Map, Value};
use syncline_connectors::{parse_webhook, ConnectorKind};
use syncline_core::{flatten_record, parse_timestamp, NamingOptions};

const CONNECTORS: [ConnectorKind; 3] = [ConnectorKind::Pipedrive, ConnectorKind::ZohoDesk, ConnectorKind::Halopsa];

/// JSON values shaped like webhooks: objects with the keys the parsers look at, and hostile
/// leaves (huge numbers, multi-byte text, empty strings, deep nesting).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|number| serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)),
        ".{0,24}".prop_map(Value::String),
        prop_oneof![
            Just("2.0"),
            Just("1.0"),
            Just("deal"),
            Just("Ticket_Update"),
            Just("delete"),
            Just("é日本"),
            Just("9999-12-31T23:59:59Z"),
            Just("1/../../v1/users/1"),
            Just("")
        ]
        .prop_map(|text| Value::String(text.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        let keys = prop_oneof![
            Just("meta"),
            Just("data"),
            Just("current"),
            Just("previous"),
            Just("action"),
            Just("entity"),
            Just("object"),
            Just("id"),
            Just("entity_id"),
            Just("version"),
            Just("timestamp"),
            Just("eventType"),
            Just("payload"),
            Just("ticketId"),
            Just("event"),
            Just("custom_fields"),
            Just("x")
        ];
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((keys, inner), 0..6).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(key, value)| (key.to_string(), value))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn webhook_parsing_never_panics_on_bytes(body in prop::collection::vec(any::<u8>(), 0..512), header in prop::option::of(".{0,40}")) {
        for connector in CONNECTORS {
            let _ = parse_webhook(connector, "src", &body, header.as_deref(), i64::MAX);
            let _ = parse_webhook(connector, "src", &body, header.as_deref(), i64::MIN);
        }
    }

    #[test]
    fn webhook_parsing_never_panics_on_json(value in json_value()) {
        let body = serde_json::to_vec(&value).unwrap();
        for connector in CONNECTORS {
            if let Ok(parsed) = parse_webhook(connector, "src", &body, None, 1_700_000_000_000) {
                for event in parsed.events {
                    let spec = connector.entity(&event.entity).expect("events name known entities");
                    let _ = spec.detail_path_for(&event.id, event.parent_id.as_deref());
                }
            }
        }
    }

    #[test]
    fn flattening_never_panics(value in json_value()) {
        let _ = flatten_record(value, NamingOptions::default());
    }

    #[test]
    fn timestamps_never_panic(text in ".{0,40}") {
        let _ = parse_timestamp(&text);
    }
}
