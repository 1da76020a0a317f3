//! Timestamps as UTC milliseconds since the Unix epoch, and the formats the vendors use.

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// `9999-12-31 23:59:59` UTC: the end of a current version in the `fivetran` profile.
pub const FAR_FUTURE: Millis = 253_402_300_799_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date `(year, month, day)` of a day number since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn digits(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(bytes.iter().fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')))
}

/// Parses the timestamp forms the vendors send: `2024-01-15`, `2024-01-15 10:20:30`
/// (Pipedrive, UTC), `2016-06-21T13:16:14.000Z` (Zoho Desk), RFC 3339 with an offset, and
/// HaloPSA's `2024-01-15T10:20:30.123` (UTC, no zone). Fractions finer than a millisecond are
/// truncated. Returns `None` for anything else.
pub fn parse_timestamp(text: &str) -> Option<Millis> {
    let bytes = text.trim().as_bytes();
    if bytes.len() < 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let year = digits(&bytes[0..4])?;
    let month = u32::try_from(digits(&bytes[5..7])?).ok()?;
    let day = u32::try_from(digits(&bytes[8..10])?).ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    let rest = &bytes[10..];
    if rest.is_empty() {
        return Some(millis);
    }
    if rest.len() < 9 || !(rest[0] == b'T' || rest[0] == b' ') || rest[3] != b':' || rest[6] != b':' {
        return None;
    }
    let hour = digits(&rest[1..3])?;
    let minute = digits(&rest[4..6])?;
    let second = digits(&rest[7..9])?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    millis += ((hour * 60 + minute) * 60 + second) * 1000;
    let mut rest = &rest[9..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let length = fraction.iter().take_while(|b| b.is_ascii_digit()).count();
        if length == 0 {
            return None;
        }
        let mut value = 0i64;
        for position in 0..3 {
            value = value * 10
                + fraction
                    .get(position)
                    .filter(|_| position < length)
                    .map_or(0, |b| i64::from(b - b'0'));
        }
        millis += value;
        rest = &fraction[length..];
    }
    match rest {
        [] | [b'Z'] | [b'z'] => Some(millis),
        [sign @ (b'+' | b'-'), zone @ ..] => {
            let (hours, minutes) = match zone {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?),
                [h1, h2] => (digits(&[*h1, *h2])?, 0),
                _ => return None,
            };
            let offset = (hours * 60 + minutes) * 60_000;
            Some(if *sign == b'+' { millis - offset } else { millis + offset })
        }
        _ => None,
    }
}

/// Formats as RFC 3339 in UTC with milliseconds: `2024-01-15T10:20:30.000Z`.
pub fn format_timestamp(millis: Millis) -> String {
    let days = millis.div_euclid(86_400_000);
    let in_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_vendor_formats() {
        assert_eq!(parse_timestamp("1970-01-01"), Some(0));
        assert_eq!(parse_timestamp("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(parse_timestamp("2016-06-21T13:16:14.000Z"), Some(1_466_514_974_000));
        assert_eq!(parse_timestamp("2016-06-21T13:16:14.5Z"), Some(1_466_514_974_500));
        assert_eq!(parse_timestamp("2016-06-21T13:16:14.123456789"), Some(1_466_514_974_123));
        assert_eq!(parse_timestamp("2016-06-21T15:16:14+02:00"), Some(1_466_514_974_000));
        assert_eq!(parse_timestamp("2016-06-21T11:16:14-0200"), Some(1_466_514_974_000));
        assert_eq!(parse_timestamp("9999-12-31 23:59:59"), Some(FAR_FUTURE));
    }

    #[test]
    fn rejects_non_timestamps() {
        for text in [
            "",
            "hello",
            "2016-13-01",
            "2016-06-21X13:16:14",
            "2016-06-21T13:16",
            "2016-06-21T13:16:14+2",
            "12345678901",
        ] {
            assert_eq!(parse_timestamp(text), None, "{text}");
        }
    }

    #[test]
    fn formats_round_trip() {
        for millis in [0, 1, 999, 1_466_514_974_123, FAR_FUTURE, -86_400_001] {
            assert_eq!(parse_timestamp(&format_timestamp(millis)), Some(millis));
        }
        assert_eq!(format_timestamp(FAR_FUTURE), "9999-12-31T23:59:59.000Z");
    }
}
