//! Paging through list endpoints, one pagination kind each.

use serde_json::Value;

use crate::http::HttpEngine;
use crate::spec::{EntitySpec, Pagination};
use crate::ConnectorError;

/// One list request: path, fixed parameters, page size and an optional cap on records.
#[derive(Debug, Clone)]
pub struct ListRequest {
    /// Path relative to the API root.
    pub path: String,
    /// Parameters sent with every page (filters, sort).
    pub params: Vec<(String, String)>,
    /// Records per page.
    pub page_size: usize,
    /// Stop after this many records.
    pub cap: Option<usize>,
}

fn records_of(body: &Value, key: &str) -> Vec<Value> {
    match body.get(key) {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// Pages through a list endpoint and returns every record, calling `on_page` with the running
/// count after each page.
pub async fn list_records(
    engine: &HttpEngine,
    spec: &EntitySpec,
    request: &ListRequest,
    mut on_page: impl FnMut(usize),
) -> Result<Vec<Value>, ConnectorError> {
    let mut records: Vec<Value> = Vec::new();
    let limit = request.page_size.to_string();
    let full = |records: &Vec<Value>| request.cap.is_some_and(|cap| records.len() >= cap);
    match spec.pagination {
        Pagination::Unpaged => {
            if let Some(body) = engine.get(&request.path, &request.params, false).await? {
                records = records_of(&body, spec.records_key);
            }
            on_page(records.len());
        }
        Pagination::Cursor => {
            let mut cursor: Option<String> = None;
            loop {
                let mut query = request.params.clone();
                query.push(("limit".into(), limit.clone()));
                if let Some(cursor) = &cursor {
                    query.push(("cursor".into(), cursor.clone()));
                }
                let Some(body) = engine.get(&request.path, &query, false).await? else {
                    break;
                };
                records.extend(records_of(&body, spec.records_key));
                on_page(records.len());
                cursor = body["additional_data"]["next_cursor"].as_str().map(str::to_string);
                if cursor.is_none() || full(&records) {
                    break;
                }
            }
        }
        Pagination::StartLimit => {
            let mut start = 0usize;
            loop {
                let mut query = request.params.clone();
                query.push(("limit".into(), limit.clone()));
                query.push(("start".into(), start.to_string()));
                let Some(body) = engine.get(&request.path, &query, false).await? else {
                    break;
                };
                let page = records_of(&body, spec.records_key);
                let count = page.len();
                records.extend(page);
                on_page(records.len());
                let pagination = &body["additional_data"]["pagination"];
                if count == 0 || !pagination["more_items_in_collection"].as_bool().unwrap_or(false) || full(&records) {
                    break;
                }
                start = pagination["next_start"].as_u64().map(|next| next as usize).unwrap_or(start + count);
            }
        }
        Pagination::FromLimit => {
            let mut from = 0usize;
            loop {
                let mut query = request.params.clone();
                query.push(("limit".into(), limit.clone()));
                query.push(("from".into(), from.to_string()));
                let Some(body) = engine.get(&request.path, &query, false).await? else {
                    break;
                };
                let page = records_of(&body, spec.records_key);
                let count = page.len();
                records.extend(page);
                on_page(records.len());
                if count < request.page_size || full(&records) {
                    break;
                }
                from += count;
            }
        }
        Pagination::PageNumber => {
            let mut page_no = 1usize;
            loop {
                let mut query = request.params.clone();
                query.push(("pageinate".into(), "true".into()));
                query.push(("page_size".into(), limit.clone()));
                query.push(("page_no".into(), page_no.to_string()));
                let Some(body) = engine.get(&request.path, &query, false).await? else {
                    break;
                };
                let page = records_of(&body, spec.records_key);
                let count = page.len();
                records.extend(page);
                on_page(records.len());
                let total = body["record_count"].as_u64().unwrap_or(0) as usize;
                if count < request.page_size || records.len() >= total || full(&records) {
                    break;
                }
                page_no += 1;
            }
        }
    }
    if let Some(cap) = request.cap {
        records.truncate(cap);
    }
    Ok(records)
}

/// Pages (`from` + `limit`) through the children of one parent, `spec.list_path` with
/// `{parent}` replaced (`/tickets/{parent}/threads`). A parent deleted since it was listed
/// answers 404, which reads as no children: a full reconcile then closes them.
pub async fn list_children(
    engine: &HttpEngine,
    spec: &EntitySpec,
    parent_id: &str,
    params: &[(String, String)],
    page_size: usize,
) -> Result<Vec<Value>, ConnectorError> {
    let path = spec.list_path.replace("{parent}", parent_id);
    let limit = page_size.max(1);
    let mut records: Vec<Value> = Vec::new();
    let mut from = 0usize;
    loop {
        let mut query = params.to_vec();
        query.push(("limit".into(), limit.to_string()));
        query.push(("from".into(), from.to_string()));
        // `is_detail`: a vanished parent's 404 is an empty list, not a failure.
        let Some(body) = engine.get(&path, &query, true).await? else {
            break;
        };
        let page = records_of(&body, spec.records_key);
        let count = page.len();
        records.extend(page);
        if count < limit {
            break;
        }
        from += count;
    }
    Ok(records)
}
