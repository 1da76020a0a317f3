//! Connectors and the reconciler.
//!
//! - [`config`]: `syncline.toml`, typed and documented, with `${ENV}` interpolation;
//! - [`spec`]: connectors as data (entities, endpoints, pagination, since-filters, id and
//!   modified-time fields, terminal-state rules, detail endpoints);
//! - [`http`]: the HTTP engine (auth, retries, budget, cost accounting);
//! - [`list`]: one pager per pagination kind;
//! - [`locks`]: one writer per `(source, entity)`, held for one batch;
//! - [`pipedrive`], [`zoho_desk`], [`halopsa`]: one folder per connector (its entities, webhook
//!   parsing, cost model and quirks), each declaring a [`spec::ConnectorProfile`];
//! - [`reconcile`]: incremental, capped and full reconciliation through the history engine;
//! - [`webhook`]: webhook verification (HMAC, Basic auth, header token) and payload parsing.

pub mod config;
pub mod halopsa;
pub mod http;
pub mod list;
pub mod locks;
pub mod parity;
pub mod pipedrive;
pub mod reconcile;
pub mod refetch;
pub mod spec;
pub mod webhook;
pub mod zoho_desk;

pub use config::{
    check_secret_strength, redact_url, AuthConfig, ConfigError, InitialSync, ScheduleSection, Secret, SourceConfig, SourceSchedule,
    SourceScheduleConfig, SynclineConfig, WebhookSection,
};
pub use http::{CallStats, HttpEngine};
pub use locks::WriteLocks;
pub use reconcile::{sync_source, EntityReport, NoProgress, Progress, SourceRun, SyncMode};
pub use spec::{ConnectorKind, ConnectorProfile, EntitySpec, IdSyntax, IgnoredFilter, InvalidId, Pagination, SinceFilter};
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
    /// The upstream failed on every retry (a 5xx, a timeout, a refused connection): transient.
    #[error("{0}")]
    Unavailable(String),
    /// The upstream refused the request with a 4xx other than 401/403/404/410/429.
    #[error("{message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// What was asked and answered.
        message: String,
    },
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
    /// The vendor's daily API pool fell under the source's `credit_reserve`: nothing more is
    /// requested until it refills, so the customer's other integrations keep their credits.
    #[error("source {source_name} has {remaining} api credits left today, under its credit_reserve of {reserve}; the rest of the run is deferred until the pool refills (lower credit_reserve to spend more)")]
    CreditReserve {
        /// The source.
        source_name: String,
        /// Credits left, as the vendor last reported them.
        remaining: u64,
        /// The configured reserve.
        reserve: u64,
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

impl ConnectorError {
    /// True for trouble that says nothing about the records being fetched or written: the
    /// upstream down or rate limiting, the request budget used up, the warehouse or the state
    /// store failing (locked, unreachable). Such failures are retried later without counting
    /// an attempt towards the dead-letter list.
    pub fn is_transient(&self) -> bool {
        match self {
            ConnectorError::Unavailable(_)
            | ConnectorError::RateLimited { .. }
            | ConnectorError::BudgetExhausted { .. }
            | ConnectorError::CreditReserve { .. }
            | ConnectorError::State(_) => true,
            ConnectorError::Write(error) => !matches!(error, syncline_destinations::WriteError::Core(_)),
            ConnectorError::Http(_)
            | ConnectorError::Rejected { .. }
            | ConnectorError::Auth(_)
            | ConnectorError::Core(_)
            | ConnectorError::InvalidId(_) => false,
        }
    }
}
