//! Zoho Desk's webhook tokens: the pure check against keys and a time, and the key-set cache
//! against the simulator's published (and rotating) keys.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use serde_json::json;
use syncline_connectors::webhook::VerifyError;
use syncline_connectors::zoho_desk::jwks::JwksCache;
use syncline_connectors::zoho_desk::jwt::{default_jwks_url, verify_token, Jwks, JwtError};
use syncline_simulator::zoho_desk::jwt::{jwks_of, sign_with};
use syncline_simulator::{Connector, Simulator, SimulatorConfig};

const NOW_SECS: i64 = 1_700_000_000;
const NOW: i64 = NOW_SECS * 1000;
const ORG: &str = "298902";
const HOOK: &str = "1892000000612001";

fn token(key: usize, iss: &str, aud: serde_json::Value, iat: i64, exp: i64) -> String {
    sign_with(key, &json!({"iss": iss, "aud": aud, "iat": iat, "exp": exp})).unwrap()
}

fn good(key: usize) -> String {
    token(
        key,
        "orgId:298902",
        json!("webhookId:1892000000612001"),
        NOW_SECS - 5,
        NOW_SECS + 300,
    )
}

fn keys(indices: &[usize]) -> Jwks {
    Jwks::parse(jwks_of(indices).to_string().as_bytes()).unwrap()
}

#[test]
fn a_valid_token_is_accepted_in_seconds_or_milliseconds() {
    let keys = keys(&[0, 1]);
    assert_eq!(keys.len(), 2);
    assert_eq!(verify_token(&good(0), &keys, ORG, HOOK, NOW), Ok(()));
    assert_eq!(verify_token(&good(1), &keys, ORG, HOOK, NOW), Ok(()));
    let millis = token(0, "orgId:298902", json!("webhookId:1892000000612001"), NOW - 5_000, NOW + 300_000);
    assert_eq!(verify_token(&millis, &keys, ORG, HOOK, NOW), Ok(()));
    // An audience list holding the webhook is accepted too.
    let listed = token(
        0,
        "orgId:298902",
        json!(["other", "webhookId:1892000000612001"]),
        NOW_SECS,
        NOW_SECS + 60,
    );
    assert_eq!(verify_token(&listed, &keys, ORG, HOOK, NOW), Ok(()));
}

#[test]
fn expired_tokens_are_refused_past_the_skew_allowance() {
    let keys = keys(&[0]);
    let expired = |exp: i64| token(0, "orgId:298902", json!("webhookId:1892000000612001"), exp - 300, exp);
    // 30 s past exp is within the 60 s allowance; 61 s is not.
    assert_eq!(verify_token(&expired(NOW_SECS - 30), &keys, ORG, HOOK, NOW), Ok(()));
    assert_eq!(verify_token(&expired(NOW_SECS - 61), &keys, ORG, HOOK, NOW), Err(JwtError::Expired));
    let expired_ms = token(0, "orgId:298902", json!("webhookId:1892000000612001"), NOW - 900_000, NOW - 600_000);
    assert_eq!(verify_token(&expired_ms, &keys, ORG, HOOK, NOW), Err(JwtError::Expired));
    let future = token(
        0,
        "orgId:298902",
        json!("webhookId:1892000000612001"),
        NOW_SECS + 120,
        NOW_SECS + 400,
    );
    assert_eq!(verify_token(&future, &keys, ORG, HOOK, NOW), Err(JwtError::NotYetValid));
    let no_exp = sign_with(0, &json!({"iss": "orgId:298902", "aud": "webhookId:1892000000612001"})).unwrap();
    assert_eq!(verify_token(&no_exp, &keys, ORG, HOOK, NOW), Err(JwtError::MissingClaim("exp")));
}

#[test]
fn wrong_audience_issuer_key_or_signature_is_refused() {
    let keys = keys(&[0]);
    let wrong_aud = token(0, "orgId:298902", json!("webhookId:1"), NOW_SECS, NOW_SECS + 60);
    assert_eq!(verify_token(&wrong_aud, &keys, ORG, HOOK, NOW), Err(JwtError::WrongAudience));
    let wrong_iss = token(0, "orgId:1", json!("webhookId:1892000000612001"), NOW_SECS, NOW_SECS + 60);
    assert_eq!(verify_token(&wrong_iss, &keys, ORG, HOOK, NOW), Err(JwtError::WrongIssuer));
    // The bare org id (without `orgId:`) is not the issuer.
    let bare = token(0, ORG, json!("webhookId:1892000000612001"), NOW_SECS, NOW_SECS + 60);
    assert_eq!(verify_token(&bare, &keys, ORG, HOOK, NOW), Err(JwtError::WrongIssuer));
    assert_eq!(verify_token(&good(1), &keys, ORG, HOOK, NOW), Err(JwtError::UnknownKey));
    // Claims changed after signing.
    let signed = good(0);
    let parts: Vec<&str> = signed.split('.').collect();
    let tampered_claims = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        json!({"iss": "orgId:298902", "aud": "webhookId:1892000000612001", "exp": NOW_SECS + 99_999}).to_string(),
    );
    let tampered = format!("{}.{tampered_claims}.{}", parts[0], parts[2]);
    assert_eq!(verify_token(&tampered, &keys, ORG, HOOK, NOW), Err(JwtError::BadSignature));
    // Errors never show the token.
    let text = format!("{:?} {}", JwtError::BadSignature, JwtError::BadSignature);
    assert!(!text.contains(parts[2]));
}

fn headers(token: &str) -> HeaderMap {
    let mut map = HeaderMap::new();
    map.insert("x-zdesk-jwt", HeaderValue::from_str(token).unwrap());
    map
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn live(key: usize) -> String {
    let now = now_ms() / 1000;
    token(key, "orgId:298902", json!("webhookId:1892000000612001"), now, now + 300)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_cache_refetches_on_an_unknown_kid_at_most_once_a_minute() {
    let simulator = Simulator::start(SimulatorConfig::for_connector(Connector::ZohoDesk)).await.unwrap();
    let url = default_jwks_url(&simulator.credentials().api_base_url).unwrap();
    assert!(url.ends_with("/.well-known/jwks.json"), "{url}");
    let cache = JwksCache::new(url.clone());
    assert_eq!(cache.verify(&headers(&live(0)), ORG, HOOK, now_ms()).await, Ok(()));
    assert_eq!(cache.fetches().await, 1);
    // Known kid: no fetch.
    assert_eq!(cache.verify(&headers(&live(0)), ORG, HOOK, now_ms()).await, Ok(()));
    assert_eq!(cache.fetches().await, 1);
    // The simulator rotates: the new kid is unknown to the cache, which refetches once.
    simulator.rotate_zoho_key();
    assert_eq!(cache.verify(&headers(&live(1)), ORG, HOOK, now_ms()).await, Ok(()));
    assert_eq!(cache.fetches().await, 2);
    // Another unknown kid within the minute: refused without a fetch.
    simulator.rotate_zoho_key();
    assert_eq!(
        cache.verify(&headers(&live(2)), ORG, HOOK, now_ms()).await,
        Err(VerifyError::Jwt(JwtError::UnknownKey))
    );
    assert_eq!(cache.fetches().await, 2);
    // With no minimum interval the same token is accepted after a refetch.
    let eager = JwksCache::new(url).with_min_refetch(Duration::ZERO);
    assert_eq!(eager.verify(&headers(&live(2)), ORG, HOOK, now_ms()).await, Ok(()));
    assert_eq!(
        cache.verify(&HeaderMap::new(), ORG, HOOK, now_ms()).await,
        Err(VerifyError::MissingHeader {
            header: "x-zdesk-jwt".into()
        })
    );
    simulator.shutdown().await;
}
