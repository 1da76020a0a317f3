//! Connectors and the reconciler.
//!
//! - [`config`]: `syncline.toml`, typed and documented, with `${ENV}` interpolation;
//! - [`spec`]: connectors as data (entities, endpoints, pagination, since-filters, id and
//!   modified-time fields, terminal-state rules, detail endpoints);
//! - [`http`]: the HTTP engine (auth, retries, budget, cost accounting);
//! - [`list`]: one pager per pagination kind;
//! - [`pipedrive`]: custom-field names;
//! - [`reconcile`]: incremental, capped and full reconciliation through the history engine;
//! - [`webhook`]: webhook verification (HMAC, Basic auth, header token) and payload parsing.

pub mod config;
pub mod http;
pub mod list;
pub mod parity;
pub mod pipedrive;
pub mod reconcile;
pub mod refetch;
pub mod spec;
pub mod webhook;

pub use config::{
    check_secret_strength, redact_url, AuthConfig, ConfigError, InitialSync, ScheduleSection, Secret, SourceConfig, SourceSchedule,
    SourceScheduleConfig, SynclineConfig, WebhookSection,
};
pub use http::{CallStats, HttpEngine};
pub use reconcile::{sync_source, EntityReport, NoProgress, Progress, SourceRun, SyncMode};
pub use spec::{ConnectorKind, EntitySpec, IdSyntax, InvalidId, Pagination, SinceFilter};
pub use webhook::{
    body_digest, parse_webhook, verify, HmacScheme, HmacVerification, ParseError, ParsedWebhook, SignatureEncoding, VerifyError,
    WebhookVerification,
};

/// Errors of a connector or the reconciler.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// A request failed for good (see the message).
    #[error("{0}")]
    Http(String),
    /// Authentication failed.
    #[error("authentication failed: {0}")]
    Auth(String),
    /// Still rate limited after every retry.
    #[error("GET {path} is still rate limited after every retry; lower the sync frequency or raise retry.max_attempts")]
    RateLimited {
        /// The endpoint.
        path: String,
    },
    /// The per-source request budget is used up.
    #[error("source {source_name} used its request budget of {budget} calls in this run; raise request_budget or sync fewer entities")]
    BudgetExhausted {
        /// The source.
        source_name: String,
        /// The budget.
        budget: u64,
    },
    /// The state store failed.
    #[error(transparent)]
    State(#[from] syncline_state::StateError),
    /// Writing history failed.
    #[error(transparent)]
    Write(#[from] syncline_destinations::WriteError),
    /// A record cannot become history.
    #[error(transparent)]
    Core(#[from] syncline_core::CoreError),
    /// An id from outside does not match its entity's id syntax; nothing was requested.
    #[error(transparent)]
    InvalidId(#[from] spec::InvalidId),
}
