//! Time helpers shared by every stage: instants and days, the policy's
//! calendar of working days ([`calendar`]) and the assessment periods
//! ([`periods`]). Takes the policy's time zone and calendar; knows nothing
//! of tables or marts.

use chrono::{Datelike, LocalResult, NaiveDate, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

pub mod calendar;
pub mod periods;

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// Local wall-clock time to UTC microseconds; `None` inside a DST gap.
pub fn local_to_utc(naive: NaiveDateTime, tz: Tz) -> Option<Micros> {
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(dt) => Some(dt.timestamp_micros()),
        LocalResult::Ambiguous(first, _) => Some(first.timestamp_micros()),
        LocalResult::None => None,
    }
}

/// Days since 1970-01-01.
pub fn days_since_epoch(d: NaiveDate) -> i32 {
    (d - NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date")).num_days() as i32
}

/// The day `days` after 1970-01-01.
pub fn date_from_days(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("valid date") + chrono::Duration::days(days as i64)
}

/// Last day of the month that `days` falls in.
pub fn month_end(days: i32) -> i32 {
    let d = date_from_days(days);
    let (y, m) = if d.month() == 12 {
        (d.year() + 1, 1)
    } else {
        (d.year(), d.month() + 1)
    };
    days_since_epoch(NaiveDate::from_ymd_opt(y, m, 1).expect("valid date")) - 1
}

/// `YYYY-MM` of a day (the lake's month partitions).
pub fn month_of_day(d: NaiveDate) -> String {
    format!("{:04}-{:02}", d.year(), d.month())
}

/// The local day (in `tz`) of the instant `us` (UTC microseconds).
pub fn local_day(us: i64, tz: Tz) -> NaiveDate {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("valid timestamp")
        .with_timezone(&tz)
        .date_naive()
}
