//! `syncline.toml`: sources, destination, state store, history profile and schedules.
//!
//! Loading is two steps, both without network: the text is parsed into the typed structs (so an
//! unknown or misspelt field is reported with its line and the fields allowed there), then
//! `${ENV}` placeholders in string values are replaced and the result is validated field by
//! field. Every error names the offending field and says what to write instead.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use syncline_core::{HistoryProfile, ProfileKind};

use crate::spec::ConnectorKind;

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
    /// The upstream accounts, keyed by source name (`[sources.pipedrive]`). The name scopes the
    /// state store and appears in logs and the summary.
    pub sources: BTreeMap<String, SourceConfig>,
}

/// `[destination]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationSection {
    /// Destination URL: `duckdb://path/to/warehouse.duckdb` (a relative path is relative to the
    /// working directory).
    pub url: String,
}

/// `[state]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateSection {
    /// State-store URL: `sqlite://path/to/state.db`.
    pub url: String,
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
}

impl HistorySection {
    /// The history profile these settings describe.
    pub fn profile(&self) -> HistoryProfile {
        let base = HistoryProfile::of(match self.profile {
            ProfileName::Fivetran => ProfileKind::Fivetran,
            ProfileName::Cdc => ProfileKind::Cdc,
        });
        match &self.prefix {
            Some(prefix) => HistoryProfile::with_prefix(prefix, base.open_end),
            None => base,
        }
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

/// `[schedules]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleSection {
    /// Minutes between incremental reconciles (default 15).
    #[serde(default = "default_incremental_minutes")]
    pub incremental_every_minutes: u64,
    /// Hours between full reconciles (default 168, weekly).
    #[serde(default = "default_full_hours")]
    pub full_every_hours: u64,
}

fn default_incremental_minutes() -> u64 {
    15
}

fn default_full_hours() -> u64 {
    168
}

impl Default for ScheduleSection {
    fn default() -> Self {
        Self {
            incremental_every_minutes: default_incremental_minutes(),
            full_every_hours: default_full_hours(),
        }
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
    /// Retries of 429, 5xx and timeouts.
    #[serde(default)]
    pub retry: RetryConfig,
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
        if self.schedules.incremental_every_minutes == 0 {
            return Err(field_error(
                "schedules.incremental_every_minutes",
                "must be at least 1; write 15 for the default",
            ));
        }
        if self.schedules.full_every_hours == 0 {
            return Err(field_error(
                "schedules.full_every_hours",
                "must be at least 1; write 168 for weekly",
            ));
        }
        if self.sources.is_empty() {
            return Err(field_error(
                "sources",
                "no source is configured; add a [sources.NAME] table (see examples/)",
            ));
        }
        for (name, source) in &self.sources {
            source.validate(&format!("sources.{name}"), name)?;
        }
        Ok(())
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
        if self.retry.max_attempts == 0 {
            return Err(field_error(
                format!("{path}.retry.max_attempts"),
                "must be at least 1; write 8 for the default",
            ));
        }
        match (self.connector, &self.org_id) {
            (ConnectorKind::ZohoDesk, None) => {
                return Err(field_error(
                    format!("{path}.org_id"),
                    "zoho_desk needs the organisation id; write org_id = \"123456\"",
                ))
            }
            (ConnectorKind::Pipedrive | ConnectorKind::Halopsa, Some(_)) => {
                return Err(field_error(format!("{path}.org_id"), "only zoho_desk uses org_id; remove it"))
            }
            _ => {}
        }
        let auth_path = format!("{path}.auth");
        match (&self.connector, &self.auth) {
            (ConnectorKind::Pipedrive, AuthConfig::ApiToken { .. } | AuthConfig::Oauth2Refresh { .. }) => {}
            (ConnectorKind::ZohoDesk, AuthConfig::Oauth2Refresh { .. }) => {}
            (ConnectorKind::Halopsa, AuthConfig::ClientCredentials { .. }) => {}
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

    #[test]
    fn literal_dollar_and_escape() {
        let out = interpolate_text("a$b$${X}", "f", &|_| None).unwrap();
        assert_eq!(out, "a$b${X}");
        assert!(interpolate_text("${X", "f", &|_| None).is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?} {secret}"), "Secret(***) ***");
    }
}
