//! `syncline.toml`: sources, destination, state store, history profile and schedules.
//!
//! Loading is two steps, both without network: the text is parsed into the typed structs (so an
//! unknown or misspelt field is reported with its line and the fields allowed there), then
//! `${ENV}` placeholders in string values are replaced and the result is validated field by
//! field. Every error names the offending field and says what to write instead.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use syncline_core::{CronSchedule, CronTimeZone, HistoryProfile, ProfileKind, StartSetting};

use crate::spec::ConnectorKind;
use crate::webhook::{WebhookVerification, DEFAULT_MAX_BODY_BYTES};

/// A configuration problem: the field (dotted path) and what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {message}; check the path given to --config")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        message: String,
    },
    /// The text is not valid TOML or does not match the schema.
    #[error("config is not valid: {0}")]
    Syntax(String),
    /// One field is wrong.
    #[error("config field `{field}`: {message}")]
    Field {
        /// Dotted path of the field, e.g. `sources.pipedrive.auth.token`.
        field: String,
        /// What is wrong and what to write instead.
        message: String,
    },
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Field {
        field: field.into(),
        message: message.into(),
    }
}

/// A secret value (API token, client secret, refresh token). Its `Debug` and `Display` never
/// show the value.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret from a string.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value; use it only to authenticate.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("***")
    }
}

/// Fewest characters of a secret syncline checks itself (`server.sync_secret`, webhook
/// passwords, header tokens and HMAC secrets): shorter ones are guessable.
pub const MIN_SECRET_CHARS: usize = 16;

/// Refuses an empty or trivially short secret that syncline checks on incoming requests; the
/// message names neither the value nor its characters, only what to write instead.
pub fn check_secret_strength(secret: &Secret) -> Result<(), String> {
    let value = secret.expose();
    let length = value.chars().count();
    let what_to_write = "generate one with `openssl rand -hex 32`, write \"${ENV_VAR}\" and export the secret in that variable";
    if value.trim().is_empty() {
        return Err(format!("is empty (an unset variable expands to nothing); {what_to_write}"));
    }
    if length < MIN_SECRET_CHARS {
        return Err(format!(
            "is {length} characters, fewer than the {MIN_SECRET_CHARS} required; {what_to_write}"
        ));
    }
    let first = value.chars().next();
    if value.chars().all(|character| Some(character) == first) {
        return Err(format!("repeats one character; {what_to_write}"));
    }
    Ok(())
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynclineConfig {
    /// The warehouse the history tables are written to, as a URL: `duckdb://warehouse.duckdb`.
    pub destination: DestinationSection,
    /// syncline's own durable state (cursors, tokens, current-record index), as a URL:
    /// `sqlite://state.db`.
    pub state: StateSection,
    /// Names and semantics of the history columns.
    #[serde(default)]
    pub history: HistorySection,
    /// How often the reconciler runs (used by `syncline serve`; `syncline sync` runs once).
    #[serde(default)]
    pub schedules: ScheduleSection,
    /// The webhook server, `/sync` and the worker (used by `syncline serve`).
    #[serde(default)]
    pub server: ServerSection,
    /// The upstream accounts, keyed by source name (`[sources.pipedrive]`). The name scopes the
    /// state store and appears in logs and the summary.
    pub sources: BTreeMap<String, SourceConfig>,
}

/// `[server]`: `syncline serve`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on, e.g. `"0.0.0.0:8080"`. Default: `0.0.0.0:$PORT` when the `PORT`
    /// environment variable is set (Cloud Run), else `127.0.0.1:8080`.
    #[serde(default)]
    pub listen: Option<String>,
    /// The secret `POST /sync` requires in its `X-Sync-Secret` header; write
    /// `"${SYNCLINE_SYNC_SECRET}"`. Without it `/sync` is disabled.
    #[serde(default)]
    pub sync_secret: Option<Secret>,
    /// Run the built-in scheduler (default `true`); turn it off when an external scheduler
    /// (Cloud Scheduler, cron) calls `/sync`.
    #[serde(default = "default_true")]
    pub scheduler: bool,
    /// Most inbox events the worker applies per batch (default 1000).
    #[serde(default = "default_worker_batch_size")]
    pub worker_batch_size: usize,
    /// Attempts before a failing event goes to the dead-letter list (default 8); see
    /// `syncline inbox list`. Transient trouble (the upstream or the warehouse down, a rate
    /// limit) counts no attempt.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How far past its receive time a webhook may date an event, in seconds (default 60);
    /// later event times are clamped to the receive time plus this, so a skewed or forged
    /// clock cannot date a delete in the future.
    #[serde(default = "default_max_event_skew_seconds")]
    pub max_event_skew_seconds: u64,
    /// Longest time a client may take to send a request's headers, in milliseconds (default
    /// 10000); a slower connection is closed.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// Longest time a client may take to send a request's body, in milliseconds (default
    /// 30000); a slower request is answered 408.
    #[serde(default = "default_body_read_timeout_ms")]
    pub body_read_timeout_ms: u64,
    /// Longest time a webhook, `/readyz` or `/metrics` request may take from its headers to its
    /// answer, in milliseconds (default 60000); `/sync` runs as long as its reconcile.
    #[serde(default = "default_request_timeout_ms")]
    pub request_timeout_ms: u64,
    /// Most open client connections (default 4096); more are answered 503 with `Retry-After`
    /// and closed.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most requests handled at once (default 512); more are answered 503 with `Retry-After`
    /// before their body is read.
    #[serde(default = "default_max_requests_in_flight")]
    pub max_requests_in_flight: usize,
}

fn default_max_event_skew_seconds() -> u64 {
    60
}

fn default_header_read_timeout_ms() -> u64 {
    10_000
}

fn default_body_read_timeout_ms() -> u64 {
    30_000
}

fn default_request_timeout_ms() -> u64 {
    60_000
}

fn default_max_connections() -> usize {
    4_096
}

fn default_max_requests_in_flight() -> usize {
    512
}

fn default_true() -> bool {
    true
}

fn default_worker_batch_size() -> usize {
    1_000
}

fn default_max_attempts() -> u32 {
    8
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: None,
            sync_secret: None,
            scheduler: true,
            worker_batch_size: default_worker_batch_size(),
            max_attempts: default_max_attempts(),
            max_event_skew_seconds: default_max_event_skew_seconds(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            body_read_timeout_ms: default_body_read_timeout_ms(),
            request_timeout_ms: default_request_timeout_ms(),
            max_connections: default_max_connections(),
            max_requests_in_flight: default_max_requests_in_flight(),
        }
    }
}

/// `[destination]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSection {
    /// Destination URL: `duckdb://path/to/warehouse.duckdb` (a relative path is relative to the
    /// working directory).
    pub url: String,
}

impl fmt::Debug for DestinationSection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("DestinationSection")
            .field("url", &redact_url(&self.url))
            .finish()
    }
}

/// `[state]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// State-store URL: `sqlite://path/to/state.db`.
    pub url: String,
    /// What an acknowledged webhook survives: `crash` (default; a crash or kill of the
    /// process) or `power_loss` (a power cut too: SQLite `synchronous = FULL`, a disk flush per
    /// inbox commit). PostgreSQL follows its server's `synchronous_commit` either way.
    #[serde(default)]
    pub durability: DurabilityName,
}

/// `[state] durability`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DurabilityName {
    /// Survives a process crash (SQLite `synchronous = NORMAL`).
    #[default]
    Crash,
    /// Survives a power cut too (SQLite `synchronous = FULL`).
    PowerLoss,
}

impl StateSection {
    /// The durability these settings ask for.
    pub fn durability(&self) -> syncline_state::Durability {
        match self.durability {
            DurabilityName::Crash => syncline_state::Durability::Crash,
            DurabilityName::PowerLoss => syncline_state::Durability::PowerLoss,
        }
    }
}

impl fmt::Debug for StateSection {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("StateSection")
            .field("url", &redact_url(&self.url))
            .field("durability", &self.durability)
            .finish()
    }
}

/// A URL with its password, `password=` / `sslpassword=` and other credential parameters
/// replaced by `***`: the only form in which syncline shows a configured URL.
pub fn redact_url(url: &str) -> String {
    syncline_state::postgres_url::redact_url(url)
}

/// `[history]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistorySection {
    /// `fivetran` (default: `_fivetran_start`, ..., open end `9999-12-31 23:59:59`) or `cdc`
    /// (`_cdc_start`, ..., open end NULL).
    #[serde(default)]
    pub profile: ProfileName,
    /// A custom prefix for the metadata columns (`{prefix}start`, ...) instead of the profile's;
    /// the profile still decides the open end.
    #[serde(default)]
    pub prefix: Option<String>,
    /// Table name pattern; `{entity}` is replaced by the entity name. Default `{entity}_history`.
    #[serde(default)]
    pub table_pattern: Option<String>,
    /// What a version's start column means: `"observed"` (when syncline wrote the version,
    /// strictly increasing per table, so `start > max(start)` incremental models see every
    /// version, late and healed ones included) or `"source"` (the record's modified time,
    /// Fivetran's definition; a version written late starts before rows already in the table).
    /// Unset: the setting stored with each table, and `"source"` for a new table. Changing it
    /// on a table that already exists is refused. See docs/history-tables.md.
    #[serde(default)]
    pub start: Option<StartName>,
}

/// `[history] start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartName {
    /// The record's modified time in the source.
    Source,
    /// When syncline wrote the version.
    Observed,
}

impl HistorySection {
    /// The history profile these settings describe.
    pub fn profile(&self) -> HistoryProfile {
        let base = HistoryProfile::of(match self.profile {
            ProfileName::Fivetran => ProfileKind::Fivetran,
            ProfileName::Cdc => ProfileKind::Cdc,
        });
        let mut profile = match &self.prefix {
            Some(prefix) => HistoryProfile::with_prefix(prefix, base.open_end),
            None => base,
        };
        profile.start = self.start.map(|start| match start {
            StartName::Observed => StartSetting::Observed,
            StartName::Source => StartSetting::Source,
        });
        profile
    }

    /// The history table of an entity.
    pub fn table_name(&self, entity: &str) -> String {
        self.table_pattern
            .as_deref()
            .unwrap_or("{entity}_history")
            .replace("{entity}", entity)
    }
}

/// A built-in history profile.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileName {
    /// Fivetran history mode columns.
    #[default]
    Fivetran,
    /// `_cdc_` columns with a NULL open end.
    Cdc,
}

/// `[schedules]`: when `syncline serve` runs the reconciler, as 5-field cron expressions
/// (`minute hour day-of-month month day-of-week`) in a time zone. Each source may override any
/// key in `[sources.NAME.schedule]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// Incremental reconciles (default `"*/15 * * * *"`, every 15 minutes).
    #[serde(default = "default_incremental_cron")]
    pub incremental: String,
    /// Full reconciles (default `"0 4 * * 0"`, Sundays at 04:00).
    #[serde(default = "default_full_cron")]
    pub full: String,
    /// IANA time zone the expressions are read in (default `"UTC"`), e.g. `"Europe/Berlin"`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
}

/// Default incremental schedule: every 15 minutes.
pub const DEFAULT_INCREMENTAL_CRON: &str = "*/15 * * * *";
/// Default full schedule: Sundays at 04:00.
pub const DEFAULT_FULL_CRON: &str = "0 4 * * 0";
/// Default schedule time zone.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

fn default_incremental_cron() -> String {
    DEFAULT_INCREMENTAL_CRON.to_string()
}

fn default_full_cron() -> String {
    DEFAULT_FULL_CRON.to_string()
}

fn default_time_zone() -> String {
    DEFAULT_TIME_ZONE.to_string()
}

impl Default for ScheduleSection {
    fn default() -> Self {
        Self {
            incremental: default_incremental_cron(),
            full: default_full_cron(),
            time_zone: default_time_zone(),
        }
    }
}

/// `[sources.NAME.schedule]`: overrides of `[schedules]` for one source; a key left out takes
/// the global value.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceScheduleConfig {
    /// Incremental reconciles of this source, as a cron expression.
    #[serde(default)]
    pub incremental: Option<String>,
    /// Full reconciles of this source, as a cron expression.
    #[serde(default)]
    pub full: Option<String>,
    /// IANA time zone of this source's expressions.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `false` stops scheduled reconciles of this source (default `true`); webhooks,
    /// `POST /sync` and `syncline sync` still work.
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

fn default_enabled() -> bool {
    true
}

impl Default for SourceScheduleConfig {
    fn default() -> Self {
        Self {
            incremental: None,
            full: None,
            time_zone: None,
            enabled: true,
        }
    }
}

/// The effective, parsed schedule of one source: its overrides over `[schedules]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSchedule {
    /// When incremental reconciles run.
    pub incremental: CronSchedule,
    /// When full reconciles run.
    pub full: CronSchedule,
    /// The time zone both are read in.
    pub time_zone: CronTimeZone,
    /// Whether scheduled reconciles run at all.
    pub enabled: bool,
}

fn parse_cron(field: &str, expression: &str) -> Result<CronSchedule, ConfigError> {
    CronSchedule::parse(expression).map_err(|error| field_error(field, error.to_string()))
}

fn parse_time_zone(field: &str, name: &str) -> Result<CronTimeZone, ConfigError> {
    CronTimeZone::named(name).map_err(|error| field_error(field, error.to_string()))
}

/// `[sources.NAME.webhook]`: receive this source's webhooks at `POST /webhooks/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSection {
    /// How a delivery proves it comes from the vendor; required: `{ type = "basic", username,
    /// password }` (Pipedrive, HaloPSA), `{ type = "zoho_jwt", webhook_id, jwks_url }` (Zoho
    /// Desk), `{ type = "hmac", secret, ... }` (signed webhooks, or a relay that re-signs) or
    /// `{ type = "header", header, value }` (HaloPSA). Validation refuses a
    /// webhook section without it, so after [`SynclineConfig::parse_with_env`] it is `Some`.
    #[serde(default)]
    pub verify: Option<WebhookVerification>,
    /// Largest accepted body in bytes (default 1048576); larger deliveries are refused with 413.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
}

fn default_max_body_bytes() -> usize {
    DEFAULT_MAX_BODY_BYTES
}

impl WebhookSection {
    fn validate(&self, path: &str, connector: ConnectorKind) -> Result<(), ConfigError> {
        let verify_path = format!("{path}.verify");
        let Some(verification) = &self.verify else {
            return Err(field_error(
                verify_path,
                format!(
                    "is missing: webhooks are accepted only with a verification; write {}",
                    connector.profile().verify_hint
                ),
            ));
        };
        if let Some(why) = (connector.profile().refuses_verification)(verification) {
            return Err(field_error(
                format!("{verify_path}.type"),
                format!("{why}; write {}", connector.profile().verify_hint),
            ));
        }
        if matches!(verification, WebhookVerification::ZohoJwt(_)) && connector != ConnectorKind::ZohoDesk {
            return Err(field_error(
                format!("{verify_path}.type"),
                format!("zoho_jwt checks zoho desk's tokens only; write {}", connector.profile().verify_hint),
            ));
        }
        verification
            .check()
            .map_err(|(field, message)| field_error(format!("{verify_path}.{field}"), message))?;
        if self.max_body_bytes == 0 {
            return Err(field_error(
                format!("{path}.max_body_bytes"),
                "must be at least 1; remove it for the default 1048576",
            ));
        }
        Ok(())
    }
}

/// What the first run of a source does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InitialSync {
    /// Pull everything (a full reconcile), then go incremental.
    #[default]
    Full,
    /// Record the time and pull nothing; later runs pick up changes made after it.
    Baseline,
}

/// `[sources.NAME]`: one upstream account.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceConfig {
    /// The connector: `pipedrive`, `zoho_desk` or `halopsa`.
    pub connector: ConnectorKind,
    /// Root of the vendor API. Pipedrive: `https://COMPANY.pipedrive.com/api`; Zoho Desk:
    /// `https://desk.zoho.com/api/v1`; HaloPSA: `https://TENANT.halopsa.com/api`.
    pub base_url: String,
    /// How syncline authenticates to the API.
    pub auth: AuthConfig,
    /// Zoho Desk organisation id (the `orgId` header); required for `zoho_desk`, refused
    /// elsewhere.
    #[serde(default)]
    pub org_id: Option<String>,
    /// Entities to sync; default: every entity of the connector.
    #[serde(default)]
    pub entities: Option<Vec<String>>,
    /// Minutes subtracted from the cursor for the since-filter, because APIs are eventually
    /// consistent (default 10).
    #[serde(default = "default_lookback_minutes")]
    pub lookback_minutes: u64,
    /// Records pulled per run for entities without a since-filter (capped pull; default 200).
    #[serde(default = "default_capped_limit")]
    pub capped_limit: usize,
    /// Records per list page (default: the vendor maximum).
    #[serde(default)]
    pub page_size: Option<usize>,
    /// First run of the source: `full` (default) or `baseline`.
    #[serde(default)]
    pub initial_sync: InitialSync,
    /// Most API calls one run of this source may make (default 100000); the run stops the
    /// entity that hits it and reports it as failed.
    #[serde(default = "default_request_budget")]
    pub request_budget: u64,
    /// Most API calls one full reconcile spends listing sub-resources (Zoho Desk threads and
    /// comments, one listing per ticket); the listing stops there and the next full run resumes
    /// after the last parent done, so children never use up `request_budget`. Default: a quarter
    /// of `request_budget`.
    #[serde(default)]
    pub child_list_budget: Option<u64>,
    /// Zoho Desk only: API credits to leave in the portal's daily pool for the customer's other
    /// integrations (the pool is shared). syncline reads what is left from
    /// `X-Rate-Limit-Remaining-v3` on every response; once it falls below this, no further
    /// request is sent: the run stops and reports the current entity and every later one as
    /// deferred (not failed), webhook re-fetches wait in the inbox, and the next run after the
    /// pool refills goes on from the cursors. Unset: no reserve. Refused for connectors whose
    /// vendor reports no remaining credits.
    #[serde(default)]
    pub credit_reserve: Option<u64>,
    /// Retries of 429, 5xx and timeouts.
    #[serde(default)]
    pub retry: RetryConfig,
    /// Overrides of `[schedules]` for this source.
    #[serde(default)]
    pub schedule: SourceScheduleConfig,
    /// Webhook receiving (`syncline serve`); without this section `POST /webhooks/NAME` is
    /// refused and the source relies on the reconciler alone.
    #[serde(default)]
    pub webhook: Option<WebhookSection>,
}

fn default_lookback_minutes() -> u64 {
    10
}

fn default_capped_limit() -> usize {
    200
}

fn default_request_budget() -> u64 {
    100_000
}

/// `[sources.NAME.retry]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Attempts per request, the first included (default 8).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// First backoff delay in milliseconds (default 500); doubles per attempt, with jitter.
    #[serde(default = "default_base_delay_ms")]
    pub base_delay_ms: u64,
    /// Longest backoff delay, and longest `Retry-After` honoured, in milliseconds (default 60000).
    #[serde(default = "default_max_delay_ms")]
    pub max_delay_ms: u64,
    /// Per-request timeout in milliseconds (default 30000).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_attempts() -> u32 {
    8
}

fn default_base_delay_ms() -> u64 {
    500
}

fn default_max_delay_ms() -> u64 {
    60_000
}

fn default_timeout_ms() -> u64 {
    30_000
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_attempts: default_attempts(),
            base_delay_ms: default_base_delay_ms(),
            max_delay_ms: default_max_delay_ms(),
            timeout_ms: default_timeout_ms(),
        }
    }
}

/// `[sources.NAME.auth]`, tagged by `type`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthConfig {
    /// A static API token (Pipedrive), sent as the `x-api-token` header.
    ApiToken {
        /// The token; write `"${PIPEDRIVE_API_TOKEN}"` to read it from the environment.
        token: Secret,
    },
    /// OAuth2 with a refresh token (Pipedrive, Zoho Desk). A rotated refresh token is stored in
    /// the state store and takes precedence over this one on later runs.
    Oauth2Refresh {
        /// Token endpoint: Pipedrive `https://oauth.pipedrive.com/oauth/token`, Zoho
        /// `https://accounts.zoho.com/oauth/v2/token`.
        token_url: String,
        /// OAuth client id.
        client_id: String,
        /// OAuth client secret.
        client_secret: Secret,
        /// The refresh token from the authorization.
        refresh_token: Secret,
    },
    /// OAuth2 client credentials (HaloPSA).
    ClientCredentials {
        /// Token endpoint: `https://TENANT.halopsa.com/auth/token`.
        token_url: String,
        /// OAuth client id.
        client_id: String,
        /// OAuth client secret.
        client_secret: Secret,
        /// Scope to request (default `all`).
        #[serde(default)]
        scope: Option<String>,
    },
}

impl SynclineConfig {
    /// Reads, interpolates and validates a file.
    pub fn load(path: &std::path::Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.display().to_string(),
            message: error.to_string(),
        })?;
        Self::parse_with_env(&text, |name| std::env::var(name).ok())
    }

    /// Parses text, replacing `${NAME}` with `lookup(NAME)`, and validates the result.
    pub fn parse_with_env(text: &str, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        // Schema first, on the text as written, so errors carry line numbers.
        toml::from_str::<SynclineConfig>(text).map_err(|error| ConfigError::Syntax(error.to_string().trim_end().to_string()))?;
        let mut value: toml::Value = toml::from_str(text).map_err(|error| ConfigError::Syntax(error.to_string()))?;
        interpolate(&mut value, "", &lookup)?;
        let config: SynclineConfig = value
            .try_into()
            .map_err(|error: toml::de::Error| ConfigError::Syntax(error.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every field that parsing alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.destination
            .url
            .parse::<syncline_destinations::DestinationConfig>()
            .map_err(|error| field_error("destination.url", error.to_string()))?;
        self.state
            .url
            .parse::<syncline_state::StateConfig>()
            .map_err(|error| field_error("state.url", error.to_string()))?;
        if let Some(prefix) = &self.history.prefix {
            if prefix.is_empty() {
                return Err(field_error(
                    "history.prefix",
                    "is empty; remove it or write a prefix such as \"_syncline_\"",
                ));
            }
        }
        if let Some(pattern) = &self.history.table_pattern {
            if !pattern.contains("{entity}") {
                return Err(field_error(
                    "history.table_pattern",
                    "must contain {entity}, or every entity would share one table; write \"{entity}_history\"",
                ));
            }
        }
        if let Some(secret) = &self.server.sync_secret {
            check_secret_strength(secret).map_err(|message| {
                field_error(
                    "server.sync_secret",
                    format!("{message}; or remove sync_secret to disable POST /sync"),
                )
            })?;
        }
        for (field, value, default) in [
            (
                "header_read_timeout_ms",
                self.server.header_read_timeout_ms,
                default_header_read_timeout_ms(),
            ),
            (
                "body_read_timeout_ms",
                self.server.body_read_timeout_ms,
                default_body_read_timeout_ms(),
            ),
            ("request_timeout_ms", self.server.request_timeout_ms, default_request_timeout_ms()),
            (
                "max_connections",
                self.server.max_connections as u64,
                default_max_connections() as u64,
            ),
            (
                "max_requests_in_flight",
                self.server.max_requests_in_flight as u64,
                default_max_requests_in_flight() as u64,
            ),
        ] {
            if value == 0 {
                return Err(field_error(
                    format!("server.{field}"),
                    format!("must be at least 1; remove it for the default {default}"),
                ));
            }
        }
        parse_cron("schedules.incremental", &self.schedules.incremental)?;
        parse_cron("schedules.full", &self.schedules.full)?;
        parse_time_zone("schedules.time_zone", &self.schedules.time_zone)?;
        if self.sources.is_empty() {
            return Err(field_error(
                "sources",
                "no source is configured; add a [sources.NAME] table (see examples/)",
            ));
        }
        for (name, source) in &self.sources {
            source.validate(&format!("sources.{name}"), name)?;
            self.schedule_for(name)?;
        }
        Ok(())
    }

    /// The effective schedule of a source: its `[sources.NAME.schedule]` keys over
    /// `[schedules]`. Cannot fail on a validated config (validation calls it for every source);
    /// an unknown source name gets the global schedule.
    pub fn schedule_for(&self, source_name: &str) -> Result<SourceSchedule, ConfigError> {
        let overrides = self
            .sources
            .get(source_name)
            .map(|source| source.schedule.clone())
            .unwrap_or_default();
        let path = format!("sources.{source_name}.schedule");
        let incremental = match &overrides.incremental {
            Some(expression) => parse_cron(&format!("{path}.incremental"), expression)?,
            None => parse_cron("schedules.incremental", &self.schedules.incremental)?,
        };
        let full = match &overrides.full {
            Some(expression) => parse_cron(&format!("{path}.full"), expression)?,
            None => parse_cron("schedules.full", &self.schedules.full)?,
        };
        let time_zone = match &overrides.time_zone {
            Some(name) => parse_time_zone(&format!("{path}.time_zone"), name)?,
            None => parse_time_zone("schedules.time_zone", &self.schedules.time_zone)?,
        };
        Ok(SourceSchedule {
            incremental,
            full,
            time_zone,
            enabled: overrides.enabled,
        })
    }
}

impl SourceConfig {
    fn validate(&self, path: &str, name: &str) -> Result<(), ConfigError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(field_error(
                path,
                "source names may hold only letters, digits, `_` and `-`; rename the table",
            ));
        }
        if !(self.base_url.starts_with("http://") || self.base_url.starts_with("https://")) {
            return Err(field_error(
                format!("{path}.base_url"),
                format!(
                    "`{}` is not an http(s) URL; write e.g. {}",
                    self.base_url,
                    self.connector.example_base_url()
                ),
            ));
        }
        if let Some(entities) = &self.entities {
            if entities.is_empty() {
                return Err(field_error(format!("{path}.entities"), "is empty; remove it to sync every entity"));
            }
            for entity in entities {
                if self.connector.entity(entity).is_none() {
                    return Err(field_error(
                        format!("{path}.entities"),
                        format!(
                            "`{entity}` is not an entity of {}; write one of {}",
                            self.connector.name(),
                            self.connector.entity_names()
                        ),
                    ));
                }
            }
        }
        if self.capped_limit == 0 {
            return Err(field_error(
                format!("{path}.capped_limit"),
                "must be at least 1; write 200 for the default",
            ));
        }
        if let Some(page_size) = self.page_size {
            let max = self.connector.max_page_size();
            if page_size == 0 || page_size > max {
                return Err(field_error(
                    format!("{path}.page_size"),
                    format!("must be between 1 and {max} for {}; remove it to use {max}", self.connector.name()),
                ));
            }
        }
        if self.request_budget == 0 {
            return Err(field_error(
                format!("{path}.request_budget"),
                "must be at least 1; remove it for the default 100000",
            ));
        }
        if self.credit_reserve.is_some() && self.connector.profile().remaining_credits_header.is_none() {
            return Err(field_error(
                format!("{path}.credit_reserve"),
                format!(
                    "{} reports no remaining api credits, so a reserve cannot be kept; remove credit_reserve (only zoho_desk sources take it)",
                    self.connector.name()
                ),
            ));
        }
        if self.retry.max_attempts == 0 {
            return Err(field_error(
                format!("{path}.retry.max_attempts"),
                "must be at least 1; write 8 for the default",
            ));
        }
        match (self.connector.profile().needs_org_id, &self.org_id) {
            (true, None) => {
                return Err(field_error(
                    format!("{path}.org_id"),
                    format!("{} needs the organisation id; write org_id = \"123456\"", self.connector.name()),
                ))
            }
            (false, Some(_)) => {
                return Err(field_error(
                    format!("{path}.org_id"),
                    format!("{} uses no org_id; remove it", self.connector.name()),
                ))
            }
            _ => {}
        }
        if let Some(webhook) = &self.webhook {
            webhook.validate(&format!("{path}.webhook"), self.connector)?;
        }
        let auth_path = format!("{path}.auth");
        match (&self.connector, &self.auth) {
            (connector, auth) if (connector.profile().accepts_auth)(auth) => {}
            (connector, _) => {
                return Err(field_error(
                    format!("{auth_path}.type"),
                    format!(
                        "{} does not accept this auth type; write type = {}",
                        connector.name(),
                        connector.auth_hint()
                    ),
                ))
            }
        }
        match &self.auth {
            AuthConfig::ApiToken { token } => non_empty_secret(&format!("{auth_path}.token"), token)?,
            AuthConfig::Oauth2Refresh {
                token_url,
                client_id,
                client_secret,
                refresh_token,
            } => {
                check_url(&format!("{auth_path}.token_url"), token_url)?;
                non_empty(&format!("{auth_path}.client_id"), client_id)?;
                non_empty_secret(&format!("{auth_path}.client_secret"), client_secret)?;
                non_empty_secret(&format!("{auth_path}.refresh_token"), refresh_token)?;
            }
            AuthConfig::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                ..
            } => {
                check_url(&format!("{auth_path}.token_url"), token_url)?;
                non_empty(&format!("{auth_path}.client_id"), client_id)?;
                non_empty_secret(&format!("{auth_path}.client_secret"), client_secret)?;
            }
        }
        Ok(())
    }

    /// The entities to sync, in the connector's order.
    pub fn selected_entities(&self) -> Vec<&'static str> {
        self.connector
            .entity_list()
            .iter()
            .copied()
            .filter(|entity| {
                self.entities
                    .as_ref()
                    .map(|wanted| wanted.iter().any(|w| w == entity))
                    .unwrap_or(true)
            })
            .collect()
    }
}

fn check_url(path: &str, url: &str) -> Result<(), ConfigError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    Err(field_error(
        path,
        format!("`{url}` is not an http(s) URL; write the vendor's token endpoint"),
    ))
}

fn non_empty(path: &str, value: &str) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(field_error(path, "is empty; write the value or \"${ENV_VAR}\""));
    }
    Ok(())
}

fn non_empty_secret(path: &str, value: &Secret) -> Result<(), ConfigError> {
    if value.expose().trim().is_empty() {
        return Err(field_error(
            path,
            "is empty; write \"${ENV_VAR}\" and export the secret in that variable",
        ));
    }
    Ok(())
}

/// Replaces `${NAME}` in every string value; `$${` writes a literal `${`.
fn interpolate(value: &mut toml::Value, path: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(text) => {
            *text = interpolate_text(text, path, lookup)?;
        }
        toml::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                interpolate(item, &format!("{path}[{index}]"), lookup)?;
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                let child = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                interpolate(item, &child, lookup)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn interpolate_text(text: &str, path: &str, lookup: &impl Fn(&str) -> Option<String>) -> Result<String, ConfigError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(position) = rest.find('$') {
        out.push_str(&rest[..position]);
        let tail = &rest[position..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
            continue;
        }
        let Some(after) = tail.strip_prefix("${") else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let Some(end) = after.find('}') else {
            return Err(field_error(
                path,
                "has `${` without a closing `}`; write ${NAME}, or $${ for a literal",
            ));
        };
        let name = &after[..end];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(field_error(
                path,
                format!("`${{{name}}}` is not a variable name; use letters, digits and `_`"),
            ));
        }
        match lookup(name) {
            Some(found) => out.push_str(&found),
            None => {
                return Err(field_error(
                    path,
                    format!("environment variable {name} is not set; export {name} or write the value in the file"),
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[destination]
url = "duckdb://w.duckdb"
[state]
url = "sqlite://s.db"
[sources.pipedrive]
connector = "pipedrive"
base_url = "https://acme.pipedrive.com/api"
auth = { type = "api_token", token = "${PD_TOKEN}" }
"#;

    fn env(name: &str) -> Option<String> {
        (name == "PD_TOKEN").then(|| "secret-value".to_string())
    }

    #[test]
    fn interpolates_and_defaults() {
        let config = SynclineConfig::parse_with_env(MINIMAL, env).unwrap();
        let source = &config.sources["pipedrive"];
        assert_eq!(source.lookback_minutes, 10);
        assert_eq!(source.capped_limit, 200);
        assert_eq!(source.initial_sync, InitialSync::Full);
        assert_eq!(source.selected_entities().len(), 6);
        match &source.auth {
            AuthConfig::ApiToken { token } => assert_eq!(token.expose(), "secret-value"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(!format!("{config:?}").contains("secret-value"));
        assert_eq!(config.history.table_name("deal"), "deal_history");
    }

    #[test]
    fn history_start_is_read_and_checked() {
        let config = SynclineConfig::parse_with_env(MINIMAL, env).unwrap();
        assert_eq!(config.history.profile().start, None, "unset: the table's stored setting");
        let observed = format!("{MINIMAL}[history]\nstart = \"observed\"\n");
        let config = SynclineConfig::parse_with_env(&observed, env).unwrap();
        assert_eq!(config.history.profile().start, Some(StartSetting::Observed));
        let wrong = format!("{MINIMAL}[history]\nstart = \"modified\"\n");
        let error = SynclineConfig::parse_with_env(&wrong, env).unwrap_err().to_string();
        assert!(error.contains("start") && error.contains("observed"), "{error}");
    }

    #[test]
    fn missing_variable_names_field_and_variable() {
        let error = SynclineConfig::parse_with_env(MINIMAL, |_| None).unwrap_err().to_string();
        assert!(error.contains("sources.pipedrive.auth.token"), "{error}");
        assert!(error.contains("export PD_TOKEN"), "{error}");
    }

    #[test]
    fn unknown_field_is_named_with_alternatives() {
        let text = MINIMAL.replace("connector = \"pipedrive\"", "connector = \"pipedrive\"\nlookback_minuts = 5");
        let error = SynclineConfig::parse_with_env(&text, env).unwrap_err().to_string();
        assert!(error.contains("lookback_minuts") && error.contains("lookback_minutes"), "{error}");
    }

    #[test]
    fn state_durability_is_read() {
        let config = SynclineConfig::parse_with_env(MINIMAL, env).unwrap();
        assert_eq!(config.state.durability(), syncline_state::Durability::Crash, "the default");
        assert_eq!(config.state.durability().sqlite_synchronous(), "NORMAL");
        let power_loss = MINIMAL.replace("url = \"sqlite://s.db\"", "url = \"sqlite://s.db\"\ndurability = \"power_loss\"");
        let config = SynclineConfig::parse_with_env(&power_loss, env).unwrap();
        assert_eq!(config.state.durability(), syncline_state::Durability::PowerLoss);
        assert_eq!(config.state.durability().sqlite_synchronous(), "FULL");
        let wrong = MINIMAL.replace("url = \"sqlite://s.db\"", "url = \"sqlite://s.db\"\ndurability = \"fsync\"");
        let error = SynclineConfig::parse_with_env(&wrong, env).unwrap_err().to_string();
        assert!(error.contains("durability") || error.contains("power_loss"), "{error}");
    }

    #[test]
    fn wrong_values_name_the_field() {
        let cases = [
            (MINIMAL.replace("duckdb://w.duckdb", "mysql://x"), "destination.url"),
            (MINIMAL.replace("sqlite://s.db", "redis://x"), "state.url"),
            (
                MINIMAL.replace("https://acme.pipedrive.com/api", "acme"),
                "sources.pipedrive.base_url",
            ),
            (
                MINIMAL.replace("connector = \"pipedrive\"", "connector = \"pipedrive\"\nentities = [\"ticket\"]"),
                "sources.pipedrive.entities",
            ),
            (
                MINIMAL.replace("connector = \"pipedrive\"", "connector = \"pipedrive\"\norg_id = \"1\""),
                "sources.pipedrive.org_id",
            ),
            (
                MINIMAL.replace("connector = \"pipedrive\"", "connector = \"pipedrive\"\npage_size = 900"),
                "sources.pipedrive.page_size",
            ),
            (
                MINIMAL.replace(
                    "auth = { type = \"api_token\", token = \"${PD_TOKEN}\" }",
                    "auth = { type = \"client_credentials\", token_url = \"https://x\", client_id = \"a\", client_secret = \"b\" }",
                ),
                "sources.pipedrive.auth.type",
            ),
        ];
        for (text, field) in cases {
            let error = SynclineConfig::parse_with_env(&text, env).unwrap_err().to_string();
            assert!(error.contains(field), "{field}: {error}");
        }
        let error = SynclineConfig::parse_with_env(&MINIMAL.replace("\"pipedrive\"\nbase", "\"salesforce\"\nbase"), env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("pipedrive") && error.contains("zoho_desk"), "{error}");
    }

    fn with_env(name: &str) -> Option<String> {
        Some(format!("value-of-{name}"))
    }

    #[test]
    fn schedules_default_to_quarter_hours_and_sunday_four() {
        let config = SynclineConfig::parse_with_env(MINIMAL, env).unwrap();
        assert_eq!(config.schedules, ScheduleSection::default());
        let schedule = config.schedule_for("pipedrive").unwrap();
        assert_eq!(schedule.incremental.expression(), "*/15 * * * *");
        assert_eq!(schedule.full.expression(), "0 4 * * 0");
        assert_eq!(schedule.time_zone.name(), "UTC");
        assert!(schedule.enabled);
    }

    #[test]
    fn source_schedules_override_the_global_one() {
        let text = format!("{MINIMAL}\n[sources.pipedrive.schedule]\nfull = \"30 2 * * sat\"\nenabled = false\n").replace(
            "[sources.pipedrive]",
            "[schedules]\ntime_zone = \"Europe/Berlin\"\nincremental = \"*/5 * * * *\"\n\n[sources.pipedrive]",
        );
        let config = SynclineConfig::parse_with_env(&text, env).unwrap();
        let schedule = config.schedule_for("pipedrive").unwrap();
        assert_eq!(schedule.incremental.expression(), "*/5 * * * *");
        assert_eq!(schedule.full.expression(), "30 2 * * sat");
        assert_eq!(schedule.time_zone.name(), "Europe/Berlin");
        assert!(!schedule.enabled);
    }

    #[test]
    fn wrong_schedules_name_the_field() {
        let cases = [
            ("[schedules]\nincremental = \"*/15 * * *\"\n", "schedules.incremental"),
            ("[schedules]\nfull = \"0 25 * * 0\"\n", "schedules.full"),
            ("[schedules]\ntime_zone = \"Mars/Base\"\n", "schedules.time_zone"),
            (
                "[sources.pipedrive.schedule]\nincremental = \"61 * * * *\"\n",
                "sources.pipedrive.schedule.incremental",
            ),
            (
                "[sources.pipedrive.schedule]\ntime_zone = \"Nowhere\"\n",
                "sources.pipedrive.schedule.time_zone",
            ),
        ];
        for (extra, field) in cases {
            let error = SynclineConfig::parse_with_env(&format!("{MINIMAL}\n{extra}"), env)
                .unwrap_err()
                .to_string();
            assert!(error.contains(field), "{field}: {error}");
        }
        // The old keys are gone and named as unknown.
        let error = SynclineConfig::parse_with_env(&format!("{MINIMAL}\n[schedules]\nincremental_every_minutes = 15\n"), env)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("incremental_every_minutes") && error.contains("incremental"),
            "{error}"
        );
    }

    #[test]
    fn webhook_section_parses_each_verification() {
        let basic = format!(
            "{MINIMAL}\n[sources.pipedrive.webhook]\nverify = {{ type = \"basic\", username = \"syncline\", password = \"${{PD_HOOK}}\" }}\n"
        );
        let config = SynclineConfig::parse_with_env(&basic, with_env).unwrap();
        let webhook = config.sources["pipedrive"].webhook.as_ref().unwrap();
        assert_eq!(webhook.max_body_bytes, 1_048_576);
        match webhook.verify.as_ref().unwrap() {
            WebhookVerification::Basic { username, password } => {
                assert_eq!(username, "syncline");
                assert_eq!(password.expose(), "value-of-PD_HOOK");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(!format!("{config:?}").contains("value-of-PD_HOOK"));

        let halo = format!(
            "{}\n[sources.halopsa.webhook]\nverify = {{ type = \"header\", header = \"x-halo-secret\", value = \"halo-header-token-0123\" }}\nmax_body_bytes = 2048\n",
            HALO
        );
        let config = SynclineConfig::parse_with_env(&halo, with_env).unwrap();
        assert_eq!(config.sources["halopsa"].webhook.as_ref().unwrap().max_body_bytes, 2048);

        let signed = format!(
            "{}\n[sources.halopsa.webhook.verify]\ntype = \"hmac\"\nsecret = \"a-plain-hmac-secret-0123\"\nencoding = \"base64\"\nprefix = \"sha256=\"\ntimestamp_header = \"x-ts\"\n",
            HALO
        );
        let config = SynclineConfig::parse_with_env(&signed, with_env).unwrap();
        match config.sources["halopsa"].webhook.as_ref().unwrap().verify.as_ref().unwrap() {
            WebhookVerification::Hmac(hmac) => {
                assert_eq!(hmac.signature_header(), "x-webhook-signature");
                assert_eq!(hmac.tolerance_seconds, 300);
                assert_eq!(hmac.timestamp_header.as_deref(), Some("x-ts"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    const HALO: &str = r#"
[destination]
url = "duckdb://w.duckdb"
[state]
url = "sqlite://s.db"
[sources.halopsa]
connector = "halopsa"
base_url = "https://acme.halopsa.com/api"
auth = { type = "client_credentials", token_url = "https://acme.halopsa.com/auth/token", client_id = "a", client_secret = "b" }
"#;

    const ZOHO: &str = r#"
[destination]
url = "duckdb://w.duckdb"
[state]
url = "sqlite://s.db"
[sources.desk]
connector = "zoho_desk"
base_url = "https://desk.zoho.eu/api/v1"
org_id = "298902"
auth = { type = "oauth2_refresh", token_url = "https://accounts.zoho.eu/oauth/v2/token", client_id = "a", client_secret = "b", refresh_token = "c" }
"#;

    #[test]
    fn zoho_jwt_parses_and_defaults_the_jwks_url_to_the_desk_host() {
        let text = format!("{ZOHO}\n[sources.desk.webhook]\nverify = {{ type = \"zoho_jwt\", webhook_id = \"1892000000612001\" }}\n");
        let config = SynclineConfig::parse_with_env(&text, env).unwrap();
        let source = &config.sources["desk"];
        let verify = source.webhook.as_ref().unwrap().verify.as_ref().unwrap();
        assert!(!verify.needs_body(), "the token signs no body");
        let WebhookVerification::ZohoJwt(jwt) = verify else {
            panic!("{verify:?}");
        };
        assert_eq!(
            jwt.jwks_url_for(&source.base_url).as_deref(),
            Some("https://desk.zoho.eu/.well-known/jwks.json")
        );
        let text = text.replace(
            "1892000000612001\" }",
            "1892000000612001\", jwks_url = \"https://keys.example/jwks.json\" }",
        );
        let config = SynclineConfig::parse_with_env(&text, env).unwrap();
        let source = &config.sources["desk"];
        let Some(WebhookVerification::ZohoJwt(jwt)) = source.webhook.as_ref().unwrap().verify.as_ref() else {
            panic!("zoho_jwt");
        };
        assert_eq!(
            jwt.jwks_url_for(&source.base_url).as_deref(),
            Some("https://keys.example/jwks.json")
        );
    }

    #[test]
    fn zoho_jwt_config_errors_name_the_field() {
        let hook = |verify: &str| format!("{ZOHO}\n[sources.desk.webhook]\nverify = {verify}\n");
        let missing = SynclineConfig::parse_with_env(&hook("{ type = \"zoho_jwt\" }"), env)
            .unwrap_err()
            .to_string();
        assert!(missing.contains("webhook_id"), "{missing}");
        let cases = [
            (
                hook("{ type = \"zoho_jwt\", webhook_id = \" \" }"),
                "sources.desk.webhook.verify.webhook_id",
            ),
            (
                hook("{ type = \"zoho_jwt\", webhook_id = \"1\", jwks_url = \"desk.zoho.com\" }"),
                "sources.desk.webhook.verify.jwks_url",
            ),
            (
                hook("{ type = \"zoho_jwt\", webhook_id = \"1\" }").replace("org_id = \"298902\"\n", ""),
                "sources.desk.org_id",
            ),
            (
                format!("{MINIMAL}\n[sources.pipedrive.webhook]\nverify = {{ type = \"zoho_jwt\", webhook_id = \"1\" }}\n"),
                "sources.pipedrive.webhook.verify.type",
            ),
            (
                format!("{HALO}\n[sources.halopsa.webhook]\nverify = {{ type = \"zoho_jwt\", webhook_id = \"1\" }}\n"),
                "sources.halopsa.webhook.verify.type",
            ),
        ];
        for (text, field) in cases {
            let error = SynclineConfig::parse_with_env(&text, env).unwrap_err().to_string();
            assert!(error.contains(field), "{field}: {error}");
        }
        // A section without verify names zoho_jwt as what to write.
        let error = SynclineConfig::parse_with_env(&format!("{ZOHO}\n[sources.desk.webhook]\nmax_body_bytes = 10\n"), env)
            .unwrap_err()
            .to_string();
        assert!(error.contains("zoho_jwt") && error.contains("webhook_id"), "{error}");
    }

    #[test]
    fn credit_reserve_is_read_for_zoho_and_refused_elsewhere() {
        let zoho = ZOHO.replace("org_id = \"298902\"", "org_id = \"298902\"\ncredit_reserve = 5000");
        let config = SynclineConfig::parse_with_env(&zoho, env).unwrap();
        assert_eq!(config.sources["desk"].credit_reserve, Some(5_000));
        assert_eq!(
            SynclineConfig::parse_with_env(ZOHO, env).unwrap().sources["desk"].credit_reserve,
            None
        );
        for (text, field) in [
            (
                MINIMAL.replace("connector = \"pipedrive\"", "connector = \"pipedrive\"\ncredit_reserve = 10"),
                "sources.pipedrive.credit_reserve",
            ),
            (
                HALO.replace("connector = \"halopsa\"", "connector = \"halopsa\"\ncredit_reserve = 10"),
                "sources.halopsa.credit_reserve",
            ),
        ] {
            let error = SynclineConfig::parse_with_env(&text, env).unwrap_err().to_string();
            assert!(error.contains(field) && error.contains("remove credit_reserve"), "{error}");
        }
    }

    #[test]
    fn webhook_section_without_verification_is_refused() {
        let text = format!("{MINIMAL}\n[sources.pipedrive.webhook]\nmax_body_bytes = 1000\n");
        let error = SynclineConfig::parse_with_env(&text, env).unwrap_err().to_string();
        assert!(error.contains("sources.pipedrive.webhook.verify"), "{error}");
        assert!(error.contains("type = \"basic\""), "{error}");
        let text = format!("{MINIMAL}\n[sources.pipedrive.webhook]\nverify = {{ type = \"none\" }}\n");
        let error = SynclineConfig::parse_with_env(&text, env).unwrap_err().to_string();
        assert!(error.contains("none") && error.contains("basic"), "{error}");
    }

    #[test]
    fn wrong_webhook_settings_name_the_field() {
        let cases = [
            (
                format!("{MINIMAL}\n[sources.pipedrive.webhook]\nverify = {{ type = \"hmac\", secret = \"s\" }}\n"),
                "sources.pipedrive.webhook.verify.type",
            ),
            (
                format!("{MINIMAL}\n[sources.pipedrive.webhook]\nverify = {{ type = \"basic\", username = \"u\", password = \"\" }}\n"),
                "sources.pipedrive.webhook.verify.password",
            ),
            (
                format!("{MINIMAL}\n[sources.pipedrive.webhook]\nverify = {{ type = \"basic\", username = \"u\", password = \"a-webhook-password-0123\" }}\nmax_body_bytes = 0\n"),
                "sources.pipedrive.webhook.max_body_bytes",
            ),
            (
                format!("{HALO}\n[sources.halopsa.webhook]\nverify = {{ type = \"header\", header = \"bad header\", value = \"v\" }}\n"),
                "sources.halopsa.webhook.verify.header",
            ),
            (
                format!("{HALO}\n[sources.halopsa.webhook]\nverify = {{ type = \"hmac\", scheme = \"standard_webhooks\", secret = \"whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\", header = \"x\" }}\n"),
                "sources.halopsa.webhook.verify.header",
            ),
            (
                format!("{HALO}\n[sources.halopsa.webhook]\nverify = {{ type = \"hmac\", scheme = \"standard_webhooks\", secret = \"whsec_!!\" }}\n"),
                "sources.halopsa.webhook.verify.secret",
            ),
        ];
        for (text, field) in cases {
            let error = SynclineConfig::parse_with_env(&text, env).unwrap_err().to_string();
            assert!(error.contains(field), "{field}: {error}");
        }
        // Unknown keys inside verify are named.
        let text = format!("{HALO}\n[sources.halopsa.webhook]\nverify = {{ type = \"hmac\", secret = \"s\", algo = \"sha1\" }}\n");
        let error = SynclineConfig::parse_with_env(&text, env).unwrap_err().to_string();
        assert!(error.contains("algo"), "{error}");
    }

    #[test]
    fn literal_dollar_and_escape() {
        let out = interpolate_text("a$b$${X}", "f", &|_| None).unwrap();
        assert_eq!(out, "a$b${X}");
        assert!(interpolate_text("${X", "f", &|_| None).is_err());
    }

    #[test]
    fn empty_and_short_secrets_are_refused_naming_the_field() {
        let with_secret = |value: &'static str| move |name: &str| (name == "SECRET").then(|| value.to_string()).or_else(|| env(name));
        let cases = [
            ("[server]\nsync_secret = \"${SECRET}\"\n", "server.sync_secret"),
            (
                "[sources.pipedrive.webhook]\nverify = { type = \"basic\", username = \"u\", password = \"${SECRET}\" }\n",
                "sources.pipedrive.webhook.verify.password",
            ),
        ];
        for (extra, field) in cases {
            let text = format!("{MINIMAL}\n{extra}");
            for value in ["", "   ", "short-secret", "aaaaaaaaaaaaaaaaaaaa"] {
                let error = SynclineConfig::parse_with_env(&text, with_secret(value)).unwrap_err().to_string();
                assert!(error.contains(field), "{field} {value:?}: {error}");
                assert!(error.contains("openssl rand"), "says what to write: {error}");
                if !value.trim().is_empty() {
                    assert!(!error.contains(value), "the secret is not shown: {error}");
                }
            }
            let config = SynclineConfig::parse_with_env(&text, with_secret("0f3c9a1b7e2d4c6a8b0e1f2a3b4c5d6e")).unwrap();
            assert!(!format!("{config:?}").contains("0f3c9a1b7e2d4c6a8b0e1f2a3b4c5d6e"));
        }
        let hmac = format!("{HALO}\n[sources.halopsa.webhook]\nverify = {{ type = \"hmac\", secret = \"s\" }}\n");
        let error = SynclineConfig::parse_with_env(&hmac, env).unwrap_err().to_string();
        assert!(error.contains("sources.halopsa.webhook.verify.secret"), "{error}");
        let token =
            format!("{HALO}\n[sources.halopsa.webhook]\nverify = {{ type = \"header\", header = \"x-halo-secret\", value = \"\" }}\n");
        let error = SynclineConfig::parse_with_env(&token, env).unwrap_err().to_string();
        assert!(error.contains("sources.halopsa.webhook.verify.value"), "{error}");
        let short_key = format!("{HALO}\n[sources.halopsa.webhook]\nverify = {{ type = \"hmac\", scheme = \"standard_webhooks\", secret = \"whsec_AAAAAAAAAAAAAAAA\" }}\n");
        let error = SynclineConfig::parse_with_env(&short_key, env).unwrap_err().to_string();
        assert!(error.contains("decodes to 12 bytes"), "{error}");
    }

    #[test]
    fn urls_in_debug_output_are_redacted() {
        let text = MINIMAL
            .replace("duckdb://w.duckdb", "postgres://ann:pg-pass-1@db/w?sslpassword=key-pass-2")
            .replace("sqlite://s.db", "postgres://ann@db/w?password=pg-pass-3&schema=s");
        let config = SynclineConfig::parse_with_env(&text, env).unwrap();
        let debug = format!("{config:?}");
        for secret in ["pg-pass-1", "key-pass-2", "pg-pass-3"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("schema=s"), "{debug}");
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "Secret(***) ***");
    }
}
