//! Birth dates for Meta's `DOBY`/`DOBM`/`DOBD` (export.md, birth_date row): the accepted
//! layouts, the US month-first rule, and the validity bounds.

/// A valid date of birth (a year alone gives only the year).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BirthDate {
    /// Year (1900 or later).
    pub year: i32,
    /// Month 1–12 (`None` for a year alone).
    pub month: Option<u32>,
    /// Day 1–31 (`None` for a year alone).
    pub day: Option<u32>,
}

impl BirthDate {
    /// `YYYY`.
    pub fn doby(&self) -> String {
        format!("{:04}", self.year)
    }
    /// `MM`, when known.
    pub fn dobm(&self) -> Option<String> {
        self.month.map(|m| format!("{m:02}"))
    }
    /// `DD`, when known.
    pub fn dobd(&self) -> Option<String> {
        self.day.map(|d| format!("{d:02}"))
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
    // CJK dates (`1985年3月7日`) read like `1985-3-7`; a date-time gives its date.
    let cjk = s.trim().replace(['年', '月'], "-").replace('日', "");
    let s = date_part(&cjk);
    if s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) {
        let year: i32 = s.parse().map_err(|_| "not a date")?;
        let (this_year, _, _) = crate::base::time::civil_from_day(today);
        return match year {
            y if y < 1900 => Err("year before 1900"),
            y if y > this_year => Err("date in the future"),
            _ => Ok(BirthDate {
                year,
                month: None,
                day: None,
            }),
        };
    }
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
    Ok(BirthDate {
        year,
        month: Some(month),
        day: Some(day),
    })
}

/// The date of a date-time (`1985-03-07T00:00:00Z`, `1985-03-07 00:00:00`): what comes
/// before a `T` or a space that starts a time; anything else as it is.
fn date_part(s: &str) -> &str {
    match s.find(['T', ' ']) {
        Some(i)
            if !s[..i].chars().any(char::is_alphabetic)
                && s[i + 1..].starts_with(|c: char| c.is_ascii_digit())
                && s[i + 1..].contains(':') =>
        {
            &s[..i]
        }
        _ => s,
    }
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
        parse_birth_date(s, region, TODAY).map(|d| (d.year, d.month.unwrap(), d.day.unwrap()))
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
        // export.md "Validity in detail": date-times, CJK separators, a year alone.
        assert_eq!(ymd("1985-03-07T00:00:00Z", None), Ok((1985, 3, 7)));
        assert_eq!(ymd("1985-03-07 00:00:00", None), Ok((1985, 3, 7)));
        assert_eq!(ymd("07/03/1985 13:45", Some("NL")), Ok((1985, 3, 7)));
        assert_eq!(ymd("1985年3月7日", None), Ok((1985, 3, 7)));
        let year_only = parse_birth_date("1985", None, TODAY).unwrap();
        assert_eq!(
            (year_only.doby(), year_only.dobm(), year_only.dobd()),
            ("1985".into(), None, None)
        );
        assert!(parse_birth_date("1899", None, TODAY).is_err());
        assert!(
            parse_birth_date("2027", None, TODAY).is_err(),
            "future year"
        );
        assert!(parse_birth_date("1985-03-07Tnoon", None, TODAY).is_err());
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
        assert!(ymd("85", None).is_err(), "a two-digit year alone");
        assert!(ymd("19851", None).is_err());
    }
}
