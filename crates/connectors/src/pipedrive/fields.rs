//! What Pipedrive needs beyond its spec: custom fields arrive under 40-character hash keys
//! (`custom_fields: {"a1b2...": 5}`) and are renamed to the snake_case names the field endpoints
//! (`/v2/dealFields`, ...) give them. The name map is cached in the state store and refreshed
//! when a record carries a key the map does not know.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};
use syncline_core::{snake_case_if, NamingOptions};
use syncline_state::StateStore;

use crate::http::HttpEngine;
use crate::list::{list_records, ListRequest};
use crate::spec::{EntitySpec, Pagination};
use crate::ConnectorError;

/// Hash key -> column name for one entity's custom fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldNames {
    names: BTreeMap<String, String>,
}

fn marker_key(entity: &str) -> String {
    format!("pipedrive_field_names:{entity}")
}

impl FieldNames {
    /// Builds the map from field definitions (v2 `field_code` / `field_name`, or v1 `key` /
    /// `name`). Only custom fields are renamed; names that would collide get the first eight
    /// characters of their key appended.
    pub fn from_definitions(definitions: &[Value]) -> Self {
        let mut names = BTreeMap::new();
        let mut used: HashSet<String> = HashSet::new();
        for definition in definitions {
            let custom = definition["is_custom_field"]
                .as_bool()
                .or_else(|| definition["edit_flag"].as_bool())
                .unwrap_or(false);
            let key = definition["field_code"].as_str().or_else(|| definition["key"].as_str());
            let name = definition["field_name"].as_str().or_else(|| definition["name"].as_str());
            let (Some(key), Some(name)) = (key, name) else { continue };
            if !custom {
                continue;
            }
            let mut column = snake_case_if(name, NamingOptions::default());
            if column.is_empty() || used.contains(&column) {
                column = format!("{column}_{}", key.chars().take(8).collect::<String>());
            }
            used.insert(column.clone());
            names.insert(key.to_string(), column);
        }
        Self { names }
    }

    /// Number of known custom fields.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when no custom field is known.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Keys of `custom_fields` in a record that the map does not know.
    pub fn unknown_keys(&self, record: &Value) -> Vec<String> {
        match record.get("custom_fields") {
            Some(Value::Object(fields)) => fields.keys().filter(|key| !self.names.contains_key(*key)).cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Renames the known keys of `custom_fields` (unknown keys stay as they are, so nothing is
    /// dropped).
    pub fn rename(&self, record: &mut Value) {
        let Some(Value::Object(fields)) = record.get_mut("custom_fields") else {
            return;
        };
        let old = std::mem::take(fields);
        let mut renamed = Map::with_capacity(old.len());
        for (key, value) in old {
            let name = self.names.get(&key).cloned().unwrap_or(key);
            renamed.insert(name, value);
        }
        *fields = renamed;
    }

    fn to_json(&self) -> String {
        serde_json::to_string(&self.names).unwrap_or_default()
    }

    fn from_json(text: &str) -> Option<Self> {
        serde_json::from_str(text).ok().map(|names| Self { names })
    }
}

/// The field names cached in the state store for an entity, if any.
pub async fn stored_field_names(state: &dyn StateStore, source: &str, entity: &str) -> Result<Option<FieldNames>, ConnectorError> {
    Ok(state
        .marker(source, &marker_key(entity))
        .await?
        .as_deref()
        .and_then(FieldNames::from_json))
}

/// Field names of one entity: from the state-store cache, else from the field endpoint.
pub async fn cached_field_names(
    engine: &HttpEngine,
    state: &dyn StateStore,
    source: &str,
    spec: &EntitySpec,
) -> Result<FieldNames, ConnectorError> {
    if spec.fields_path.is_none() {
        return Ok(FieldNames::default());
    }
    if let Some(text) = state.marker(source, &marker_key(spec.name)).await? {
        if let Some(names) = FieldNames::from_json(&text) {
            return Ok(names);
        }
    }
    refresh_field_names(engine, state, source, spec).await
}

/// Fetches the field definitions and stores the map.
pub async fn refresh_field_names(
    engine: &HttpEngine,
    state: &dyn StateStore,
    source: &str,
    spec: &EntitySpec,
) -> Result<FieldNames, ConnectorError> {
    let Some(path) = spec.fields_path else {
        return Ok(FieldNames::default());
    };
    let fields_spec = EntitySpec {
        pagination: Pagination::Cursor,
        records_key: "data",
        ..*spec
    };
    let request = ListRequest {
        path: path.to_string(),
        params: Vec::new(),
        page_size: 500,
        cap: None,
        window: None,
    };
    let definitions = list_records(engine, &fields_spec, &request, |_| {}).await?;
    let names = FieldNames::from_definitions(&definitions);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|duration| duration.as_millis() as i64)
        .unwrap_or(0);
    state.set_marker(source, &marker_key(spec.name), &names.to_json(), now).await?;
    tracing::info!(
        source,
        entity = spec.name,
        custom_fields = names.len(),
        "pipedrive field names refreshed"
    );
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renames_custom_hash_keys_to_snake_case() {
        let key = "dcf558aac1ae4e8c4f849ba5e668430d8df9be12";
        let names = FieldNames::from_definitions(&[
            json!({"field_code": "title", "field_name": "Title", "is_custom_field": false}),
            json!({"field_code": key, "field_name": "Budget Code (EUR)", "is_custom_field": true}),
            json!({"key": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "name": "Budget code EUR", "edit_flag": true}),
        ]);
        let mut record = json!({"id": 1, "title": "x", "custom_fields": {key: 5, "ffff": 1}});
        assert_eq!(names.unknown_keys(&record), vec!["ffff".to_string()]);
        names.rename(&mut record);
        assert_eq!(record["custom_fields"], json!({"budget_code_eur": 5, "ffff": 1}));
        assert_eq!(names.names["aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"], "budget_code_eur_aaaaaaaa");
        assert_eq!(FieldNames::from_json(&names.to_json()).unwrap(), names);
    }
}
