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
    /// The name used in config and logs.
    pub fn name(self) -> &'static str {
        match self {
            ConnectorKind::Pipedrive => "pipedrive",
            ConnectorKind::ZohoDesk => "zoho_desk",
            ConnectorKind::Halopsa => "halopsa",
        }
    }

    /// Every entity spec of the connector.
    pub fn specs(self) -> &'static [EntitySpec] {
        match self {
            ConnectorKind::Pipedrive => PIPEDRIVE,
            ConnectorKind::ZohoDesk => ZOHO_DESK,
            ConnectorKind::Halopsa => HALOPSA,
        }
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
        match self {
            ConnectorKind::Pipedrive => 500,
            ConnectorKind::ZohoDesk => 100,
            ConnectorKind::Halopsa => 100,
        }
    }

    /// A base URL to show in messages.
    pub fn example_base_url(self) -> &'static str {
        match self {
            ConnectorKind::Pipedrive => "https://COMPANY.pipedrive.com/api",
            ConnectorKind::ZohoDesk => "https://desk.zoho.com/api/v1",
            ConnectorKind::Halopsa => "https://TENANT.halopsa.com/api",
        }
    }

    /// The auth types accepted, for messages.
    pub fn auth_hint(self) -> &'static str {
        match self {
            ConnectorKind::Pipedrive => "\"api_token\" or \"oauth2_refresh\"",
            ConnectorKind::ZohoDesk => "\"oauth2_refresh\"",
            ConnectorKind::Halopsa => "\"client_credentials\"",
        }
    }

    /// The API cost the vendor charges for a request (Pipedrive token costs: v2 list 10, v2
    /// detail 1, v1 list 20, v1 detail 2; the others count calls).
    pub fn request_cost(self, path: &str, is_detail: bool) -> u64 {
        match self {
            ConnectorKind::Pipedrive if path.starts_with("/v2/") => {
                if is_detail {
                    1
                } else {
                    10
                }
            }
            ConnectorKind::Pipedrive => {
                if is_detail {
                    2
                } else {
                    20
                }
            }
            _ => 1,
        }
    }
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
    },
    /// HaloPSA `datesearch=<field>&startdate=<from>&enddate=<to>`.
    DateSearch {
        /// The date field searched.
        field: &'static str,
    },
}

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

const PIPEDRIVE_DELETED: &[&str] = &["is_deleted"];
const ZOHO_DELETED: &[&str] = &["isDeleted", "isTrashed"];
const HALOPSA_DELETED: &[&str] = &["deleted"];

const PD_ASC: &[(&str, &str)] = &[("sort_by", "update_time"), ("sort_direction", "asc")];
const PD_DESC: &[(&str, &str)] = &[("sort_by", "update_time"), ("sort_direction", "desc")];
const PD_ID: &[(&str, &str)] = &[("sort_by", "id"), ("sort_direction", "asc")];

const fn pipedrive_v2(
    name: &'static str,
    list_path: &'static str,
    detail_path: &'static str,
    since: bool,
    fields_path: Option<&'static str>,
) -> EntitySpec {
    EntitySpec {
        name,
        list_path,
        records_key: "data",
        pagination: Pagination::Cursor,
        since_filter: if since { Some(SinceFilter::UpdatedSince) } else { None },
        sort_modified_ascending: PD_ASC,
        sort_modified_descending: PD_DESC,
        sort_id: PD_ID,
        id_field: "id",
        modified_field: Some("update_time"),
        timestamp_fields: &["add_time"],
        terminal: None,
        detail_path,
        list_is_partial: false,
        fields_path,
        parent: None,
        deleted_listing: None,
        deleted_flags: PIPEDRIVE_DELETED,
        id_syntax: NUMERIC_IDS,
    }
}

/// Pipedrive: v2 lists (complete records) for deals, organizations, persons, pipelines and
/// stages; v1 for users (whole list, no since-filter).
pub static PIPEDRIVE: &[EntitySpec] = &[
    EntitySpec {
        pagination: Pagination::Unpaged,
        sort_modified_ascending: &[],
        sort_modified_descending: &[],
        sort_id: &[],
        modified_field: Some("modified"),
        timestamp_fields: &["created"],
        ..pipedrive_v2("user", "/v1/users", "/v1/users/{id}", false, None)
    },
    pipedrive_v2("pipeline", "/v2/pipelines", "/v2/pipelines/{id}", false, None),
    pipedrive_v2("stage", "/v2/stages", "/v2/stages/{id}", false, None),
    pipedrive_v2(
        "organization",
        "/v2/organizations",
        "/v2/organizations/{id}",
        true,
        Some("/v2/organizationFields"),
    ),
    pipedrive_v2("person", "/v2/persons", "/v2/persons/{id}", true, Some("/v2/personFields")),
    EntitySpec {
        // `status=deleted` lists deals deleted in the last 30 days, with `update_time` at the
        // delete; persons and organizations have no such listing.
        deleted_listing: Some(DeletedListing {
            params: &[("status", "deleted")],
        }),
        ..pipedrive_v2("deal", "/v2/deals", "/v2/deals/{id}", true, Some("/v2/dealFields"))
    },
];

const ZOHO_ASC: &[(&str, &str)] = &[("sortBy", "modifiedTime")];
const ZOHO_DESC: &[(&str, &str)] = &[("sortBy", "-modifiedTime")];
const ZOHO_ID: &[(&str, &str)] = &[("sortBy", "id")];

/// Zoho Desk. Threads and comments are sub-resources of tickets (`{parent}` in their paths):
/// they are listed ticket by ticket, and an incremental run lists them only for the tickets the
/// ticket since-filter returns. Their ids are unique across tickets, as upstream.
pub static ZOHO_DESK: &[EntitySpec] = &[
    EntitySpec {
        name: "department",
        list_path: "/departments",
        records_key: "data",
        pagination: Pagination::FromLimit,
        since_filter: None,
        sort_modified_ascending: &[],
        sort_modified_descending: &[],
        sort_id: ZOHO_ID,
        id_field: "id",
        modified_field: None,
        timestamp_fields: &["createdTime"],
        terminal: None,
        detail_path: "/departments/{id}",
        list_is_partial: false,
        fields_path: None,
        parent: None,
        deleted_listing: None,
        deleted_flags: ZOHO_DELETED,
        id_syntax: NUMERIC_IDS,
    },
    EntitySpec {
        name: "agent",
        list_path: "/agents",
        records_key: "data",
        pagination: Pagination::FromLimit,
        since_filter: None,
        sort_modified_ascending: &[],
        sort_modified_descending: &[],
        sort_id: ZOHO_ID,
        id_field: "id",
        modified_field: None,
        timestamp_fields: &[],
        terminal: None,
        detail_path: "/agents/{id}",
        list_is_partial: false,
        fields_path: None,
        parent: None,
        deleted_listing: None,
        deleted_flags: ZOHO_DELETED,
        id_syntax: NUMERIC_IDS,
    },
    EntitySpec {
        name: "contact",
        list_path: "/contacts",
        records_key: "data",
        pagination: Pagination::FromLimit,
        since_filter: None,
        sort_modified_ascending: ZOHO_ASC,
        sort_modified_descending: ZOHO_DESC,
        sort_id: ZOHO_ID,
        id_field: "id",
        modified_field: Some("modifiedTime"),
        timestamp_fields: &["createdTime"],
        terminal: None,
        detail_path: "/contacts/{id}",
        list_is_partial: false,
        fields_path: None,
        parent: None,
        deleted_listing: None,
        deleted_flags: ZOHO_DELETED,
        id_syntax: NUMERIC_IDS,
    },
    EntitySpec {
        name: "ticket",
        list_path: "/tickets",
        records_key: "data",
        pagination: Pagination::FromLimit,
        since_filter: Some(SinceFilter::ModifiedTimeRange { path: "/tickets/search" }),
        sort_modified_ascending: ZOHO_ASC,
        sort_modified_descending: ZOHO_DESC,
        sort_id: ZOHO_ID,
        id_field: "id",
        modified_field: Some("modifiedTime"),
        timestamp_fields: &["createdTime", "dueDate", "closedTime"],
        terminal: Some(TerminalRule {
            field: "status",
            values: &["Closed"],
        }),
        detail_path: "/tickets/{id}",
        list_is_partial: false,
        fields_path: None,
        parent: None,
        deleted_listing: None,
        deleted_flags: ZOHO_DELETED,
        id_syntax: NUMERIC_IDS,
    },
    EntitySpec {
        name: "thread",
        list_path: "/tickets/{parent}/threads",
        records_key: "data",
        pagination: Pagination::FromLimit,
        since_filter: None,
        sort_modified_ascending: &[],
        sort_modified_descending: &[],
        sort_id: ZOHO_ID,
        id_field: "id",
        modified_field: Some("createdTime"),
        timestamp_fields: &[],
        terminal: None,
        detail_path: "/tickets/{parent}/threads/{id}",
        list_is_partial: true,
        fields_path: None,
        parent: Some("ticket"),
        deleted_listing: None,
        deleted_flags: ZOHO_DELETED,
        id_syntax: NUMERIC_IDS,
    },
    EntitySpec {
        name: "comment",
        list_path: "/tickets/{parent}/comments",
        records_key: "data",
        pagination: Pagination::FromLimit,
        since_filter: None,
        sort_modified_ascending: &[],
        sort_modified_descending: &[],
        sort_id: &[],
        id_field: "id",
        modified_field: Some("modifiedTime"),
        timestamp_fields: &["commentedTime"],
        terminal: None,
        detail_path: "/tickets/{parent}/comments/{id}",
        list_is_partial: false,
        fields_path: None,
        parent: Some("ticket"),
        deleted_listing: None,
        deleted_flags: ZOHO_DELETED,
        id_syntax: NUMERIC_IDS,
    },
];

const HALO_ID: &[(&str, &str)] = &[("order", "id")];
const HALO_ID_DESC: &[(&str, &str)] = &[("order", "id"), ("orderdesc", "true")];
const HALO_TICKET_ASC: &[(&str, &str)] = &[("order", "last_update")];
const HALO_TICKET_DESC: &[(&str, &str)] = &[("order", "last_update"), ("orderdesc", "true")];
const HALO_INVOICE_DESC: &[(&str, &str)] = &[("order", "last_modified"), ("orderdesc", "true")];
const HALO_QUOTE_DESC: &[(&str, &str)] = &[("order", "last_update_time"), ("orderdesc", "true")];

const fn halo(
    name: &'static str,
    list_path: &'static str,
    records_key: &'static str,
    detail_path: &'static str,
    modified_field: Option<&'static str>,
    newest_first: &'static [(&'static str, &'static str)],
    terminal: TerminalRule,
) -> EntitySpec {
    EntitySpec {
        name,
        list_path,
        records_key,
        pagination: Pagination::PageNumber,
        since_filter: None,
        sort_modified_ascending: HALO_ID,
        sort_modified_descending: newest_first,
        sort_id: HALO_ID,
        id_field: "id",
        modified_field,
        timestamp_fields: &["datecreated", "dateoccurred", "dateclosed", "invoice_date", "duedate", "date"],
        terminal: Some(terminal),
        detail_path,
        list_is_partial: false,
        fields_path: None,
        parent: None,
        deleted_listing: None,
        deleted_flags: HALOPSA_DELETED,
        id_syntax: NUMERIC_IDS,
    }
}

/// HaloPSA: tickets have the `datesearch` since-filter; invoices, quotations and clients get a
/// capped pull of the newest records (clients carry no modified time).
pub static HALOPSA: &[EntitySpec] = &[
    halo(
        "client",
        "/Client",
        "clients",
        "/Client/{id}",
        None,
        HALO_ID_DESC,
        TerminalRule {
            field: "inactive",
            values: &["true"],
        },
    ),
    EntitySpec {
        since_filter: Some(SinceFilter::DateSearch { field: "last_update" }),
        sort_modified_ascending: HALO_TICKET_ASC,
        ..halo(
            "ticket",
            "/Tickets",
            "tickets",
            "/Tickets/{id}",
            Some("last_update"),
            HALO_TICKET_DESC,
            TerminalRule {
                field: "status_id",
                values: &["9"],
            },
        )
    },
    halo(
        "invoice",
        "/Invoice",
        "invoices",
        "/Invoice/{id}",
        Some("last_modified"),
        HALO_INVOICE_DESC,
        TerminalRule {
            field: "paymentstatus",
            values: &["2"],
        },
    ),
    halo(
        "quotation",
        "/Quotation",
        "quotes",
        "/Quotation/{id}",
        Some("last_update_time"),
        HALO_QUOTE_DESC,
        TerminalRule {
            field: "status",
            values: &["3"],
        },
    ),
];

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
        for connector in [ConnectorKind::Pipedrive, ConnectorKind::ZohoDesk, ConnectorKind::Halopsa] {
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
        let rule = HALOPSA[1].terminal.unwrap();
        assert!(rule.is_terminal(&serde_json::json!({"status_id": 9})));
        assert!(!rule.is_terminal(&serde_json::json!({"status_id": 2})));
    }

    #[test]
    fn pipedrive_costs_follow_the_token_table() {
        let pd = ConnectorKind::Pipedrive;
        assert_eq!(pd.request_cost("/v2/deals", false), 10);
        assert_eq!(pd.request_cost("/v2/deals/1", true), 1);
        assert_eq!(pd.request_cost("/v1/users", false), 20);
        assert_eq!(ConnectorKind::Halopsa.request_cost("/Tickets", false), 1);
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
