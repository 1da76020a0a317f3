//! Pagination and since-filters, pure. Each vendor's handler picks the scheme it uses:
//! Pipedrive v2 keyset cursors, Pipedrive v1 and Zoho Desk offsets, HaloPSA page numbers.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::store::{RecordId, Row};

/// Sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Ascending.
    Asc,
    /// Descending.
    Desc,
}

impl Direction {
    /// Parses `asc`/`desc` (any case).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "asc" => Some(Direction::Asc),
            "desc" => Some(Direction::Desc),
            _ => None,
        }
    }
}

/// A row with its sort key, ready to be paged.
#[derive(Debug, Clone, PartialEq)]
pub struct Keyed {
    /// The sort key (epoch ms for times, the id for `id`).
    pub key: i64,
    /// The row.
    pub row: Row,
}

/// Sorts rows by `(key, id)` in the given direction; ties break on the id in the same direction,
/// so the order is total and stable.
pub fn sort_keyed(rows: Vec<Row>, key_of: impl Fn(&Row) -> i64, direction: Direction) -> Vec<Keyed> {
    let mut keyed: Vec<Keyed> = rows.into_iter().map(|row| Keyed { key: key_of(&row), row }).collect();
    keyed.sort_by(|a, b| {
        let order = (a.key, a.row.id).cmp(&(b.key, b.row.id));
        match direction {
            Direction::Asc => order,
            Direction::Desc => order.reverse(),
        }
    });
    keyed
}

/// A Pipedrive-style v2 cursor: base64url (no padding) of
/// `{"field":..,"fieldValue":..,"sortDirection":..,"id":..}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// The sort field the cursor belongs to.
    pub field: String,
    /// The sort key of the last row returned.
    #[serde(rename = "fieldValue")]
    pub field_value: i64,
    /// The sort direction the cursor belongs to.
    #[serde(rename = "sortDirection")]
    pub sort_direction: Direction,
    /// The id of the last row returned.
    pub id: RecordId,
}

impl Cursor {
    /// The opaque string form.
    pub fn encode(&self) -> String {
        // Serialising a struct of strings and integers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(json)
    }

    /// Parses the opaque string form; `None` when it is not a cursor of ours.
    pub fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// One keyset page: rows after the cursor position, at most `limit`, and whether more follow.
pub fn keyset_page(sorted: &[Keyed], after: Option<&Cursor>, limit: usize) -> (Vec<Keyed>, bool) {
    let start = match after {
        None => 0,
        Some(cursor) => {
            let position = (cursor.field_value, cursor.id);
            sorted
                .iter()
                .position(|keyed| {
                    let here = (keyed.key, keyed.row.id);
                    match cursor.sort_direction {
                        Direction::Asc => here > position,
                        Direction::Desc => here < position,
                    }
                })
                .unwrap_or(sorted.len())
        }
    };
    let end = start.saturating_add(limit).min(sorted.len());
    (sorted[start..end].to_vec(), end < sorted.len())
}

/// One offset page (`start`/`limit`, `from`/`limit`): the slice and whether more follow.
pub fn offset_page<T: Clone>(items: &[T], start: usize, limit: usize) -> (Vec<T>, bool) {
    let begin = start.min(items.len());
    let end = begin.saturating_add(limit).min(items.len());
    (items[begin..end].to_vec(), end < items.len())
}

/// One page by number (HaloPSA `page_no`, 1-based; 0 is treated as 1).
pub fn numbered_page<T: Clone>(items: &[T], page_no: usize, page_size: usize) -> Vec<T> {
    let page_index = page_no.max(1) - 1;
    offset_page(items, page_index.saturating_mul(page_size), page_size).0
}

/// A time window for since-filters, with the vendor's inclusivity at each end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TimeWindow {
    /// Lower bound, epoch ms.
    pub since_ms: Option<i64>,
    /// Whether a record modified exactly at the lower bound is included.
    pub since_inclusive: bool,
    /// Upper bound, epoch ms.
    pub until_ms: Option<i64>,
    /// Whether a record modified exactly at the upper bound is included.
    pub until_inclusive: bool,
}

impl TimeWindow {
    /// Pipedrive v2: `updated_since` is inclusive (`>=`), `updated_until` exclusive (`<`).
    pub fn pipedrive(since_ms: Option<i64>, until_ms: Option<i64>) -> Self {
        Self {
            since_ms,
            since_inclusive: true,
            until_ms,
            until_inclusive: false,
        }
    }

    /// Zoho Desk `modifiedTimeRange=from,to`: both ends inclusive.
    pub fn zoho(since_ms: Option<i64>, until_ms: Option<i64>) -> Self {
        Self {
            since_ms,
            since_inclusive: true,
            until_ms,
            until_inclusive: true,
        }
    }

    /// HaloPSA `startdate`/`enddate`: both ends inclusive.
    pub fn halo(since_ms: Option<i64>, until_ms: Option<i64>) -> Self {
        Self::zoho(since_ms, until_ms)
    }

    /// Whether the window has any bound (a since-filter is in use).
    pub fn is_bounded(&self) -> bool {
        self.since_ms.is_some() || self.until_ms.is_some()
    }

    /// Whether `ms` is inside the window.
    pub fn contains(&self, ms: i64) -> bool {
        let after_start = match self.since_ms {
            None => true,
            Some(since) if self.since_inclusive => ms >= since,
            Some(since) => ms > since,
        };
        let before_end = match self.until_ms {
            None => true,
            Some(until) if self.until_inclusive => ms <= until,
            Some(until) => ms < until,
        };
        after_start && before_end
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows(n: u64) -> Vec<Row> {
        (1..=n)
            .map(|id| Row {
                id,
                record: json!({"id": id}),
                modified_ms: 1000 * (id as i64 % 3),
            })
            .collect()
    }

    fn walk(sorted: &[Keyed], limit: usize, field: &str, direction: Direction) -> (Vec<RecordId>, usize) {
        let mut cursor: Option<Cursor> = None;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let (page, more) = keyset_page(sorted, cursor.as_ref(), limit);
            pages += 1;
            seen.extend(page.iter().map(|keyed| keyed.row.id));
            let Some(last) = page.last() else { break };
            if !more {
                break;
            }
            let encoded = Cursor {
                field: field.into(),
                field_value: last.key,
                sort_direction: direction,
                id: last.row.id,
            }
            .encode();
            cursor = Some(Cursor::decode(&encoded).expect("round trip"));
        }
        (seen, pages)
    }

    #[test]
    fn keyset_pages_exactly_at_the_edges() {
        for (count, expected_pages) in [(0_u64, 1_usize), (1, 1), (5, 1), (6, 2), (10, 2), (11, 3)] {
            let sorted = sort_keyed(rows(count), |row| row.id as i64, Direction::Asc);
            let (seen, pages) = walk(&sorted, 5, "id", Direction::Asc);
            assert_eq!(seen, (1..=count).collect::<Vec<_>>(), "count {count}");
            assert_eq!(pages, expected_pages, "count {count}");
        }
    }

    #[test]
    fn keyset_walks_ties_on_time_in_both_directions() {
        for direction in [Direction::Asc, Direction::Desc] {
            let sorted = sort_keyed(rows(13), |row| row.modified_ms, direction);
            let (mut seen, _) = walk(&sorted, 4, "update_time", direction);
            seen.sort_unstable();
            assert_eq!(seen, (1..=13).collect::<Vec<_>>(), "{direction:?}");
        }
    }

    #[test]
    fn cursor_matches_pipedrive_shape() {
        let cursor = Cursor::decode("eyJmaWVsZCI6ImlkIiwiZmllbGRWYWx1ZSI6Nywic29ydERpcmVjdGlvbiI6ImFzYyIsImlkIjo3fQ")
            .expect("the fixture's cursor decodes");
        assert_eq!(
            cursor,
            Cursor {
                field: "id".into(),
                field_value: 7,
                sort_direction: Direction::Asc,
                id: 7
            }
        );
        assert_eq!(Cursor::decode("not a cursor!"), None);
    }

    #[test]
    fn offset_and_numbered_pages() {
        let items: Vec<u32> = (0..11).collect();
        assert_eq!(offset_page(&items, 0, 5), ((0..5).collect(), true));
        assert_eq!(offset_page(&items, 10, 5), (vec![10], false));
        assert_eq!(offset_page(&items, 11, 5), (vec![], false));
        assert_eq!(offset_page(&items[..10], 5, 5), ((5..10).collect(), false));
        assert_eq!(numbered_page(&items, 1, 5), (0..5).collect::<Vec<_>>());
        assert_eq!(numbered_page(&items, 3, 5), vec![10]);
        assert!(numbered_page(&items, 4, 5).is_empty());
        assert_eq!(numbered_page(&items, 0, 5), (0..5).collect::<Vec<_>>());
    }

    #[test]
    fn windows_honour_vendor_inclusivity() {
        let pipedrive = TimeWindow::pipedrive(Some(10), Some(20));
        assert!(pipedrive.contains(10));
        assert!(pipedrive.contains(19));
        assert!(!pipedrive.contains(20));
        assert!(!pipedrive.contains(9));
        let zoho = TimeWindow::zoho(Some(10), Some(20));
        assert!(zoho.contains(10) && zoho.contains(20) && !zoho.contains(21));
        assert!(TimeWindow::default().contains(i64::MIN));
        assert!(!TimeWindow::default().is_bounded());
    }
}
