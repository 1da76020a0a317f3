//! Simulator configuration: typed, documented, serde-readable, with defaults that give a quiet,
//! fault-free upstream.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::entity::{Connector, Entity};
use crate::error::SimulatorError;

/// Everything that shapes one simulated upstream. `SimulatorConfig::default()` is a Pipedrive
/// simulator with seed 0, a manual clock, no webhooks and no faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimulatorConfig {
    /// Which vendor API to simulate.
    pub connector: Connector,
    /// Seed of every random choice: records, changes and fault decisions. The same seed gives
    /// the same records, changes and faults.
    pub seed: u64,
    /// Address to listen on; must be a loopback address. `None` binds `127.0.0.1:0` (a free port).
    pub bind: Option<SocketAddr>,
    /// Start of the virtual clock, RFC 3339 (default `2026-01-01T00:00:00Z`, independent of the seed).
    pub start_time: String,
    /// When true the virtual clock also follows real time (for `syncline simulate` and demos);
    /// when false it moves only with `advance_clock` and generated changes (tests).
    pub realtime_clock: bool,
    /// Virtual milliseconds a manual clock moves before each generated change (default 1000).
    /// Values under 1000 put several Pipedrive changes in the same second, as happens upstream.
    /// A real-time clock ignores it.
    pub change_spacing_ms: u64,
    /// Initial number of records per entity. Entities left out get the connector's default
    /// (see `default_initial_records`).
    pub initial_records: BTreeMap<Entity, usize>,
    /// Background change generator rate in changes per real second; 0 turns it off (changes then
    /// happen only through `step_changes`).
    pub changes_per_second: f64,
    /// Relative weights of the kinds of change the generator makes.
    pub change_mix: ChangeMix,
    /// Outgoing webhooks: target, authentication, retries.
    pub webhooks: WebhookConfig,
    /// Authentication: credentials, token lifetimes, refresh-token rotation.
    pub auth: AuthConfig,
    /// Fault injection rates (each 0.0 to 1.0) and their parameters.
    pub faults: FaultConfig,
    /// How many served data requests `/_sim/requests` keeps (method, path, query, status and
    /// response body), oldest dropped first; 0 (the default) keeps none. The contract check
    /// (`.ci/contract/check.py`) reads it to validate every response against the vendor's spec.
    pub request_log_limit: usize,
    /// Zoho Desk: the portal's daily credit pool (default 1,000,000; Zoho's are 5,000 on Free up
    /// to 100,000 + 1,000 per user on Enterprise). Each get by id costs 1 credit, each list or
    /// search page 3, 5, 10, 50 or 100 by the tier of its `from` offset; every answer carries
    /// `X-Rate-Limit-Request-Weight-v3` and `X-Rate-Limit-Remaining-v3`; a request the pool
    /// cannot pay is answered 429 with `Retry-After` until the pool refills at midnight UTC of
    /// the virtual clock. Other connectors ignore it.
    pub zoho_daily_credits: u64,
    /// HaloPSA: the tenant ignores `/Client` `lastupdatefromdate` / `lastupdatetodate` and lists
    /// every client (whether real tenants honour the filter is unconfirmed).
    pub halopsa_client_filter_ignored: bool,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            connector: Connector::Pipedrive,
            seed: 0,
            bind: None,
            start_time: clock::DEFAULT_START.to_string(),
            realtime_clock: false,
            change_spacing_ms: 1000,
            initial_records: BTreeMap::new(),
            changes_per_second: 0.0,
            change_mix: ChangeMix::default(),
            webhooks: WebhookConfig::default(),
            auth: AuthConfig::default(),
            faults: FaultConfig::default(),
            request_log_limit: 0,
            zoho_daily_credits: DEFAULT_ZOHO_DAILY_CREDITS,
            halopsa_client_filter_ignored: false,
        }
    }
}

/// The default Zoho Desk daily credit pool: large enough that no test runs out by accident.
pub const DEFAULT_ZOHO_DAILY_CREDITS: u64 = 1_000_000;

impl SimulatorConfig {
    /// A default configuration for `connector`.
    pub fn for_connector(connector: Connector) -> Self {
        Self {
            connector,
            ..Self::default()
        }
    }

    /// The initial record count of `entity`: the configured one, else the connector default.
    pub fn initial_count(&self, entity: Entity) -> usize {
        self.initial_records
            .get(&entity)
            .copied()
            .unwrap_or_else(|| default_initial_records(self.connector, entity))
    }

    /// The access-token lifetime in seconds: the configured one, else the vendor's.
    pub fn access_token_lifetime_secs(&self) -> u64 {
        self.auth.access_token_lifetime_secs.unwrap_or(match self.connector {
            Connector::Pipedrive => 3599,
            Connector::ZohoDesk | Connector::Halopsa => 3600,
        })
    }

    /// The webhook retry delays in real seconds after scaling.
    pub fn retry_delays_secs(&self) -> Vec<f64> {
        let schedule = self.webhooks.retry_schedule_secs.clone().unwrap_or_else(|| vec![3.0, 30.0, 150.0]);
        schedule
            .into_iter()
            .map(|delay| (delay * self.webhooks.retry_scale).max(0.0))
            .collect()
    }

    /// The start of the virtual clock in epoch milliseconds.
    pub fn start_ms(&self) -> Result<i64, SimulatorError> {
        clock::parse_timestamp(&self.start_time).ok_or_else(|| {
            SimulatorError::InvalidConfig(format!(
                "start_time {:?} is not an RFC 3339 timestamp; use a value like 2026-01-01T00:00:00Z",
                self.start_time
            ))
        })
    }

    /// Checks the configuration without any I/O.
    pub fn validate(&self) -> Result<(), SimulatorError> {
        self.start_ms()?;
        if let Some(bind) = self.bind {
            if !bind.ip().is_loopback() {
                return Err(SimulatorError::NonLoopbackAddress(bind.to_string()));
            }
        }
        for entity in self.initial_records.keys() {
            if !self.connector.entities().contains(entity) {
                return Err(SimulatorError::UnknownEntity {
                    entity: entity.name().to_string(),
                    connector: self.connector,
                    allowed: self.connector.entity_names(),
                });
            }
        }
        if !(self.changes_per_second.is_finite() && self.changes_per_second >= 0.0) {
            return Err(SimulatorError::InvalidConfig(
                "changes_per_second must be a finite number >= 0; use 0 to turn the generator off".into(),
            ));
        }
        if let Some(url) = &self.webhooks.target_url {
            check_loopback_url(url)?;
        }
        if !(self.webhooks.retry_scale.is_finite() && self.webhooks.retry_scale >= 0.0) {
            return Err(SimulatorError::InvalidConfig(
                "webhooks.retry_scale must be a finite number >= 0; use 1.0 for the vendor schedule".into(),
            ));
        }
        self.faults.validate()?;
        self.change_mix.validate()
    }
}

/// Rejects webhook targets that are not plain-HTTP loopback URLs: the simulator never talks to
/// the internet.
pub fn check_loopback_url(url: &str) -> Result<(), SimulatorError> {
    let rejection = || SimulatorError::NonLoopbackWebhookTarget(url.to_string());
    let rest = url.strip_prefix("http://").ok_or_else(rejection)?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map(|(host, _)| host).unwrap_or(authority)
    };
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false);
    if loopback {
        Ok(())
    } else {
        Err(rejection())
    }
}

/// The number of records each entity starts with unless configured.
pub fn default_initial_records(connector: Connector, entity: Entity) -> usize {
    match (connector, entity) {
        (Connector::Pipedrive, Entity::User) => 5,
        (Connector::Pipedrive, Entity::Pipeline) => 2,
        (Connector::Pipedrive, Entity::Stage) => 8,
        (Connector::Pipedrive, Entity::Organization) => 20,
        (Connector::Pipedrive, Entity::Person) => 40,
        (Connector::Pipedrive, Entity::Deal) => 50,
        (Connector::ZohoDesk, Entity::Department) => 2,
        (Connector::ZohoDesk, Entity::Agent) => 5,
        (Connector::ZohoDesk, Entity::Contact) => 30,
        (Connector::ZohoDesk, Entity::Ticket) => 40,
        (Connector::ZohoDesk, Entity::Thread) => 60,
        (Connector::ZohoDesk, Entity::Comment) => 20,
        (Connector::Halopsa, Entity::Client) => 10,
        (Connector::Halopsa, Entity::Ticket) => 40,
        (Connector::Halopsa, Entity::Invoice) => 20,
        (Connector::Halopsa, Entity::Quotation) => 15,
        _ => 0,
    }
}

/// Relative weights of the kinds of change. A weight of 0 turns a kind off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChangeMix {
    /// New records.
    pub create: f64,
    /// Field changes on existing records (including moves to terminal states).
    pub update: f64,
    /// Deletions (Zoho Desk: moved to trash; HaloPSA: deleted).
    pub delete: f64,
    /// Pipedrive only: one deal, person or organization merged into another (the loser is deleted).
    pub merge: f64,
    /// Pipedrive only: a user deactivated (`active_flag: false`), the vendor's "delete" of a user.
    pub deactivate_user: f64,
}

impl Default for ChangeMix {
    fn default() -> Self {
        Self {
            create: 0.25,
            update: 0.6,
            delete: 0.08,
            merge: 0.04,
            deactivate_user: 0.03,
        }
    }
}

impl ChangeMix {
    fn validate(&self) -> Result<(), SimulatorError> {
        let weights = [self.create, self.update, self.delete, self.merge, self.deactivate_user];
        if weights.iter().any(|weight| !weight.is_finite() || *weight < 0.0) {
            return Err(SimulatorError::InvalidConfig(
                "change_mix weights must be finite numbers >= 0".into(),
            ));
        }
        if weights.iter().sum::<f64>() <= 0.0 {
            return Err(SimulatorError::InvalidConfig(
                "change_mix weights are all 0; give at least one kind of change a weight".into(),
            ));
        }
        Ok(())
    }
}

/// Which Pipedrive webhook payload version to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PipedriveWebhookVersion {
    /// v1: `meta.action` added/updated/deleted/merged with `current` and `previous`.
    V1,
    /// v2: `meta.action` create/change/delete with `meta.entity`, `data` and `previous`.
    #[default]
    V2,
}

/// HTTP Basic credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// How HaloPSA webhooks authenticate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", deny_unknown_fields)]
pub enum HaloWebhookAuth {
    /// No authentication.
    None,
    /// HTTP Basic auth.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A static header, e.g. `Authorization: Bearer ...` or `X-Halo-Secret: ...`.
    Header {
        /// Header name.
        name: String,
        /// Header value.
        value: String,
    },
}

/// The payload type of a HaloPSA webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaloPayload {
    /// The event fields and the object nested under its type (`"ticket": {...}`).
    #[default]
    Full,
    /// Event information only: `{"id", "event", "object_id", "webhook_id"}`.
    EventOnly,
}

/// Outgoing webhooks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST webhooks (a loopback `http://` URL). `None` sends nothing, but events are
    /// still recorded in the webhook log.
    pub target_url: Option<String>,
    /// Pipedrive payload version.
    pub pipedrive_version: PipedriveWebhookVersion,
    /// Pipedrive HTTP Basic auth (Pipedrive's only webhook authentication). `None` sends none.
    pub pipedrive_basic_auth: Option<BasicAuth>,
    /// The webhook id Zoho Desk would give the subscription: the `aud` of the RS256 token in
    /// `X-ZDesk-JWT` that signs every delivery (Zoho's only webhook authentication) is
    /// `webhookId:<this>`.
    pub zoho_webhook_id: String,
    /// Events per Zoho Desk delivery (Zoho sends arrays; default 1).
    pub zoho_max_events_per_delivery: usize,
    /// HaloPSA webhook authentication.
    pub halopsa_auth: HaloWebhookAuth,
    /// What a HaloPSA delivery carries: `full` (the object nested under its type, as the live
    /// delivery) or `event_only` (`{"id", "event", "object_id", "webhook_id"}`).
    pub halopsa_payload: HaloPayload,
    /// HaloPSA batching (v2.164 and later): 0 (the default) sends one JSON object per event;
    /// n sends JSON arrays of up to n events.
    pub halopsa_batch_size: usize,
    /// The `webhook_id` HaloPSA deliveries carry.
    pub halopsa_webhook_id: String,
    /// Retry delays in seconds after a failed delivery (non-2xx or no answer). `None` uses
    /// Pipedrive's published schedule, 3, 30 and 150 s (used for all connectors).
    pub retry_schedule_secs: Option<Vec<f64>>,
    /// Multiplier on the retry delays; tests use e.g. 0.001 so retries happen within milliseconds.
    pub retry_scale: f64,
    /// Consecutive failed attempts after which the subscription is banned (stops sending until
    /// resumed), as Pipedrive does after 10. `None` never bans.
    pub ban_after_failures: Option<u32>,
    /// Per-attempt HTTP timeout in milliseconds.
    pub timeout_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            target_url: None,
            pipedrive_version: PipedriveWebhookVersion::V2,
            pipedrive_basic_auth: Some(BasicAuth {
                username: "sim-webhook-user".into(),
                password: "sim-webhook-password".into(),
            }),
            zoho_webhook_id: "1892000000612001".into(),
            zoho_max_events_per_delivery: 1,
            halopsa_auth: HaloWebhookAuth::Basic {
                username: "sim-halo-webhook-user".into(),
                password: "sim-halo-webhook-password".into(),
            },
            halopsa_payload: HaloPayload::Full,
            halopsa_batch_size: 0,
            halopsa_webhook_id: "53232637-7724-4a19-b126-3c7267a292aa".into(),
            retry_schedule_secs: None,
            retry_scale: 1.0,
            ban_after_failures: Some(10),
            timeout_ms: 10_000,
        }
    }
}

/// Credentials and token behaviour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Pipedrive personal API token (`api_token` query parameter or `x-api-token` header).
    pub api_token: String,
    /// OAuth2 client id (Pipedrive app, Zoho client, HaloPSA API application).
    pub client_id: String,
    /// OAuth2 client secret.
    pub client_secret: String,
    /// Pipedrive and Zoho: the refresh token issued at start (the one a user would paste in).
    pub initial_refresh_token: String,
    /// Pipedrive and Zoho: an authorization code that the token endpoint exchanges once.
    pub authorization_code: String,
    /// Zoho Desk organisation id expected in the `orgId` header.
    pub zoho_org_id: String,
    /// Access-token lifetime in virtual seconds; `None` uses the vendor's (Pipedrive 3599 s,
    /// Zoho and HaloPSA 3600 s).
    pub access_token_lifetime_secs: Option<u64>,
    /// When true each refresh returns a new refresh token and invalidates the old one. Zoho's
    /// default is false (its refresh response has no refresh token); Pipedrive always returns a
    /// refresh token, the same one unless this is true.
    pub rotate_refresh_tokens: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            api_token: "sim-pipedrive-api-token".into(),
            client_id: "sim-client-id".into(),
            client_secret: "sim-client-secret".into(),
            initial_refresh_token: "sim-refresh-token-0".into(),
            authorization_code: "sim-authorization-code".into(),
            zoho_org_id: "298902".into(),
            access_token_lifetime_secs: None,
            rotate_refresh_tokens: false,
        }
    }
}

/// Fault injection. Every rate is a probability per opportunity (per webhook, per API request,
/// per token check) drawn from a seeded random stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Webhook never sent.
    pub webhook_drop_rate: f64,
    /// Webhook sent twice (same body, same delivery id).
    pub webhook_duplicate_rate: f64,
    /// Webhook held back and sent after the next one.
    pub webhook_reorder_rate: f64,
    /// Webhook sent late, after `webhook_delay_ms`.
    pub webhook_delay_rate: f64,
    /// Delay of a delayed webhook, real milliseconds.
    pub webhook_delay_ms: u64,
    /// API request answered 429 with `Retry-After`.
    pub rate_limit_rate: f64,
    /// `Retry-After` value in seconds.
    pub retry_after_secs: u64,
    /// API request answered with a 5xx (500, 502 or 503).
    pub server_error_rate: f64,
    /// API request answered slowly, after `slow_response_ms`.
    pub slow_response_rate: f64,
    /// Extra latency of a slow response, real milliseconds.
    pub slow_response_ms: u64,
    /// A request for a second or later page first inserts new records (as other users do while
    /// a client pages).
    pub insert_while_paging_rate: f64,
    /// How many records such an insertion creates.
    pub insert_while_paging_count: usize,
    /// A request for a second or later page first deletes random live records (offset pages
    /// shift back: a client that pages on skips rows).
    pub delete_while_paging_rate: f64,
    /// How many records such a deletion removes.
    pub delete_while_paging_count: usize,
    /// A request for a second or later page first updates random live records.
    pub update_while_paging_rate: f64,
    /// How many records such an update changes.
    pub update_while_paging_count: usize,
    /// Every list page is answered after this many real milliseconds (detail GETs at once): a
    /// slow listing, as a large tenant's full reconcile sees it.
    pub list_page_delay_ms: u64,
    /// An access token is treated as expired (and stays expired) before its lifetime ends.
    pub token_expiry_rate: f64,
    /// Eventual consistency: a change reaches since-filter results only this many virtual
    /// milliseconds after it happened (detail GETs and unfiltered lists see it at once).
    pub eventual_consistency_lag_ms: u64,
}

impl FaultConfig {
    fn validate(&self) -> Result<(), SimulatorError> {
        let rates = [
            ("webhook_drop_rate", self.webhook_drop_rate),
            ("webhook_duplicate_rate", self.webhook_duplicate_rate),
            ("webhook_reorder_rate", self.webhook_reorder_rate),
            ("webhook_delay_rate", self.webhook_delay_rate),
            ("rate_limit_rate", self.rate_limit_rate),
            ("server_error_rate", self.server_error_rate),
            ("slow_response_rate", self.slow_response_rate),
            ("insert_while_paging_rate", self.insert_while_paging_rate),
            ("delete_while_paging_rate", self.delete_while_paging_rate),
            ("update_while_paging_rate", self.update_while_paging_rate),
            ("token_expiry_rate", self.token_expiry_rate),
        ];
        for (name, rate) in rates {
            if !(0.0..=1.0).contains(&rate) {
                return Err(SimulatorError::InvalidConfig(format!(
                    "faults.{name} is {rate}; use a probability between 0.0 and 1.0"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_valid_and_round_trips() {
        let config = SimulatorConfig::default();
        config.validate().expect("default is valid");
        let json = serde_json::to_string(&config).expect("serialises");
        let back: SimulatorConfig = serde_json::from_str(&json).expect("parses");
        assert_eq!(back, config);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let error = serde_json::from_str::<SimulatorConfig>(r#"{"connector":"zoho_desk","sede":1}"#).expect_err("typo must fail");
        assert!(error.to_string().contains("unknown field"), "{error}");
    }

    #[test]
    fn partial_json_fills_defaults() {
        let config: SimulatorConfig =
            serde_json::from_str(r#"{"connector":"halopsa","seed":7,"initial_records":{"ticket":3},"faults":{"rate_limit_rate":0.5}}"#)
                .expect("parses");
        assert_eq!(config.connector, Connector::Halopsa);
        assert_eq!(config.initial_count(Entity::Ticket), 3);
        assert_eq!(config.initial_count(Entity::Client), 10);
        assert_eq!(config.faults.rate_limit_rate, 0.5);
        assert_eq!(config.access_token_lifetime_secs(), 3600);
    }

    #[test]
    fn rejects_non_loopback_addresses_and_targets() {
        let mut config = SimulatorConfig {
            bind: Some("0.0.0.0:8080".parse().expect("addr")),
            ..SimulatorConfig::default()
        };
        assert!(matches!(config.validate(), Err(SimulatorError::NonLoopbackAddress(_))));
        config.bind = Some("127.0.0.1:0".parse().expect("addr"));
        config.validate().expect("loopback ok");
        for url in ["http://127.0.0.1:9/x", "http://localhost/hook", "http://[::1]:80/"] {
            check_loopback_url(url).expect(url);
        }
        for url in [
            "https://127.0.0.1/",
            "http://example.com/",
            "http://10.0.0.1:80/",
            "ftp://localhost",
        ] {
            assert!(check_loopback_url(url).is_err(), "{url}");
        }
    }

    #[test]
    fn rejects_out_of_range_rates_and_foreign_entities() {
        let mut config = SimulatorConfig::default();
        config.faults.webhook_drop_rate = 1.5;
        assert!(config.validate().is_err());
        let mut config = SimulatorConfig::default();
        config.initial_records.insert(Entity::Invoice, 3);
        let message = config.validate().expect_err("invoice is not pipedrive").to_string();
        assert!(message.contains("deal"), "{message}");
    }

    #[test]
    fn retry_schedule_scales() {
        let mut config = SimulatorConfig::default();
        assert_eq!(config.retry_delays_secs(), vec![3.0, 30.0, 150.0]);
        config.webhooks.retry_scale = 0.5;
        assert_eq!(config.retry_delays_secs(), vec![1.5, 15.0, 75.0]);
    }
}
