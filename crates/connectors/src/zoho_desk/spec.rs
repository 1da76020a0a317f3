//! Zoho Desk's entities. Threads and comments are sub-resources of tickets (`{parent}` in their
//! paths): they are listed ticket by ticket, and an incremental run lists them only for the
//! tickets the ticket since-filter returns. Their ids are unique across tickets, as upstream.

use crate::spec::{EntitySpec, Pagination, SinceFilter, TerminalRule, NUMERIC_IDS};

/// Zoho Desk's deleted flags.
const DELETED: &[&str] = &["isDeleted", "isTrashed"];

/// The search endpoints' order for an incremental window: oldest modified first.
const ZOHO_ASC: &[(&str, &str)] = &[("sortBy", "modifiedTime")];
const ZOHO_ID: &[(&str, &str)] = &[("sortBy", "id")];
/// The stable order of a full listing of tickets and contacts: `GET /tickets` sorts only by
/// `createdTime`, `responseDueDate` or `customerResponseTime` (no modified time, no id).
const ZOHO_CREATED: &[(&str, &str)] = &[("sortBy", "createdTime")];

/// Zoho Desk. Threads and comments are sub-resources of tickets (`{parent}` in their paths):
/// they are listed ticket by ticket, and an incremental run lists them only for the tickets the
/// ticket since-filter returns. Their ids are unique across tickets, as upstream.
pub static ENTITIES: &[EntitySpec] = &[
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
        deleted_flags: DELETED,
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
        deleted_flags: DELETED,
        id_syntax: NUMERIC_IDS,
    },
    EntitySpec {
        name: "contact",
        list_path: "/contacts",
        records_key: "data",
        pagination: Pagination::FromLimit,
        // `/contacts/search` takes `modifiedTimeRange` and stops at `from` 4999, as tickets.
        since_filter: Some(SinceFilter::ModifiedTimeRange {
            path: "/contacts/search",
            max_offset: 4_999,
        }),
        sort_modified_ascending: ZOHO_ASC,
        sort_modified_descending: &[],
        sort_id: ZOHO_CREATED,
        id_field: "id",
        modified_field: Some("modifiedTime"),
        timestamp_fields: &["createdTime"],
        terminal: None,
        detail_path: "/contacts/{id}",
        // Contact list and search rows are partial (no address, no description; list rows no
        // `modifiedTime`): each new or changed contact is fetched by id.
        list_is_partial: true,
        fields_path: None,
        parent: None,
        deleted_listing: None,
        deleted_flags: DELETED,
        id_syntax: NUMERIC_IDS,
    },
    EntitySpec {
        name: "ticket",
        list_path: "/tickets",
        records_key: "data",
        pagination: Pagination::FromLimit,
        since_filter: Some(SinceFilter::ModifiedTimeRange {
            path: "/tickets/search",
            max_offset: 4_999,
        }),
        sort_modified_ascending: ZOHO_ASC,
        sort_modified_descending: &[],
        sort_id: ZOHO_CREATED,
        id_field: "id",
        modified_field: Some("modifiedTime"),
        timestamp_fields: &["createdTime", "dueDate", "closedTime"],
        terminal: Some(TerminalRule {
            field: "status",
            values: &["Closed"],
        }),
        detail_path: "/tickets/{id}",
        // `GET /tickets` and search rows are partial (no `description`, no `cf`; list rows
        // no `modifiedTime`): each new or changed ticket is fetched by id.
        list_is_partial: true,
        fields_path: None,
        parent: None,
        deleted_listing: None,
        deleted_flags: DELETED,
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
        // Threads carry only `createdTime`, which an edit does not move: a thread's content is
        // what tells a change, so its rows are compared with the stored record.
        modified_field: None,
        timestamp_fields: &["createdTime"],
        terminal: None,
        detail_path: "/tickets/{parent}/threads/{id}",
        list_is_partial: true,
        fields_path: None,
        parent: Some("ticket"),
        deleted_listing: None,
        deleted_flags: DELETED,
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
        deleted_flags: DELETED,
        id_syntax: NUMERIC_IDS,
    },
];
