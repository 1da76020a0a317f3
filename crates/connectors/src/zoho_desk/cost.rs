//! Zoho Desk's cost model: credits, not calls. A daily pool per portal, shared with every other
//! integration of the customer: a get by id costs 1 credit; a list or search page costs by the
//! tier of its `from` offset (3 up to 2,000, 5 up to 10,000, 10 up to 50,000, 50 up to 100,000,
//! 100 beyond). Each answer reports its weight and what is left of the day's pool in
//! [`WEIGHT_HEADER`] and [`REMAINING_HEADER`].

/// The header holding this call's cost in credits.
pub const WEIGHT_HEADER: &str = "x-rate-limit-request-weight-v3";
/// The header holding the credits left in today's pool.
pub const REMAINING_HEADER: &str = "x-rate-limit-remaining-v3";

/// The credits of one get by id.
pub const DETAIL_CREDITS: u64 = 1;

/// `(largest offset of the tier, credits of a page in it)`, in order; offsets past the last
/// tier cost [`BEYOND_LAST_TIER`].
pub const PAGE_TIERS: &[(u64, u64)] = &[(2_000, 3), (10_000, 5), (50_000, 10), (100_000, 50)];
/// The credits of a page starting past the last tier.
pub const BEYOND_LAST_TIER: u64 = 100;

/// The credits of a list or search page starting at offset `from`.
pub fn page_credits(from: u64) -> u64 {
    PAGE_TIERS
        .iter()
        .find(|(largest, _)| from <= *largest)
        .map_or(BEYOND_LAST_TIER, |(_, credits)| *credits)
}

/// The credits of a `GET`: a page (a request carrying `from` or `limit`, or a list that is not a
/// detail) by the tier of its `from` (0 when absent); a get by id 1.
pub fn request_cost(_path: &str, query: &[(String, String)], is_detail: bool) -> u64 {
    let paged = query.iter().any(|(name, _)| name == "from" || name == "limit");
    if is_detail && !paged {
        return DETAIL_CREDITS;
    }
    let from = query
        .iter()
        .find(|(name, _)| name == "from")
        .and_then(|(_, value)| value.trim().parse::<u64>().ok())
        .unwrap_or(0);
    page_credits(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(from: u64) -> Vec<(String, String)> {
        vec![("limit".into(), "100".into()), ("from".into(), from.to_string())]
    }

    #[test]
    fn pages_cost_by_their_offset_tier() {
        let cost = |from| request_cost("/tickets/search", &page(from), false);
        assert_eq!(cost(0), 3);
        assert_eq!(cost(2_000), 3);
        assert_eq!(cost(2_001), 5);
        assert_eq!(cost(4_900), 5);
        assert_eq!(cost(10_000), 5);
        assert_eq!(cost(10_001), 10);
        assert_eq!(cost(50_000), 10);
        assert_eq!(cost(50_001), 50);
        assert_eq!(cost(100_000), 50);
        assert_eq!(cost(100_001), 100);
        // A get by id is one credit; a child listing (read like a detail, a 404 being an empty
        // list) is still a page.
        assert_eq!(request_cost("/tickets/1", &[], true), 1);
        assert_eq!(request_cost("/tickets/1/threads", &page(0), true), 3);
        assert_eq!(request_cost("/agents", &[], false), 3);
    }
}
