//! Cron schedules: standard 5-field expressions (`minute hour day-of-month month day-of-week`)
//! and their next firing time in an IANA time zone.
//!
//! Accepted per field: `*`, a number, a name (`JAN`..`DEC`, `SUN`..`SAT`, any case), a range
//! `1-5`, a step `*/15` / `1-30/2` / `5/10` (from 5 to the field's end), and comma-separated lists
//! of these. Day of week 0 and 7 are both Sunday. When both day of month and day of week are
//! restricted (neither starts with `*`), a day matches when either matches, otherwise when both
//! match (`0 0 */2 * MON`: Mondays on odd days), as in Vixie cron.
//!
//! Daylight saving time: a local time skipped by a spring-forward gap fires at the first valid
//! instant after it (the end of the gap); a local time repeated by a fall-back fold fires once,
//! at its first occurrence.

use std::fmt;
use std::str::FromStr;

use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;

use crate::time::Millis;

/// Why a cron expression or a time zone name is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    /// Not exactly five fields.
    #[error(
        "cron expression `{expression}` has {found} fields; write five: minute hour day-of-month month day-of-week, e.g. \"*/15 * * * *\""
    )]
    FieldCount {
        /// The expression as written.
        expression: String,
        /// How many whitespace-separated fields it has.
        found: usize,
    },
    /// One field is wrong.
    #[error("cron {field} field `{value}`: {message}")]
    Field {
        /// `minute`, `hour`, `day-of-month`, `month` or `day-of-week`.
        field: &'static str,
        /// The field as written.
        value: String,
        /// What is wrong and what to write instead.
        message: String,
    },
    /// The expression can never fire (e.g. `0 0 30 2 *`, February 30).
    #[error("cron expression `{expression}` never fires: no month in it has the days it names; pick days that exist")]
    NeverFires {
        /// The expression as written.
        expression: String,
    },
    /// The time zone name is not in the IANA database.
    #[error("unknown time zone `{name}`; write an IANA name such as \"UTC\" or \"Europe/Berlin\"")]
    UnknownTimeZone {
        /// The name as written.
        name: String,
    },
}

/// One field's limits and names.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
// 7 is accepted and folded onto 0 (Sunday) after parsing.
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

/// Days searched for the next firing: more than the 28-year cycle of weekdays and leap days.
const SEARCH_DAYS: u32 = 366 * 30;

/// A parsed 5-field cron expression. Parse with [`str::parse`] or [`CronSchedule::parse`].
#[derive(Clone, PartialEq, Eq)]
pub struct CronSchedule {
    expression: String,
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    day_of_month_restricted: bool,
    day_of_week_restricted: bool,
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "CronSchedule({:?})", self.expression)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.expression)
    }
}

impl FromStr for CronSchedule {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

fn field_error(spec: &FieldSpec, value: &str, message: impl Into<String>) -> CronError {
    CronError::Field {
        field: spec.name,
        value: value.to_string(),
        message: message.into(),
    }
}

fn parse_value(spec: &FieldSpec, field: &str, text: &str) -> Result<u32, CronError> {
    if let Some(index) = spec.names.iter().position(|name| name.eq_ignore_ascii_case(text)) {
        return Ok(spec.min + index as u32);
    }
    let value: u32 = text.parse().map_err(|_| {
        let names = if spec.names.is_empty() {
            String::new()
        } else {
            format!(" or a name ({})", spec.names.join(", "))
        };
        field_error(
            spec,
            field,
            format!("`{text}` is not a number{names}; write a value from {} to {}", spec.min, spec.max),
        )
    })?;
    if value < spec.min || value > spec.max {
        return Err(field_error(
            spec,
            field,
            format!("{value} is out of range; write a value from {} to {}", spec.min, spec.max),
        ));
    }
    Ok(value)
}

/// Parses one field into a bit set and whether it starts with `*` (unrestricted for the
/// day-of-month / day-of-week rule).
fn parse_field(spec: &FieldSpec, field: &str) -> Result<(u64, bool), CronError> {
    if field.is_empty() {
        return Err(field_error(spec, field, "is empty; write `*` for every value"));
    }
    let mut bits = 0u64;
    for part in field.split(',') {
        if part.is_empty() {
            return Err(field_error(spec, field, "has an empty list item; remove the extra comma"));
        }
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| field_error(spec, field, format!("step `{step}` is not a number; write e.g. */15")))?;
                if step == 0 {
                    return Err(field_error(spec, field, "a step of 0 never advances; write a step of 1 or more"));
                }
                (range, Some(step))
            }
            None => (part, None),
        };
        let (start, end) = if range == "*" {
            (spec.min, spec.max)
        } else if let Some((low, high)) = range.split_once('-') {
            let low = parse_value(spec, field, low)?;
            let high = parse_value(spec, field, high)?;
            if low > high {
                return Err(field_error(
                    spec,
                    field,
                    format!("range {low}-{high} runs backwards; write the smaller value first"),
                ));
            }
            (low, high)
        } else {
            let value = parse_value(spec, field, range)?;
            // `5/10` means from 5 to the end of the field in steps of 10.
            if step.is_some() {
                (value, spec.max)
            } else {
                (value, value)
            }
        };
        let step = step.unwrap_or(1);
        let mut value = start;
        while value <= end {
            bits |= 1 << value;
            value += step;
        }
    }
    Ok((bits, field.starts_with('*')))
}

fn has(bits: u64, value: u32) -> bool {
    bits & (1 << value) != 0
}

/// Days in a month, February counted as 29 (it has 29 in leap years).
fn longest_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl CronSchedule {
    /// Parses a 5-field expression. Errors name the field and say what to write.
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(CronError::FieldCount {
                expression: expression.to_string(),
                found: fields.len(),
            });
        }
        let (minutes, _) = parse_field(&MINUTE, fields[0])?;
        let (hours, _) = parse_field(&HOUR, fields[1])?;
        let (days_of_month, dom_star) = parse_field(&DAY_OF_MONTH, fields[2])?;
        let (months, _) = parse_field(&MONTH, fields[3])?;
        let (mut days_of_week, dow_star) = parse_field(&DAY_OF_WEEK, fields[4])?;
        if has(days_of_week, 7) {
            days_of_week = (days_of_week & !(1 << 7)) | 1;
        }
        let schedule = Self {
            expression: fields.join(" "),
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            day_of_month_restricted: !dom_star,
            day_of_week_restricted: !dow_star,
        };
        // Unless either day rule suffices, some named month must have one of the days.
        let reachable = (schedule.day_of_month_restricted && schedule.day_of_week_restricted)
            || (1..=12).any(|month| has(months, month) && (1..=longest_month(month)).any(|day| has(days_of_month, day)));
        if !reachable {
            return Err(CronError::NeverFires {
                expression: schedule.expression,
            });
        }
        Ok(schedule)
    }

    /// The expression, normalised to single spaces.
    pub fn expression(&self) -> &str {
        &self.expression
    }

    fn matches_date(&self, date: Date) -> bool {
        if !has(self.months, date.month() as u32) {
            return false;
        }
        let day_of_month = has(self.days_of_month, date.day() as u32);
        let day_of_week = has(self.days_of_week, u32::from(date.weekday().to_sunday_zero_offset() as u8));
        // Vixie cron: either matches when both are restricted, else both must (a field starting
        // with `*` counts as unrestricted, and `*` alone matches every day).
        if self.day_of_month_restricted && self.day_of_week_restricted {
            day_of_month || day_of_week
        } else {
            day_of_month && day_of_week
        }
    }

    /// The instant a local time fires at: itself; in a gap, the end of the gap; in a fold, its
    /// first occurrence.
    fn firing_instant(zone: &TimeZone, local: DateTime) -> Option<Timestamp> {
        let ambiguous = zone.to_ambiguous_timestamp(local);
        match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(local).ok(),
            AmbiguousOffset::Fold { before, .. } => before.to_timestamp(local).ok(),
            AmbiguousOffset::Gap { after, .. } => {
                // `local` read with the later offset is an instant just before the gap; the gap
                // ends at the next transition.
                let before_gap = after.to_timestamp(local).ok()?;
                zone.following(before_gap).next().map(|transition| transition.timestamp())
            }
        }
    }

    /// The next firing time strictly after `after` (UTC milliseconds), in `zone`. Parsing refuses
    /// schedules that never fire; one that fires less than once in 30 years (e.g. February 1st
    /// only when it is a Monday, `0 0 */31 2 1`) gets `Millis::MAX`.
    pub fn next_after(&self, after: Millis, zone: &CronTimeZone) -> Millis {
        let zone = &zone.zone;
        let Ok(start) = Timestamp::from_millisecond(after) else {
            return Millis::MAX;
        };
        // Start a day early: an instant after a gap can belong to a local time of the day before
        // only in exotic zones, but it costs nothing.
        let mut date = start.to_zoned(zone.clone()).date().yesterday().unwrap_or(Date::MIN);
        for _ in 0..SEARCH_DAYS {
            if self.matches_date(date) {
                for hour in (0..24).filter(|hour| has(self.hours, *hour)) {
                    for minute in (0..60).filter(|minute| has(self.minutes, *minute)) {
                        let local = date.at(hour as i8, minute as i8, 0, 0);
                        if let Some(instant) = Self::firing_instant(zone, local) {
                            let millis = instant.as_millisecond();
                            if millis > after {
                                return millis;
                            }
                        }
                    }
                }
            }
            match date.tomorrow() {
                Ok(next) => date = next,
                Err(_) => break,
            }
        }
        Millis::MAX
    }
}

/// An IANA time zone for schedules (`UTC`, `Europe/Berlin`), read from the system database with
/// a bundled copy as fallback for machines without `/usr/share/zoneinfo`.
#[derive(Clone, PartialEq, Eq)]
pub struct CronTimeZone {
    name: String,
    zone: TimeZone,
}

impl CronTimeZone {
    /// UTC.
    pub fn utc() -> Self {
        Self {
            name: "UTC".to_string(),
            zone: TimeZone::UTC,
        }
    }

    /// The zone of an IANA name; an unknown name is an error that says what to write.
    pub fn named(name: &str) -> Result<Self, CronError> {
        if name == "UTC" {
            return Ok(Self::utc());
        }
        let zone = TimeZone::get(name).map_err(|_| CronError::UnknownTimeZone { name: name.to_string() })?;
        Ok(Self {
            name: name.to_string(),
            zone,
        })
    }

    /// The name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for CronTimeZone {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "CronTimeZone({:?})", self.name)
    }
}

impl fmt::Display for CronTimeZone {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.name)
    }
}

impl FromStr for CronTimeZone {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::named(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format_timestamp, parse_timestamp};
    use proptest::prelude::*;

    fn at(text: &str) -> Millis {
        parse_timestamp(text).unwrap_or_else(|| panic!("bad timestamp {text}"))
    }

    fn next(expression: &str, after: &str, zone: &str) -> String {
        let schedule: CronSchedule = expression.parse().unwrap();
        let zone = CronTimeZone::named(zone).unwrap();
        format_timestamp(schedule.next_after(at(after), &zone))
    }

    #[test]
    fn quarter_hours() {
        assert_eq!(next("*/15 * * * *", "2024-01-15T10:07:00Z", "UTC"), "2024-01-15T10:15:00.000Z");
        assert_eq!(next("*/15 * * * *", "2024-01-15T10:15:00Z", "UTC"), "2024-01-15T10:30:00.000Z");
        assert_eq!(next("*/15 * * * *", "2024-01-15T10:14:59.999Z", "UTC"), "2024-01-15T10:15:00.000Z");
        assert_eq!(next("*/15 * * * *", "2024-12-31T23:59:00Z", "UTC"), "2025-01-01T00:00:00.000Z");
    }

    #[test]
    fn sunday_four_is_weekly() {
        // 2024-01-14 is a Sunday.
        assert_eq!(next("0 4 * * 0", "2024-01-14T04:00:00Z", "UTC"), "2024-01-21T04:00:00.000Z");
        assert_eq!(next("0 4 * * 0", "2024-01-14T03:59:59Z", "UTC"), "2024-01-14T04:00:00.000Z");
        assert_eq!(next("0 4 * * 7", "2024-01-10T00:00:00Z", "UTC"), "2024-01-14T04:00:00.000Z");
        assert_eq!(next("0 4 * * sun", "2024-01-10T00:00:00Z", "UTC"), "2024-01-14T04:00:00.000Z");
    }

    #[test]
    fn sunday_four_in_berlin_across_dst() {
        // CET (+01) until 2024-03-31 02:00, CEST (+02) after.
        assert_eq!(
            next("0 4 * * 0", "2024-03-24T03:00:00Z", "Europe/Berlin"),
            "2024-03-31T02:00:00.000Z"
        );
        assert_eq!(
            next("0 4 * * 0", "2024-03-17T03:00:00Z", "Europe/Berlin"),
            "2024-03-24T03:00:00.000Z"
        );
        // Back to CET on 2024-10-27 03:00 CEST.
        assert_eq!(
            next("0 4 * * 0", "2024-10-20T02:00:00Z", "Europe/Berlin"),
            "2024-10-27T03:00:00.000Z"
        );
    }

    #[test]
    fn spring_forward_gap_fires_at_the_end_of_the_gap_once() {
        // Berlin 2024-03-31: 02:00 CET jumps to 03:00 CEST (01:00Z).
        assert_eq!(
            next("30 2 * * *", "2024-03-30T12:00:00Z", "Europe/Berlin"),
            "2024-03-31T01:00:00.000Z"
        );
        assert_eq!(
            next("30 2 * * *", "2024-03-31T01:00:00Z", "Europe/Berlin"),
            "2024-04-01T00:30:00.000Z"
        );
        // Every quarter hour: the skipped 02:xx all collapse into one firing at 03:00 CEST.
        let schedule: CronSchedule = "*/15 * * * *".parse().unwrap();
        let zone = CronTimeZone::named("Europe/Berlin").unwrap();
        let mut now = at("2024-03-31T00:40:00Z");
        let mut fired = Vec::new();
        for _ in 0..4 {
            now = schedule.next_after(now, &zone);
            fired.push(format_timestamp(now));
        }
        assert_eq!(
            fired,
            [
                "2024-03-31T00:45:00.000Z",
                "2024-03-31T01:00:00.000Z",
                "2024-03-31T01:15:00.000Z",
                "2024-03-31T01:30:00.000Z"
            ]
        );
    }

    #[test]
    fn fall_back_fold_fires_once() {
        // Berlin 2024-10-27: 03:00 CEST goes back to 02:00 CET; 02:30 happens twice.
        assert_eq!(
            next("30 2 * * *", "2024-10-26T12:00:00Z", "Europe/Berlin"),
            "2024-10-27T00:30:00.000Z"
        );
        assert_eq!(
            next("30 2 * * *", "2024-10-27T00:30:00Z", "Europe/Berlin"),
            "2024-10-28T01:30:00.000Z"
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // The 13th or any Friday: 2024-09-06 is a Friday, 2024-09-13 also.
        assert_eq!(next("0 0 13 * 5", "2024-09-01T00:00:00Z", "UTC"), "2024-09-06T00:00:00.000Z");
        assert_eq!(next("0 0 13 * 5", "2024-09-07T00:00:00Z", "UTC"), "2024-09-13T00:00:00.000Z");
        // Day of month only when the day of week is `*`.
        assert_eq!(next("0 0 13 * *", "2024-09-01T00:00:00Z", "UTC"), "2024-09-13T00:00:00.000Z");
        // A field starting with `*` is unrestricted, so `*/2` days of month AND Mondays.
        assert_eq!(next("0 0 */2 * 1", "2024-09-01T00:00:00Z", "UTC"), "2024-09-09T00:00:00.000Z");
        assert_eq!(next("0 0 29 2 *", "2024-03-01T00:00:00Z", "UTC"), "2028-02-29T00:00:00.000Z");
    }

    #[test]
    fn ranges_lists_steps_and_names() {
        let schedule: CronSchedule = "1-5/2,50 9-17 * jan-mar MON-FRI".parse().unwrap();
        assert_eq!(schedule.minutes, (1 << 1) | (1 << 3) | (1 << 5) | (1 << 50));
        assert_eq!(schedule.hours, ((1u64 << 18) - 1) & !((1 << 9) - 1));
        assert_eq!(schedule.months, 0b1110);
        assert_eq!(schedule.days_of_week, 0b11_1110);
        let schedule: CronSchedule = "5/20 * * * *".parse().unwrap();
        assert_eq!(schedule.minutes, (1 << 5) | (1 << 25) | (1 << 45));
        assert_eq!(schedule.to_string(), "5/20 * * * *");
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            ("* * * *", "5"),
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day-of-month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day-of-week"),
            ("*/0 * * * *", "minute"),
            ("5-1 * * * *", "minute"),
            ("* * * foo *", "month"),
            ("1,,2 * * * *", "minute"),
            ("0 0 30 2 *", "never fires"),
        ];
        for (expression, needle) in cases {
            let error = expression.parse::<CronSchedule>().unwrap_err().to_string();
            assert!(error.contains(needle), "{expression}: {error}");
        }
        let error = CronTimeZone::named("Mars/Olympus").unwrap_err().to_string();
        assert!(error.contains("Mars/Olympus") && error.contains("Europe/Berlin"), "{error}");
    }

    proptest! {
        #[test]
        fn quarter_hour_schedule_yields_quarter_hours(after in 0i64..4_000_000_000_000) {
            let schedule: CronSchedule = "*/15 * * * *".parse().unwrap();
            let zone = CronTimeZone::utc();
            let next = schedule.next_after(after, &zone);
            prop_assert!(next > after);
            prop_assert!(next - after <= 15 * 60_000);
            prop_assert_eq!(next % (15 * 60_000), 0);
        }

        #[test]
        fn next_is_strictly_later_and_matches(after in 0i64..4_000_000_000_000, zone_index in 0usize..4) {
            let zone_name = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"][zone_index];
            let zone = CronTimeZone::named(zone_name).unwrap();
            let schedule: CronSchedule = "0 4 * * 0".parse().unwrap();
            let next = schedule.next_after(after, &zone);
            prop_assert!(next > after);
            prop_assert!(next - after <= 8 * 86_400_000);
            let local = Timestamp::from_millisecond(next).unwrap().to_zoned(zone.zone.clone());
            prop_assert_eq!(local.weekday().to_sunday_zero_offset(), 0);
            prop_assert_eq!((local.hour(), local.minute()), (4, 0));
            // Nothing fires in between.
            prop_assert_eq!(schedule.next_after(next - 1, &zone), next);
        }
    }
}
