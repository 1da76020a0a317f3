//! The simulator's virtual clock and the vendors' timestamp formats.
//!
//! All simulated time is milliseconds since the Unix epoch (UTC) held in an `i64`. The clock
//! starts at a fixed instant (2026-01-01T00:00:00Z unless configured) so that runs are
//! reproducible; it moves only when told to (`advance`) unless it runs in real time, in which
//! case real elapsed time is added on top.

use syncline_core::time::{civil_from_days, days_from_civil};

use std::time::Instant;

/// Milliseconds in one second.
pub const MS_PER_SECOND: i64 = 1_000;
const MS_PER_DAY: i64 = 86_400_000;

/// The default start of the virtual clock: 2026-01-01T00:00:00Z.
pub const DEFAULT_START: &str = "2026-01-01T00:00:00Z";

/// A virtual clock: a fixed start plus manual advances, plus real elapsed time when `realtime`.
#[derive(Debug, Clone)]
pub struct VirtualClock {
    start_ms: i64,
    manual_offset_ms: i64,
    realtime_anchor: Option<Instant>,
}

impl VirtualClock {
    /// A clock that only moves when advanced.
    pub fn manual(start_ms: i64) -> Self {
        Self {
            start_ms,
            manual_offset_ms: 0,
            realtime_anchor: None,
        }
    }

    /// A clock that follows real time from now on (and can still be advanced).
    pub fn realtime(start_ms: i64) -> Self {
        Self {
            start_ms,
            manual_offset_ms: 0,
            realtime_anchor: Some(Instant::now()),
        }
    }

    /// The current virtual time in ms since the epoch.
    pub fn now_ms(&self) -> i64 {
        let real = self
            .realtime_anchor
            .map(|anchor| i64::try_from(anchor.elapsed().as_millis()).unwrap_or(i64::MAX / 4))
            .unwrap_or(0);
        self.start_ms + self.manual_offset_ms + real
    }

    /// Moves the clock forward by `ms` (negative values are ignored: time never goes back).
    pub fn advance_ms(&mut self, ms: i64) {
        if ms > 0 {
            self.manual_offset_ms += ms;
        }
    }
}

/// A UTC calendar date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millisecond: u32,
}

impl CivilTime {
    /// Splits epoch milliseconds into calendar fields (UTC).
    pub fn from_ms(ms: i64) -> Self {
        let days = ms.div_euclid(MS_PER_DAY);
        let in_day = ms.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        Self {
            year,
            month,
            day,
            hour: (in_day / 3_600_000) as u32,
            minute: ((in_day / 60_000) % 60) as u32,
            second: ((in_day / 1000) % 60) as u32,
            millisecond: (in_day % 1000) as u32,
        }
    }

    /// Epoch milliseconds of these calendar fields.
    pub fn to_ms(&self) -> i64 {
        days_from_civil(self.year, self.month, self.day) * MS_PER_DAY
            + i64::from(self.hour) * 3_600_000
            + i64::from(self.minute) * 60_000
            + i64::from(self.second) * 1000
            + i64::from(self.millisecond)
    }
}

/// Truncates to whole seconds (Pipedrive's resolution).
pub fn truncate_to_second(ms: i64) -> i64 {
    ms - ms.rem_euclid(MS_PER_SECOND)
}

/// `YYYY-MM-DD HH:MM:SS` (Pipedrive v1, UTC, second resolution).
pub fn format_pipedrive_v1(ms: i64) -> String {
    let t = CivilTime::from_ms(ms);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` (Pipedrive v2, RFC 3339, second resolution).
pub fn format_rfc3339_seconds(ms: i64) -> String {
    let t = CivilTime::from_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` (Zoho Desk, millisecond resolution; also webhook meta timestamps).
pub fn format_rfc3339_millis(ms: i64) -> String {
    let t = CivilTime::from_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millisecond
    )
}

/// `YYYY-MM-DDTHH:MM:SS.fffffffZ` (HaloPSA, .NET ticks; the simulator has ms resolution).
pub fn format_halo(ms: i64) -> String {
    let t = CivilTime::from_ms(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}0000Z",
        t.year, t.month, t.day, t.hour, t.minute, t.second, t.millisecond
    )
}

/// `YYYY-MM-DD`.
pub fn format_date(ms: i64) -> String {
    let t = CivilTime::from_ms(ms);
    format!("{:04}-{:02}-{:02}", t.year, t.month, t.day)
}

fn parse_digits(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Parses the timestamp forms the vendors accept: `YYYY-MM-DD`, `YYYY-MM-DD HH:MM:SS`,
/// `YYYY-MM-DDTHH:MM:SS[.fraction][Z|+00:00]`. Offsets other than UTC are applied.
/// Returns epoch milliseconds, or `None` when the text is not a timestamp.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let text = text.trim();
    if text.len() < 10 {
        return None;
    }
    let (date, rest) = text.split_at(10);
    let mut date_parts = date.split('-');
    let year = parse_digits(date_parts.next()?)?;
    let month = parse_digits(date_parts.next()?)?;
    let day = parse_digits(date_parts.next()?)?;
    if date_parts.next().is_some() || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut civil = CivilTime {
        year: i64::from(year),
        month,
        day,
        hour: 0,
        minute: 0,
        second: 0,
        millisecond: 0,
    };
    if rest.is_empty() {
        return Some(civil.to_ms());
    }
    let rest = rest.strip_prefix(['T', 't', ' '])?;
    if rest.len() < 8 {
        return None;
    }
    let (clock, mut zone) = rest.split_at(8);
    let mut clock_parts = clock.split(':');
    civil.hour = parse_digits(clock_parts.next()?)?;
    civil.minute = parse_digits(clock_parts.next()?)?;
    civil.second = parse_digits(clock_parts.next()?)?;
    if civil.hour > 23 || civil.minute > 59 || civil.second > 60 {
        return None;
    }
    if let Some(fraction_and_zone) = zone.strip_prefix('.') {
        let digits_len = fraction_and_zone.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits_len == 0 {
            return None;
        }
        let digits = &fraction_and_zone[..digits_len];
        let millis_text: String = digits.chars().chain("000".chars()).take(3).collect();
        civil.millisecond = parse_digits(&millis_text)?;
        zone = &fraction_and_zone[digits_len..];
    }
    let base = civil.to_ms();
    match zone {
        "" | "Z" | "z" => Some(base),
        offset if offset.len() == 6 && (offset.starts_with('+') || offset.starts_with('-')) => {
            let hours = i64::from(parse_digits(&offset[1..3])?);
            let minutes = i64::from(parse_digits(&offset[4..6])?);
            let shift = (hours * 60 + minutes) * 60_000;
            Some(if offset.starts_with('+') { base - shift } else { base + shift })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_start_is_2026_new_year() {
        let ms = parse_timestamp(DEFAULT_START).expect("parses");
        assert_eq!(ms, 1_767_225_600_000);
        assert_eq!(format_rfc3339_seconds(ms), "2026-01-01T00:00:00Z");
    }

    #[test]
    fn formats_match_vendor_shapes() {
        let ms = parse_timestamp("2019-11-28T16:19:50.123Z").expect("parses");
        assert_eq!(format_pipedrive_v1(ms), "2019-11-28 16:19:50");
        assert_eq!(format_rfc3339_seconds(ms), "2019-11-28T16:19:50Z");
        assert_eq!(format_rfc3339_millis(ms), "2019-11-28T16:19:50.123Z");
        assert_eq!(format_halo(ms), "2019-11-28T16:19:50.1230000Z");
        assert_eq!(format_date(ms), "2019-11-28");
    }

    #[test]
    fn parses_every_vendor_form_to_the_same_instant() {
        let expected = parse_timestamp("2023-06-29T10:16:08Z").expect("parses");
        for text in [
            "2023-06-29 10:16:08",
            "2023-06-29T10:16:08",
            "2023-06-29T10:16:08.000Z",
            "2023-06-29T12:16:08+02:00",
            "2023-06-29T10:16:08.0000000Z",
        ] {
            assert_eq!(parse_timestamp(text), Some(expected), "{text}");
        }
        assert_eq!(parse_timestamp("2023-06-29T10:16:08.8378294Z"), Some(expected + 837));
        assert_eq!(parse_timestamp("2023-06-29"), Some(expected - 36_968_000));
    }

    #[test]
    fn rejects_garbage() {
        for text in ["", "yesterday", "2023-13-01", "2023-06-29X10:16:08", "2023-06-29T10:16"] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
    }

    #[test]
    fn civil_round_trips_across_eras() {
        for ms in [-86_400_001_i64, 0, 951_782_400_000, 1_767_225_599_999, 4_102_444_800_000] {
            assert_eq!(CivilTime::from_ms(ms).to_ms(), ms);
        }
    }

    #[test]
    fn manual_clock_moves_only_forward_when_told() {
        let mut clock = VirtualClock::manual(1000);
        assert_eq!(clock.now_ms(), 1000);
        clock.advance_ms(500);
        clock.advance_ms(-100);
        assert_eq!(clock.now_ms(), 1500);
        assert_eq!(truncate_to_second(1999), 1000);
    }
}
