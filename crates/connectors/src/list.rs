//! Paging through list endpoints, one pagination kind each.

use serde_json::Value;

use syncline_core::Millis;

use crate::http::HttpEngine;
use crate::reconcile::{format_since, record_modified};
use crate::spec::{EntitySpec, Pagination, SinceFilter};
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
    /// A search whose offset stops at a cap, listed window by window.
    pub window: Option<SearchWindow>,
}

/// A time-range search whose offset stops at `max_offset` (Zoho Desk `/tickets/search`:
/// `from` 0 to 4999). Sorted oldest first, so when the next page would start past the cap the
/// listing goes on in a new window, `param = <modified time of the last record>,<end>`, from
/// offset 0: records at that boundary time are listed twice (the writer changes nothing for an
/// unchanged record), none is skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchWindow {
    /// The range parameter (`modifiedTimeRange`).
    pub param: &'static str,
    /// The range's end, as sent.
    pub end: String,
    /// The largest offset the endpoint accepts.
    pub max_offset: usize,
    /// How times are written.
    pub filter: SinceFilter,
}

/// Where a capped search goes on, or why it cannot: more than a window of records share one
/// modified time.
fn next_window(window: &SearchWindow, last_time: Option<Millis>, window_start: Option<Millis>) -> Result<(Millis, String), ConnectorError> {
    match last_time {
        Some(last) if window_start.is_none_or(|start| last > start) => {
            Ok((last, format!("{},{}", format_since(window.filter, last), window.end)))
        }
        _ => Err(ConnectorError::Http(format!(
            "more than {} records share one modified time in a {} search; the listing cannot be split further, so run a full reconcile",
            window.max_offset + 1,
            window.param
        ))),
    }
}

fn records_of(body: &Value, key: &str) -> Vec<Value> {
    match body.get(key) {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// Where the next page starts.
enum PagePosition {
    /// The first page of a cursor-paged list.
    FirstCursor,
    /// A cursor from the previous page.
    Cursor(String),
    /// A record offset (`start` or `from`).
    Offset(usize),
    /// A 1-based page number.
    Page(usize),
}

impl PagePosition {
    fn first(pagination: Pagination) -> Self {
        match pagination {
            Pagination::Unpaged | Pagination::Cursor => PagePosition::FirstCursor,
            Pagination::StartLimit | Pagination::FromLimit => PagePosition::Offset(0),
            Pagination::PageNumber => PagePosition::Page(1),
        }
    }

    /// The paging parameters of this page.
    fn query(&self, pagination: Pagination, limit: &str) -> Vec<(String, String)> {
        let pair = |name: &str, value: String| (name.to_string(), value);
        match (pagination, self) {
            (Pagination::Unpaged, _) => Vec::new(),
            (Pagination::Cursor, PagePosition::Cursor(cursor)) => vec![pair("limit", limit.into()), pair("cursor", cursor.clone())],
            (Pagination::Cursor, _) => vec![pair("limit", limit.into())],
            (Pagination::StartLimit, PagePosition::Offset(start)) => vec![pair("limit", limit.into()), pair("start", start.to_string())],
            (Pagination::FromLimit, PagePosition::Offset(from)) => vec![pair("limit", limit.into()), pair("from", from.to_string())],
            (Pagination::PageNumber, PagePosition::Page(number)) => {
                vec![
                    pair("pageinate", "true".into()),
                    pair("page_size", limit.into()),
                    pair("page_no", number.to_string()),
                ]
            }
            _ => unreachable!("a page position always matches its pagination kind"),
        }
    }

    /// The next page after one that returned `count` records (`listed` so far), or `None` at
    /// the end of the list.
    fn next(&self, pagination: Pagination, body: &Value, count: usize, page_size: usize, listed: usize) -> Option<Self> {
        match (pagination, self) {
            (Pagination::Unpaged, _) => None,
            (Pagination::Cursor, _) => body["additional_data"]["next_cursor"]
                .as_str()
                .map(|cursor| PagePosition::Cursor(cursor.to_string())),
            (Pagination::StartLimit, PagePosition::Offset(start)) => {
                let pagination = &body["additional_data"]["pagination"];
                if count == 0 || !pagination["more_items_in_collection"].as_bool().unwrap_or(false) {
                    return None;
                }
                Some(PagePosition::Offset(
                    pagination["next_start"].as_u64().map_or(start + count, |next| next as usize),
                ))
            }
            (Pagination::FromLimit, PagePosition::Offset(from)) => (count >= page_size).then_some(PagePosition::Offset(from + count)),
            (Pagination::PageNumber, PagePosition::Page(number)) => {
                let total = body["record_count"].as_u64().unwrap_or(0) as usize;
                (count >= page_size && listed < total).then_some(PagePosition::Page(number + 1))
            }
            _ => None,
        }
    }
}

/// Pages through a list endpoint and returns every record, calling `on_page` with the running
/// count after each page.
pub async fn list_records(
    engine: &HttpEngine,
    spec: &EntitySpec,
    request: &ListRequest,
    on_page: impl FnMut(usize),
) -> Result<Vec<Value>, ConnectorError> {
    page_through(
        engine,
        spec,
        &request.path,
        &request.params,
        request.page_size,
        request.cap,
        false,
        on_page,
    )
    .await
}

/// Pages through a list endpoint one page at a time, so a caller can compare and apply each
/// page as it arrives and keep its memory flat whatever the size of the tenant.
pub struct Pager<'a> {
    spec: &'a EntitySpec,
    path: String,
    params: Vec<(String, String)>,
    page_size: usize,
    cap: Option<usize>,
    missing_is_empty: bool,
    position: Option<PagePosition>,
    listed: usize,
    window: Option<SearchWindow>,
    /// The start of the current window, once the listing moved past the first one.
    window_start: Option<Millis>,
    /// The newest modified time listed so far (searches are sorted oldest first).
    last_time: Option<Millis>,
}

impl<'a> Pager<'a> {
    /// A pager over one list request.
    pub fn new(spec: &'a EntitySpec, request: &ListRequest) -> Self {
        Self {
            window: request.window.clone(),
            ..Self::over(spec, &request.path, &request.params, request.page_size, request.cap, false)
        }
    }

    /// With `missing_is_empty`, a 404 reads as an empty list.
    fn over(
        spec: &'a EntitySpec,
        path: &str,
        params: &[(String, String)],
        page_size: usize,
        cap: Option<usize>,
        missing_is_empty: bool,
    ) -> Self {
        Self {
            spec,
            path: path.to_string(),
            params: params.to_vec(),
            page_size: page_size.max(1),
            cap,
            missing_is_empty,
            position: Some(PagePosition::first(spec.pagination)),
            listed: 0,
            window: None,
            window_start: None,
            last_time: None,
        }
    }

    /// Records listed so far.
    pub fn listed(&self) -> usize {
        self.listed
    }

    /// The next page, `None` after the last one. A capped search ([`SearchWindow`]) moves to
    /// its next window where the offset would pass the cap.
    pub async fn next_page(&mut self, engine: &HttpEngine) -> Result<Option<Vec<Value>>, ConnectorError> {
        let Some(position) = self.position.take() else {
            return Ok(None);
        };
        let mut query = self.params.clone();
        query.extend(position.query(self.spec.pagination, &self.page_size.to_string()));
        let Some(body) = engine.get(&self.path, &query, self.missing_is_empty).await? else {
            return Ok(None);
        };
        let mut page = records_of(&body, self.spec.records_key);
        let count = page.len();
        if let Some(cap) = self.cap {
            page.truncate(cap.saturating_sub(self.listed));
        }
        self.listed += page.len();
        if self.cap.is_some_and(|cap| self.listed >= cap) {
            return Ok(Some(page));
        }
        self.last_time = page
            .iter()
            .filter_map(|record| record_modified(record, self.spec))
            .chain(self.last_time)
            .max();
        self.position = position.next(self.spec.pagination, &body, count, self.page_size, self.listed);
        if let (Some(window), Some(PagePosition::Offset(offset))) = (&self.window, &self.position) {
            if *offset > window.max_offset {
                let (start, range) = next_window(window, self.last_time, self.window_start)?;
                for (name, value) in &mut self.params {
                    if name == window.param {
                        *value = range.clone();
                    }
                }
                self.window_start = Some(start);
                self.position = Some(PagePosition::Offset(0));
            }
        }
        Ok(Some(page))
    }
}

/// The one paging loop behind [`list_records`] and [`list_children`]. With `missing_is_empty`,
/// a 404 reads as an empty list.
#[allow(clippy::too_many_arguments)]
async fn page_through(
    engine: &HttpEngine,
    spec: &EntitySpec,
    path: &str,
    params: &[(String, String)],
    page_size: usize,
    cap: Option<usize>,
    missing_is_empty: bool,
    mut on_page: impl FnMut(usize),
) -> Result<Vec<Value>, ConnectorError> {
    let mut records: Vec<Value> = Vec::new();
    let mut pager = Pager::over(spec, path, params, page_size, cap, missing_is_empty);
    while let Some(page) = pager.next_page(engine).await? {
        records.extend(page);
        on_page(records.len());
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
    // `missing_is_empty`: a vanished parent's 404 is an empty list, not a failure.
    page_through(engine, spec, &path, params, page_size, None, true, |_| {}).await
}
