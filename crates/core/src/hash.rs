//! The row hash: a stable fingerprint of a record's content.
//!
//! Algorithm (documented in `docs/history-tables.md`): take the flattened record, drop the
//! fields whose value is null, order the rest by column name (UTF-8 byte order), and write them
//! as one compact JSON object, `{"name":value,...}`, where lists are their JSON text as a string
//! and numbers are written as JSON writes them (integers in decimal). The hash is the first 16
//! bytes of the SHA-256 of that text, as 32 lowercase hex digits.
//!
//! Dropping nulls means a new upstream field that is null everywhere creates no new versions,
//! and key order never matters because the fields are sorted.

use sha2::{Digest, Sha256};

use crate::flatten::FlatRecord;
use crate::value::FlatValue;

/// The canonical JSON text that [`row_hash`] hashes.
pub fn canonical_text(record: &FlatRecord) -> Vec<u8> {
    let mut text = Vec::with_capacity(record.fields.len() * 24 + 2);
    text.push(b'{');
    let mut first = true;
    for (name, value) in &record.fields {
        if matches!(value, FlatValue::Null) {
            continue;
        }
        if !first {
            text.push(b',');
        }
        first = false;
        write_json_string(&mut text, name);
        text.push(b':');
        match value {
            FlatValue::Null => {}
            FlatValue::Bool(flag) => text.extend_from_slice(if *flag { b"true" } else { b"false" }),
            FlatValue::Int(number) => text.extend_from_slice(number.to_string().as_bytes()),
            FlatValue::Float(_) => text.extend_from_slice(value.to_text().as_bytes()),
            FlatValue::Text(string) | FlatValue::Json(string) => write_json_string(&mut text, string),
        }
    }
    text.push(b'}');
    text
}

fn write_json_string(out: &mut Vec<u8>, text: &str) {
    // Writing a &str to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// The row hash of a flattened record: 32 hex digits (see the module documentation).
pub fn row_hash(record: &FlatRecord) -> String {
    let digest = Sha256::digest(canonical_text(record));
    let mut hex = String::with_capacity(32);
    for byte in &digest[..16] {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::{flatten_record, NamingOptions};
    use serde_json::json;

    fn hash_of(value: serde_json::Value) -> String {
        row_hash(&flatten_record(value, NamingOptions::default()).unwrap())
    }

    #[test]
    fn canonical_text_is_sorted_compact_json_without_nulls() {
        let record = flatten_record(
            json!({"b": "x\"y", "a": 1, "n": null, "l": [2, 1], "f": 0.5}),
            NamingOptions::default(),
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(canonical_text(&record)).unwrap(),
            r#"{"a":1,"b":"x\"y","f":0.5,"l":"[2,1]"}"#
        );
    }

    #[test]
    fn hash_ignores_key_order_and_nulls_but_not_content() {
        let base = hash_of(json!({"id": 1, "name": "a", "org": {"id": 2, "x": true}}));
        assert_eq!(base.len(), 32);
        assert_eq!(
            base,
            hash_of(json!({"org": {"x": true, "id": 2}, "name": "a", "id": 1, "new_field": null}))
        );
        assert_ne!(base, hash_of(json!({"id": 1, "name": "b", "org": {"id": 2, "x": true}})));
        assert_ne!(base, hash_of(json!({"id": 1, "name": "a", "org": {"id": 2, "x": false}})));
        assert_ne!(hash_of(json!({"id": 1})), hash_of(json!({"id": "1"})));
    }

    #[test]
    fn known_value_is_stable() {
        // SHA-256 of `{"id":1}` starts with these 16 bytes; a change here breaks every table.
        assert_eq!(hash_of(json!({"id": 1})), "037c9214eef74cc3887f3a4f085b4e17");
    }
}
