//! Connectors as data: entities, endpoints, pagination kind, since-filter parameters, id and
//! modified-time fields, terminal-state rule and detail endpoint.

use serde::Deserialize;
use serde_json::Value;

/// A built-in connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorKind {
    /// Pipedrive CRM.
    Pipedrive,
    /// Zoho Desk.
    ZohoDesk,
    /// HaloPSA.
    Halopsa,
}

impl ConnectorKind {
    /// Every built-in connector.
    pub const ALL: [ConnectorKind; 3] = [ConnectorKind::Pipedrive, ConnectorKind::ZohoDesk, ConnectorKind::Halopsa];

    /// What the generic code needs to know of the connector; each lives in its own folder.
    pub fn profile(self) -> &'static ConnectorProfile {
        match self {
            ConnectorKind::Pipedrive => &crate::pipedrive::PROFILE,
            ConnectorKind::ZohoDesk => &crate::zoho_desk::PROFILE,
            ConnectorKind::Halopsa => &crate::halopsa::PROFILE,
        }
    }

    /// The name used in config and logs.
    pub fn name(self) -> &'static str {
        self.profile().name
    }

    /// Every entity spec of the connector.
    pub fn specs(self) -> &'static [EntitySpec] {
        self.profile().entities
    }

    /// The spec of one entity.
    pub fn entity(self, name: &str) -> Option<&'static EntitySpec> {
        self.specs().iter().find(|spec| spec.name == name)
    }

    /// Entity names in sync order.
    pub fn entity_list(self) -> Vec<&'static str> {
        self.specs().iter().map(|spec| spec.name).collect()
    }

    /// Entity names for messages.
    pub fn entity_names(self) -> String {
        self.entity_list().join(", ")
    }

    /// Largest list page.
    pub fn max_page_size(self) -> usize {
        self.profile().max_page_size
    }

    /// A base URL to show in messages.
    pub fn example_base_url(self) -> &'static str {
        self.profile().example_base_url
    }

    /// The auth types accepted, for messages.
    pub fn auth_hint(self) -> &'static str {
        self.profile().auth_hint
    }

    /// The API cost the vendor charges for a request: its path, its query (Zoho Desk prices a
    /// list page by the tier of its `from` offset) and whether it reads one record.
    pub fn request_cost(self, path: &str, query: &[(String, String)], is_detail: bool) -> u64 {
        (self.profile().request_cost)(path, query, is_detail)
    }
}

/// One connector as the generic code sees it: its entities, limits, accepted settings, cost
/// model and webhook parser. Each connector's folder declares one `PROFILE`; adding a connector
/// is one folder plus one [`ConnectorKind`] variant.
pub struct ConnectorProfile {
    /// The name used in config and logs.
    pub name: &'static str,
    /// Every entity, in sync order.
    pub entities: &'static [EntitySpec],
    /// Largest list page.
    pub max_page_size: usize,
    /// A base URL to show in messages.
    pub example_base_url: &'static str,
    /// The auth types accepted, for messages.
    pub auth_hint: &'static str,
    /// True when the connector accepts this auth config.
    pub accepts_auth: fn(&crate::config::AuthConfig) -> bool,
    /// The scheme of the `Authorization` header carrying an OAuth access token (`Bearer`).
    pub token_scheme: &'static str,
    /// True when the source needs `org_id` (sent as the `orgId` header).
    pub needs_org_id: bool,
    /// A `verify = {...}` line to suggest in messages.
    pub verify_hint: &'static str,
    /// Why a webhook verification cannot work with this vendor, if it cannot.
    pub refuses_verification: fn(&crate::webhook::WebhookVerification) -> Option<&'static str>,
    /// The cost the vendor charges for a request: `(path, query, is_detail)`. The query is
    /// passed because some vendors price a page by its offset (Zoho Desk's credit tiers).
    pub request_cost: fn(&str, &[(String, String)], bool) -> u64,
    /// The response header in which the vendor reports what is left of its daily API pool
    /// (Zoho Desk `X-Rate-Limit-Remaining-v3`), read on every response; `None` when it reports
    /// none. Only a connector with one accepts a source's `credit_reserve`.
    pub remaining_credits_header: Option<&'static str>,
    /// The payload format expected, for parse errors.
    pub webhook_format: &'static str,
    /// Parses a JSON webhook body into the collector; returns the delivery id if the payload has one.
    pub parse_webhook: crate::webhook::ParseFn,
}

/// A cost model that counts calls.
pub fn one_per_call(_path: &str, _query: &[(String, String)], _is_detail: bool) -> u64 {
    1
}

/// A connector that accepts every webhook verification.
pub fn any_verification(_verification: &crate::webhook::WebhookVerification) -> Option<&'static str> {
    None
}

/// How a list endpoint pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pagination {
    /// Pipedrive v2: `cursor` + `limit`, next cursor at `additional_data.next_cursor`.
    Cursor,
    /// Pipedrive v1: `start` + `limit`, `additional_data.pagination.more_items_in_collection`.
    StartLimit,
    /// Zoho Desk: 0-based `from` + `limit`; an empty page is `204 No Content`.
    FromLimit,
    /// HaloPSA: `pageinate=true` + `page_size` + 1-based `page_no`, total in `record_count`.
    PageNumber,
    /// The whole list in one response.
    Unpaged,
}

/// How a since-filter is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinceFilter {
    /// Pipedrive v2 `updated_since=<RFC 3339, seconds>`.
    UpdatedSince,
    /// Zoho Desk search endpoint `modifiedTimeRange=<from>,<to>` (ISO, ms).
    ModifiedTimeRange {
        /// The search endpoint.
        path: &'static str,
        /// The largest record offset (`from`) the endpoint pages to (Zoho Desk: 4999). A window
        /// with more matches goes on in a new window starting at the modified time of the last
        /// record listed (the search is sorted oldest first), so none is lost.
        max_offset: usize,
    },
    /// One query parameter carrying the since time, with fixed companions: HaloPSA tickets and
    /// clients `lastupdatefromdate=<since>`, invoices `datesearch=last_modified&start_date=<since>`.
    /// The list is sorted by `sort_modified_ascending` (oldest first).
    SinceParam {
        /// The parameter carrying the since time (ISO 8601, UTC, milliseconds).
        param: &'static str,
        /// Parameters sent beside it, unchanged.
        with: &'static [(&'static str, &'static str)],
        /// What the reconciler does if the vendor ignores the filter.
        if_ignored: IgnoredFilter,
    },
}

/// What an incremental run does when a since-filter may be ignored by the vendor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IgnoredFilter {
    /// The vendor documents the filter and honours it: rows are taken as listed.
    Trusted,
    /// Whether the vendor honours the filter is unconfirmed: a listed row modified before the
    /// since time proves it ignored it, and the run goes on as a capped pull (newest
    /// `capped_limit` records by `sort_modified_descending`) instead of paging the whole list.
    FallBackToCapped,
}

impl SinceFilter {
    /// True when a listed page with these records shows the vendor ignored the filter sent
    /// with `since`: the filter may be ignored ([`IgnoredFilter::FallBackToCapped`]) and a
    /// record's modified time is before `since` by more than [`IGNORED_FILTER_TOLERANCE_MS`]
    /// (a vendor comparing in whole seconds is not mistaken for one ignoring the filter).
    pub fn ignored_by(&self, spec: &EntitySpec, records: &[Value], since: syncline_core::Millis) -> bool {
        let SinceFilter::SinceParam {
            if_ignored: IgnoredFilter::FallBackToCapped,
            ..
        } = self
        else {
            return false;
        };
        records
            .iter()
            .filter_map(|record| crate::reconcile::record_modified(record, spec))
            .any(|modified| modified < since.saturating_sub(IGNORED_FILTER_TOLERANCE_MS))
    }
}

/// How much older than the since time a row may be before it proves the filter was ignored.
pub const IGNORED_FILTER_TOLERANCE_MS: i64 = 1_000;

/// Records of an entity in a terminal state (closed tickets, paid invoices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TerminalRule {
    /// The field.
    pub field: &'static str,
    /// Values that are terminal (compared as text).
    pub values: &'static [&'static str],
}

impl TerminalRule {
    /// True when the record is terminal.
    pub fn is_terminal(&self, record: &Value) -> bool {
        let value = &record[self.field];
        let text = value.as_str().map(str::to_string).unwrap_or_else(|| value.to_string());
        self.values.iter().any(|wanted| *wanted == text)
    }
}

/// A listing of recently deleted records, for entities whose API offers one: the entity's
/// since-filtered list request plus these parameters returns the records deleted since then,
/// each with its modified time set to the delete time (Pipedrive v2 deals: `status=deleted`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeletedListing {
    /// Parameters added to the since-filtered list request.
    pub params: &'static [(&'static str, &'static str)],
}

/// One entity of a connector, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntitySpec {
    /// Entity name (`deal`); the history table is `{name}_history`.
    pub name: &'static str,
    /// List endpoint, relative to the API root.
    pub list_path: &'static str,
    /// Where the records sit in a list response (`data`, `tickets`).
    pub records_key: &'static str,
    /// Pagination kind.
    pub pagination: Pagination,
    /// The since-filter, if the list has one; without, the reconciler uses a capped pull.
    pub since_filter: Option<SinceFilter>,
    /// Sort parameters for "oldest modified first" (incremental) as `(name, value)` pairs.
    pub sort_modified_ascending: &'static [(&'static str, &'static str)],
    /// Sort parameters for "newest modified first" (capped pull).
    pub sort_modified_descending: &'static [(&'static str, &'static str)],
    /// Sort parameters for a stable full listing (by id).
    pub sort_id: &'static [(&'static str, &'static str)],
    /// Id field.
    pub id_field: &'static str,
    /// Modified-time field, if the entity has one.
    pub modified_field: Option<&'static str>,
    /// Other fields typed as timestamps.
    pub timestamp_fields: &'static [&'static str],
    /// Terminal-state rule.
    pub terminal: Option<TerminalRule>,
    /// Detail endpoint (`{id}` replaced).
    pub detail_path: &'static str,
    /// True when list rows lack fields the detail has (then changed rows are fetched one by one).
    pub list_is_partial: bool,
    /// Pipedrive field-definition endpoint naming the custom-field hash keys.
    pub fields_path: Option<&'static str>,
    /// The parent entity of a sub-resource (`ticket` for Zoho Desk threads and comments): its id
    /// replaces `{parent}` in `list_path` and `detail_path`, and its since-filter selects the
    /// parents whose children an incremental run lists.
    pub parent: Option<&'static str>,
    /// The listing of deleted records, if the API has one: an incremental run reads it with the
    /// same since-filter and closes the ids it returns, so a lost delete webhook heals without
    /// waiting for the full reconcile.
    pub deleted_listing: Option<DeletedListing>,
    /// The vendor's deleted flags: a record on which any of these fields is `true` (or `"true"`)
    /// is a delete wherever it is seen (list, search, detail, webhook), never an active version
    /// (Pipedrive `is_deleted`, Zoho Desk `isDeleted` / `isTrashed`, HaloPSA `deleted`).
    pub deleted_flags: &'static [&'static str],
    /// What the vendor's record ids look like: every id from outside (a webhook, a list row, a
    /// stored parent) is checked against it before it becomes part of a request path.
    pub id_syntax: IdSyntax,
}

/// The syntax of a vendor's record ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSyntax {
    /// Decimal digits, at most this many (Pipedrive and HaloPSA integers, Zoho Desk's numeric
    /// strings such as `1892000000042032`).
    Digits(usize),
}

/// Ids of every built-in connector: up to 20 digits (any unsigned 64-bit integer).
pub const NUMERIC_IDS: IdSyntax = IdSyntax::Digits(20);

impl IdSyntax {
    /// True when `id` is a well-formed id.
    pub fn accepts(&self, id: &str) -> bool {
        match self {
            IdSyntax::Digits(most) => !id.is_empty() && id.len() <= *most && id.bytes().all(|byte| byte.is_ascii_digit()),
        }
    }

    /// For messages: what an id must look like.
    pub fn describe(&self) -> String {
        match self {
            IdSyntax::Digits(most) => format!("1 to {most} decimal digits"),
        }
    }
}

/// An id that does not match its entity's [`IdSyntax`]; shown shortened and escaped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entity} id {shown} is not an id of the vendor ({syntax}); it was not requested. Check what sends it")]
pub struct InvalidId {
    /// The entity.
    pub entity: &'static str,
    /// The id, at most 40 characters, Rust-escaped.
    pub shown: String,
    /// What an id must look like.
    pub syntax: String,
}

/// Percent-encodes `text` as one URL path segment: everything but ASCII letters, digits, `-`,
/// `_` and `~` is escaped (dots too), so `/`, `..`, `?` and `#` cannot leave the segment.
pub fn encode_path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl EntitySpec {
    /// Checks an id against the entity's syntax.
    pub fn check_id(&self, id: &str) -> Result<(), InvalidId> {
        if self.id_syntax.accepts(id) {
            return Ok(());
        }
        let shortened: String = id.chars().take(40).collect();
        Err(InvalidId {
            entity: self.name,
            shown: format!("{shortened:?}"),
            syntax: self.id_syntax.describe(),
        })
    }

    /// The detail path of a record: `{id}` (and `{parent}` of a sub-resource) replaced by the
    /// checked, percent-encoded ids.
    pub fn detail_path_for(&self, id: &str, parent_id: Option<&str>) -> Result<String, InvalidId> {
        self.check_id(id)?;
        let mut path = self.detail_path.replace("{id}", &encode_path_segment(id));
        if let Some(parent_id) = parent_id {
            self.check_id(parent_id).map_err(|mut error| {
                error.shown = format!("{} (the parent of {id})", error.shown);
                error
            })?;
            path = path.replace("{parent}", &encode_path_segment(parent_id));
        }
        Ok(path)
    }

    /// True when a fetched detail is the record asked for: its id field equals `requested`
    /// (a number or a string). A vendor, proxy or redirect answering another record is refused.
    pub fn is_record(&self, record: &Value, requested: &str) -> bool {
        match &record[self.id_field] {
            Value::String(text) => text == requested,
            Value::Number(number) => number.to_string() == requested,
            _ => false,
        }
    }
}

impl EntitySpec {
    /// True when the record carries one of the vendor's deleted flags set.
    pub fn is_deleted(&self, record: &Value) -> bool {
        self.deleted_flags.iter().any(|flag| match &record[*flag] {
            Value::Bool(set) => *set,
            Value::String(text) => text.eq_ignore_ascii_case("true"),
            Value::Number(number) => number.as_i64() == Some(1),
            _ => false,
        })
    }
}
/// Whether the reconciler of this build drives an entity of a connector. Every described entity
/// is reconciled, sub-resources (Zoho Desk threads and comments) included, as long as its parent
/// is described with a since-filter.
pub fn reconciler_supports(connector: ConnectorKind, spec: &EntitySpec) -> bool {
    match spec.parent {
        None => true,
        Some(parent) => connector.entity(parent).is_some_and(|parent| parent.since_filter.is_some()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_vendor_deleted_flag_marks_a_record_deleted() {
        let person = ConnectorKind::Pipedrive.entity("person").unwrap();
        assert!(person.is_deleted(&serde_json::json!({"id": 1, "is_deleted": true})));
        assert!(!person.is_deleted(&serde_json::json!({"id": 1, "is_deleted": false})));
        assert!(!person.is_deleted(&serde_json::json!({"id": 1})));
        let ticket = ConnectorKind::ZohoDesk.entity("ticket").unwrap();
        assert!(ticket.is_deleted(&serde_json::json!({"id": "1", "isTrashed": true})));
        assert!(ticket.is_deleted(&serde_json::json!({"id": "1", "isDeleted": "true"})));
        assert!(!ticket.is_deleted(&serde_json::json!({"id": "1", "isDeleted": false, "isTrashed": false})));
        let invoice = ConnectorKind::Halopsa.entity("invoice").unwrap();
        assert!(invoice.is_deleted(&serde_json::json!({"id": 3, "deleted": true})));
        assert!(!invoice.is_deleted(&serde_json::json!({"id": 3, "deleted": false})));
    }

    #[test]
    fn every_issue_entity_is_described() {
        assert_eq!(
            ConnectorKind::Pipedrive.entity_list(),
            ["user", "pipeline", "stage", "organization", "person", "deal"]
        );
        assert_eq!(ConnectorKind::ZohoDesk.entity_list().len(), 6);
        assert_eq!(ConnectorKind::Halopsa.entity_list().len(), 4);
        for connector in ConnectorKind::ALL {
            for spec in connector.specs() {
                assert!(spec.detail_path.contains("{id}"), "{}", spec.name);
                assert_eq!(spec.list_path.contains("{parent}"), spec.parent.is_some(), "{}", spec.name);
                assert!(reconciler_supports(connector, spec), "{}", spec.name);
                if spec.deleted_listing.is_some() {
                    assert!(
                        spec.since_filter.is_some(),
                        "{}: a deleted listing rides on the since-filter",
                        spec.name
                    );
                    assert!(spec.modified_field.is_some(), "{}: deletes need a time", spec.name);
                }
            }
        }
        let with_deleted_listing: Vec<&str> = ConnectorKind::Pipedrive
            .specs()
            .iter()
            .filter(|spec| spec.deleted_listing.is_some())
            .map(|spec| spec.name)
            .collect();
        assert_eq!(with_deleted_listing, ["deal"]);
    }

    #[test]
    fn terminal_rules_compare_as_text() {
        let rule = crate::halopsa::spec::ENTITIES[1].terminal.unwrap();
        assert!(rule.is_terminal(&serde_json::json!({"status_id": 9})));
        assert!(!rule.is_terminal(&serde_json::json!({"status_id": 2})));
    }

    #[test]
    fn pipedrive_costs_follow_the_token_table() {
        let pd = ConnectorKind::Pipedrive;
        assert_eq!(pd.request_cost("/v2/deals", &[], false), 10);
        assert_eq!(pd.request_cost("/v2/deals/1", &[], true), 1);
        assert_eq!(pd.request_cost("/v1/users", &[], false), 20);
        assert_eq!(ConnectorKind::Halopsa.request_cost("/Tickets", &[], false), 1);
    }

    #[test]
    fn ids_are_checked_and_encoded_as_one_segment() {
        let deal = ConnectorKind::Pipedrive.entity("deal").unwrap();
        assert_eq!(deal.detail_path_for("42", None).unwrap(), "/v2/deals/42");
        for hostile in ["1/../../v1/users/1", "", "1?x=1", "1#f", "..", "1 2", "１", "123456789012345678901"] {
            let error = deal.detail_path_for(hostile, None).unwrap_err();
            assert_eq!(error.entity, "deal", "{hostile:?}");
        }
        let thread = ConnectorKind::ZohoDesk.entity("thread").unwrap();
        assert_eq!(
            thread.detail_path_for("1892000000042032", Some("1892000000006907")).unwrap(),
            "/tickets/1892000000006907/threads/1892000000042032"
        );
        assert!(thread.detail_path_for("1", Some("1/../x")).is_err());
        assert_eq!(encode_path_segment("1/../a b?c"), "1%2F%2E%2E%2Fa%20b%3Fc");
        let long: String = "9".repeat(500);
        assert!(deal.check_id(&long).unwrap_err().shown.len() < 50, "the message is bounded");
    }

    #[test]
    fn answered_records_must_carry_the_requested_id() {
        let deal = ConnectorKind::Pipedrive.entity("deal").unwrap();
        assert!(deal.is_record(&serde_json::json!({"id": 42}), "42"));
        assert!(!deal.is_record(&serde_json::json!({"id": 1}), "42"));
        assert!(!deal.is_record(&serde_json::json!({"name": "x"}), "42"));
        let ticket = ConnectorKind::ZohoDesk.entity("ticket").unwrap();
        assert!(ticket.is_record(&serde_json::json!({"id": "1892000000042032"}), "1892000000042032"));
    }
}
