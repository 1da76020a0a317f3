//! Zoho Desk webhook tokens: every delivery carries `X-ZDesk-JWT`, an RS256 JWT whose header
//! names its key (`kid`) among the keys Zoho publishes at `https://<desk host>/.well-known/jwks.json`.
//!
//! Everything here is pure: [`verify_token`] checks a token against given keys at a given time.
//! The token signs its header and claims, not the body, so the check needs only the headers.
//! Fetching and caching the key set is the async edge in [`super::jwks`].

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::signature::{RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256};
use serde::Deserialize;
use serde_json::Value;
use syncline_core::Millis;

/// The header carrying the token (lowercase, as `http` stores names).
pub const JWT_HEADER: &str = "x-zdesk-jwt";
/// Clock skew allowed either side of `iat` and `exp`, in seconds.
pub const CLOCK_SKEW_SECONDS: i64 = 60;
/// Where Zoho publishes its keys, relative to the desk host.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// `verify = { type = "zoho_jwt", webhook_id = "...", jwks_url = "..." }`: check Zoho Desk's
/// `X-ZDesk-JWT` (RS256) against Zoho's published keys. The issuer must be
/// `orgId:<the source's org_id>`, the audience `webhookId:<webhook_id>`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZohoJwtVerification {
    /// The id Zoho Desk gave the webhook (shown in Setup > Developer Space > Webhooks and in the
    /// webhook API's `id`); the token's `aud` must be `webhookId:<webhook_id>`.
    pub webhook_id: String,
    /// Where the public keys are fetched (default: `https://<host of base_url>/.well-known/jwks.json`,
    /// e.g. `https://desk.zoho.eu/.well-known/jwks.json` for base_url `https://desk.zoho.eu/api/v1`).
    #[serde(default)]
    pub jwks_url: Option<String>,
}

impl ZohoJwtVerification {
    /// The key-set URL: the configured one, else the default for the source's `base_url`.
    pub fn jwks_url_for(&self, base_url: &str) -> Option<String> {
        self.jwks_url.clone().or_else(|| default_jwks_url(base_url))
    }

    /// Config checks; returns the offending sub-field and what to write instead.
    pub(crate) fn check(&self) -> Result<(), (&'static str, String)> {
        let id = self.webhook_id.trim();
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err((
                "webhook_id",
                "is empty or holds spaces; write the id Zoho Desk shows for the webhook (Setup > Developer Space > Webhooks)".into(),
            ));
        }
        if let Some(url) = &self.jwks_url {
            if default_jwks_url(url).is_none() {
                return Err((
                    "jwks_url",
                    format!("`{url}` is not an http(s) URL; write e.g. https://desk.zoho.com/.well-known/jwks.json or remove it"),
                ));
            }
        }
        Ok(())
    }
}

/// `scheme://host[:port]/.well-known/jwks.json` of an http(s) URL, or `None` when it is not one.
pub fn default_jwks_url(base_url: &str) -> Option<String> {
    let (scheme, rest) = base_url.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")) {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    Some(format!("{}://{authority}{JWKS_PATH}", scheme.to_ascii_lowercase()))
}

/// Why a token is refused. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts, or the header/claims are not JSON objects.
    #[error("the zoho desk token is malformed; check that the request comes from zoho desk")]
    Malformed,
    /// The header's `alg` is not RS256.
    #[error("the zoho desk token is not signed with rs256; check that the request comes from zoho desk")]
    WrongAlgorithm,
    /// No key of the key set has the header's `kid`.
    #[error("the zoho desk token names a key that is not in the key set; check jwks_url (the desk host of the source's data centre)")]
    UnknownKey,
    /// The key set could not be fetched or read.
    #[error("the zoho desk key set could not be fetched; check jwks_url and that the server reaches it")]
    KeysUnavailable,
    /// The signature does not match.
    #[error("the zoho desk token signature does not match its key")]
    BadSignature,
    /// `iss` is not `orgId:<org id>`.
    #[error("the zoho desk token was issued for another organisation; check the source's org_id")]
    WrongIssuer,
    /// `aud` is not `webhookId:<webhook id>`.
    #[error("the zoho desk token is for another webhook; check webhook.verify.webhook_id against the webhook's id at zoho desk")]
    WrongAudience,
    /// `exp` is missing or not a number.
    #[error("the zoho desk token has no usable `{0}` claim")]
    MissingClaim(&'static str),
    /// `exp` (plus the skew allowance) is past.
    #[error("the zoho desk token has expired (a replay, or a skewed server clock); check the server clock")]
    Expired,
    /// `iat` is in the future beyond the skew allowance.
    #[error("the zoho desk token is issued in the future; check the server clock")]
    NotYetValid,
}

/// One RSA public key of the key set.
#[derive(Clone, PartialEq, Eq)]
pub struct RsaKey {
    n: Vec<u8>,
    e: Vec<u8>,
}

impl std::fmt::Debug for RsaKey {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "RsaKey({} bits)", self.n.len() * 8)
    }
}

/// A key set (JWKS), by `kid`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    keys: HashMap<String, RsaKey>,
}

impl Jwks {
    /// Reads a JWKS document; keys other than RSA signing keys are skipped.
    pub fn parse(document: &[u8]) -> Result<Self, JwtError> {
        let value: Value = serde_json::from_slice(document).map_err(|_| JwtError::KeysUnavailable)?;
        let entries = value.get("keys").and_then(Value::as_array).ok_or(JwtError::KeysUnavailable)?;
        let mut keys = HashMap::new();
        for entry in entries {
            let text = |name: &str| entry.get(name).and_then(Value::as_str);
            if text("kty") != Some("RSA") || text("use").is_some_and(|usage| usage != "sig") {
                continue;
            }
            if text("alg").is_some_and(|alg| alg != "RS256") {
                continue;
            }
            let (Some(kid), Some(n), Some(e)) = (text("kid"), text("n"), text("e")) else {
                continue;
            };
            let (Ok(n), Ok(e)) = (decode(n), decode(e)) else {
                continue;
            };
            keys.insert(kid.to_string(), RsaKey { n, e });
        }
        Ok(Self { keys })
    }

    /// Whether a key has this id.
    pub fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    /// How many keys the set holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when the set holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

fn decode(part: &str) -> Result<Vec<u8>, JwtError> {
    // Some encoders pad; the JWS form has none.
    URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| JwtError::Malformed)
}

fn json_part(part: &str) -> Result<serde_json::Map<String, Value>, JwtError> {
    match serde_json::from_slice(&decode(part)?) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::Malformed),
    }
}

fn split(token: &str) -> Result<(&str, &str, &str), JwtError> {
    let mut parts = token.trim().split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(claims), Some(signature), None) if !header.is_empty() && !claims.is_empty() => Ok((header, claims, signature)),
        _ => Err(JwtError::Malformed),
    }
}

/// The `kid` of a token's header (RS256 only), read without checking anything else.
pub fn token_kid(token: &str) -> Result<String, JwtError> {
    let (header, _, _) = split(token)?;
    let header = json_part(header)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(JwtError::WrongAlgorithm);
    }
    header
        .get("kid")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or(JwtError::UnknownKey)
}

/// Epoch seconds or milliseconds (by magnitude) as milliseconds.
fn claim_millis(value: &Value) -> Option<Millis> {
    let number = value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
        .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()))?;
    Some(if number.unsigned_abs() >= 100_000_000_000 {
        number
    } else {
        number.saturating_mul(1000)
    })
}

/// Checks a Zoho Desk token: RS256 signature by the key its `kid` names in `keys`,
/// `iss == "orgId:<org_id>"`, `aud == "webhookId:<webhook_id>"` (a string, or a list holding
/// it), `exp` not past and `iat` (when present) not in the future, both with
/// [`CLOCK_SKEW_SECONDS`] of allowance and read as seconds or milliseconds by magnitude.
pub fn verify_token(token: &str, keys: &Jwks, org_id: &str, webhook_id: &str, now: Millis) -> Result<(), JwtError> {
    let kid = token_kid(token)?;
    let key = keys.keys.get(&kid).ok_or(JwtError::UnknownKey)?;
    let (header, claims, signature) = split(token)?;
    let signature = decode(signature)?;
    let signed = &token.trim().as_bytes()[..header.len() + 1 + claims.len()];
    RsaPublicKeyComponents { n: &key.n, e: &key.e }
        .verify(&RSA_PKCS1_2048_8192_SHA256, signed, &signature)
        .map_err(|_| JwtError::BadSignature)?;
    let claims = json_part(claims)?;
    if claims.get("iss").and_then(Value::as_str) != Some(format!("orgId:{org_id}").as_str()) {
        return Err(JwtError::WrongIssuer);
    }
    let audience = format!("webhookId:{webhook_id}");
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == audience,
        Some(Value::Array(list)) => list.iter().any(|aud| aud.as_str() == Some(audience.as_str())),
        _ => false,
    };
    if !audience_ok {
        return Err(JwtError::WrongAudience);
    }
    let skew = CLOCK_SKEW_SECONDS * 1000;
    let exp = claims.get("exp").and_then(claim_millis).ok_or(JwtError::MissingClaim("exp"))?;
    if now > exp.saturating_add(skew) {
        return Err(JwtError::Expired);
    }
    if let Some(iat) = claims.get("iat") {
        let iat = claim_millis(iat).ok_or(JwtError::MissingClaim("iat"))?;
        if iat > now.saturating_add(skew) {
            return Err(JwtError::NotYetValid);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_jwks_url_is_the_desk_host() {
        assert_eq!(
            default_jwks_url("https://desk.zoho.eu/api/v1").as_deref(),
            Some("https://desk.zoho.eu/.well-known/jwks.json")
        );
        assert_eq!(
            default_jwks_url("http://127.0.0.1:8080/api/v1?x=1").as_deref(),
            Some("http://127.0.0.1:8080/.well-known/jwks.json")
        );
        assert_eq!(default_jwks_url("ftp://desk.zoho.com/"), None);
        assert_eq!(default_jwks_url("https:///api"), None);
    }

    #[test]
    fn claim_times_are_seconds_or_milliseconds() {
        assert_eq!(claim_millis(&serde_json::json!(1_700_000_000)), Some(1_700_000_000_000));
        assert_eq!(claim_millis(&serde_json::json!(1_700_000_000_123_i64)), Some(1_700_000_000_123));
        assert_eq!(claim_millis(&serde_json::json!("1700000000")), Some(1_700_000_000_000));
        assert_eq!(claim_millis(&serde_json::json!(null)), None);
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_key_lookup() {
        let keys = Jwks::default();
        for token in ["", "a.b", "a.b.c.d", "!!.e30.x"] {
            assert_eq!(verify_token(token, &keys, "1", "2", 0), Err(JwtError::Malformed), "{token}");
        }
        let hs256 = format!("{}.e30.", URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","kid":"k"}"#));
        assert_eq!(verify_token(&hs256, &keys, "1", "2", 0), Err(JwtError::WrongAlgorithm));
        let none = format!("{}.e30.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k"}"#));
        assert_eq!(verify_token(&none, &keys, "1", "2", 0), Err(JwtError::WrongAlgorithm));
    }
}
