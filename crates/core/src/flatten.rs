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
