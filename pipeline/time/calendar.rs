//! Working-day arithmetic from the policy's calendar: weekends, public
//! holidays, and make-up working days on a weekend (调休).

use std::collections::HashSet;

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Offset, TimeZone, Weekday};
use chrono_tz::Tz;
use polars::prelude::PlHashMap;

use crate::policy::{parse_date, weekday, Policy};
use crate::time::local_to_utc;

#[derive(Debug, Clone)]
pub struct WorkCalendar {
    weekend: HashSet<Weekday>,
    holidays: HashSet<NaiveDate>,
    workdays: HashSet<NaiveDate>,
}

impl WorkCalendar {
    pub fn from_policy(p: &Policy) -> WorkCalendar {
        WorkCalendar {
            weekend: p
                .calendar
                .weekend
                .iter()
                .filter_map(|d| weekday(d))
                .collect(),
            holidays: p
                .calendar
                .holidays
                .iter()
                .filter_map(|d| parse_date(d))
                .collect(),
            workdays: p
                .calendar
                .workdays
                .iter()
                .filter_map(|d| parse_date(d))
                .collect(),
        }
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        !self.holidays.contains(&d) && !self.weekend.contains(&d.weekday())
    }

    /// The `n`th working day after `day` (n >= 1).
    pub fn add_working_days(&self, day: NaiveDate, n: u32) -> NaiveDate {
        let mut d = day;
        let mut left = n;
        while left > 0 {
            d += Duration::days(1);
            if self.is_working_day(d) {
                left -= 1;
            }
        }
        d
    }

    /// Deadline `n` working days after the local day of `received_us`: the
    /// last microsecond of that working day, local time, as UTC micros.
    pub fn deadline(&self, received_us: i64, n: u32, tz: Tz) -> i64 {
        let local = chrono::DateTime::from_timestamp_micros(received_us)
            .expect("valid timestamp")
            .with_timezone(&tz)
            .date_naive();
        let due_day = self.add_working_days(local, n);
        let next_midnight = (due_day + Duration::days(1)).and_time(NaiveTime::MIN);
        // Midnight can fall in a DST gap in some zones; then use 01:00.
        local_to_utc(next_midnight, tz)
            .or_else(|| local_to_utc(next_midnight + Duration::hours(1), tz))
            .expect("a local time an hour after a gap exists")
            - 1
    }
}

const HOUR_US: i64 = 3_600_000_000;

/// Local calendar days of UTC instants (microseconds), for columns of
/// millions of them: each UTC hour's offset is looked up in the time zone
/// once, not per instant, and kept in a table by hour (rows in another
/// order than time, such as cases by id, meet a different hour at almost
/// every row). An hour in which the offset changes (a DST transition) is
/// looked up per instant.
pub struct LocalDays {
    tz: Tz,
    /// Offsets in seconds of the hours `first..first + TABLE_HOURS`, by
    /// hour ([`UNKNOWN`] until looked up, [`CHANGES`] if it changes within
    /// the hour); made when the first instant comes, around its hour.
    table: Vec<i32>,
    first: i64,
    /// Offsets of the hours outside the table (`None` if it changes within).
    others: PlHashMap<i64, Option<i64>>,
}

/// The hours the table covers: 2^16, seven and a half years.
const TABLE_HOURS: i64 = 1 << 16;
const UNKNOWN: i32 = i32::MIN;
const CHANGES: i32 = i32::MIN + 1;

impl LocalDays {
    pub fn new(tz: Tz) -> LocalDays {
        LocalDays {
            tz,
            table: Vec::new(),
            first: 0,
            others: PlHashMap::default(),
        }
    }

    /// The local day of `us`: the same as [`crate::time::local_day`].
    pub fn day(&mut self, us: i64) -> NaiveDate {
        NaiveDate::from_num_days_from_ce_opt(self.day_number(us))
            .expect("a day of a valid timestamp")
    }

    /// The local day of `us` as chrono counts days (0001-01-01 is day 1;
    /// [`NaiveDate::num_days_from_ce`]): a number is cheaper than a date to
    /// make, compare and hash, for callers that meet each day many times.
    pub fn day_number(&mut self, us: i64) -> i32 {
        let tz = self.tz;
        let hour = us.div_euclid(HOUR_US);
        if self.table.is_empty() {
            self.first = hour - TABLE_HOURS / 2;
            self.table = vec![UNKNOWN; TABLE_HOURS as usize];
        }
        let fixed = match usize::try_from(hour - self.first) {
            Ok(i) if i < self.table.len() => {
                if self.table[i] == UNKNOWN {
                    // An offset is within a day: it fits an i32.
                    self.table[i] = hour_offset(tz, hour).map_or(CHANGES, |secs| secs as i32);
                }
                (self.table[i] != CHANGES).then_some(self.table[i] as i64)
            }
            _ => *self
                .others
                .entry(hour)
                .or_insert_with(|| hour_offset(tz, hour)),
        };
        match fixed {
            Some(secs) => {
                (us.div_euclid(1_000_000) + secs).div_euclid(86_400) as i32
                    + UNIX_EPOCH_DAYS_FROM_CE
            }
            None => crate::time::local_day(us, tz).num_days_from_ce(),
        }
    }
}

/// The offset in seconds of the UTC hour `hour` (hours since 1970), or
/// `None` if it changes within the hour.
fn hour_offset(tz: Tz, hour: i64) -> Option<i64> {
    let offset = |us: i64| -> Option<i64> {
        let t = chrono::DateTime::from_timestamp_micros(us)?;
        Some(
            tz.offset_from_utc_datetime(&t.naive_utc())
                .fix()
                .local_minus_utc() as i64,
        )
    };
    let first = offset(hour * HOUR_US)?;
    (offset(hour * HOUR_US + HOUR_US - 1)? == first).then_some(first)
}

/// 1970-01-01 counted in days from 0001-01-01 = day 1 (chrono's CE count).
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{load_text, PolicySource, DEFAULT_POLICY};

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn holidays_and_make_up_days_follow_the_policy() {
        let p = load_text(DEFAULT_POLICY.into(), PolicySource::Embedded).unwrap();
        let cal = WorkCalendar::from_policy(&p.policy);
        // Thu 30 Sep 2026 + 1 working day: 1-7 Oct are National Day
        // holidays, Thu 8 and Fri 9 Oct work, Sat 10 Oct is a make-up day.
        assert_eq!(cal.add_working_days(d("2026-09-30"), 1), d("2026-10-08"));
        assert_eq!(cal.add_working_days(d("2026-09-30"), 3), d("2026-10-10"));
        assert_eq!(cal.add_working_days(d("2026-09-30"), 4), d("2026-10-12"));
        // An ordinary week: Fri 6 Nov 2026 + 1 = Mon 9 Nov.
        assert_eq!(cal.add_working_days(d("2026-11-06"), 1), d("2026-11-09"));
    }

    #[test]
    fn local_days_match_the_time_zone_around_transitions() {
        // Every minute of the days around DST transitions, in zones with
        // whole-hour (New York), half-hour (Lord Howe: +10:30 to +11) and
        // no transitions (Shanghai, Kolkata at +5:30), and before 1970.
        let zones = [
            chrono_tz::America::New_York,
            chrono_tz::Australia::Lord_Howe,
            chrono_tz::Asia::Shanghai,
            chrono_tz::Asia::Kolkata,
        ];
        let starts = [
            "2026-03-07T00:00:00Z", // New York springs forward 8 Mar
            "2026-10-31T00:00:00Z", // New York falls back 1 Nov
            "2026-04-03T00:00:00Z", // Lord Howe's DST ends 5 Apr
            "2026-10-02T00:00:00Z", // Lord Howe's DST starts 4 Oct
            // Decades from the hours met first: outside the table made
            // around them, so looked up in the map.
            "1969-12-30T00:00:00Z",
        ];
        for tz in zones {
            let mut days = LocalDays::new(tz);
            for start in starts {
                let t0 = chrono::DateTime::parse_from_rfc3339(start)
                    .unwrap()
                    .timestamp_micros();
                for minute in 0..4 * 24 * 60 {
                    for within in [0, 59_999_999] {
                        let us = t0 + minute * 60_000_000 + within;
                        let expected = chrono::DateTime::from_timestamp_micros(us)
                            .unwrap()
                            .with_timezone(&tz)
                            .date_naive();
                        assert_eq!(days.day(us), expected, "{tz} at {us}");
                        assert_eq!(days.day_number(us), expected.num_days_from_ce());
                    }
                }
            }
        }
        // By hand: 2026-11-01T04:30Z is 00:30 EDT (UTC-4) on 1 Nov, and
        // 2026-11-01T03:59Z is 23:59 EDT on 31 Oct.
        let mut ny = LocalDays::new(chrono_tz::America::New_York);
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        assert_eq!(ny.day(at("2026-11-01T04:30:00Z")), d("2026-11-01"));
        assert_eq!(ny.day(at("2026-11-01T03:59:00Z")), d("2026-10-31"));
    }

    #[test]
    fn deadline_is_the_end_of_the_local_day() {
        let p = load_text(DEFAULT_POLICY.into(), PolicySource::Embedded).unwrap();
        let cal = WorkCalendar::from_policy(&p.policy);
        let tz = chrono_tz::Asia::Shanghai;
        // Received Mon 9 Nov 2026 10:00 local; 2 working days -> end of Wed
        // 11 Nov local = 2026-11-11T15:59:59.999999Z.
        let received = local_to_utc(d("2026-11-09").and_hms_opt(10, 0, 0).unwrap(), tz).unwrap();
        let due = cal.deadline(received, 2, tz);
        let expected = chrono::DateTime::parse_from_rfc3339("2026-11-11T16:00:00Z")
            .unwrap()
            .timestamp_micros()
            - 1;
        assert_eq!(due, expected);
    }
}
