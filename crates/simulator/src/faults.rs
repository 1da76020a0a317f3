//! Seeded fault decisions. Each decision draws the same number of random values whatever the
//! rates are, so turning one fault up does not reshuffle the others.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::config::FaultConfig;

/// Derives an independent random stream from the seed (one per purpose: records, changes,
/// faults, ...), so that e.g. API traffic never changes which records are generated.
pub fn stream(seed: u64, purpose: u64) -> StdRng {
    // SplitMix64 finaliser over (seed, purpose): decorrelates nearby seeds.
    let mut z = seed ^ purpose.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    StdRng::seed_from_u64(z ^ (z >> 31))
}

/// What happens to one outgoing webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct WebhookFate {
    /// Never sent.
    pub drop: bool,
    /// Sent twice.
    pub duplicate: bool,
    /// Held back and sent after the next webhook.
    pub reorder: bool,
    /// Sent late.
    pub delay: bool,
}

/// A fault injected into one API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiFault {
    /// 429 with `Retry-After`.
    RateLimited,
    /// A 5xx with this status.
    ServerError(u16),
}

/// The decisions for one API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RequestFate {
    /// Answer slowly.
    pub slow: bool,
    /// Answer with an error instead of the data.
    pub fault: Option<ApiFault>,
}

/// Draws fault decisions from a seeded stream.
#[derive(Debug, Clone)]
pub struct FaultDecider {
    rng: StdRng,
    /// Deletes and updates while paging draw from their own stream, so turning them on does not
    /// move the other decisions.
    mutations: StdRng,
}

impl FaultDecider {
    /// A decider seeded from the simulator seed.
    pub fn new(seed: u64) -> Self {
        Self {
            rng: stream(seed, 3),
            mutations: stream(seed, 9),
        }
    }

    fn roll(&mut self, rate: f64) -> bool {
        let draw: f64 = self.rng.random();
        draw < rate
    }

    /// The fate of the next webhook.
    pub fn webhook(&mut self, faults: &FaultConfig) -> WebhookFate {
        let drop = self.roll(faults.webhook_drop_rate);
        let duplicate = self.roll(faults.webhook_duplicate_rate);
        let reorder = self.roll(faults.webhook_reorder_rate);
        let delay = self.roll(faults.webhook_delay_rate);
        if drop {
            return WebhookFate {
                drop: true,
                ..WebhookFate::default()
            };
        }
        WebhookFate {
            drop,
            duplicate,
            reorder,
            delay,
        }
    }

    /// The fate of the next API request.
    pub fn request(&mut self, faults: &FaultConfig) -> RequestFate {
        let slow = self.roll(faults.slow_response_rate);
        let rate_limited = self.roll(faults.rate_limit_rate);
        let server_error = self.roll(faults.server_error_rate);
        let status_pick: u8 = self.rng.random_range(0..3);
        let fault = if rate_limited {
            Some(ApiFault::RateLimited)
        } else if server_error {
            Some(ApiFault::ServerError([500, 502, 503][usize::from(status_pick)]))
        } else {
            None
        };
        RequestFate { slow, fault }
    }

    /// Whether a valid access token expires early at this check.
    pub fn token_expires_early(&mut self, faults: &FaultConfig) -> bool {
        self.roll(faults.token_expiry_rate)
    }

    /// Whether records get deleted, and whether records get updated, before serving this
    /// later page (two draws, whatever the rates).
    pub fn mutate_while_paging(&mut self, faults: &FaultConfig) -> (bool, bool) {
        let delete: f64 = self.mutations.random();
        let update: f64 = self.mutations.random();
        (delete < faults.delete_while_paging_rate, update < faults.update_while_paging_rate)
    }

    /// Whether records get inserted before serving this later page.
    pub fn insert_while_paging(&mut self, faults: &FaultConfig) -> bool {
        self.roll(faults.insert_while_paging_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults() -> FaultConfig {
        FaultConfig {
            webhook_drop_rate: 0.2,
            webhook_duplicate_rate: 0.1,
            rate_limit_rate: 0.3,
            server_error_rate: 0.1,
            ..FaultConfig::default()
        }
    }

    #[test]
    fn same_seed_same_decisions() {
        let config = faults();
        let mut a = FaultDecider::new(42);
        let mut b = FaultDecider::new(42);
        let mut c = FaultDecider::new(43);
        let run = |decider: &mut FaultDecider| {
            (0..200)
                .map(|_| (decider.webhook(&config), decider.request(&config)))
                .collect::<Vec<_>>()
        };
        let first = run(&mut a);
        assert_eq!(first, run(&mut b));
        assert_ne!(first, run(&mut c));
    }

    #[test]
    fn rates_are_roughly_honoured() {
        let config = faults();
        let mut decider = FaultDecider::new(7);
        let n = 10_000;
        let fates: Vec<WebhookFate> = (0..n).map(|_| decider.webhook(&config)).collect();
        let dropped = fates.iter().filter(|fate| fate.drop).count();
        assert!((1700..2300).contains(&dropped), "dropped {dropped}");
        assert!(fates.iter().all(|fate| !(fate.drop && fate.duplicate)));
        let limited = (0..n)
            .filter(|_| decider.request(&config).fault == Some(ApiFault::RateLimited))
            .count();
        assert!((2700..3300).contains(&limited), "limited {limited}");
    }

    #[test]
    fn zero_rates_never_fire_and_do_not_shift_other_streams() {
        let quiet = FaultConfig::default();
        let mut decider = FaultDecider::new(1);
        for _ in 0..1000 {
            assert_eq!(decider.mutate_while_paging(&quiet), (false, false));
            assert_eq!(decider.webhook(&quiet), WebhookFate::default());
            assert_eq!(decider.request(&quiet), RequestFate::default());
            assert!(!decider.token_expires_early(&quiet));
        }
        // Changing one rate leaves the drop decisions in place.
        let mut with_delay = faults();
        with_delay.webhook_delay_rate = 0.9;
        let mut a = FaultDecider::new(5);
        let mut b = FaultDecider::new(5);
        for _ in 0..500 {
            assert_eq!(a.webhook(&faults()).drop, b.webhook(&with_delay).drop);
        }
    }
}
