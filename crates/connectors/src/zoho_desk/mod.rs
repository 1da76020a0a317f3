//! Zoho Desk: its entities ([`spec`]), its credit cost model ([`cost`]), webhooks ([`webhook`])
//! and their tokens ([`jwt`], with the key-set fetch in [`jwks`]).

pub mod cost;
pub mod jwks;
pub mod jwt;
pub mod spec;
pub mod webhook;

use crate::config::AuthConfig;
use crate::spec::{any_verification, ConnectorProfile};

/// Zoho Desk as the generic code sees it.
pub static PROFILE: ConnectorProfile = ConnectorProfile {
    name: "zoho_desk",
    entities: spec::ENTITIES,
    max_page_size: 100,
    example_base_url: "https://desk.zoho.com/api/v1",
    auth_hint: "\"oauth2_refresh\"",
    accepts_auth: |auth| matches!(auth, AuthConfig::Oauth2Refresh { .. }),
    token_scheme: "Zoho-oauthtoken",
    needs_org_id: true,
    verify_hint: "verify = { type = \"zoho_jwt\", webhook_id = \"<the webhook's id at zoho desk>\" }",
    refuses_verification: any_verification,
    request_cost: cost::request_cost,
    remaining_credits_header: Some(cost::REMAINING_HEADER),
    webhook_format: "a JSON array of events with eventType and payload",
    parse_webhook: webhook::parse,
};
