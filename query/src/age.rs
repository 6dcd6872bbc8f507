//! The virtual `age` field as ranges of `birth_date` day numbers.
//!
//! Age at date `t` is the whole years completed: `t.year - b.year`, minus one when
//! `(t.month, t.day) < (b.month, b.day)`. So a 29 February birthday completes a year on
//! 1 March in other years, as the spec says. Age is monotone in the birth date, so
//! `age >= n` is `birth_date <= cutoff(n)` where `cutoff(n)` is `t` moved back `n` years
//! (29 February clamped to 28 February).

use crate::parser::CmpOp;
use engine::{civil_from_day, day_from_civil_clamped, DayNumber};

/// Below every storable date.
const BEFORE_ALL: i64 = i32::MIN as i64;
/// Above every storable date.
const AFTER_ALL: i64 = i32::MAX as i64;

/// The latest birth date with `age >= n` at `today`.
fn cutoff(today: DayNumber, n: i64) -> i64 {
    let (y, m, d) = civil_from_day(today);
    let year = i64::from(y) - n;
    match i32::try_from(year)
        .ok()
        .and_then(|y| day_from_civil_clamped(y, m, d))
    {
        Some(day) => i64::from(day),
        None if year < 0 => BEFORE_ALL,
        None => AFTER_ALL,
    }
}

/// Ages beyond this are treated as this (no date is that far away).
const AGE_CLAMP: f64 = 100_000.0;

fn clamp(x: f64) -> i64 {
    x.clamp(-AGE_CLAMP, AGE_CLAMP) as i64
}

/// Inclusive birth-date range for `age op x` at `today`; `None` when nothing can match.
/// (`!=` is the caller's: exists minus `=`.)
pub(crate) fn birth_range(today: DayNumber, op: CmpOp, x: f64) -> Option<(i64, i64)> {
    let at_least = |n: i64| (BEFORE_ALL, cutoff(today, n));
    let at_most = |n: i64| (cutoff(today, n + 1) + 1, AFTER_ALL);
    let (lo, hi) = match op {
        CmpOp::Ge => at_least(clamp(x.ceil())),
        CmpOp::Gt => at_least(clamp(x.floor()) + 1),
        CmpOp::Le => at_most(clamp(x.floor())),
        CmpOp::Lt => at_most(clamp(x.ceil()) - 1),
        CmpOp::Eq | CmpOp::Ne => {
            if x.fract() != 0.0 {
                return None;
            }
            let n = clamp(x);
            (cutoff(today, n + 1) + 1, cutoff(today, n))
        }
    };
    (lo <= hi).then_some((lo, hi))
}

/// Whole years completed at `today` by someone born on `birth` (the reference meaning).
pub fn age_at(birth: DayNumber, today: DayNumber) -> i64 {
    let (by, bm, bd) = civil_from_day(birth);
    let (ty, tm, td) = civil_from_day(today);
    i64::from(ty - by) - i64::from((tm, td) < (bm, bd))
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::parse_date;

    fn day(s: &str) -> DayNumber {
        parse_date(s).unwrap()
    }

    fn matches(birth: &str, today: &str, op: CmpOp, x: f64) -> bool {
        birth_range(day(today), op, x)
            .is_some_and(|(lo, hi)| (lo..=hi).contains(&i64::from(day(birth))))
    }

    #[test]
    fn leap_day_birthday_completes_on_first_of_march() {
        assert_eq!(age_at(day("2000-02-29"), day("2027-02-28")), 26);
        assert_eq!(age_at(day("2000-02-29"), day("2027-03-01")), 27);
        assert_eq!(age_at(day("2000-02-29"), day("2028-02-29")), 28);
        assert!(!matches("2000-02-29", "2027-02-28", CmpOp::Ge, 27.0));
        assert!(matches("2000-02-29", "2027-03-01", CmpOp::Ge, 27.0));
        assert!(matches("2000-02-29", "2028-02-29", CmpOp::Eq, 28.0));
    }

    #[test]
    fn ranges_agree_with_the_direct_age_around_birthdays() {
        let births = [
            "1990-04-12",
            "2000-02-29",
            "1999-12-31",
            "2001-01-01",
            "2000-03-01",
        ];
        let todays = [
            "2026-04-11",
            "2026-04-12",
            "2028-02-28",
            "2028-02-29",
            "2027-03-01",
        ];
        let ops = [CmpOp::Eq, CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge];
        for b in births {
            for t in todays {
                let age = age_at(day(b), day(t));
                for x in [
                    age as f64 - 1.0,
                    age as f64,
                    age as f64 + 1.0,
                    age as f64 + 0.5,
                ] {
                    for op in ops {
                        assert_eq!(
                            matches(b, t, op, x),
                            op.holds(age as f64, x),
                            "born {b}, at {t}: age {age} {} {x}",
                            op.symbol()
                        );
                    }
                }
            }
        }
    }
}
