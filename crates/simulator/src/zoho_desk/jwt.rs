//! Zoho Desk webhook tokens, as Zoho signs them: an RS256 JWT in `X-ZDesk-JWT` whose header
//! names its key (`kid`), claims `iss = "orgId:<org id>"`, `aud = "webhookId:<webhook id>"`,
//! `iat` and `exp` (seconds). The simulator signs with fixed test keys (2048-bit RSA, PKCS#8
//! DER, generated once with openssl and committed under `keys/`), publishes the current and
//! the previous key at `/.well-known/jwks.json`, and rotates on request.

use std::sync::atomic::{AtomicUsize, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::rsa::PublicKeyComponents;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use serde_json::{json, Value};

/// The header carrying the token.
pub const JWT_HEADER: &str = "x-zdesk-jwt";
/// Lifetime of a token the simulator signs, in seconds.
pub const TOKEN_LIFETIME_SECS: i64 = 300;

/// The test keys: `(kid, PKCS#8 DER)`. Test-only keys; they protect nothing.
pub const KEYS: [(&str, &[u8]); 3] = [
    ("sim-zoho-desk-1", include_bytes!("../../keys/zoho-desk-1.pk8.der")),
    ("sim-zoho-desk-2", include_bytes!("../../keys/zoho-desk-2.pk8.der")),
    ("sim-zoho-desk-3", include_bytes!("../../keys/zoho-desk-3.pk8.der")),
];

fn key_pair(index: usize) -> Option<RsaKeyPair> {
    RsaKeyPair::from_pkcs8(KEYS.get(index)?.1).ok()
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `claims` as an RS256 JWT with test key `index` (its `kid` in the header). `None` for
/// an index past [`KEYS`].
pub fn sign_with(index: usize, claims: &Value) -> Option<String> {
    let (kid, _) = KEYS.get(index)?;
    let pair = key_pair(index)?;
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
    let signed = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), signed.as_bytes(), &mut signature)
        .ok()?;
    Some(format!("{signed}.{}", b64(&signature)))
}

/// The JWK of test key `index`.
pub fn jwk(index: usize) -> Option<Value> {
    let (kid, _) = KEYS.get(index)?;
    let pair = key_pair(index)?;
    let components = PublicKeyComponents::<Vec<u8>>::from(pair.public());
    Some(json!({
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": kid,
        "n": b64(&components.n),
        "e": b64(&components.e),
    }))
}

/// A JWKS document of the given test keys.
pub fn jwks_of(indices: &[usize]) -> Value {
    json!({"keys": indices.iter().filter_map(|index| jwk(*index)).collect::<Vec<_>>()})
}

/// Zoho's claims for a delivery at `now_secs`.
pub fn claims(org_id: &str, webhook_id: &str, now_secs: i64) -> Value {
    json!({
        "iss": format!("orgId:{org_id}"),
        "aud": format!("webhookId:{webhook_id}"),
        "iat": now_secs,
        "exp": now_secs + TOKEN_LIFETIME_SECS,
    })
}

/// The simulator's signing key, rotatable while it runs.
#[derive(Debug, Default)]
pub struct ZohoSigner {
    rotations: AtomicUsize,
}

impl ZohoSigner {
    /// Index of the key signing now.
    pub fn current(&self) -> usize {
        self.rotations.load(Ordering::SeqCst) % KEYS.len()
    }

    /// The `kid` signing now.
    pub fn current_kid(&self) -> &'static str {
        KEYS[self.current()].0
    }

    /// Moves signing to the next key (cycling); the JWKS then publishes it and the one before.
    /// Returns the new `kid`.
    pub fn rotate(&self) -> &'static str {
        self.rotations.fetch_add(1, Ordering::SeqCst);
        self.current_kid()
    }

    /// The published key set: the current key and, after a rotation, the previous one.
    pub fn jwks(&self) -> Value {
        let rotations = self.rotations.load(Ordering::SeqCst);
        let mut indices = vec![rotations % KEYS.len()];
        if rotations > 0 {
            indices.push((rotations - 1) % KEYS.len());
        }
        jwks_of(&indices)
    }

    /// A token for one delivery, signed with the current key, at the wall-clock time (the
    /// receiver checks `exp` against its own clock, not the simulator's virtual one).
    pub fn token(&self, org_id: &str, webhook_id: &str) -> String {
        let now_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|elapsed| elapsed.as_secs() as i64)
            .unwrap_or_default();
        sign_with(self.current(), &claims(org_id, webhook_id, now_secs)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_test_key_loads_and_signs() {
        for (index, (kid, _)) in KEYS.iter().enumerate() {
            let token = sign_with(index, &claims("1", "2", 1_700_000_000)).expect("the key loads");
            assert_eq!(token.split('.').count(), 3);
            assert_eq!(jwk(index).unwrap()["kid"], *kid);
        }
        assert!(sign_with(KEYS.len(), &json!({})).is_none());
    }

    #[test]
    fn rotation_publishes_the_new_and_the_previous_key() {
        let signer = ZohoSigner::default();
        let kids = |jwks: Value| -> Vec<String> {
            jwks["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|key| key["kid"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(kids(signer.jwks()), [KEYS[0].0]);
        assert_eq!(signer.rotate(), KEYS[1].0);
        assert_eq!(kids(signer.jwks()), [KEYS[1].0, KEYS[0].0]);
    }
}
