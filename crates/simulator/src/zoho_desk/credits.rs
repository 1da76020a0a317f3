//! Zoho Desk's credit pool, as the vendor bills it: a daily pool per portal; a get by id costs 1
//! credit, a list or search page by the tier of its `from` offset (3 for 0-2,000, 5 up to
//! 10,000, 10 up to 50,000, 50 up to 100,000, 100 beyond). Every answer says what it cost
//! ([`WEIGHT_HEADER`]) and what is left today ([`REMAINING_HEADER`]); a request the pool cannot
//! pay is answered 429 with `Retry-After` (the seconds to the refill, at midnight UTC of the
//! virtual clock). Pure: the clock is passed in.

/// This call's cost in credits.
pub const WEIGHT_HEADER: &str = "x-rate-limit-request-weight-v3";
/// Credits left in today's pool.
pub const REMAINING_HEADER: &str = "x-rate-limit-remaining-v3";

const DAY_MS: i64 = 86_400_000;

/// The credits of a list or search page starting at offset `from`.
pub fn page_credits(from: u64) -> u64 {
    match from {
        0..=2_000 => 3,
        2_001..=10_000 => 5,
        10_001..=50_000 => 10,
        50_001..=100_000 => 50,
        _ => 100,
    }
}

/// The credits of a `GET` of an endpoint template (`/api/v1/tickets/{id}`): a record by id 1,
/// any list or search page by the tier of its `from` (0 when absent or unreadable).
pub fn request_credits(endpoint: &str, query: &[(String, String)]) -> u64 {
    if endpoint.ends_with("{id}") {
        return 1;
    }
    let from = query
        .iter()
        .find(|(name, _)| name == "from")
        .and_then(|(_, value)| value.parse::<u64>().ok())
        .unwrap_or(0);
    page_credits(from)
}

/// One portal's pool: the credits spent on the current (UTC) day of the virtual clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreditPool {
    day: Option<i64>,
    spent: u64,
}

impl CreditPool {
    /// A new day refills the pool.
    fn roll(&mut self, now_ms: i64) {
        let day = now_ms.div_euclid(DAY_MS);
        if self.day != Some(day) {
            self.day = Some(day);
            self.spent = 0;
        }
    }

    /// Credits left at `now_ms` of a pool of `daily` credits.
    pub fn left(&mut self, now_ms: i64, daily: u64) -> u64 {
        self.roll(now_ms);
        daily.saturating_sub(self.spent)
    }

    /// Charges `credits` at `now_ms`.
    pub fn spend(&mut self, now_ms: i64, credits: u64) {
        self.roll(now_ms);
        self.spent = self.spent.saturating_add(credits);
    }

    /// Whole seconds from `now_ms` to the next refill.
    pub fn seconds_to_refill(now_ms: i64) -> u64 {
        let next = (now_ms.div_euclid(DAY_MS) + 1) * DAY_MS;
        u64::try_from((next - now_ms + 999) / 1000).unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_billed_by_offset_tier_and_details_by_one() {
        let page = |from: u64| request_credits("/api/v1/tickets/search", &[("from".into(), from.to_string())]);
        assert_eq!((page(0), page(2_000), page(2_001), page(10_000)), (3, 3, 5, 5));
        assert_eq!((page(10_001), page(50_000), page(50_001), page(100_001)), (10, 10, 50, 100));
        assert_eq!(request_credits("/api/v1/tickets/{id}", &[]), 1);
        assert_eq!(request_credits("/api/v1/tickets/{id}/threads/{id}", &[]), 1);
        assert_eq!(request_credits("/api/v1/tickets/{id}/threads", &[]), 3);
    }

    #[test]
    fn the_pool_refills_at_midnight() {
        let mut pool = CreditPool::default();
        let noon = 20_000 * DAY_MS + DAY_MS / 2;
        assert_eq!(pool.left(noon, 10), 10);
        pool.spend(noon, 8);
        assert_eq!(pool.left(noon + 1000, 10), 2);
        assert_eq!(CreditPool::seconds_to_refill(noon), 43_200);
        assert_eq!(pool.left(noon + DAY_MS / 2, 10), 10, "a new day");
    }
}
