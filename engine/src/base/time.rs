//! Instants and dates: every instant is UTC milliseconds since the Unix epoch, every date
//! a day number since 1970-01-01.

use time::{format_description::well_known::Rfc3339, Date, Month, OffsetDateTime};

/// Milliseconds since the Unix epoch, UTC.
pub type Millis = i64;
/// Days since 1970-01-01.
pub type DayNumber = i32;

/// Milliseconds in one day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Parses an RFC 3339 instant into milliseconds (sub-millisecond digits are truncated).
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    let t = OffsetDateTime::parse(s.trim(), &Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

/// Formats milliseconds as RFC 3339 UTC.
pub fn format_rfc3339(ms: Millis) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// The current time.
pub fn now_millis() -> Millis {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Parses a strict `YYYY-MM-DD` date.
pub fn parse_date(s: &str) -> Option<DayNumber> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i32> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let month = Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = Date::from_calendar_date(y, month, u8::try_from(d).ok()?).ok()?;
    Some(date_to_day(date))
}

/// Converts a calendar date into a day number.
pub fn date_to_day(date: Date) -> DayNumber {
    date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY
}

/// Converts a day number into a calendar date.
pub fn day_to_date(day: DayNumber) -> Date {
    day.checked_add(UNIX_EPOCH_JULIAN_DAY)
        .and_then(|j| Date::from_julian_day(j).ok())
        .unwrap_or(if day < 0 { Date::MIN } else { Date::MAX })
}

/// Formats a day number as `YYYY-MM-DD`.
pub fn format_date(day: DayNumber) -> String {
    let d = day_to_date(day);
    format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day())
}

/// The calendar date `(year, month 1-12, day 1-31)` of a day number.
pub fn civil_from_day(day: DayNumber) -> (i32, u8, u8) {
    let d = day_to_date(day);
    (d.year(), d.month() as u8, d.day())
}

/// The day number of a calendar date, with the day clamped to the month's last day
/// (`(2027, 2, 29)` gives 2027-02-28); `None` when the year is outside 0000-9999.
pub fn day_from_civil_clamped(year: i32, month: u8, day: u8) -> Option<DayNumber> {
    if !(0..=9999).contains(&year) {
        return None;
    }
    let month = Month::try_from(month).ok()?;
    let last = month.length(year);
    Date::from_calendar_date(year, month, day.clamp(1, last))
        .ok()
        .map(date_to_day)
}

/// The day an instant falls on.
pub fn day_of(ms: Millis) -> DayNumber {
    // Saturates far outside any date a record or query can carry (±5.8 million years)
    // instead of wrapping.
    let day = ms.div_euclid(MS_PER_DAY);
    DayNumber::try_from(day).unwrap_or(if day < 0 {
        DayNumber::MIN
    } else {
        DayNumber::MAX
    })
}

const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_of_saturates_instead_of_wrapping() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(-1), -1);
        assert_eq!(day_of(i64::MAX), DayNumber::MAX);
        assert_eq!(day_of(i64::MIN), DayNumber::MIN);
    }

    #[test]
    fn dates_and_instants() {
        assert_eq!(parse_date("1970-01-02"), Some(1));
        assert_eq!(parse_date("1969-12-31"), Some(-1));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2024-2-29"), None);
        assert_eq!(format_date(parse_date("2024-02-29").unwrap()), "2024-02-29");
        assert_eq!(parse_rfc3339("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_rfc3339("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(day_of(-1), -1);
        assert_eq!(format_rfc3339(1500), "1970-01-01T00:00:01.5Z");
    }
}
