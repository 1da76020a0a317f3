//! Every fact in `shared/vendor/README.md` is exercised: each bullet of its Pipedrive, Zoho Desk
//! and HaloPSA sections is mapped here to the tests that check it (or, for a fact no code can
//! act on, such as which edition has webhooks, to the page of `docs/` that tells the operator).
//! The test fails when the README gains a bullet nobody mapped, when a mapped test is renamed or
//! removed, or when a mapping no longer matches any bullet.

use std::path::{Path, PathBuf};

/// Where a fact is exercised.
enum Evidence {
    /// Test functions, by name, anywhere under `crates/`.
    Tests(&'static [&'static str]),
    /// A phrase that must appear in a file of `docs/`, for facts the operator acts on.
    Docs(&'static str, &'static str),
}

/// `(section, how the bullet starts, where it is exercised)`.
const FACTS: &[(&str, &str, &[Evidence])] = &[
    (
        "Pipedrive",
        "Every operation carries `x-token-cost`",
        &[Evidence::Tests(&[
            "token_costs_equal_the_specs_x_token_cost",
            "pipedrive_costs_follow_the_token_table",
        ])],
    ),
    (
        "Pipedrive",
        "v2 list filters:",
        &[Evidence::Tests(&[
            "pipedrive_updated_since_is_inclusive_and_updated_until_exclusive",
            "pipedrive_v2_cursor_pagination_is_exact_at_the_edges",
        ])],
    ),
    (
        "Pipedrive",
        "`GET /deals` without `status`",
        &[Evidence::Tests(&[
            "pipedrive_status_deleted_lists_deleted_and_merged_deals_for_thirty_days",
            "pipedrive_deleted_persons_stay_listed_with_is_deleted_and_merged_ones_leave",
            "a_row_with_the_deleted_flag_is_observed_as_a_delete",
            "a_pipedrive_webhook_refetched_as_deleted_closes_the_record",
        ])],
    ),
    (
        "Pipedrive",
        "Webhooks v2 (the default)",
        &[
            Evidence::Tests(&[
                "pipedrive_webhooks_carry_basic_auth",
                "simulator_pipedrive_wrong_password_is_refused",
                "later_changes_with_the_same_pipedrive_meta_id_are_not_swallowed",
                "v2_merges_close_the_merged_away_record_and_refetch_the_survivor",
                "pipedrive_fixture_webhooks_become_history_rows",
            ]),
            Evidence::Docs("connectors.md", "bans a webhook"),
        ],
    ),
    (
        "Pipedrive",
        "Rate limits:",
        &[Evidence::Tests(&[
            "rate_limits_server_errors_and_outages_answer_as_configured",
            "retry_after_never_overflows",
        ])],
    ),
    (
        "Zoho Desk",
        "**Webhook authentication is a JWT",
        &[Evidence::Tests(&[
            "zoho_jwt_refuses_expired_wrong_audience_wrong_issuer_and_unknown_keys",
            "zoho_jwt_simulator_deliveries_are_accepted_across_a_key_rotation",
            "zoho_jwt_parses_and_defaults_the_jwks_url_to_the_desk_host",
        ])],
    ),
    (
        "Zoho Desk",
        "When a webhook is created or updated",
        &[Evidence::Tests(&["zoho_jwt_get_handshake_answers_200"])],
    ),
    (
        "Zoho Desk",
        "A delivery must be answered 2xx within **5 seconds**",
        &[Evidence::Docs("connectors.md", "5 s")],
    ),
    (
        "Zoho Desk",
        "The body is a JSON **array** of events",
        &[Evidence::Tests(&[
            "zoho_events_dedupe_by_entity_id_type_and_time",
            "zoho_webhooks_are_event_arrays_signed_only_with_the_jwt",
        ])],
    ),
    (
        "Zoho Desk",
        "Webhooks need the Professional edition",
        &[Evidence::Docs("connectors.md", "Professional")],
    ),
    (
        "Zoho Desk",
        "`GET /tickets`: `from` + `limit`",
        &[Evidence::Tests(&[
            "zoho_desk_from_limit_pagination_is_exact_at_the_edges",
            "zoho_desk_fixtures_have_simulated_counterparts",
            "zoho_contact_rows_are_partial_and_contacts_search_by_modified_time",
            "zoho_tickets_list_sorts_only_as_the_vendor_documents",
        ])],
    ),
    (
        "Zoho Desk",
        "`GET /tickets/search`",
        &[Evidence::Tests(&[
            "zoho_search_window_of_6000_changed_tickets_is_split_without_loss",
            "zoho_modified_time_range_is_inclusive_at_both_ends",
        ])],
    ),
    (
        "Zoho Desk",
        "Sub-resources:",
        &[Evidence::Tests(&[
            "zoho_incremental_run_writes_an_edited_thread_of_a_changed_ticket",
        ])],
    ),
    (
        "Zoho Desk",
        "Deletes: `Ticket_Delete` webhooks",
        &[Evidence::Tests(&[
            "zoho_payloads_flagged_deleted_or_trashed_are_deletes",
            "a_zoho_payload_flagged_trashed_closes_the_record_once_confirmed",
            "each_vendor_deleted_flag_marks_a_record_deleted",
        ])],
    ),
    (
        "Zoho Desk",
        "**Credits, not calls.**",
        &[Evidence::Tests(&[
            "pages_cost_by_their_offset_tier",
            "zoho_desk_charges_credits_by_offset_tier_and_refills_daily",
            "zoho_credit_reserve_defers_the_rest_of_the_run_and_the_next_run_goes_on",
        ])],
    ),
    (
        "Zoho Desk",
        "OAuth: `Authorization: Zoho-oauthtoken",
        &[Evidence::Tests(&[
            "zoho_refresh_does_not_rotate_by_default_and_refuses_rotated_tokens_when_rotating",
        ])],
    ),
    (
        "HaloPSA",
        "Webhook payloads",
        &[Evidence::Tests(&[
            "live_fixture_parses_as_a_ticket_upsert",
            "halopsa_batched_deliveries_land_as_rows",
            "halopsa_event_only_deliveries_are_refetched_by_object_id",
            "halopsa_webhooks_use_basic_auth_or_a_static_header",
            "halopsa_unknown_events_are_acknowledged_and_counted",
        ])],
    ),
    (
        "HaloPSA",
        "`/Tickets` filters:",
        &[Evidence::Tests(&[
            "halopsa_page_number_pagination_is_exact_at_the_edges",
            "halo_datesearch_startdate_is_inclusive",
            "halopsa_list_rows_are_strict_subsets_of_the_details",
            "halopsa_reconcile_then_webhook_of_unchanged_records_writes_no_version",
        ])],
    ),
    (
        "HaloPSA",
        "`/Invoice` has a since-filter",
        &[Evidence::Tests(&[
            "halopsa_invoices_are_incremental_on_last_modified_and_fetch_only_changed_details",
            "halo_since_filters_are_the_documented_ones",
        ])],
    ),
    (
        "HaloPSA",
        "`/Client` lists `lastupdatefromdate`",
        &[Evidence::Tests(&[
            "halopsa_an_edit_to_an_old_client_is_picked_up_by_the_incremental_run",
            "halopsa_a_tenant_ignoring_the_client_filter_falls_back_to_the_capped_pull",
        ])],
    ),
    (
        "HaloPSA",
        "Rate limit: not published",
        &[Evidence::Docs("connectors.md", "about 450 requests")],
    ),
];

fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn vendor_readme() -> String {
    let dir = match std::env::var("SYNCLINE_VENDOR") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => repo_dir().join("../shared/vendor"),
    };
    let path = dir.join("README.md");
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}; set SYNCLINE_VENDOR", path.display()))
}

/// The bullets of each `## ` section, as `(section, text)`, continuation lines joined.
fn bullets(readme: &str) -> Vec<(String, String)> {
    let mut section = String::new();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in readme.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.trim().to_string();
        } else if let Some(text) = line.strip_prefix("- ") {
            out.push((section.clone(), text.trim().to_string()));
        } else if line.starts_with("  ") && !line.trim().is_empty() {
            if let Some((_, text)) = out.last_mut() {
                text.push(' ');
                text.push_str(line.trim());
            }
        }
    }
    out
}

/// Every `fn name` defined in the workspace's Rust files.
fn function_names() -> std::collections::HashSet<String> {
    let mut names = std::collections::HashSet::new();
    let mut stack = vec![repo_dir().join("crates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("fn ").skip(1) {
                    let name: String = piece.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    names.insert(name);
                }
            }
        }
    }
    names
}

/// The start of a fact, for messages.
fn short(text: &str) -> String {
    match text.char_indices().nth(60) {
        Some((at, _)) => format!("{}...", &text[..at]),
        None => text.to_string(),
    }
}

#[test]
fn every_vendor_fact_is_exercised_by_a_test_or_documented() {
    let readme = vendor_readme();
    let facts = bullets(&readme);
    assert!(
        facts.len() >= 15,
        "the vendor README has only {} bullets; is it the right file?",
        facts.len()
    );
    let functions = function_names();
    let mut problems = Vec::new();
    for (section, full_text) in &facts {
        if !matches!(section.as_str(), "Pipedrive" | "Zoho Desk" | "HaloPSA") {
            continue;
        }
        let text = short(full_text);
        let mapped: Vec<_> = FACTS
            .iter()
            .filter(|(fact_section, start, _)| fact_section == section && full_text.starts_with(start))
            .collect();
        match mapped.as_slice() {
            [] => problems.push(format!("{section}: no test is mapped to the fact `{text}`; add it to FACTS")),
            [_, _, ..] => problems.push(format!("{section}: more than one mapping matches `{text}`")),
            [(_, _, evidence)] => {
                if evidence
                    .iter()
                    .all(|item| matches!(item, Evidence::Tests(names) if names.is_empty()))
                {
                    problems.push(format!("{section}: nothing exercises `{text}`"));
                }
                for item in evidence.iter() {
                    match item {
                        Evidence::Tests(names) => {
                            for name in names.iter().filter(|name| !functions.contains(**name)) {
                                problems.push(format!("{section}: test `{name}` (for `{text}`) does not exist"));
                            }
                        }
                        Evidence::Docs(file, phrase) => {
                            let page = std::fs::read_to_string(repo_dir().join("docs").join(file)).unwrap_or_default();
                            if !page.contains(phrase) {
                                problems.push(format!("{section}: docs/{file} does not mention `{phrase}` (for `{text}`)"));
                            }
                        }
                    }
                }
            }
        }
    }
    for (section, start, _) in FACTS {
        if !facts
            .iter()
            .any(|(fact_section, text)| fact_section == section && text.starts_with(start))
        {
            problems.push(format!(
                "{section}: the mapping `{start}` matches no fact of the vendor README; remove it"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
