//! Pipedrive CRM: its entities ([`spec`]), custom-field names ([`fields`]), webhooks
//! ([`webhook`]) and token costs.

pub mod cost;
pub mod fields;
pub mod spec;
pub mod webhook;

pub use fields::*;

use crate::config::AuthConfig;
use crate::spec::ConnectorProfile;
use crate::webhook::WebhookVerification;

/// Pipedrive as the generic code sees it.
pub static PROFILE: ConnectorProfile = ConnectorProfile {
    name: "pipedrive",
    entities: spec::ENTITIES,
    max_page_size: 500,
    example_base_url: "https://COMPANY.pipedrive.com/api",
    auth_hint: "\"api_token\" or \"oauth2_refresh\"",
    accepts_auth: |auth| matches!(auth, AuthConfig::ApiToken { .. } | AuthConfig::Oauth2Refresh { .. }),
    token_scheme: "Bearer",
    needs_org_id: false,
    verify_hint: "verify = { type = \"basic\", username = \"syncline\", password = \"${PIPEDRIVE_WEBHOOK_PASSWORD}\" }",
    refuses_verification: |verification| {
        (!matches!(verification, WebhookVerification::Basic { .. })).then_some("pipedrive signs no webhooks and sends only HTTP Basic auth")
    },
    request_cost: cost::request_cost,
    remaining_credits_header: None,
    webhook_format: "v1 or v2 webhooks with a `meta` object",
    parse_webhook: webhook::parse,
};
