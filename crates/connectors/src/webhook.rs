//! Webhooks: verifying that a delivery comes from the vendor, and parsing it into events.
//!
//! Both halves are pure. [`verify`] checks a delivery's headers against the configured
//! [`WebhookVerification`] (HMAC signature, HTTP Basic auth or a static header token) with
//! constant-time comparisons and a replay window; [`parse_webhook`] turns a verified body into
//! [`WebhookEvent`]s `(source, entity, id, action, event time, delivery id)`. The payload is never
//! taken as the record's state: the worker re-fetches every upserted record from the API.

use ::http::HeaderMap;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use syncline_core::{parse_timestamp, EventAction, Millis, WebhookEvent};

use crate::config::Secret;
use crate::spec::ConnectorKind;

type HmacSha256 = Hmac<Sha256>;

/// Header carrying a plain HMAC signature unless configured otherwise.
pub const DEFAULT_SIGNATURE_HEADER: &str = "x-webhook-signature";
/// Replay window, in seconds either side of the receive time, unless configured otherwise.
pub const DEFAULT_TOLERANCE_SECONDS: u64 = 300;
/// Largest accepted webhook body unless configured otherwise (1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1_048_576;
/// Standard Webhooks message id header (stable across retries; a good delivery id).
pub const STANDARD_WEBHOOKS_ID_HEADER: &str = "webhook-id";
/// Standard Webhooks timestamp header (Unix seconds).
pub const STANDARD_WEBHOOKS_TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Standard Webhooks signature header (`v1,<base64>` entries separated by spaces).
pub const STANDARD_WEBHOOKS_SIGNATURE_HEADER: &str = "webhook-signature";

/// How a webhook delivery proves it comes from the vendor: `verify = { type = "...", ... }` in
/// `[sources.NAME.webhook]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WebhookVerification {
    /// HMAC-SHA256 signature of the raw body (generic signers, Standard Webhooks, or a relay
    /// that re-signs Zoho Desk deliveries; Zoho Desk itself signs with `zoho_jwt`).
    Hmac(HmacVerification),
    /// HTTP Basic auth (Pipedrive's `http_auth_user` / `http_auth_password`, HaloPSA).
    Basic {
        /// The expected user name.
        username: String,
        /// The expected password; write `"${PIPEDRIVE_WEBHOOK_PASSWORD}"`.
        password: Secret,
    },
    /// Zoho Desk's `X-ZDesk-JWT` (RS256, checked against Zoho's published keys); see
    /// [`crate::zoho_desk::jwt::ZohoJwtVerification`].
    ZohoJwt(crate::zoho_desk::jwt::ZohoJwtVerification),
    /// A static token in a header (HaloPSA integration webhooks with a custom header).
    Header {
        /// The header name, e.g. `x-halo-secret` (case-insensitive).
        header: String,
        /// The expected header value; write `"${HALOPSA_WEBHOOK_TOKEN}"`.
        value: Secret,
    },
}

/// `verify = { type = "hmac", ... }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmacVerification {
    /// The shared secret. For `scheme = "standard_webhooks"` it is base64, optionally prefixed
    /// `whsec_`; for `plain` its UTF-8 bytes are the key.
    pub secret: Secret,
    /// `plain` (default: one signature header over the body) or `standard_webhooks`
    /// (`webhook-id`, `webhook-timestamp`, `webhook-signature` headers; signs
    /// `{id}.{timestamp}.{body}`).
    #[serde(default)]
    pub scheme: HmacScheme,
    /// `plain` only: the signature header (default `x-webhook-signature`).
    #[serde(default)]
    pub header: Option<String>,
    /// `plain` only: how the signature is written, `hex` (default) or `base64`.
    #[serde(default)]
    pub encoding: Option<SignatureEncoding>,
    /// `plain` only: a prefix stripped from the header value before decoding, e.g. `sha256=`.
    #[serde(default)]
    pub prefix: Option<String>,
    /// `plain` only: a header holding the Unix time (seconds) of the delivery. When set, the
    /// signed content is `{timestamp}.{body}` and deliveries outside the replay window are
    /// refused.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// Replay window in seconds either side of the receive time (default 300); applies when
    /// a timestamp is signed (`timestamp_header`, or always with `standard_webhooks`).
    #[serde(default = "default_tolerance_seconds")]
    pub tolerance_seconds: u64,
}

fn default_tolerance_seconds() -> u64 {
    DEFAULT_TOLERANCE_SECONDS
}

/// The layout of an HMAC-signed delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HmacScheme {
    /// One header with the signature of the body (or of `{timestamp}.{body}`).
    #[default]
    Plain,
    /// The Standard Webhooks specification (standardwebhooks.com), as used by Svix and others.
    StandardWebhooks,
}

/// How a plain HMAC signature is written in its header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureEncoding {
    /// Lowercase or uppercase hexadecimal (Zoho Desk).
    #[default]
    Hex,
    /// Base64, standard or URL-safe alphabet, padding optional.
    Base64,
}

impl HmacVerification {
    /// A plain HMAC check with every option at its default (hex in `x-webhook-signature`).
    pub fn plain(secret: Secret) -> Self {
        Self {
            secret,
            scheme: HmacScheme::Plain,
            header: None,
            encoding: None,
            prefix: None,
            timestamp_header: None,
            tolerance_seconds: DEFAULT_TOLERANCE_SECONDS,
        }
    }

    /// A Standard Webhooks check with the given (`whsec_`-prefixed or bare base64) secret.
    pub fn standard_webhooks(secret: Secret) -> Self {
        Self {
            scheme: HmacScheme::StandardWebhooks,
            ..Self::plain(secret)
        }
    }

    /// The signature header of the `plain` scheme.
    pub fn signature_header(&self) -> String {
        self.header.as_deref().unwrap_or(DEFAULT_SIGNATURE_HEADER).to_ascii_lowercase()
    }

    /// The encoding of the `plain` scheme.
    pub fn signature_encoding(&self) -> SignatureEncoding {
        self.encoding.unwrap_or_default()
    }

    fn key(&self) -> Result<Vec<u8>, VerifyError> {
        match self.scheme {
            HmacScheme::Plain => Ok(self.secret.expose().as_bytes().to_vec()),
            HmacScheme::StandardWebhooks => {
                let text = self.secret.expose();
                let text = text.strip_prefix("whsec_").unwrap_or(text);
                decode_base64(text).ok_or(VerifyError::InvalidSecret)
            }
        }
    }
}

impl WebhookVerification {
    /// Checks a delivery; see [`verify`].
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: Millis) -> Result<(), VerifyError> {
        verify(self, headers, body, now)
    }

    /// The header whose value identifies a delivery across retries, if this verification
    /// defines one (`webhook-id` for Standard Webhooks); pass its value to [`parse_webhook`].
    pub fn delivery_id_header(&self) -> Option<&'static str> {
        match self {
            WebhookVerification::Hmac(hmac) if hmac.scheme == HmacScheme::StandardWebhooks => Some(STANDARD_WEBHOOKS_ID_HEADER),
            _ => None,
        }
    }

    /// True when checking a delivery needs its body (an HMAC signs it). Basic auth, header
    /// tokens and Zoho Desk's JWT (it signs no body) need only the headers: the server checks them before it reads a byte of the
    /// body, so an unauthenticated sender cannot make it buffer one.
    pub fn needs_body(&self) -> bool {
        matches!(self, WebhookVerification::Hmac(_))
    }

    /// The name used in config and logs: `hmac`, `basic`, `header` or `zoho_jwt`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            WebhookVerification::Hmac(_) => "hmac",
            WebhookVerification::ZohoJwt(_) => "zoho_jwt",
            WebhookVerification::Basic { .. } => "basic",
            WebhookVerification::Header { .. } => "header",
        }
    }

    /// Checks what parsing cannot; returns the offending sub-field (relative to `verify`) and
    /// what to write instead. Used by config validation.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        fn header_name(field: &'static str, name: &str) -> Result<(), (&'static str, String)> {
            if ::http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err((
                    field,
                    format!("`{name}` is not a valid HTTP header name; write e.g. \"x-webhook-signature\""),
                ));
            }
            Ok(())
        }
        fn non_empty_secret(field: &'static str, secret: &Secret) -> Result<(), (&'static str, String)> {
            crate::config::check_secret_strength(secret).map_err(|message| (field, message))
        }
        match self {
            WebhookVerification::ZohoJwt(jwt) => jwt.check(),
            WebhookVerification::Basic { username, password } => {
                if username.trim().is_empty() {
                    return Err(("username", "is empty; write the user name registered at the vendor".into()));
                }
                if username.contains(':') {
                    return Err(("username", "must not contain `:` (HTTP Basic auth separates with it)".into()));
                }
                non_empty_secret("password", password)
            }
            WebhookVerification::Header { header, value } => {
                header_name("header", header)?;
                if header.eq_ignore_ascii_case("authorization") {
                    return Err((
                        "header",
                        "use type = \"basic\" for the Authorization header, or name the custom header the vendor sends".into(),
                    ));
                }
                non_empty_secret("value", value)
            }
            WebhookVerification::Hmac(hmac) => {
                non_empty_secret("secret", &hmac.secret)?;
                if hmac.tolerance_seconds == 0 {
                    return Err(("tolerance_seconds", "must be at least 1; remove it for the default 300".into()));
                }
                match hmac.scheme {
                    HmacScheme::Plain => {
                        if let Some(header) = &hmac.header {
                            header_name("header", header)?;
                        }
                        if let Some(header) = &hmac.timestamp_header {
                            header_name("timestamp_header", header)?;
                        }
                        if hmac.prefix.as_deref() == Some("") {
                            return Err(("prefix", "is empty; remove it or write the prefix, e.g. \"sha256=\"".into()));
                        }
                        Ok(())
                    }
                    HmacScheme::StandardWebhooks => {
                        for (field, set) in [
                            ("header", hmac.header.is_some()),
                            ("encoding", hmac.encoding.is_some()),
                            ("prefix", hmac.prefix.is_some()),
                            ("timestamp_header", hmac.timestamp_header.is_some()),
                        ] {
                            if set {
                                return Err((
                                    field,
                                    "does not apply to scheme = \"standard_webhooks\" (its headers are fixed); remove it".into(),
                                ));
                            }
                        }
                        match hmac.key() {
                            Err(_) => Err((
                                "secret",
                                "is not base64; write the Standard Webhooks secret as given by the vendor (\"whsec_...\")".into(),
                            )),
                            Ok(key) if key.len() < crate::config::MIN_SECRET_CHARS => Err((
                                "secret",
                                format!(
                                    "decodes to {} bytes, fewer than the {} required; write the Standard Webhooks secret as given by the vendor (\"whsec_...\")",
                                    key.len(),
                                    crate::config::MIN_SECRET_CHARS
                                ),
                            )),
                            Ok(_) => Ok(()),
                        }
                    }
                }
            }
        }
    }
}

/// Why a delivery is refused. The server answers every one with 401 and no detail; the
/// message (for logs) never contains a secret, a credential or a signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header the verification needs is absent.
    #[error("webhook header `{header}` is missing; check that the vendor sends it and that the source's webhook.verify names it")]
    MissingHeader {
        /// The header name.
        header: String,
    },
    /// A header is present but cannot be read (not ASCII, wrong scheme, not hex/base64, missing
    /// prefix).
    #[error("webhook header `{header}` is malformed; check the encoding and prefix in the source's webhook.verify")]
    MalformedHeader {
        /// The header name.
        header: String,
    },
    /// The signature does not match the body.
    #[error("webhook signature does not match the body; check that the vendor and the config share the same secret")]
    BadSignature,
    /// Basic-auth credentials or the header token do not match.
    #[error("webhook credentials do not match; check the user name, password or token at the vendor and in the config")]
    BadCredentials,
    /// The signed timestamp is outside the replay window (a replay, or a skewed clock).
    #[error("webhook timestamp is more than {tolerance_seconds} s from the receive time (a replay or a skewed clock); check the server clock or raise tolerance_seconds")]
    TimestampOutsideWindow {
        /// The configured window.
        tolerance_seconds: u64,
    },
    /// A Zoho Desk token is refused (see the inner error).
    #[error("{0}")]
    Jwt(crate::zoho_desk::jwt::JwtError),
    /// `zoho_jwt` needs Zoho's keys: the server checks it with a
    /// [`crate::zoho_desk::jwks::JwksCache`], not with [`verify`].
    #[error("zoho_jwt verification needs zoho's key set; check it with the source's key cache (syncline serve does)")]
    KeysNeeded,
    /// The configured Standard Webhooks secret is not base64.
    #[error("the configured webhook secret is not base64; write the secret as the vendor shows it (\"whsec_...\")")]
    InvalidSecret,
}

/// Checks that a delivery comes from the vendor: its signature, credentials or token, and for
/// signed timestamps that it is within the replay window of `now` (UTC milliseconds). Every
/// comparison of secret material runs in constant time.
pub fn verify(verification: &WebhookVerification, headers: &HeaderMap, body: &[u8], now: Millis) -> Result<(), VerifyError> {
    match verification {
        WebhookVerification::ZohoJwt(_) => Err(VerifyError::KeysNeeded),
        WebhookVerification::Basic { username, password } => verify_basic(headers, username, password),
        WebhookVerification::Header { header, value } => {
            let name = header.to_ascii_lowercase();
            let provided = header_bytes(headers, &name)?;
            if digest_eq(provided.trim_ascii(), value.expose().as_bytes()) {
                Ok(())
            } else {
                Err(VerifyError::BadCredentials)
            }
        }
        WebhookVerification::Hmac(hmac) => match hmac.scheme {
            HmacScheme::Plain => verify_plain_hmac(hmac, headers, body, now),
            HmacScheme::StandardWebhooks => verify_standard_webhooks(hmac, headers, body, now),
        },
    }
}

fn header_bytes<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a [u8], VerifyError> {
    headers
        .get(name)
        .map(|value| value.as_bytes())
        .ok_or_else(|| VerifyError::MissingHeader { header: name.to_string() })
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, VerifyError> {
    let bytes = header_bytes(headers, name)?;
    std::str::from_utf8(bytes)
        .map(str::trim)
        .map_err(|_| VerifyError::MalformedHeader { header: name.to_string() })
}

/// Equality of two secrets in constant time, lengths included (both are hashed first).
pub fn digest_eq(provided: &[u8], expected: &[u8]) -> bool {
    let provided = Sha256::digest(provided);
    let expected = Sha256::digest(expected);
    provided.ct_eq(&expected).into()
}

fn verify_basic(headers: &HeaderMap, username: &str, password: &Secret) -> Result<(), VerifyError> {
    let name = ::http::header::AUTHORIZATION.as_str();
    let value = header_text(headers, name)?;
    let malformed = || VerifyError::MalformedHeader { header: name.to_string() };
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(malformed());
    }
    let decoded = decode_base64(encoded.trim()).ok_or_else(malformed)?;
    let split = decoded.iter().position(|byte| *byte == b':').ok_or_else(malformed)?;
    let (user, pass) = (&decoded[..split], &decoded[split + 1..]);
    // Both compared, no short circuit.
    let user_ok = digest_eq(user, username.as_bytes());
    let pass_ok = digest_eq(pass, password.expose().as_bytes());
    if user_ok & pass_ok {
        Ok(())
    } else {
        Err(VerifyError::BadCredentials)
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD]
        .into_iter()
        .find_map(|engine| engine.decode(text).ok())
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            Some((high * 16 + low) as u8)
        })
        .collect()
}

/// Parses a Unix timestamp header (seconds; 13 or more digits are read as milliseconds) and
/// checks the replay window.
fn check_timestamp(text: &str, header: &str, now: Millis, tolerance_seconds: u64) -> Result<(), VerifyError> {
    let value: i64 = text.parse().map_err(|_| VerifyError::MalformedHeader {
        header: header.to_string(),
    })?;
    let millis = if text.len() >= 13 { value } else { value.saturating_mul(1000) };
    let window = i64::try_from(tolerance_seconds).unwrap_or(i64::MAX).saturating_mul(1000);
    if now.saturating_sub(millis).saturating_abs() > window {
        return Err(VerifyError::TimestampOutsideWindow { tolerance_seconds });
    }
    Ok(())
}

fn mac_for(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("hmac accepts every key length"))
}

fn verify_plain_hmac(hmac: &HmacVerification, headers: &HeaderMap, body: &[u8], now: Millis) -> Result<(), VerifyError> {
    let name = hmac.signature_header();
    let value = header_text(headers, &name)?;
    let malformed = || VerifyError::MalformedHeader { header: name.clone() };
    let value = match &hmac.prefix {
        Some(prefix) => value.strip_prefix(prefix.as_str()).ok_or_else(malformed)?,
        None => value,
    };
    let signature = match hmac.signature_encoding() {
        SignatureEncoding::Hex => decode_hex(value.trim()),
        SignatureEncoding::Base64 => decode_base64(value.trim()),
    }
    .ok_or_else(malformed)?;
    let mut mac = mac_for(&hmac.key()?);
    if let Some(timestamp_header) = &hmac.timestamp_header {
        let timestamp_header = timestamp_header.to_ascii_lowercase();
        let timestamp = header_text(headers, &timestamp_header)?;
        check_timestamp(timestamp, &timestamp_header, now, hmac.tolerance_seconds)?;
        mac.update(timestamp.as_bytes());
        mac.update(b".");
    }
    mac.update(body);
    mac.verify_slice(&signature).map_err(|_| VerifyError::BadSignature)
}

fn verify_standard_webhooks(hmac: &HmacVerification, headers: &HeaderMap, body: &[u8], now: Millis) -> Result<(), VerifyError> {
    let id = header_text(headers, STANDARD_WEBHOOKS_ID_HEADER)?;
    let timestamp = header_text(headers, STANDARD_WEBHOOKS_TIMESTAMP_HEADER)?;
    let signatures = header_text(headers, STANDARD_WEBHOOKS_SIGNATURE_HEADER)?;
    check_timestamp(timestamp, STANDARD_WEBHOOKS_TIMESTAMP_HEADER, now, hmac.tolerance_seconds)?;
    let mut mac = mac_for(&hmac.key()?);
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let mut matched = false;
    let mut any_v1 = false;
    for entry in signatures.split_ascii_whitespace() {
        let Some(encoded) = entry.strip_prefix("v1,") else {
            continue;
        };
        any_v1 = true;
        if let Some(signature) = decode_base64(encoded) {
            matched |= mac.clone().verify_slice(&signature).is_ok();
        }
    }
    if !any_v1 {
        return Err(VerifyError::MalformedHeader {
            header: STANDARD_WEBHOOKS_SIGNATURE_HEADER.to_string(),
        });
    }
    if matched {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

/// The events of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedWebhook {
    /// The delivery id shared by the events (the vendor's where it has one, else a hash).
    pub delivery_id: String,
    /// Events for entities of the connector, in payload order.
    pub events: Vec<WebhookEvent>,
    /// Names of payload entities the connector does not sync (e.g. Pipedrive `activity`), one
    /// per event, as the vendor writes them; log, count and acknowledge them.
    pub unknown_entities: Vec<String>,
}

/// Why a verified body cannot be read. The server answers 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON.
    #[error("{connector} webhook body is not JSON ({message}); check the webhook's payload format at the vendor")]
    NotJson {
        /// The connector.
        connector: &'static str,
        /// The JSON error (position, not content).
        message: String,
    },
    /// A field the format requires is absent or of the wrong type.
    #[error("{connector} webhook body has no usable `{field}`; check that the webhook at the vendor sends {expected}")]
    MissingField {
        /// The connector.
        connector: &'static str,
        /// Path of the field, e.g. `meta.entity_id` or `[2].eventType`.
        field: String,
        /// The payload format expected.
        expected: &'static str,
    },
}

/// Hex SHA-256 of a body: the delivery id of a delivery without one, so identical bodies
/// de-duplicate.
pub fn body_digest(body: &[u8]) -> String {
    Sha256::digest(body).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Parses a verified delivery posted to `/webhooks/{source}`.
///
/// - Pipedrive v2 (`meta.action` create/change/delete, `meta.entity`, `meta.entity_id`,
///   `meta.id` as delivery id) and v1 (`meta.action` added/updated/deleted/merged,
///   `meta.object`, `meta.id` as record id). A v1 merge is an upsert of the survivor plus, when
///   the payload names it (`merge_what_id`), a delete of the merged-away record. A user
///   deactivation arrives as a change and stays an upsert.
/// - Zoho Desk: an array of `{eventType: "Ticket_Update", payload, eventTime}`.
/// - HaloPSA: `{id, event, object_id, timestamp, <type>: record}` or an array of them (batched).
///
/// `delivery_header` is a delivery id from a header (e.g. `webhook-id`), used when the payload
/// has none; without either the delivery id is [`body_digest`]. The event time is the vendor's
/// event timestamp, else the record's modified time, else `received_at`.
pub fn parse_webhook(
    connector: ConnectorKind,
    source: &str,
    body: &[u8],
    delivery_header: Option<&str>,
    received_at: Millis,
) -> Result<ParsedWebhook, ParseError> {
    let value: Value = serde_json::from_slice(body).map_err(|error| ParseError::NotJson {
        connector: connector.name(),
        message: error.to_string(),
    })?;
    let fallback_delivery = || {
        delivery_header
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| body_digest(body))
    };
    let mut out = Collector {
        connector,
        received_at,
        events: Vec::new(),
        unknown_entities: Vec::new(),
    };
    let delivery_id = (connector.profile().parse_webhook)(&value, &mut out)?.unwrap_or_else(fallback_delivery);
    let events = out
        .events
        .into_iter()
        .map(|(entity, id, action, event_time, parent_id, key)| WebhookEvent {
            source: source.to_string(),
            entity,
            id,
            action,
            event_time,
            delivery_id: key.unwrap_or_else(|| delivery_id.clone()),
            parent_id,
        })
        .collect();
    Ok(ParsedWebhook {
        delivery_id,
        events,
        unknown_entities: out.unknown_entities,
    })
}

/// A connector's webhook parser: reads a JSON body into the collector and returns the
/// delivery id if the payload has one.
pub type ParseFn = fn(&Value, &mut Collector) -> Result<Option<String>, ParseError>;

/// One event as a parser collects it: `(entity, id, action, event time, parent id, the
/// event's own dedupe key)`.
type CollectedEvent = (String, String, EventAction, Millis, Option<String>, Option<String>);

/// What a connector's parser finds in one delivery.
pub struct Collector {
    pub(crate) connector: ConnectorKind,
    received_at: Millis,
    /// `(entity, id, action, event time, parent id, the event's own dedupe key)`.
    events: Vec<CollectedEvent>,
    pub(crate) unknown_entities: Vec<String>,
}

impl Collector {
    pub(crate) fn push(&mut self, entity: Option<&'static str>, vendor_name: &str, id: String, action: EventAction, time: Option<Millis>) {
        match entity {
            Some(entity) => self
                .events
                .push((entity.to_string(), id, action, time.unwrap_or(self.received_at), None, None)),
            None => self.unknown_entities.push(vendor_name.to_string()),
        }
    }

    /// Gives the event pushed last its own dedupe key (used instead of the delivery id), for
    /// vendors without delivery ids whose events identify themselves.
    pub(crate) fn set_key_of_last(&mut self, key: String) {
        if let Some(last) = self.events.last_mut() {
            last.5 = Some(key);
        }
    }

    /// Names the parent record of the event pushed last (a sub-resource's).
    pub(crate) fn set_parent_of_last(&mut self, parent: Option<String>) {
        if let Some(last) = self.events.last_mut() {
            last.4 = parent;
        }
    }

    pub(crate) fn missing(&self, field: impl Into<String>) -> ParseError {
        ParseError::MissingField {
            connector: self.connector.name(),
            field: field.into(),
            expected: self.connector.profile().webhook_format,
        }
    }

    /// The connector's entity of a name, if it syncs one.
    pub(crate) fn entity(&self, name: &str) -> Option<&'static str> {
        self.connector.entity(name).map(|spec| spec.name)
    }
}

/// An id as text: a non-empty string or an integer.
pub(crate) fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_string()),
        Value::Number(number) if number.is_u64() || number.is_i64() => Some(number.to_string()),
        _ => None,
    }
}

/// Epoch seconds, milliseconds or microseconds by magnitude.
fn epoch_millis(value: i64) -> Millis {
    match value.unsigned_abs() {
        magnitude if magnitude < 100_000_000_000 => value.saturating_mul(1000),
        magnitude if magnitude < 100_000_000_000_000 => value,
        _ => value / 1000,
    }
}

/// A timestamp as a vendor writes it: text in a vendor format, digits, or a number.
pub(crate) fn time_of(value: &Value) -> Option<Millis> {
    match value {
        Value::String(text) => {
            let text = text.trim();
            if !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) {
                return text.parse().ok().map(epoch_millis);
            }
            parse_timestamp(text)
        }
        Value::Number(number) => number.as_i64().map(epoch_millis),
        _ => None,
    }
}

pub(crate) fn object_field<'a>(record: &'a Value, key: &str) -> Option<&'a Value> {
    record.as_object().and_then(|map| map.get(key)).filter(|value| !value.is_null())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::http::HeaderValue;
    use serde_json::json;

    const NOW: Millis = 1_700_000_000_000;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                ::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn hmac_bytes(key: &[u8], content: &[u8]) -> Vec<u8> {
        let mut mac = mac_for(key);
        mac.update(content);
        mac.finalize().into_bytes().to_vec()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn basic(user: &str, password: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{user}:{password}")))
    }

    #[test]
    fn plain_hmac_hex_right_and_wrong() {
        let verification = WebhookVerification::Hmac(HmacVerification::plain(Secret::new("s3cret")));
        let body = br#"[{"eventType":"Ticket_Add"}]"#;
        let good = hex(&hmac_bytes(b"s3cret", body));
        assert_eq!(verification.verify(&headers(&[("x-webhook-signature", &good)]), body, NOW), Ok(()));
        assert_eq!(
            verification.verify(&headers(&[("X-Webhook-Signature", &good.to_uppercase())]), body, NOW),
            Ok(())
        );
        let forged = hex(&hmac_bytes(b"other", body));
        assert_eq!(
            verification.verify(&headers(&[("x-webhook-signature", &forged)]), body, NOW),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verification.verify(&headers(&[("x-webhook-signature", &good)]), b"tampered", NOW),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verification.verify(&headers(&[("x-webhook-signature", "zz")]), body, NOW),
            Err(VerifyError::MalformedHeader {
                header: "x-webhook-signature".into()
            })
        );
        assert_eq!(
            verification.verify(&HeaderMap::new(), body, NOW),
            Err(VerifyError::MissingHeader {
                header: "x-webhook-signature".into()
            })
        );
    }

    #[test]
    fn plain_hmac_base64_with_prefix_and_custom_header() {
        let verification = WebhookVerification::Hmac(HmacVerification {
            header: Some("X-Signature".into()),
            encoding: Some(SignatureEncoding::Base64),
            prefix: Some("sha256=".into()),
            ..HmacVerification::plain(Secret::new("key"))
        });
        let body = b"{}";
        let signature = format!("sha256={}", STANDARD.encode(hmac_bytes(b"key", body)));
        assert_eq!(verification.verify(&headers(&[("x-signature", &signature)]), body, NOW), Ok(()));
        let unprefixed = STANDARD.encode(hmac_bytes(b"key", body));
        assert!(matches!(
            verification.verify(&headers(&[("x-signature", &unprefixed)]), body, NOW),
            Err(VerifyError::MalformedHeader { .. })
        ));
        let wrong = format!("sha256={}", STANDARD.encode(hmac_bytes(b"nope", body)));
        assert_eq!(
            verification.verify(&headers(&[("x-signature", &wrong)]), body, NOW),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn plain_hmac_with_timestamp_refuses_replays() {
        let verification = WebhookVerification::Hmac(HmacVerification {
            timestamp_header: Some("x-webhook-timestamp".into()),
            ..HmacVerification::plain(Secret::new("key"))
        });
        let body = b"{\"a\":1}";
        let sign = |timestamp: i64| {
            let content = [timestamp.to_string().as_bytes(), b".", body].concat();
            hex(&hmac_bytes(b"key", &content))
        };
        let fresh = NOW / 1000 - 10;
        let check = |timestamp: i64, signature: &str| {
            verification.verify(
                &headers(&[("x-webhook-timestamp", &timestamp.to_string()), ("x-webhook-signature", signature)]),
                body,
                NOW,
            )
        };
        assert_eq!(check(fresh, &sign(fresh)), Ok(()));
        let old = NOW / 1000 - 301;
        assert_eq!(
            check(old, &sign(old)),
            Err(VerifyError::TimestampOutsideWindow { tolerance_seconds: 300 })
        );
        let future = NOW / 1000 + 400;
        assert_eq!(
            check(future, &sign(future)),
            Err(VerifyError::TimestampOutsideWindow { tolerance_seconds: 300 })
        );
        // A fresh timestamp does not rescue a signature made for another one.
        assert_eq!(check(fresh, &sign(old)), Err(VerifyError::BadSignature));
        // The body alone is not what is signed.
        assert_eq!(check(fresh, &hex(&hmac_bytes(b"key", body))), Err(VerifyError::BadSignature));
        assert_eq!(
            verification.verify(&headers(&[("x-webhook-signature", &sign(fresh))]), body, NOW),
            Err(VerifyError::MissingHeader {
                header: "x-webhook-timestamp".into()
            })
        );
    }

    #[test]
    fn standard_webhooks_signatures() {
        let key = b"standard-webhooks-test-key-32byt";
        let secret = format!("whsec_{}", STANDARD.encode(key));
        let verification = WebhookVerification::Hmac(HmacVerification::standard_webhooks(Secret::new(secret.clone())));
        assert_eq!(verification.delivery_id_header(), Some("webhook-id"));
        let body = br#"{"type":"ticket.updated"}"#;
        let timestamp = (NOW / 1000).to_string();
        let content = [b"msg_1.".as_slice(), timestamp.as_bytes(), b".", body].concat();
        let signature = STANDARD.encode(hmac_bytes(key, &content));
        let good = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &timestamp),
            ("webhook-signature", &format!("v1,Zm9vYmFy v1,{signature}")),
        ]);
        assert_eq!(verification.verify(&good, body, NOW), Ok(()));
        // The secret without the prefix works too.
        let bare = WebhookVerification::Hmac(HmacVerification::standard_webhooks(Secret::new(STANDARD.encode(key))));
        assert_eq!(bare.verify(&good, body, NOW), Ok(()));
        let other_id = headers(&[
            ("webhook-id", "msg_2"),
            ("webhook-timestamp", &timestamp),
            ("webhook-signature", &format!("v1,{signature}")),
        ]);
        assert_eq!(verification.verify(&other_id, body, NOW), Err(VerifyError::BadSignature));
        assert_eq!(
            verification.verify(&good, body, NOW + 301_000),
            Err(VerifyError::TimestampOutsideWindow { tolerance_seconds: 300 })
        );
        let no_v1 = headers(&[
            ("webhook-id", "msg_1"),
            ("webhook-timestamp", &timestamp),
            ("webhook-signature", &format!("v1a,{signature}")),
        ]);
        assert!(matches!(
            verification.verify(&no_v1, body, NOW),
            Err(VerifyError::MalformedHeader { .. })
        ));
        let missing = headers(&[("webhook-id", "msg_1"), ("webhook-signature", &format!("v1,{signature}"))]);
        assert_eq!(
            verification.verify(&missing, body, NOW),
            Err(VerifyError::MissingHeader {
                header: "webhook-timestamp".into()
            })
        );
    }

    #[test]
    fn basic_auth_right_and_wrong() {
        let verification = WebhookVerification::Basic {
            username: "pipedrive".into(),
            password: Secret::new("hunter2"),
        };
        let ok = headers(&[("authorization", &basic("pipedrive", "hunter2"))]);
        assert_eq!(verification.verify(&ok, b"{}", NOW), Ok(()));
        for (user, password) in [("pipedrive", "hunter3"), ("other", "hunter2"), ("pipedrive", "hunter2x"), ("", "")] {
            let wrong = headers(&[("authorization", &basic(user, password))]);
            assert_eq!(verification.verify(&wrong, b"{}", NOW), Err(VerifyError::BadCredentials), "{user}");
        }
        assert!(matches!(
            verification.verify(&headers(&[("authorization", "Bearer abc")]), b"{}", NOW),
            Err(VerifyError::MalformedHeader { .. })
        ));
        assert!(matches!(
            verification.verify(&headers(&[("authorization", "Basic !!!")]), b"{}", NOW),
            Err(VerifyError::MalformedHeader { .. })
        ));
        assert_eq!(
            verification.verify(&HeaderMap::new(), b"{}", NOW),
            Err(VerifyError::MissingHeader {
                header: "authorization".into()
            })
        );
    }

    #[test]
    fn header_token_right_and_wrong() {
        let verification = WebhookVerification::Header {
            header: "X-Halo-Secret".into(),
            value: Secret::new("s3cret"),
        };
        assert_eq!(verification.verify(&headers(&[("x-halo-secret", "s3cret")]), b"{}", NOW), Ok(()));
        assert_eq!(
            verification.verify(&headers(&[("x-halo-secret", "s3cret2")]), b"{}", NOW),
            Err(VerifyError::BadCredentials)
        );
        assert_eq!(
            verification.verify(&headers(&[("x-other", "s3cret")]), b"{}", NOW),
            Err(VerifyError::MissingHeader {
                header: "x-halo-secret".into()
            })
        );
    }

    #[test]
    fn errors_and_debug_never_show_secrets_or_signatures() {
        let verification = WebhookVerification::Basic {
            username: "u".into(),
            password: Secret::new("topsecret"),
        };
        assert!(!format!("{verification:?}").contains("topsecret"));
        let hmac = WebhookVerification::Hmac(HmacVerification::plain(Secret::new("topsecret")));
        let signature = hex(&hmac_bytes(b"wrong", b"{}"));
        let error = hmac
            .verify(&headers(&[("x-webhook-signature", &signature)]), b"{}", NOW)
            .unwrap_err();
        let text = format!("{error} {error:?}");
        assert!(!text.contains(&signature) && !text.contains("topsecret"), "{text}");
    }

    #[test]
    fn config_checks_name_the_sub_field() {
        let standard = WebhookVerification::Hmac(HmacVerification {
            header: Some("x-sig".into()),
            ..HmacVerification::standard_webhooks(Secret::new("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        });
        assert_eq!(standard.check().unwrap_err().0, "header");
        let bad_secret = WebhookVerification::Hmac(HmacVerification::standard_webhooks(Secret::new("whsec_***")));
        assert_eq!(bad_secret.check().unwrap_err().0, "secret");
        let bad_header = WebhookVerification::Header {
            header: "bad header".into(),
            value: Secret::new("x"),
        };
        assert_eq!(bad_header.check().unwrap_err().0, "header");
    }

    fn parse(connector: ConnectorKind, body: &Value) -> ParsedWebhook {
        parse_webhook(connector, "src", &serde_json::to_vec(body).unwrap(), None, NOW).unwrap()
    }

    #[test]
    fn pipedrive_v1_merge_emits_delete_and_upsert() {
        let body = json!({
            "meta": {"v": 1, "action": "merged", "object": "person", "id": 5, "timestamp": 1_700_000_000, "webhook_id": "9"},
            "current": {"id": 5, "merge_what_id": 7},
            "previous": {"id": 5},
            "retry": 0,
        });
        let parsed = parse(ConnectorKind::Pipedrive, &body);
        let events: Vec<(&str, &str, EventAction)> = parsed
            .events
            .iter()
            .map(|event| (event.entity.as_str(), event.id.as_str(), event.action))
            .collect();
        assert_eq!(events, [("person", "7", EventAction::Delete), ("person", "5", EventAction::Upsert)]);
        assert!(parsed.events.iter().all(|event| event.event_time == NOW && event.source == "src"));
        // A retry (only `retry` differs) has the same delivery id.
        let mut retried = body.clone();
        retried["retry"] = json!(1);
        assert_eq!(parse(ConnectorKind::Pipedrive, &retried).delivery_id, parsed.delivery_id);
    }

    #[test]
    fn unknown_entities_are_listed_not_events() {
        let body = json!({"meta": {"action": "create", "entity": "activity", "entity_id": "3", "id": "d1"}, "data": {"id": 3}});
        let parsed = parse(ConnectorKind::Pipedrive, &body);
        assert!(parsed.events.is_empty());
        assert_eq!(parsed.unknown_entities, ["activity"]);
        assert_eq!(
            parsed.delivery_id, "pipedrive-v2:activity:3:create::d1",
            "the event id is kept with what the event is"
        );
        let body = json!([{"eventType": "Task_Add", "payload": {"id": "1"}}, {"eventType": "Ticket_Delete", "payload": {"id": "2"}, "eventTime": "1700000000123"}]);
        let parsed = parse(ConnectorKind::ZohoDesk, &body);
        assert_eq!(parsed.unknown_entities, ["Task"]);
        assert_eq!(parsed.events.len(), 1);
        assert_eq!(parsed.events[0].action, EventAction::Delete);
        assert_eq!(parsed.events[0].event_time, 1_700_000_000_123);
    }

    #[test]
    fn delivery_id_falls_back_to_header_then_body_hash() {
        let body = br#"[{"eventType":"Ticket_Update","payload":{"id":"1"}}]"#;
        let with_header = parse_webhook(ConnectorKind::ZohoDesk, "z", body, Some("abc"), NOW).unwrap();
        assert_eq!(with_header.delivery_id, "abc");
        let hashed = parse_webhook(ConnectorKind::ZohoDesk, "z", body, None, NOW).unwrap();
        assert_eq!(hashed.delivery_id, body_digest(body));
        assert_eq!(hashed.delivery_id.len(), 64);
        assert_eq!(hashed.events[0].delivery_id, hashed.delivery_id);
    }

    #[test]
    fn zoho_events_dedupe_by_entity_id_type_and_time() {
        let event = |id: &str, time: &str| json!({"eventType": "Ticket_Update", "eventTime": time, "payload": {"id": id}});
        let keys = |body: Value| -> Vec<String> {
            parse(ConnectorKind::ZohoDesk, &body)
                .events
                .into_iter()
                .map(|event| event.delivery_id)
                .collect()
        };
        let alone = keys(json!([event("1", "1700000000123")]));
        // Redelivered in another batch: the same key, though the body (and its digest) differs.
        let batched = keys(json!([event("2", "1700000000999"), event("1", "1700000000123")]));
        assert_eq!(batched[1], alone[0]);
        assert_ne!(batched[0], alone[0]);
        // A later change of the same ticket is another event.
        assert_ne!(keys(json!([event("1", "1700000000124")]))[0], alone[0]);
        let add = json!([{"eventType": "Ticket_Add", "eventTime": "1700000000123", "payload": {"id": "1"}}]);
        assert_ne!(keys(add)[0], alone[0]);
    }

    #[test]
    fn malformed_bodies_are_parse_errors() {
        let cases: [(ConnectorKind, &[u8], &str); 6] = [
            (ConnectorKind::Pipedrive, b"not json", "not JSON"),
            (ConnectorKind::Pipedrive, b"{}", "`meta`"),
            (
                ConnectorKind::Pipedrive,
                br#"{"meta":{"action":"change","entity":"deal"}}"#,
                "meta.entity_id",
            ),
            (ConnectorKind::ZohoDesk, br#"[{"payload":{}}]"#, "[0].eventType"),
            (
                ConnectorKind::ZohoDesk,
                br#"[{"eventType":"Ticket_Add","payload":{}}]"#,
                "[0].payload.id",
            ),
            (ConnectorKind::Halopsa, br#"{"entity":"ticket","action":"update"}"#, "object_id"),
        ];
        for (connector, body, needle) in cases {
            let error = parse_webhook(connector, "s", body, None, NOW).unwrap_err().to_string();
            assert!(error.contains(needle), "{error}");
        }
    }

    #[test]
    fn halopsa_shapes() {
        let body = json!({"id": "6f1c", "event": "Ticket Deleted", "entity": "ticket", "entity_id": 42, "action": "delete", "timestamp": "2024-01-15T10:20:30.1230000Z", "ticket": null});
        let parsed = parse(ConnectorKind::Halopsa, &body);
        // The element's GUID with its timestamp: a reused GUID with a later change is new.
        assert_eq!(parsed.delivery_id, "6f1c@2024-01-15T10:20:30.1230000Z");
        assert_eq!(
            (
                parsed.events[0].entity.as_str(),
                parsed.events[0].id.as_str(),
                parsed.events[0].action
            ),
            ("ticket", "42", EventAction::Delete)
        );
        assert_eq!(parsed.events[0].event_time, parse_timestamp("2024-01-15T10:20:30.123Z").unwrap());
        // Without `entity` and `action`, the event label names them.
        let body = json!({"event": "Invoice Updated", "invoice": {"id": 9, "last_modified": "2024-01-15T10:20:30"}});
        let parsed = parse(ConnectorKind::Halopsa, &body);
        assert_eq!(
            (
                parsed.events[0].entity.as_str(),
                parsed.events[0].id.as_str(),
                parsed.events[0].action
            ),
            ("invoice", "9", EventAction::Upsert)
        );
        assert_eq!(parsed.events[0].event_time, parse_timestamp("2024-01-15T10:20:30").unwrap());
    }
}
