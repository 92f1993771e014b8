//! Reporting periods: ISO weeks, months, quarters, half-years and years,
//! cut in the policy's time zone, with the labels the marts use
//! (`2026-W12`, `2026-03`, `2026-Q1`, `2026-H1`, `2026`).

use chrono::{Datelike, Duration, NaiveDate, Weekday};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Grain {
    Week,
    Month,
    Quarter,
    /// Half-years (January-June, July-December): managers' 360-degree
    /// feedback only, so not in [`Grain::ALL`].
    Half,
    Year,
}

impl Grain {
    pub const ALL: [Grain; 4] = [Grain::Week, Grain::Month, Grain::Quarter, Grain::Year];

    pub fn as_str(self) -> &'static str {
        match self {
            Grain::Week => "week",
            Grain::Month => "month",
            Grain::Quarter => "quarter",
            Grain::Half => "half",
            Grain::Year => "year",
        }
    }

    pub fn parse(s: &str) -> Option<Grain> {
        Grain::ALL
            .into_iter()
            .chain([Grain::Half])
            .find(|g| g.as_str() == s)
    }
}

/// One period of one grain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    pub grain: Grain,
    pub start: NaiveDate,
    /// Last day, inclusive.
    pub end: NaiveDate,
}

impl Period {
    /// The period of `grain` that contains `day`.
    pub fn containing(grain: Grain, day: NaiveDate) -> Period {
        let (start, end) = match grain {
            Grain::Week => {
                let start = day - Duration::days(day.weekday().num_days_from_monday() as i64);
                (start, start + Duration::days(6))
            }
            Grain::Month => {
                let start = day.with_day(1).expect("day 1 exists");
                (start, add_months(start, 1) - Duration::days(1))
            }
            Grain::Quarter => {
                let m0 = (day.month0() / 3) * 3;
                let start = NaiveDate::from_ymd_opt(day.year(), m0 + 1, 1).expect("valid month");
                (start, add_months(start, 3) - Duration::days(1))
            }
            Grain::Half => {
                let m0 = (day.month0() / 6) * 6;
                let start = NaiveDate::from_ymd_opt(day.year(), m0 + 1, 1).expect("valid month");
                (start, add_months(start, 6) - Duration::days(1))
            }
            Grain::Year => (
                NaiveDate::from_ymd_opt(day.year(), 1, 1).expect("valid date"),
                NaiveDate::from_ymd_opt(day.year(), 12, 31).expect("valid date"),
            ),
        };
        Period { grain, start, end }
    }

    /// `2026-W12`, `2026-03`, `2026-Q1`, `2026-H1` or `2026`.
    pub fn label(&self) -> String {
        match self.grain {
            Grain::Week => {
                let w = self.start.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            Grain::Month => self.start.format("%Y-%m").to_string(),
            Grain::Quarter => format!("{}-Q{}", self.start.year(), self.start.month0() / 3 + 1),
            Grain::Half => format!("{}-H{}", self.start.year(), self.start.month0() / 6 + 1),
            Grain::Year => self.start.format("%Y").to_string(),
        }
    }

    /// The period after this one.
    pub fn next(&self) -> Period {
        Period::containing(self.grain, self.end + Duration::days(1))
    }

    /// Not complete at `as_of` (inclusive): the period ends after it.
    pub fn is_partial(&self, as_of: NaiveDate) -> bool {
        self.end > as_of
    }

    /// Whether `[start, end]` lies wholly inside this period.
    pub fn covers(&self, start: NaiveDate, end: NaiveDate) -> bool {
        start >= self.start && end <= self.end
    }

    /// Every period of `grain` from the one containing `first` to the one
    /// containing `last`.
    pub fn range(grain: Grain, first: NaiveDate, last: NaiveDate) -> Vec<Period> {
        let mut out = Vec::new();
        let mut p = Period::containing(grain, first);
        while p.start <= last {
            out.push(p);
            p = p.next();
        }
        out
    }
}

pub fn add_months(d: NaiveDate, n: i32) -> NaiveDate {
    let total = d.year() * 12 + d.month0() as i32 + n;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .expect("valid month")
}

/// Monday of ISO week 1 of `year`, for tests and labels.
pub fn iso_week_start(year: i32, week: u32) -> Option<NaiveDate> {
    NaiveDate::from_isoywd_opt(year, week, Weekday::Mon)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn labels_and_bounds() {
        // 2026-03-18 is a Wednesday in ISO week 12 (Mon 16 - Sun 22 March).
        let w = Period::containing(Grain::Week, d("2026-03-18"));
        assert_eq!(
            (w.label(), w.start, w.end),
            ("2026-W12".into(), d("2026-03-16"), d("2026-03-22"))
        );
        let m = Period::containing(Grain::Month, d("2028-02-10"));
        assert_eq!((m.label(), m.end), ("2028-02".into(), d("2028-02-29")));
        let q = Period::containing(Grain::Quarter, d("2026-11-26"));
        assert_eq!(
            (q.label(), q.start, q.end),
            ("2026-Q4".into(), d("2026-10-01"), d("2026-12-31"))
        );
        assert_eq!(
            Period::containing(Grain::Year, d("2026-11-26")).label(),
            "2026"
        );
        let h = Period::containing(Grain::Half, d("2026-07-01"));
        assert_eq!(
            (h.label(), h.start, h.end),
            ("2026-H2".into(), d("2026-07-01"), d("2026-12-31"))
        );
        let h = Period::containing(Grain::Half, d("2026-06-30"));
        assert_eq!(
            (h.label(), h.start, h.end),
            ("2026-H1".into(), d("2026-01-01"), d("2026-06-30"))
        );
        assert_eq!(Grain::parse("half"), Some(Grain::Half));
    }

    #[test]
    fn iso_week_53_and_year_boundaries() {
        // 2026 has 53 ISO weeks: 31 Dec 2026 is a Thursday in 2026-W53, and
        // 1 Jan 2027 (Friday) still belongs to it.
        let w = Period::containing(Grain::Week, d("2027-01-01"));
        assert_eq!(w.label(), "2026-W53");
        assert_eq!(w.start, d("2026-12-28"));
        // 29 Dec 2025 (Monday) starts 2026-W01.
        assert_eq!(
            Period::containing(Grain::Week, d("2025-12-29")).label(),
            "2026-W01"
        );
        assert_eq!(iso_week_start(2026, 1), Some(d("2025-12-29")));
    }

    #[test]
    fn range_and_partial() {
        let months = Period::range(Grain::Month, d("2026-01-15"), d("2026-04-02"));
        let labels: Vec<String> = months.iter().map(|p| p.label()).collect();
        assert_eq!(labels, vec!["2026-01", "2026-02", "2026-03", "2026-04"]);
        assert!(months[3].is_partial(d("2026-04-02")));
        assert!(!months[2].is_partial(d("2026-03-31")));
        assert!(months[2].covers(d("2026-03-01"), d("2026-03-31")));
        assert!(!months[2].covers(d("2026-03-01"), d("2026-04-30")));
    }
}
