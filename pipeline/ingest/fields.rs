//! Parsing of single field values: timestamps (with and without offset),
//! dates, numbers, booleans. Each parser returns a reject reason and a
//! sentence saying what was expected, never a panic.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use chrono_tz::Tz;

use super::Reason;
use crate::time::{days_since_epoch, local_to_utc, Micros};

/// A parse failure: the reason code and a message for the user.
pub type FieldError = (Reason, String);

/// Naive (offset-less) formats accepted besides RFC 3339. Spreadsheet exports
/// often use a space instead of `T`, slashes, or drop the seconds.
const NAIVE_FORMATS: [&str; 6] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S%.f",
    "%Y/%m/%d %H:%M",
];

/// Parses an RFC 3339 timestamp, or a local time without offset in `tz`.
/// A local time that does not exist (skipped by a daylight-saving change) is
/// rejected; an ambiguous one (repeated hour) takes the earlier instant.
pub fn parse_timestamp(s: &str, tz: Tz) -> Result<Micros, FieldError> {
    let naive = match plain_local(s) {
        Some(naive) => Some(naive),
        None => {
            if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
                return Ok(dt.timestamp_micros());
            }
            // RFC 3339 with a space separator, as many databases print it.
            if s.len() > 10 && s.as_bytes()[10] == b' ' {
                let mut t = s.to_string();
                t.replace_range(10..11, "T");
                if let Ok(dt) = DateTime::parse_from_rfc3339(&t) {
                    return Ok(dt.timestamp_micros());
                }
            }
            NAIVE_FORMATS
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .or_else(|| {
                    // A bare date is midnight local time.
                    parse_date_str(s).and_then(|d| d.and_hms_opt(0, 0, 0))
                })
        }
    };
    let Some(naive) = naive else {
        return Err((
            Reason::BadTimestamp,
            format!(
                "`{}` is not a timestamp; expected RFC 3339 such as 2026-03-01T09:30:00+08:00, or local time 2026-03-01 09:30:00",
                clip(s)
            ),
        ));
    };
    local_to_utc(naive, tz).ok_or_else(|| {
        (
            Reason::NonexistentLocalTime,
            format!(
                "`{}` does not exist in {} (the clocks skipped it at a daylight-saving change); give an offset",
                clip(s),
                tz.name()
            ),
        )
    })
}

/// `2026-03-01 09:30:00` or `2026-03-01T09:30:00`, the local form most
/// exports write, read without chrono's format parser (which reads its
/// format string again on every call). Anything else, or a field out of
/// range (a leap second included), is `None` and left to the general
/// formats, which read these two forms the same way.
fn plain_local(s: &str) -> Option<NaiveDateTime> {
    let b = s.as_bytes();
    if b.len() != 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b' ' | b'T')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<u32> {
        b[from..to].iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    NaiveDate::from_ymd_opt(num(0, 4)? as i32, num(5, 7)?, num(8, 10)?)?.and_hms_opt(
        num(11, 13)?,
        num(14, 16)?,
        num(17, 19)?,
    )
}

fn parse_date_str(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y/%m/%d"))
        .ok()
}

/// Days since 1970-01-01 of an ISO date (`2026-03-01`, also `2026/03/01`).
pub fn parse_date(s: &str) -> Result<i32, FieldError> {
    parse_date_str(s).map(days_since_epoch).ok_or_else(|| {
        (
            Reason::BadDate,
            format!("`{}` is not a date; expected 2026-03-01", clip(s)),
        )
    })
}

/// A finite decimal number. `-0` becomes `0`.
pub fn parse_number(s: &str) -> Result<f64, FieldError> {
    let v: f64 = s
        .parse()
        .map_err(|_| (Reason::BadNumber, format!("`{}` is not a number", clip(s))))?;
    if !v.is_finite() {
        return Err((
            Reason::BadNumber,
            format!("`{}` is not a finite number", clip(s)),
        ));
    }
    Ok(if v == 0.0 { 0.0 } else { v })
}

/// Booleans as exports spell them: true/false, 1/0, yes/no, y/n, 是/否.
pub fn parse_bool(s: &str) -> Result<bool, FieldError> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" | "是" => Ok(true),
        "false" | "f" | "0" | "no" | "n" | "否" => Ok(false),
        _ => Err((
            Reason::BadBool,
            format!(
                "`{}` is not a yes/no value; expected true/false, 1/0, yes/no or 是/否",
                clip(s)
            ),
        )),
    }
}

/// Shortens a value for a message; the full raw record is kept in rejects.
pub fn clip(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{date_from_days, month_end, month_of_day};

    const SHANGHAI: Tz = chrono_tz::Asia::Shanghai;
    const NEW_YORK: Tz = chrono_tz::America::New_York;

    #[test]
    fn offset_and_local_forms_agree() {
        // 2026-03-01 09:30 in Shanghai (UTC+8) is 01:30 UTC:
        // 1772328600 s after the epoch (2026-03-01T00:00Z = 1772323200).
        let expected = 1_772_328_600_000_000;
        assert_eq!(
            parse_timestamp("2026-03-01T09:30:00+08:00", SHANGHAI).unwrap(),
            expected
        );
        assert_eq!(
            parse_timestamp("2026-03-01T01:30:00Z", SHANGHAI).unwrap(),
            expected
        );
        assert_eq!(
            parse_timestamp("2026-03-01 09:30:00", SHANGHAI).unwrap(),
            expected
        );
        assert_eq!(
            parse_timestamp("2026/03/01 09:30", SHANGHAI).unwrap(),
            expected
        );
    }

    #[test]
    fn the_plain_local_form_reads_as_the_general_formats_do() {
        // chrono's format parser: what read every one of these before.
        let general = |s: &str| {
            NAIVE_FORMATS
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        };
        for s in [
            "2026-03-01 09:30:00",
            "2026-03-01T09:30:00",
            "2024-02-29 23:59:59",
            "0001-01-01 00:00:00",
            "9999-12-31T23:59:59",
        ] {
            assert!(plain_local(s).is_some(), "{s}");
            assert_eq!(plain_local(s), general(s), "{s}");
        }
        // Left to the general path: fields out of range, a leap second,
        // other shapes.
        for s in [
            "2026-02-29 09:30:00",
            "2026-13-01 09:30:00",
            "2026-03-01 24:00:00",
            "2026-03-01 09:60:00",
            "2026-12-31 23:59:60",
            "2026-03-01 9:30:00 ",
            "2026-03-01+09:30:00",
            "2026-03-0a 09:30:00",
            "2026-03-01 09:30",
        ] {
            assert_eq!(plain_local(s), None, "{s}");
        }
        // The leap second is still read, by chrono, as before.
        assert!(general("2026-12-31 23:59:60").is_some());
        assert!(parse_timestamp("2026-12-31 23:59:60", SHANGHAI).is_ok());
    }

    #[test]
    fn dst_gap_is_rejected_and_overlap_takes_earlier() {
        // 2026-03-08 02:30 does not exist in New York (clocks jump 02:00 -> 03:00).
        let err = parse_timestamp("2026-03-08 02:30:00", NEW_YORK).unwrap_err();
        assert_eq!(err.0, Reason::NonexistentLocalTime);
        // 2026-11-01 01:30 happens twice; the earlier is EDT (UTC-4) = 05:30Z.
        let us = parse_timestamp("2026-11-01 01:30:00", NEW_YORK).unwrap();
        assert_eq!(
            us,
            parse_timestamp("2026-11-01T05:30:00Z", NEW_YORK).unwrap()
        );
    }

    #[test]
    fn month_of_late_evening_on_last_day() {
        // 23:30 on 31 January local is 15:30Z the same day: still January.
        let us = parse_timestamp("2026-01-31 23:30:00", SHANGHAI).unwrap();
        let month_in = |tz| month_of_day(crate::time::calendar::LocalDays::new(tz).day(us));
        assert_eq!(month_in(SHANGHAI), "2026-01");
        // In Tokyo (UTC+9) the same instant is 00:30 on 1 February.
        assert_eq!(month_in(chrono_tz::Asia::Tokyo), "2026-02");
    }

    #[test]
    fn numbers_reject_non_finite() {
        assert_eq!(parse_number("1e309").unwrap_err().0, Reason::BadNumber);
        assert_eq!(parse_number("NaN").unwrap_err().0, Reason::BadNumber);
        assert_eq!(parse_number("-0").unwrap().to_bits(), 0.0f64.to_bits());
        assert_eq!(parse_number("4.5").unwrap(), 4.5);
    }

    #[test]
    fn leap_day_and_month_end() {
        let d = parse_date("2028-02-29").unwrap();
        assert_eq!(date_from_days(month_end(d)).to_string(), "2028-02-29");
        assert!(parse_date("2026-02-29").is_err());
        let d = parse_date("2026-12-05").unwrap();
        assert_eq!(date_from_days(month_end(d)).to_string(), "2026-12-31");
    }
}
