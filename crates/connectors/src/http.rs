//! The HTTP engine: authentication (API token, OAuth2 refresh with durable rotation, client
//! credentials), retries (429 honouring `Retry-After`; 5xx and timeouts with exponential backoff
//! and jitter), a per-source request budget, and call and cost accounting.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use syncline_state::StateStore;
use tokio::sync::Mutex;

use crate::config::{AuthConfig, RetryConfig, Secret, SourceConfig};
use crate::spec::ConnectorKind;
use crate::ConnectorError;

/// [`HttpEngine::remaining_credits`] before the vendor reported anything.
const NO_REPORT: u64 = u64::MAX;

/// The state-store token name of a rotated refresh token.
pub const REFRESH_TOKEN_NAME: &str = "oauth_refresh_token";

/// Calls and cost of one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// HTTP requests sent (retries and token requests included).
    pub calls: u64,
    /// Vendor cost of the successful requests.
    pub cost: u64,
    /// Requests answered 429 (rate limited).
    pub rate_limited: u64,
    /// Access tokens fetched (OAuth2 refreshes and client-credentials grants).
    pub token_refreshes: u64,
}

impl std::ops::Sub for CallStats {
    type Output = CallStats;

    /// The calls made between two readings of [`HttpEngine::stats`].
    fn sub(self, earlier: CallStats) -> CallStats {
        CallStats {
            calls: self.calls.saturating_sub(earlier.calls),
            cost: self.cost.saturating_sub(earlier.cost),
            rate_limited: self.rate_limited.saturating_sub(earlier.rate_limited),
            token_refreshes: self.token_refreshes.saturating_sub(earlier.token_refreshes),
        }
    }
}

struct OAuthState {
    access_token: Option<String>,
    /// Increases on every new access token, so a request that failed with an old token does not
    /// trigger a second refresh after another task already refreshed.
    generation: u64,
}

enum Auth {
    ApiToken(Secret),
    Refresh {
        token_url: String,
        client_id: String,
        client_secret: Secret,
        configured_refresh_token: Secret,
    },
    ClientCredentials {
        token_url: String,
        client_id: String,
        client_secret: Secret,
        scope: String,
    },
}

/// One source's HTTP client.
pub struct HttpEngine {
    client: reqwest::Client,
    connector: ConnectorKind,
    source: String,
    base_url: String,
    org_id: Option<String>,
    auth: Auth,
    oauth: Mutex<OAuthState>,
    retry: RetryConfig,
    budget: u64,
    /// `calls` when the current run started: the budget applies per run.
    budget_base: AtomicU64,
    calls: AtomicU64,
    cost: AtomicU64,
    rate_limited: AtomicU64,
    token_refreshes: AtomicU64,
    /// The vendor's last word on its daily pool ([`NO_REPORT`] until it said something).
    remaining_credits: AtomicU64,
    /// The source's `credit_reserve`.
    credit_reserve: Option<u64>,
    state: Arc<dyn StateStore>,
    jitter: std::sync::Mutex<StdRng>,
}

impl std::fmt::Debug for HttpEngine {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("HttpEngine")
            .field("source", &self.source)
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl HttpEngine {
    /// An engine for one configured source.
    pub fn new(source: &str, config: &SourceConfig, state: Arc<dyn StateStore>) -> Result<Self, ConnectorError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.retry.timeout_ms))
            .redirect(same_origin_redirects())
            .build()
            .map_err(|error| ConnectorError::Http(format!("cannot build the http client: {error}")))?;
        let auth = match &config.auth {
            AuthConfig::ApiToken { token } => Auth::ApiToken(token.clone()),
            AuthConfig::Oauth2Refresh {
                token_url,
                client_id,
                client_secret,
                refresh_token,
            } => Auth::Refresh {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                configured_refresh_token: refresh_token.clone(),
            },
            AuthConfig::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => Auth::ClientCredentials {
                token_url: token_url.clone(),
                client_id: client_id.clone(),
                client_secret: client_secret.clone(),
                scope: scope.clone().unwrap_or_else(|| "all".to_string()),
            },
        };
        Ok(Self {
            client,
            connector: config.connector,
            source: source.to_string(),
            base_url: config.base_url.trim_end_matches('/').to_string(),
            org_id: config.org_id.clone(),
            auth,
            oauth: Mutex::new(OAuthState {
                access_token: None,
                generation: 0,
            }),
            retry: config.retry.clone(),
            budget: config.request_budget,
            budget_base: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            cost: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            token_refreshes: AtomicU64::new(0),
            remaining_credits: AtomicU64::new(NO_REPORT),
            credit_reserve: config.credit_reserve,
            state,
            jitter: std::sync::Mutex::new(StdRng::seed_from_u64(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|duration| duration.as_nanos() as u64)
                    .unwrap_or(7),
            )),
        })
    }

    /// Calls and cost so far.
    pub fn stats(&self) -> CallStats {
        CallStats {
            calls: self.calls.load(Ordering::Relaxed),
            cost: self.cost.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            token_refreshes: self.token_refreshes.load(Ordering::Relaxed),
        }
    }

    /// Starts a new run: the request budget counts from here. A long-lived engine (the webhook
    /// worker's, shared with the scheduled reconciles) calls this once per run.
    pub fn start_run(&self) {
        self.budget_base.store(self.calls.load(Ordering::Relaxed), Ordering::Relaxed);
    }

    /// Calls left in the current run's budget.
    pub fn budget_remaining(&self) -> u64 {
        let used = self
            .calls
            .load(Ordering::Relaxed)
            .saturating_sub(self.budget_base.load(Ordering::Relaxed));
        self.budget.saturating_sub(used)
    }

    /// The request budget of one run.
    pub fn budget(&self) -> u64 {
        self.budget
    }

    /// What the vendor last reported left of its daily API pool (Zoho Desk credits, from
    /// `X-Rate-Limit-Remaining-v3` on every response); `None` before any report, or for a
    /// vendor that sends none.
    pub fn remaining_credits(&self) -> Option<u64> {
        match self.remaining_credits.load(Ordering::Relaxed) {
            NO_REPORT => None,
            remaining => Some(remaining),
        }
    }

    /// Refuses a request while the vendor's last report of its pool is under the source's
    /// `credit_reserve`: the credits left belong to the customer's other integrations.
    pub fn check_credit_reserve(&self) -> Result<(), ConnectorError> {
        match (self.credit_reserve, self.remaining_credits()) {
            (Some(reserve), Some(remaining)) if remaining < reserve => Err(ConnectorError::CreditReserve {
                source_name: self.source.clone(),
                remaining,
                reserve,
            }),
            _ => Ok(()),
        }
    }

    /// Reads the vendor's remaining-pool header of a response, when the connector has one.
    fn note_remaining_credits(&self, headers: &reqwest::header::HeaderMap) {
        let Some(name) = self.connector.profile().remaining_credits_header else {
            return;
        };
        let reported = headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.trim().parse::<u64>().ok());
        if let Some(remaining) = reported {
            self.remaining_credits.store(remaining.min(NO_REPORT - 1), Ordering::Relaxed);
        }
    }

    fn take_budget(&self) -> Result<(), ConnectorError> {
        let used = self.calls.fetch_add(1, Ordering::Relaxed);
        if used.saturating_sub(self.budget_base.load(Ordering::Relaxed)) >= self.budget {
            self.calls.fetch_sub(1, Ordering::Relaxed);
            return Err(ConnectorError::BudgetExhausted {
                source_name: self.source.clone(),
                budget: self.budget,
            });
        }
        Ok(())
    }

    /// The current access token (fetching one if needed) and its generation.
    async fn access_token(&self) -> Result<(Option<String>, u64), ConnectorError> {
        if matches!(self.auth, Auth::ApiToken(_)) {
            return Ok((None, 0));
        }
        let mut oauth = self.oauth.lock().await;
        if oauth.access_token.is_none() {
            self.refresh_locked(&mut oauth).await?;
        }
        Ok((oauth.access_token.clone(), oauth.generation))
    }

    /// After a 401 with the token of `generation`: refresh, unless another task already did.
    async fn refresh_after(&self, generation: u64) -> Result<(), ConnectorError> {
        let mut oauth = self.oauth.lock().await;
        if oauth.generation != generation && oauth.access_token.is_some() {
            return Ok(());
        }
        self.refresh_locked(&mut oauth).await
    }

    async fn refresh_locked(&self, oauth: &mut OAuthState) -> Result<(), ConnectorError> {
        let (token_url, mut form) = match &self.auth {
            Auth::ApiToken(_) => return Ok(()),
            Auth::Refresh {
                token_url,
                client_id,
                client_secret,
                configured_refresh_token,
            } => {
                let stored = self.state.token(&self.source, REFRESH_TOKEN_NAME).await?;
                let refresh_token = stored.unwrap_or_else(|| configured_refresh_token.expose().to_string());
                (
                    token_url.clone(),
                    vec![
                        ("grant_type", "refresh_token".to_string()),
                        ("refresh_token", refresh_token),
                        ("client_id", client_id.clone()),
                        ("client_secret", client_secret.expose().to_string()),
                    ],
                )
            }
            Auth::ClientCredentials {
                token_url,
                client_id,
                client_secret,
                scope,
            } => (
                token_url.clone(),
                vec![
                    ("grant_type", "client_credentials".to_string()),
                    ("client_id", client_id.clone()),
                    ("client_secret", client_secret.expose().to_string()),
                    ("scope", scope.clone()),
                ],
            ),
        };
        let mut attempt = 0;
        let body: Value = loop {
            attempt += 1;
            self.take_budget()?;
            let sent = self.client.post(&token_url).form(&form).send().await;
            match sent {
                Ok(response) if response.status().is_server_error() || response.status().as_u16() == 429 => {
                    if attempt >= self.retry.max_attempts {
                        return Err(ConnectorError::Auth(format!(
                            "token endpoint answered {} {attempt} times; try again later",
                            response.status().as_u16()
                        )));
                    }
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                Ok(response) => {
                    let status = response.status();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    if !status.is_success() || body.get("error").is_some() || body.get("access_token").is_none() {
                        let code = body.get("error").and_then(Value::as_str).unwrap_or("no access_token in the answer");
                        return Err(ConnectorError::Auth(format!(
                            "token endpoint refused the {} grant ({}: {code}); check client_id, client_secret and the refresh token, or authorize again",
                            form[0].1,
                            status.as_u16()
                        )));
                    }
                    break body;
                }
                Err(error) => {
                    if attempt >= self.retry.max_attempts {
                        return Err(ConnectorError::Http(format!(
                            "token endpoint unreachable: {}",
                            redact(&error.to_string())
                        )));
                    }
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
            }
        };
        form.clear();
        if let (Auth::Refresh { .. }, Some(new_refresh)) = (&self.auth, body.get("refresh_token").and_then(Value::as_str)) {
            // Durable before the new access token is used: a crash now must not lose the only
            // refresh token the server still accepts.
            self.state
                .set_token(&self.source, REFRESH_TOKEN_NAME, new_refresh, crate::reconcile::wall_clock_ms())
                .await?;
        }
        oauth.access_token = body.get("access_token").and_then(Value::as_str).map(str::to_string);
        oauth.generation += 1;
        self.token_refreshes.fetch_add(1, Ordering::Relaxed);
        tracing::info!(source = %self.source, generation = oauth.generation, "access token refreshed");
        Ok(())
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(20);
        let ceiling = self
            .retry
            .base_delay_ms
            .saturating_mul(1u64 << exponent)
            .min(self.retry.max_delay_ms);
        let low = ceiling / 2;
        let delay = if ceiling > low {
            self.jitter.lock().map(|mut rng| rng.random_range(low..=ceiling)).unwrap_or(ceiling)
        } else {
            ceiling
        };
        Duration::from_millis(delay)
    }

    /// GETs `path` (relative to the API root) with query parameters and returns the JSON body,
    /// `None` for `204 No Content` or a 404 of a detail endpoint.
    pub async fn get(&self, path: &str, query: &[(String, String)], is_detail: bool) -> Result<Option<Value>, ConnectorError> {
        let url = format!("{}{}", self.base_url, path);
        // A token can expire mid-run more than once; a fresh token refused three times in a row is
        // a credentials problem.
        let mut refreshes = 0u32;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            self.check_credit_reserve()?;
            let (access_token, generation) = self.access_token().await?;
            self.take_budget()?;
            let mut request = self.client.get(&url).query(query);
            request = match (&self.auth, &access_token) {
                (Auth::ApiToken(token), _) => request.header("x-api-token", token.expose()),
                (_, Some(token)) => request.header("Authorization", format!("{} {token}", self.connector.profile().token_scheme)),
                (_, None) => request,
            };
            if let Some(org_id) = &self.org_id {
                request = request.header("orgId", org_id);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    if attempt >= self.retry.max_attempts {
                        return Err(ConnectorError::Unavailable(format!(
                            "GET {path} failed after {attempt} attempts, last: {}; check base_url and the network",
                            redact(&error.to_string())
                        )));
                    }
                    tracing::warn!(source = %self.source, path, attempt, "request failed, retrying");
                    tokio::time::sleep(self.backoff(attempt)).await;
                    continue;
                }
            };
            self.note_remaining_credits(response.headers());
            let status = response.status().as_u16();
            match status {
                200..=299 => {
                    self.cost
                        .fetch_add(self.connector.request_cost(path, query, is_detail), Ordering::Relaxed);
                    if status == 204 {
                        return Ok(None);
                    }
                    let body = response.json::<Value>().await.map_err(|error| {
                        ConnectorError::Http(format!("GET {path} answered invalid JSON: {}", redact(&error.to_string())))
                    })?;
                    return Ok(Some(body));
                }
                401 if !matches!(self.auth, Auth::ApiToken(_)) && refreshes < 3 => {
                    tracing::info!(source = %self.source, path, "access token rejected, refreshing");
                    self.refresh_after(generation).await?;
                    refreshes += 1;
                    attempt -= 1;
                }
                401 | 403 => {
                    return Err(ConnectorError::Auth(format!(
                        "GET {path} answered {status}; check the source's credentials and their permissions"
                    )))
                }
                // 410 Gone: the record was deleted (HaloPSA and Zoho Desk answer it for some).
                404 | 410 if is_detail => return Ok(None),
                429 => {
                    self.rate_limited.fetch_add(1, Ordering::Relaxed);
                    let wait = response
                        .headers()
                        .get("retry-after")
                        .and_then(|value| value.to_str().ok())
                        .and_then(|text| retry_after_ms(text, self.retry.max_delay_ms))
                        .map(Duration::from_millis)
                        .unwrap_or_else(|| self.backoff(attempt));
                    if attempt >= self.retry.max_attempts {
                        return Err(ConnectorError::RateLimited { path: path.to_string() });
                    }
                    tracing::warn!(source = %self.source, path, attempt, wait_ms = wait.as_millis() as u64, "rate limited, waiting");
                    tokio::time::sleep(wait).await;
                }
                500..=599 => {
                    if attempt >= self.retry.max_attempts {
                        return Err(ConnectorError::Unavailable(format!(
                            "GET {path} answered {status} on all {attempt} attempts; the vendor is failing, try again later"
                        )));
                    }
                    tracing::warn!(source = %self.source, path, status, attempt, "server error, retrying");
                    tokio::time::sleep(self.backoff(attempt)).await;
                }
                _ => {
                    let text = response.text().await.unwrap_or_default();
                    let text: String = text.chars().take(300).collect();
                    return Err(ConnectorError::Rejected {
                        status,
                        message: format!("GET {path} answered {status}: {}", redact(&text)),
                    });
                }
            }
        }
    }
}

/// Most redirects followed within one origin.
const MAX_REDIRECTS: usize = 5;

/// Redirects are followed only within the origin (scheme, host and port) of the first request:
/// every request carries the source's credentials (`x-api-token`, `orgId`, a bearer token, a
/// client secret in the body), and reqwest strips only `Authorization` on a cross-host redirect.
/// A redirect elsewhere is not followed; the request then fails with its 3xx status.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first = attempt.previous().first();
        let same_origin = first.is_some_and(|first| {
            first.scheme() == attempt.url().scheme()
                && first.host_str() == attempt.url().host_str()
                && first.port_or_known_default() == attempt.url().port_or_known_default()
        });
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if same_origin {
            attempt.follow()
        } else {
            tracing::warn!(to = %attempt.url().origin().ascii_serialization(), "a redirect to another origin is not followed: it would carry the source's credentials");
            attempt.stop()
        }
    })
}

/// A `Retry-After` header in seconds as milliseconds, at most `max_ms`; `None` when it is not
/// a number of seconds (an HTTP date falls back to the backoff). Never overflows.
pub fn retry_after_ms(text: &str, max_ms: u64) -> Option<u64> {
    let seconds: u64 = text.trim().parse().ok()?;
    Some(seconds.saturating_mul(1000).min(max_ms))
}

/// Removes query strings (which may carry `api_token`) from text shown to people.
fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut skipping = false;
    for character in text.chars() {
        if character == '?' {
            skipping = true;
            out.push_str("?…");
            continue;
        }
        if skipping && (character.is_whitespace() || character == ')') {
            skipping = false;
        }
        if !skipping {
            out.push(character);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_never_overflows() {
        assert_eq!(retry_after_ms("3", 60_000), Some(3_000));
        assert_eq!(retry_after_ms("18446744073709551615", 60_000), Some(60_000));
        assert_eq!(retry_after_ms("99999999999999999999999", 60_000), None);
        assert_eq!(retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", 60_000), None);
        assert_eq!(retry_after_ms("-1", 60_000), None);
    }

    #[test]
    fn redacts_query_strings() {
        assert_eq!(
            redact("error sending request for url (http://x/api?api_token=abc)"),
            "error sending request for url (http://x/api?…)"
        );
    }
}
