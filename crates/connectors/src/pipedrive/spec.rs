//! Pipedrive's entities: v2 lists (complete records) for deals, organizations, persons,
//! pipelines and stages; v1 for users (whole list, no since-filter).

use crate::spec::{DeletedListing, EntitySpec, Pagination, SinceFilter, NUMERIC_IDS};

/// Pipedrive's deleted flag.
const DELETED: &[&str] = &["is_deleted"];

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
        deleted_flags: DELETED,
        id_syntax: NUMERIC_IDS,
    }
}

/// Pipedrive: v2 lists (complete records) for deals, organizations, persons, pipelines and
/// stages; v1 for users (whole list, no since-filter).
pub static ENTITIES: &[EntitySpec] = &[
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
