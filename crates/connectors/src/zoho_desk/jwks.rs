//! The async edge of the Zoho Desk token check: fetches Zoho's key set (JWKS), keeps it by
//! `kid`, and refetches it when a token names a key it does not hold, at most once per
//! [`DEFAULT_MIN_REFETCH`]. The check itself is [`super::jwt::verify_token`].

use std::time::{Duration, Instant};

use ::http::HeaderMap;
use syncline_core::Millis;
use tokio::sync::Mutex;

use super::jwt::{token_kid, verify_token, Jwks, JwtError, JWT_HEADER};
use crate::webhook::VerifyError;

/// Shortest time between two refetches caused by an unknown `kid`.
pub const DEFAULT_MIN_REFETCH: Duration = Duration::from_secs(60);
/// How long one fetch of the key set may take (Zoho wants an answer within 5 s).
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
struct CacheState {
    keys: Jwks,
    fetched: bool,
    last_refetch: Option<Instant>,
    fetches: u64,
}

/// One source's key set, fetched on first use.
#[derive(Debug)]
pub struct JwksCache {
    url: String,
    client: reqwest::Client,
    min_refetch: Duration,
    state: Mutex<CacheState>,
}

impl JwksCache {
    /// A cache of the key set at `url`, refetched on an unknown `kid` at most once a minute.
    pub fn new(url: impl Into<String>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            url: url.into(),
            client,
            min_refetch: DEFAULT_MIN_REFETCH,
            state: Mutex::new(CacheState::default()),
        }
    }

    /// The same with another shortest time between refetches.
    pub fn with_min_refetch(mut self, min_refetch: Duration) -> Self {
        self.min_refetch = min_refetch;
        self
    }

    /// The key-set URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How many times the key set was fetched (successfully or not).
    pub async fn fetches(&self) -> u64 {
        self.state.lock().await.fetches
    }

    async fn fetch(&self) -> Result<Jwks, JwtError> {
        let response = self.client.get(&self.url).send().await.map_err(|error| {
            tracing::warn!(url = %self.url, %error, "cannot fetch the zoho desk key set");
            JwtError::KeysUnavailable
        })?;
        if !response.status().is_success() {
            tracing::warn!(url = %self.url, status = response.status().as_u16(), "the zoho desk key set answered an error");
            return Err(JwtError::KeysUnavailable);
        }
        let body = response.bytes().await.map_err(|_| JwtError::KeysUnavailable)?;
        Jwks::parse(&body)
    }

    /// Checks the `X-ZDesk-JWT` header of a delivery at `now`: the first use fetches the key
    /// set; a token naming a key the set lacks refetches it (rotation) unless the last such
    /// refetch is under the minimum interval old.
    pub async fn verify(&self, headers: &HeaderMap, org_id: &str, webhook_id: &str, now: Millis) -> Result<(), VerifyError> {
        let token = headers
            .get(JWT_HEADER)
            .ok_or_else(|| VerifyError::MissingHeader {
                header: JWT_HEADER.to_string(),
            })?
            .to_str()
            .map_err(|_| VerifyError::MalformedHeader {
                header: JWT_HEADER.to_string(),
            })?;
        let kid = token_kid(token).map_err(VerifyError::Jwt)?;
        let mut state = self.state.lock().await;
        if !state.keys.contains(&kid) {
            let allowed = match (state.fetched, state.last_refetch) {
                (false, _) => true,
                (true, None) => true,
                (true, Some(last)) => last.elapsed() >= self.min_refetch,
            };
            if allowed {
                if state.fetched {
                    state.last_refetch = Some(Instant::now());
                }
                state.fetched = true;
                state.fetches += 1;
                match self.fetch().await {
                    Ok(keys) => state.keys = keys,
                    Err(error) if state.keys.is_empty() => return Err(VerifyError::Jwt(error)),
                    Err(_) => {}
                }
            }
        }
        verify_token(token, &state.keys, org_id, webhook_id, now).map_err(VerifyError::Jwt)
    }
}
