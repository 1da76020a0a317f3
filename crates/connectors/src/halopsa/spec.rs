//! HaloPSA's entities.

use crate::spec::{EntitySpec, Pagination, SinceFilter, TerminalRule, NUMERIC_IDS};

/// HaloPSA's deleted flag.
const DELETED: &[&str] = &["deleted"];

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
        deleted_flags: DELETED,
        id_syntax: NUMERIC_IDS,
    }
}

/// HaloPSA: tickets have the `datesearch` since-filter; invoices, quotations and clients get a
/// capped pull of the newest records (clients carry no modified time).
pub static ENTITIES: &[EntitySpec] = &[
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
