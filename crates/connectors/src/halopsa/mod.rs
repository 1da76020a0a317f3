//! HaloPSA: its entities ([`spec`]) and webhooks ([`webhook`]).

pub mod spec;
pub mod webhook;

use crate::config::AuthConfig;
use crate::spec::{any_verification, one_per_call, ConnectorProfile};

/// HaloPSA as the generic code sees it.
pub static PROFILE: ConnectorProfile = ConnectorProfile {
    name: "halopsa",
    entities: spec::ENTITIES,
    max_page_size: 100,
    example_base_url: "https://TENANT.halopsa.com/api",
    auth_hint: "\"client_credentials\"",
    accepts_auth: |auth| matches!(auth, AuthConfig::ClientCredentials { .. }),
    token_scheme: "Bearer",
    needs_org_id: false,
    verify_hint: "verify = { type = \"basic\", username = \"syncline\", password = \"${HALOPSA_WEBHOOK_PASSWORD}\" } or { type = \"header\", header = \"x-halo-secret\", value = \"${HALOPSA_WEBHOOK_TOKEN}\" }",
    refuses_verification: any_verification,
    request_cost: one_per_call,
    remaining_credits_header: None,
    webhook_format: "a JSON object (or, batched, an array of them) with event and object_id",
    parse_webhook: webhook::parse,
};
