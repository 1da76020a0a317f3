//! OAuth2 token bookkeeping on the virtual clock, pure: issue, check, refresh (with optional
//! rotation), revoke.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::Rng;
use serde::Serialize;

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenRejection {
    /// Never issued.
    Unknown,
    /// Past its lifetime (or expired early by fault injection).
    Expired,
    /// Revoked.
    Revoked,
    /// A refresh token that a rotation replaced.
    RotatedOut,
}

#[derive(Debug, Clone)]
struct AccessToken {
    expires_at_ms: i64,
    revoked: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RefreshState {
    Active,
    RotatedOut,
    Revoked,
}

/// A freshly issued access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    /// The access token.
    pub access_token: String,
    /// Lifetime in seconds.
    pub expires_in: u64,
    /// The refresh token the client must use next time (a new one after a rotation).
    pub refresh_token: Option<String>,
    /// Whether `refresh_token` is new (the old one is now refused).
    pub rotated: bool,
}

/// Counters for the `/_sim/stats` endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TokenStats {
    /// Access tokens issued.
    pub issued: u64,
    /// Refreshes that succeeded.
    pub refreshed: u64,
    /// Refresh tokens replaced by rotation.
    pub rotated: u64,
    /// Requests refused because the access token was past its lifetime.
    pub rejected_expired: u64,
    /// Requests refused for an unknown or revoked token or wrong credentials.
    pub rejected_invalid: u64,
    /// Refresh attempts refused.
    pub refresh_refused: u64,
}

/// All tokens of one simulated upstream.
#[derive(Debug, Clone)]
pub struct TokenStore {
    prefix: &'static str,
    access: HashMap<String, AccessToken>,
    refresh: HashMap<String, RefreshState>,
    authorization_code: Option<String>,
    counter: u64,
    /// Counters.
    pub stats: TokenStats,
}

impl TokenStore {
    /// A store whose tokens start with `prefix`, knowing one initial refresh token and an
    /// authorization code that can be exchanged once.
    pub fn new(prefix: &'static str, initial_refresh_token: &str, authorization_code: &str) -> Self {
        let mut refresh = HashMap::new();
        refresh.insert(initial_refresh_token.to_string(), RefreshState::Active);
        Self {
            prefix,
            access: HashMap::new(),
            refresh,
            authorization_code: Some(authorization_code.to_string()),
            counter: 0,
            stats: TokenStats::default(),
        }
    }

    fn new_secret(&mut self, rng: &mut StdRng, kind: &str) -> String {
        self.counter += 1;
        let random: u64 = rng.random();
        format!("{}{kind}.{:04}.{random:016x}", self.prefix, self.counter)
    }

    /// Issues an access token valid for `lifetime_secs` from `now_ms`.
    pub fn issue_access(&mut self, rng: &mut StdRng, now_ms: i64, lifetime_secs: u64) -> String {
        let token = self.new_secret(rng, "a");
        let lifetime_ms = i64::try_from(lifetime_secs.saturating_mul(1000)).unwrap_or(i64::MAX / 4);
        self.access.insert(
            token.clone(),
            AccessToken {
                expires_at_ms: now_ms.saturating_add(lifetime_ms),
                revoked: false,
            },
        );
        self.stats.issued += 1;
        token
    }

    /// Checks an access token at `now_ms`. `expire_early` (fault injection) expires a valid
    /// token on the spot.
    pub fn check_access(&mut self, token: &str, now_ms: i64, expire_early: bool) -> Result<(), TokenRejection> {
        let Some(entry) = self.access.get_mut(token) else {
            self.stats.rejected_invalid += 1;
            return Err(TokenRejection::Unknown);
        };
        if entry.revoked {
            self.stats.rejected_invalid += 1;
            return Err(TokenRejection::Revoked);
        }
        if expire_early && now_ms < entry.expires_at_ms {
            entry.expires_at_ms = now_ms;
        }
        if now_ms >= entry.expires_at_ms {
            self.stats.rejected_expired += 1;
            return Err(TokenRejection::Expired);
        }
        Ok(())
    }

    /// Exchanges a refresh token for a new access token. With `rotate`, a new refresh token is
    /// issued and the presented one is refused from then on.
    pub fn refresh(
        &mut self,
        rng: &mut StdRng,
        refresh_token: &str,
        now_ms: i64,
        lifetime_secs: u64,
        rotate: bool,
    ) -> Result<IssuedToken, TokenRejection> {
        match self.refresh.get(refresh_token).copied() {
            None => {
                self.stats.refresh_refused += 1;
                return Err(TokenRejection::Unknown);
            }
            Some(RefreshState::RotatedOut) => {
                self.stats.refresh_refused += 1;
                return Err(TokenRejection::RotatedOut);
            }
            Some(RefreshState::Revoked) => {
                self.stats.refresh_refused += 1;
                return Err(TokenRejection::Revoked);
            }
            Some(RefreshState::Active) => {}
        }
        let access_token = self.issue_access(rng, now_ms, lifetime_secs);
        self.stats.refreshed += 1;
        let refresh_token = if rotate {
            let next = self.new_secret(rng, "r");
            self.refresh.insert(refresh_token.to_string(), RefreshState::RotatedOut);
            self.refresh.insert(next.clone(), RefreshState::Active);
            self.stats.rotated += 1;
            next
        } else {
            refresh_token.to_string()
        };
        Ok(IssuedToken {
            access_token,
            expires_in: lifetime_secs,
            refresh_token: Some(refresh_token),
            rotated: rotate,
        })
    }

    /// Exchanges the authorization code (once) for an access token and a new refresh token.
    pub fn exchange_code(&mut self, rng: &mut StdRng, code: &str, now_ms: i64, lifetime_secs: u64) -> Result<IssuedToken, TokenRejection> {
        if self.authorization_code.as_deref() != Some(code) {
            self.stats.refresh_refused += 1;
            return Err(TokenRejection::Unknown);
        }
        self.authorization_code = None;
        let access_token = self.issue_access(rng, now_ms, lifetime_secs);
        let refresh_token = self.new_secret(rng, "r");
        self.refresh.insert(refresh_token.clone(), RefreshState::Active);
        Ok(IssuedToken {
            access_token,
            expires_in: lifetime_secs,
            refresh_token: Some(refresh_token),
            rotated: false,
        })
    }

    /// Revokes every access token, and every refresh token too when `include_refresh`.
    pub fn revoke_all(&mut self, include_refresh: bool) {
        for token in self.access.values_mut() {
            token.revoked = true;
        }
        if include_refresh {
            for state in self.refresh.values_mut() {
                if *state == RefreshState::Active {
                    *state = RefreshState::Revoked;
                }
            }
        }
    }

    /// Records a request refused for bad credentials (API token, client secret).
    pub fn note_invalid(&mut self) {
        self.stats.rejected_invalid += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::stream;

    #[test]
    fn access_tokens_expire_on_the_virtual_clock() {
        let mut rng = stream(1, 9);
        let mut store = TokenStore::new("t", "r0", "code");
        let token = store.issue_access(&mut rng, 0, 10);
        assert_eq!(store.check_access(&token, 9_999, false), Ok(()));
        assert_eq!(store.check_access(&token, 10_000, false), Err(TokenRejection::Expired));
        assert_eq!(store.check_access("nope", 0, false), Err(TokenRejection::Unknown));
        assert_eq!(store.stats.rejected_expired, 1);
    }

    #[test]
    fn early_expiry_sticks() {
        let mut rng = stream(1, 9);
        let mut store = TokenStore::new("t", "r0", "code");
        let token = store.issue_access(&mut rng, 0, 3600);
        assert_eq!(store.check_access(&token, 5, true), Err(TokenRejection::Expired));
        assert_eq!(store.check_access(&token, 6, false), Err(TokenRejection::Expired));
    }

    #[test]
    fn rotation_refuses_the_old_refresh_token() {
        let mut rng = stream(1, 9);
        let mut store = TokenStore::new("t", "r0", "code");
        let first = store.refresh(&mut rng, "r0", 0, 60, true).expect("refresh");
        assert!(first.rotated);
        let next = first.refresh_token.expect("new refresh token");
        assert_ne!(next, "r0");
        assert_eq!(store.refresh(&mut rng, "r0", 0, 60, true), Err(TokenRejection::RotatedOut));
        let second = store.refresh(&mut rng, &next, 0, 60, false).expect("refresh");
        assert_eq!(second.refresh_token.as_deref(), Some(next.as_str()));
        assert_eq!(store.refresh(&mut rng, &next, 0, 60, false).map(|_| ()), Ok(()));
    }

    #[test]
    fn revocation_and_code_exchange() {
        let mut rng = stream(1, 9);
        let mut store = TokenStore::new("t", "r0", "code");
        let issued = store.exchange_code(&mut rng, "code", 0, 60).expect("exchange");
        assert!(store.exchange_code(&mut rng, "code", 0, 60).is_err(), "codes are single use");
        store.revoke_all(true);
        assert_eq!(store.check_access(&issued.access_token, 1, false), Err(TokenRejection::Revoked));
        assert_eq!(store.refresh(&mut rng, "r0", 0, 60, false), Err(TokenRejection::Revoked));
    }
}
