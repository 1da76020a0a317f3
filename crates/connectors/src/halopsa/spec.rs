//! HaloPSA's entities.
//!
//! Since-filters (vendor README, `shared/vendor/README.md`; names checked against the swagger):
//! - tickets: `lastupdatefromdate` over `last_update` (the swagger's `/Tickets` parameter; the
//!   ticket's last update moves on every edit, while `lastactiondate` moves only when an action
//!   such as a note or an email is added, so a status or field change made without an action
//!   would be missed);
//! - invoices: `datesearch=last_modified` with `start_date` (used in production; the swagger,
//!   a work in progress, lists only `invoicedatestart`/`invoicedateend`);
//! - clients: `lastupdatefromdate` over `alastupdate` (in the swagger; whether a tenant honours
//!   it is unconfirmed, so a run that gets older rows back falls back to the capped pull ordered
//!   by `alastupdate`);
//! - quotations: none; a capped pull ordered by `last_update_time`.
//!
//! Every list row is partial (a ticket row follows the swagger's `Faults_List`, not `Faults`;
//! invoice and quotation rows carry no `lines` without `includelines`, client rows no `notes`
//! without `includenotes`), so the reconciler fetches the detail of each new or changed id and
//! writes the same shape as the webhook worker.

use crate::spec::{EntitySpec, IgnoredFilter, Pagination, SinceFilter, TerminalRule, NUMERIC_IDS};

/// HaloPSA's deleted flag.
const DELETED: &[&str] = &["deleted"];

const HALO_ID: &[(&str, &str)] = &[("order", "id")];
const HALO_TICKET_ASC: &[(&str, &str)] = &[("order", "last_update")];
const HALO_TICKET_DESC: &[(&str, &str)] = &[("order", "last_update"), ("orderdesc", "true")];
const HALO_INVOICE_ASC: &[(&str, &str)] = &[("order", "last_modified")];
const HALO_INVOICE_DESC: &[(&str, &str)] = &[("order", "last_modified"), ("orderdesc", "true")];
const HALO_CLIENT_ASC: &[(&str, &str)] = &[("order", "alastupdate")];
const HALO_CLIENT_DESC: &[(&str, &str)] = &[("order", "alastupdate"), ("orderdesc", "true")];
const HALO_QUOTE_ASC: &[(&str, &str)] = &[("order", "last_update_time")];
const HALO_QUOTE_DESC: &[(&str, &str)] = &[("order", "last_update_time"), ("orderdesc", "true")];

/// `/Tickets?lastupdatefromdate=<since>`.
pub const TICKET_SINCE: SinceFilter = SinceFilter::SinceParam {
    param: "lastupdatefromdate",
    with: &[],
    if_ignored: IgnoredFilter::Trusted,
};

/// `/Invoice?datesearch=last_modified&start_date=<since>`.
pub const INVOICE_SINCE: SinceFilter = SinceFilter::SinceParam {
    param: "start_date",
    with: &[("datesearch", "last_modified")],
    if_ignored: IgnoredFilter::Trusted,
};

/// `/Client?lastupdatefromdate=<since>`; unconfirmed whether tenants honour it.
pub const CLIENT_SINCE: SinceFilter = SinceFilter::SinceParam {
    param: "lastupdatefromdate",
    with: &[],
    if_ignored: IgnoredFilter::FallBackToCapped,
};

#[allow(clippy::too_many_arguments)]
const fn halo(
    name: &'static str,
    list_path: &'static str,
    records_key: &'static str,
    detail_path: &'static str,
    modified_field: &'static str,
    since_filter: Option<SinceFilter>,
    oldest_first: &'static [(&'static str, &'static str)],
    newest_first: &'static [(&'static str, &'static str)],
    terminal: TerminalRule,
) -> EntitySpec {
    EntitySpec {
        name,
        list_path,
        records_key,
        pagination: Pagination::PageNumber,
        since_filter,
        sort_modified_ascending: oldest_first,
        sort_modified_descending: newest_first,
        sort_id: HALO_ID,
        id_field: "id",
        modified_field: Some(modified_field),
        timestamp_fields: &["datecreated", "dateoccurred", "dateclosed", "invoice_date", "duedate", "date"],
        terminal: Some(terminal),
        detail_path,
        list_is_partial: true,
        fields_path: None,
        parent: None,
        deleted_listing: None,
        deleted_flags: DELETED,
        id_syntax: NUMERIC_IDS,
    }
}

/// HaloPSA's entities, in sync order (clients first: the others name them).
pub static ENTITIES: &[EntitySpec] = &[
    halo(
        "client",
        "/Client",
        "clients",
        "/Client/{id}",
        "alastupdate",
        Some(CLIENT_SINCE),
        HALO_CLIENT_ASC,
        HALO_CLIENT_DESC,
        TerminalRule {
            field: "inactive",
            values: &["true"],
        },
    ),
    halo(
        "ticket",
        "/Tickets",
        "tickets",
        "/Tickets/{id}",
        "last_update",
        Some(TICKET_SINCE),
        HALO_TICKET_ASC,
        HALO_TICKET_DESC,
        TerminalRule {
            field: "status_id",
            values: &["9"],
        },
    ),
    halo(
        "invoice",
        "/Invoice",
        "invoices",
        "/Invoice/{id}",
        "last_modified",
        Some(INVOICE_SINCE),
        HALO_INVOICE_ASC,
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
        "last_update_time",
        None,
        HALO_QUOTE_ASC,
        HALO_QUOTE_DESC,
        TerminalRule {
            field: "status",
            values: &["3"],
        },
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::ConnectorKind;

    #[test]
    fn every_entity_is_partial_and_has_a_modified_time() {
        for spec in ENTITIES {
            assert!(spec.list_is_partial, "{}", spec.name);
            assert!(spec.modified_field.is_some(), "{}", spec.name);
        }
        let halo = ConnectorKind::Halopsa;
        assert_eq!(halo.entity("quotation").unwrap().since_filter, None);
        assert_eq!(halo.entity("invoice").unwrap().since_filter, Some(INVOICE_SINCE));
        assert_eq!(halo.entity("client").unwrap().modified_field, Some("alastupdate"));
    }

    #[test]
    fn only_the_client_filter_is_watched_for_being_ignored() {
        let client = ConnectorKind::Halopsa.entity("client").unwrap();
        let since = syncline_core::parse_timestamp("2026-03-01T00:00:00Z").unwrap();
        let old = serde_json::json!({"id": 1, "alastupdate": "2026-01-01T00:00:00.0000000Z"});
        let new = serde_json::json!({"id": 2, "alastupdate": "2026-03-01T00:00:05.0000000Z"});
        // Within the tolerance: a vendor comparing whole seconds.
        let same_second = serde_json::json!({"id": 3, "alastupdate": "2026-02-28T23:59:59.5000000Z"});
        assert!(CLIENT_SINCE.ignored_by(client, &[new.clone(), old.clone()], since));
        assert!(!CLIENT_SINCE.ignored_by(client, &[new, same_second], since));
        let ticket = ConnectorKind::Halopsa.entity("ticket").unwrap();
        let old_ticket = serde_json::json!({"id": 1, "last_update": "2026-01-01T00:00:00.0000000Z"});
        assert!(
            !TICKET_SINCE.ignored_by(ticket, &[old_ticket], since),
            "a trusted filter is not second-guessed"
        );
    }
}
