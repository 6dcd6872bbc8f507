//! Birth dates for Meta's `DOBY`/`DOBM`/`DOBD` (export.md, birth_date row): the accepted
//! layouts, the US month-first rule, and the validity bounds.

/// A valid date of birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthDate {
    /// Year (1900 or later).
    pub year: i32,
    /// Month 1–12.
    pub month: u32,
    /// Day 1–31.
    pub day: u32,
}

impl BirthDate {
    /// `YYYY`.
    pub fn doby(&self) -> String {
        format!("{:04}", self.year)
    }
    /// `MM`.
    pub fn dobm(&self) -> String {
        format!("{:02}", self.month)
    }
    /// `DD`.
    pub fn dobd(&self) -> String {
        format!("{:02}", self.day)
    }
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Parses a cleaned birth date. `region` (alpha-2, upper-case) decides `A/B/YYYY`
/// ambiguity; `today` is the current day number (days since 1970-01-01).
pub fn parse_birth_date(
    s: &str,
    region: Option<&str>,
    today: i32,
) -> Result<BirthDate, &'static str> {
    let s = s.trim();
    let (year, month, day) = if s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()) {
        (num(&s[0..4])?, num(&s[4..6])?, num(&s[6..8])?)
    } else if s.chars().any(|c| c.is_ascii_alphabetic()) {
        with_month_name(s)?
    } else {
        numeric(s, region)?
    };
    let year = i32::try_from(year).map_err(|_| "year out of range")?;
    if year < 1900 {
        return Err("year before 1900");
    }
    if year > 9999 || !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err("impossible date");
    }
    let number = crate::base::time::day_from_civil_clamped(year, month as u8, day as u8)
        .ok_or("impossible date")?;
    if number > today {
        return Err("date in the future");
    }
    Ok(BirthDate { year, month, day })
}

fn num(s: &str) -> Result<u32, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || s.len() > 4 {
        return Err("not a date");
    }
    s.parse().map_err(|_| "not a date")
}

/// `YYYY-MM-DD` (or `/`, `.`; unpadded), `D.M.YYYY`, `A/B/YYYY`, `A-B-YYYY`.
fn numeric(s: &str, region: Option<&str>) -> Result<(u32, u32, u32), &'static str> {
    let sep = s
        .chars()
        .find(|c| matches!(c, '-' | '/' | '.'))
        .ok_or("not a date")?;
    let parts: Vec<&str> = s.split(sep).collect();
    let [a, b, c] = parts[..] else {
        return Err("not a date");
    };
    if a.len() == 4 {
        return Ok((num(a)?, num(b)?, num(c)?));
    }
    if c.len() != 4 {
        return Err("two-digit or missing year");
    }
    let (a, b, year) = (num(a)?, num(b)?, num(c)?);
    if sep == '.' {
        return Ok((year, b, a));
    }
    if a > 12 {
        Ok((year, b, a))
    } else if b > 12 {
        Ok((year, a, b))
    } else {
        match region {
            Some("US") => Ok((year, a, b)),
            Some(_) => Ok((year, b, a)),
            None => Err("ambiguous day and month without a region"),
        }
    }
}

/// `7th March 1985`, `March 7, 1985`, `7 Mar 1985`.
fn with_month_name(s: &str) -> Result<(u32, u32, u32), &'static str> {
    let lower = s.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| c.is_whitespace() || c == ',' || c == '-' || c == '/' || c == '.')
        .filter(|w| !w.is_empty())
        .collect();
    let (mut year, mut month, mut day) = (None, None, None);
    for word in words {
        if let Some(m) = MONTHS
            .iter()
            .position(|name| *name == word || (word.len() >= 3 && name.starts_with(word)))
        {
            month = Some(m as u32 + 1);
            continue;
        }
        let digits = word.trim_end_matches(['s', 't', 'n', 'd', 'r', 'h']);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("not a date");
        }
        if digits.len() == 4 {
            year = Some(num(digits)?);
        } else if digits.len() <= 2 && day.is_none() {
            day = Some(num(digits)?);
        } else {
            return Err("two-digit or missing year");
        }
    }
    match (year, month, day) {
        (Some(y), Some(m), Some(d)) => Ok((y, m, d)),
        _ => Err("not a date"),
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TODAY: i32 = 20_779; // 2026-11-22

    fn ymd(s: &str, region: Option<&str>) -> Result<(i32, u32, u32), &'static str> {
        parse_birth_date(s, region, TODAY).map(|d| (d.year, d.month, d.day))
    }

    #[test]
    fn accepted_layouts() {
        assert_eq!(ymd("1985-03-07", None), Ok((1985, 3, 7)));
        assert_eq!(ymd("1985/3/7", None), Ok((1985, 3, 7)));
        assert_eq!(ymd("1985.03.07", None), Ok((1985, 3, 7)));
        assert_eq!(ymd("19850307", None), Ok((1985, 3, 7)));
        assert_eq!(ymd("7.3.1985", None), Ok((1985, 3, 7)));
        assert_eq!(ymd("03/07/1985", Some("US")), Ok((1985, 3, 7)));
        assert_eq!(ymd("07/03/1985", Some("NL")), Ok((1985, 3, 7)));
        assert_eq!(ymd("07-03-1985", Some("GB")), Ok((1985, 3, 7)));
        assert_eq!(
            ymd("25/03/1985", Some("US")),
            Ok((1985, 3, 25)),
            "over 12 is the day"
        );
        assert_eq!(ymd("03/25/1985", None), Ok((1985, 3, 25)));
        assert_eq!(ymd("7th March 1985", None), Ok((1985, 3, 7)));
        assert_eq!(ymd("March 7, 1985", None), Ok((1985, 3, 7)));
        assert_eq!(ymd("1st Feb 2000", None), Ok((2000, 2, 1)));
        assert_eq!(ymd("29 February 2024", None), Ok((2024, 2, 29)));
    }

    #[test]
    fn rejected_dates() {
        assert!(
            ymd("03/07/1985", None).is_err(),
            "ambiguous without a region"
        );
        assert!(ymd("07/03/85", Some("NL")).is_err(), "two-digit year");
        assert!(ymd("1985-02-30", None).is_err());
        assert!(ymd("29 February 2023", None).is_err());
        assert!(ymd("1899-12-31", None).is_err());
        assert!(ymd("2030-01-01", None).is_err(), "future");
        assert!(ymd("1985-13-01", None).is_err());
        assert!(ymd("yesterday", None).is_err());
        assert!(ymd("1985", None).is_err());
    }
}
