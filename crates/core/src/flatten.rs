//! Flattening: nested objects become `parent_child` columns, lists become JSON text, and names
//! become snake_case (unless names are kept as they are).

use serde_json::Value;

use crate::error::CoreError;
use crate::value::FlatValue;

/// How record field names become column names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamingOptions {
    /// Convert names to snake_case (`modifiedTime` -> `modified_time`); when false, names are
    /// kept as they are and only joined with `_` for nested objects.
    pub snake_case: bool,
}

impl Default for NamingOptions {
    fn default() -> Self {
        Self { snake_case: true }
    }
}

/// A record flattened into columns, sorted by column name (byte order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlatRecord {
    /// `(column name, value)` pairs, sorted by name, names unique.
    pub fields: Vec<(String, FlatValue)>,
}

impl FlatRecord {
    /// The value of a column, if the record has it.
    pub fn get(&self, name: &str) -> Option<&FlatValue> {
        self.fields
            .binary_search_by(|(field, _)| field.as_str().cmp(name))
            .ok()
            .map(|index| &self.fields[index].1)
    }

    /// The record's primary key as the string syncline uses for ids: integers in decimal,
    /// strings as they are.
    pub fn primary_key(&self, field: &str) -> Result<String, CoreError> {
        match self.get(field) {
            None | Some(FlatValue::Null) => Err(CoreError::MissingPrimaryKey { field: field.to_string() }),
            Some(FlatValue::Int(value)) => Ok(value.to_string()),
            Some(FlatValue::Text(text)) if !text.is_empty() => Ok(text.clone()),
            Some(other) => Err(CoreError::BadPrimaryKey {
                field: field.to_string(),
                found: format!("{other:?}"),
            }),
        }
    }
}

/// Converts a field name to snake_case: word boundaries at lower-to-upper case changes and
/// before the last capital of an acronym (`HTTPServer` -> `http_server`); every run of
/// characters that are not letters or digits becomes one `_`; a trailing `_` is dropped and a
/// name that would start with a digit gets a leading `_`.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (index, &character) in chars.iter().enumerate() {
        if !character.is_alphanumeric() {
            if !out.ends_with('_') {
                out.push('_');
            }
            continue;
        }
        if character.is_uppercase() {
            let previous = index.checked_sub(1).map(|previous| chars[previous]);
            let next = chars.get(index + 1);
            let boundary = match previous {
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(|n| n.is_lowercase()),
                _ => false,
            };
            if boundary && !out.is_empty() && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(character.to_lowercase());
        } else {
            out.push(character);
        }
    }
    while out.len() > 1 && out.ends_with('_') {
        out.pop();
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A field name as a column name under the naming options (snake_case or kept).
pub fn snake_case_if(name: &str, options: NamingOptions) -> String {
    column_part(name, options)
}

fn column_part(name: &str, options: NamingOptions) -> String {
    if options.snake_case {
        snake_case(name)
    } else {
        name.replace('\0', "_")
    }
}

fn walk(column: String, value: Value, options: NamingOptions, out: &mut Vec<(String, FlatValue)>) {
    let flat = match value {
        Value::Object(map) => {
            for (key, child) in map {
                walk(format!("{column}_{}", column_part(&key, options)), child, options, out);
            }
            return;
        }
        Value::Null => FlatValue::Null,
        Value::Bool(value) => FlatValue::Bool(value),
        Value::Number(number) => match number.as_i64() {
            Some(value) => FlatValue::Int(value),
            None => FlatValue::Float(number.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(text) => FlatValue::Text(text),
        list @ Value::Array(_) => FlatValue::Json(list.to_string()),
    };
    out.push((column, flat));
}

/// Flattens one record. Objects nest into `parent_child` columns (an empty object adds no
/// column), lists become their JSON text (keys sorted), numbers become integers when they fit
/// in 64 bits. Fails when the record is not an object or two fields map to one column.
pub fn flatten_record(record: Value, options: NamingOptions) -> Result<FlatRecord, CoreError> {
    let Value::Object(map) = record else {
        return Err(CoreError::NotAnObject);
    };
    let mut fields = Vec::with_capacity(map.len() + 4);
    for (key, value) in map {
        walk(column_part(&key, options), value, options, &mut fields);
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(pair) = fields.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(CoreError::ColumnCollision { column: pair[0].0.clone() });
    }
    Ok(FlatRecord { fields })
}

/// Why a line of JSON did not become a flattened record.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The text is not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is not a record that flattens (see [`CoreError`]).
    #[error(transparent)]
    Record(#[from] CoreError),
}

/// Flattens records straight from their JSON text, with the same result as
/// `flatten_record(serde_json::from_str(text)?, options)` but without building a
/// `serde_json::Value` first, and with column names computed once per distinct field path
/// (snake_case conversion is the expensive part of naming). Keep one per thread and reuse it.
#[derive(Debug)]
pub struct Flattener {
    options: NamingOptions,
    /// `parent column + '\0' + raw key` -> column name.
    names: std::collections::HashMap<Box<str>, Box<str>>,
    /// Scratch buffer for cache lookups.
    lookup: String,
}

/// Names cached per flattener; beyond this many distinct field paths (records with
/// generated keys) names are computed without caching.
const NAME_CACHE_LIMIT: usize = 4096;

impl Flattener {
    /// A flattener under the naming options.
    pub fn new(options: NamingOptions) -> Self {
        Self {
            options,
            names: std::collections::HashMap::new(),
            lookup: String::new(),
        }
    }

    /// The naming options.
    pub fn options(&self) -> NamingOptions {
        self.options
    }

    /// Flattens one JSON text. Errors are exactly those of parsing with `serde_json` and then
    /// [`flatten_record`]: anything unusual (not an object, a column collision, a repeated key)
    /// is handed to that slower path, so both always agree.
    pub fn flatten_str(&mut self, text: &str) -> Result<FlatRecord, LineError> {
        if text.trim_start().starts_with('{') {
            if let Some(record) = self.flatten_fast(text) {
                return Ok(record);
            }
        }
        let value: Value = serde_json::from_str(text)?;
        Ok(flatten_record(value, self.options)?)
    }

    fn flatten_fast(&mut self, text: &str) -> Option<FlatRecord> {
        let mut fields = Vec::with_capacity(16);
        let mut deserializer = serde_json::Deserializer::from_str(text);
        serde::de::DeserializeSeed::deserialize(
            ObjectSeed {
                flattener: self,
                prefix: None,
                out: &mut fields,
            },
            &mut deserializer,
        )
        .ok()?;
        deserializer.end().ok()?;
        fields.sort_unstable_by(|a: &(String, FlatValue), b| a.0.cmp(&b.0));
        if fields.windows(2).any(|pair| pair[0].0 == pair[1].0) {
            return None;
        }
        Some(FlatRecord { fields })
    }

    /// The column name of `key` under `prefix` (a parent column), from the cache when seen.
    fn column(&mut self, prefix: Option<&str>, key: &str) -> String {
        self.lookup.clear();
        if let Some(prefix) = prefix {
            self.lookup.push_str(prefix);
        }
        self.lookup.push('\0');
        self.lookup.push_str(key);
        if let Some(name) = self.names.get(self.lookup.as_str()) {
            return name.to_string();
        }
        let part = column_part(key, self.options);
        let name = match prefix {
            Some(prefix) => format!("{prefix}_{part}"),
            None => part,
        };
        if self.names.len() < NAME_CACHE_LIMIT {
            self.names.insert(self.lookup.as_str().into(), name.as_str().into());
        }
        name
    }
}

/// Deserializes one JSON object, pushing its flattened fields.
struct ObjectSeed<'f, 'o> {
    flattener: &'f mut Flattener,
    /// The column of the object (`None` at the top level).
    prefix: Option<&'o str>,
    out: &'o mut Vec<(String, FlatValue)>,
}

impl<'de> serde::de::DeserializeSeed<'de> for ObjectSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for ObjectSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut key = String::new();
        while map.next_key_seed(KeySeed(&mut key))?.is_some() {
            let column = self.flattener.column(self.prefix, &key);
            map.next_value_seed(FieldSeed {
                flattener: &mut *self.flattener,
                column,
                out: &mut *self.out,
            })?;
        }
        Ok(())
    }
}

/// Reads an object key into a reused buffer.
struct KeySeed<'k>(&'k mut String);

impl<'de> serde::de::DeserializeSeed<'de> for KeySeed<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeySeed<'_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("an object key")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<(), E> {
        self.0.clear();
        self.0.push_str(key);
        Ok(())
    }
}

/// Deserializes one field value into its flattened column(s).
struct FieldSeed<'f, 'o> {
    flattener: &'f mut Flattener,
    column: String,
    out: &'o mut Vec<(String, FlatValue)>,
}

impl FieldSeed<'_, '_> {
    fn push(self, value: FlatValue) {
        self.out.push((self.column, value));
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for FieldSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for FieldSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.push(FlatValue::Null);
        Ok(())
    }

    fn visit_bool<E: serde::de::Error>(self, value: bool) -> Result<(), E> {
        self.push(FlatValue::Bool(value));
        Ok(())
    }

    fn visit_i64<E: serde::de::Error>(self, value: i64) -> Result<(), E> {
        self.push(FlatValue::Int(value));
        Ok(())
    }

    fn visit_u64<E: serde::de::Error>(self, value: u64) -> Result<(), E> {
        // As `serde_json::Number::as_i64`, then `as_f64`.
        self.push(i64::try_from(value).map_or(FlatValue::Float(value as f64), FlatValue::Int));
        Ok(())
    }

    fn visit_f64<E: serde::de::Error>(self, value: f64) -> Result<(), E> {
        self.push(FlatValue::Float(value));
        Ok(())
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<(), E> {
        self.push(FlatValue::Text(value.to_string()));
        Ok(())
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<(), E> {
        self.push(FlatValue::Text(value));
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        self.push(FlatValue::Json(Value::Array(items).to_string()));
        Ok(())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let FieldSeed { flattener, column, out } = self;
        ObjectSeed {
            flattener,
            prefix: Some(&column),
            out,
        }
        .visit_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snake_case_matches_vendor_names() {
        for (input, expected) in [
            ("modifiedTime", "modified_time"),
            ("isRead", "is_read"),
            ("update_time", "update_time"),
            ("HTTPServer", "http_server"),
            ("id2Name", "id2_name"),
            ("Budget Code (EUR)", "budget_code_eur"),
            (
                "dcf558aac1ae4e8c4f849ba5e668430d8df9be12",
                "dcf558aac1ae4e8c4f849ba5e668430d8df9be12",
            ),
            ("2fa", "_2fa"),
            ("_links", "_links"),
            ("a;drop table x;--", "a_drop_table_x"),
            ("Größe", "größe"),
        ] {
            assert_eq!(snake_case(input), expected, "{input}");
        }
    }

    #[test]
    fn flattens_nested_objects_and_lists() {
        let record = json!({
            "id": 1,
            "ownerId": {"id": 7, "name": "Ann", "active_flag": true},
            "labels": [{"b": 1, "a": 2}, 3],
            "value": 1.5,
            "empty": {},
            "gone": null
        });
        let flat = flatten_record(record, NamingOptions::default()).unwrap();
        let names: Vec<&str> = flat.fields.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "gone",
                "id",
                "labels",
                "owner_id_active_flag",
                "owner_id_id",
                "owner_id_name",
                "value"
            ]
        );
        assert_eq!(flat.get("labels"), Some(&FlatValue::Json(r#"[{"a":2,"b":1},3]"#.into())));
        assert_eq!(flat.get("owner_id_id"), Some(&FlatValue::Int(7)));
        assert_eq!(flat.get("value"), Some(&FlatValue::Float(1.5)));
        assert_eq!(flat.primary_key("id").unwrap(), "1");
    }

    #[test]
    fn keeps_names_when_asked() {
        let flat = flatten_record(json!({"ownerId": {"firstName": "A"}}), NamingOptions { snake_case: false }).unwrap();
        assert_eq!(flat.fields[0].0, "ownerId_firstName");
    }

    #[test]
    fn collisions_name_both_fields() {
        let error = flatten_record(json!({"a": {"b": 1}, "a_b": 2}), NamingOptions::default()).unwrap_err();
        assert_eq!(error, CoreError::ColumnCollision { column: "a_b".into() });
    }

    #[test]
    fn the_fast_path_agrees_with_flatten_record() {
        let mut flattener = Flattener::new(NamingOptions::default());
        for text in [
            r#"{"id": 1, "ownerId": {"id": 7, "name": "Ann", "active_flag": true}, "labels": [{"b": 1, "a": 2}, 3], "value": 1.5, "empty": {}, "gone": null}"#,
            r#"{"id": 18446744073709551615, "neg": -5, "big": -99999999999999999999, "f": 1.0, "e": 1e3, "s": "a\"b\u00e9"}"#,
            r#"{"a": {"b": {"c": [1, {"z": null, "y": [true]}]}}, "a_x": 1, "Größe": "x"}"#,
            r#"  {"id": "x", "id": "y"}  "#,
            r#"{"a": {"b": 1}, "a_b": 2}"#,
            r#"[1]"#,
            r#"7"#,
            r#"{"id": 1} trailing"#,
            r#"{"id": }"#,
            r#"{"ownerId": {"firstName": "A"}, "owner_id": {"first_name": "B"}}"#,
            "",
        ] {
            let slow = serde_json::from_str::<Value>(text)
                .map_err(|error| error.to_string())
                .and_then(|value| flatten_record(value, NamingOptions::default()).map_err(|error| error.to_string()));
            let fast = flattener.flatten_str(text).map_err(|error| match error {
                LineError::Json(error) => error.to_string(),
                LineError::Record(error) => error.to_string(),
            });
            assert_eq!(fast, slow, "{text}");
            let again = flattener.flatten_str(text).map_err(|error| error.to_string());
            assert_eq!(again.is_ok(), slow.is_ok(), "cached names give the same result: {text}");
        }
        let mut kept = Flattener::new(NamingOptions { snake_case: false });
        assert_eq!(
            kept.flatten_str(r#"{"ownerId": {"firstName": "A"}}"#).unwrap().fields[0].0,
            "ownerId_firstName"
        );
    }

    #[test]
    fn primary_key_errors_are_clear() {
        let flat = flatten_record(json!({"name": "x", "flag": true}), NamingOptions::default()).unwrap();
        assert_eq!(
            flat.primary_key("id").unwrap_err(),
            CoreError::MissingPrimaryKey { field: "id".into() }
        );
        assert!(matches!(flat.primary_key("flag"), Err(CoreError::BadPrimaryKey { .. })));
        assert_eq!(
            flatten_record(json!([1]), NamingOptions::default()).unwrap_err(),
            CoreError::NotAnObject
        );
    }
}
