//! Working-day arithmetic from the policy's calendar: weekends, public
//! holidays, and make-up working days on a weekend (调休).

use std::collections::HashSet;

use chrono::{Datelike, Duration, NaiveDate, NaiveTime, Weekday};
use chrono_tz::Tz;

use crate::ingest::fields::local_to_utc;
use crate::policy::{parse_date, weekday, Policy};

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
