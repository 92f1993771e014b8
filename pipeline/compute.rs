//! `scorecard compute`: lake -> marts. The order of the stages:
//!
//! 1. views: lake tables as they stood at the end of `--as-of` (later rows
//!    dropped, later rectifications not yet known), ratings removed on
//!    appeal left out of `scored_ratings`; `ratings` and `process_events`
//!    stay scans of their files, read a few columns at a time
//! 2. derive: `cases`, `case_time` (written out at once, read back by SQL);
//!    only the cases whose events changed since the last run are derived
//!    again, the others kept (`case_reuse.rs`)
//! 3. rater checks, reliability and satisfaction, one calendar year of
//!    ratings at a time (see `rate`); what complete years and quarters gave
//!    in the last run is reused when their inputs are unchanged (`reuse.rs`)
//! 4. measure: every indicator definition -> `indicator_values`
//! 5. score: `indicator_scores`, `department_scores`
//!
//! All marts are written to a staging folder and the `marts/` folder is
//! swapped in whole, so readers never see marts of two different runs.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate, NaiveTime};
use chrono_tz::Tz;
use polars::prelude::*;

use crate::calendar::WorkCalendar;
use crate::case_reuse::{self, CaseStore};
use crate::frame::{self, Builder};
use crate::ingest::{self, fields::local_to_utc, tables};
use crate::lake::{self, OutDir, Staging};
use crate::measure::{self, Indicator};
use crate::periods::{Grain, Period};
use crate::policy::LoadedPolicy;
use crate::progress::Progress;
use crate::raters::Window;
use crate::reuse::{CarriedItem, OpenSums, PeriodResults, RaterStore, YearResults};
use crate::satisfaction::{self, local_day};
use crate::{cases, raters, restate, score, trends};

/// Lake tables and derived frames that indicator SQL can read.
pub struct Views {
    /// Small lake tables and derived frames, in memory.
    pub tables: Vec<(&'static str, DataFrame)>,
    /// The large lake tables (`ratings`, `process_events`, as of as-of) and
    /// the case marts already written, as scans of their files: each query
    /// reads only the columns it needs, and nothing stays in memory.
    pub scans: Vec<(&'static str, LazyFrame)>,
    /// Ratings removed on appeal by as-of.
    removed: PlHashSet<String>,
    pub satisfaction: Vec<satisfaction::Row>,
    /// First local day with a rating or a case: where scoring starts.
    pub first_day: Option<NaiveDate>,
}

impl Views {
    /// The views as indicator SQL sees them. `scored_ratings` is `ratings`
    /// without the ratings removed on appeal, plus `score_100` (the score on
    /// a 0-100 scale).
    pub fn sql(&self) -> Vec<(&'static str, LazyFrame)> {
        let mut out: Vec<(&'static str, LazyFrame)> = self
            .tables
            .iter()
            .map(|(name, df)| (*name, df.clone().lazy()))
            .collect();
        out.extend(self.scans.iter().cloned());
        let ratings = self
            .scans
            .iter()
            .find(|(n, _)| *n == "ratings")
            .expect("ratings are scanned")
            .1
            .clone();
        let scored = if self.removed.is_empty() {
            ratings
        } else {
            let removed: Series = self.removed.iter().map(String::as_str).collect();
            ratings.filter(
                col("rating_id")
                    .is_in(lit(removed).implode(false), false)
                    .fill_null(lit(false))
                    .not(),
            )
        };
        let f = |c: &str| col(c).cast(DataType::Float64);
        let score_100 = ((f("score") - f("scale_min")) / (f("scale_max") - f("scale_min"))
            * lit(100.0))
        .alias("score_100");
        out.push(("scored_ratings", scored.with_column(score_100)));
        out
    }

    pub fn get(&self, name: &str) -> &DataFrame {
        &self
            .tables
            .iter()
            .find(|(n, _)| *n == name)
            .expect("view exists")
            .1
    }
}

/// The last microsecond of `as_of` in the policy's time zone, as UTC.
pub fn end_of_day(as_of: NaiveDate, tz: Tz) -> i64 {
    let next = (as_of + Duration::days(1)).and_time(NaiveTime::MIN);
    local_to_utc(next, tz)
        .or_else(|| local_to_utc(next + Duration::hours(1), tz))
        .expect("a local time an hour after a gap exists")
        - 1
}

/// Loads the policy (explicit file, else the first fallback that exists,
/// else built in) and the indicator catalog, and checks both together:
/// the policy against the catalog, and every definition's SQL against the
/// schemas, before any data is read. All problems are reported at once.
pub fn load_policy(
    explicit: Option<&std::path::Path>,
    fallbacks: &[std::path::PathBuf],
) -> Result<(LoadedPolicy, Vec<Indicator>), crate::Failure> {
    let mut catalog = None;
    let policy = crate::policy::resolve_with(explicit, fallbacks, &mut |p| {
        let (c, problems) = check_definitions(p);
        catalog = c;
        problems
    })?;
    Ok((
        policy,
        catalog.expect("no problems means the catalog loaded"),
    ))
}

/// The catalog and the problems found in it and in the policy's use of it.
fn check_definitions(policy: &LoadedPolicy) -> (Option<Vec<Indicator>>, Vec<String>) {
    let mut folder_problems = Vec::new();
    if let Some(dir) = policy.templates_dir() {
        if !dir.is_dir() {
            folder_problems.push(format!(
                "site.templates: {} is not a folder (paths are relative to the policy file)",
                dir.display()
            ));
        }
    }
    let catalog = match measure::load_catalog(policy) {
        Ok(c) => c,
        Err(e) => return (None, [folder_problems, e.problems].concat()),
    };
    let category: HashMap<&str, &str> = catalog
        .iter()
        .map(|i| (i.id.as_str(), i.category.as_str()))
        .collect();
    let mut problems = folder_problems;
    problems.extend(
        policy
            .policy
            .validate_indicators(&|id| category.get(id).map(|c| c.to_string())),
    );
    let as_of = NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");
    let views = empty_lake()
        .and_then(|lake| {
            build_views(
                lake,
                &RatingMonths {
                    months: Vec::new(),
                    scan: &|_, _| Ok(None),
                },
                &mut |_, df, _| Ok(df.lazy()),
                None,
                policy,
                as_of,
                &Progress::silent(),
            )
        })
        .map(|views| views.sql());
    match views {
        Ok(views) => problems.extend(measure::validate(&catalog, &views)),
        Err(e) => problems.push(format!("cannot prepare the indicator views: {e:#}")),
    }
    (Some(catalog), problems)
}

fn empty_lake() -> Result<Vec<(&'static str, LazyFrame)>> {
    tables::ALL
        .iter()
        .map(|s| Ok((s.name, ingest::empty_frame(s)?.lazy())))
        .collect()
}

/// The lake as scans: partitioned tables over their month files in month
/// order (as this run sees them), the rest read whole (they are small).
fn read_lake(out: &OutDir) -> Result<Vec<(&'static str, LazyFrame)>> {
    tables::ALL
        .iter()
        .map(|s| {
            let lf = if s.month_column.is_some() {
                lake::scan_table(out, s.name)?
            } else {
                lake::read_table(out, s.name, false)?.map(|df| df.lazy())
            };
            let lf = match lf {
                Some(lf) => lf,
                None => ingest::empty_frame(s)?.lazy(),
            };
            Ok((s.name, lf))
        })
        .collect()
}

/// When a step over the lake fails, names the first partition file that
/// cannot be read (a scan's own error does not say which).
fn name_damaged_file(out: &OutDir, e: anyhow::Error) -> anyhow::Error {
    let damaged = tables::ALL
        .iter()
        .filter(|s| s.month_column.is_some())
        .find_map(|s| lake::first_unreadable(out, s.name));
    match damaged {
        Some((f, bad)) => bad.context(format!(
            "the lake file {} is damaged: restore it, or delete it and ingest its month again",
            f.display()
        )),
        None => e,
    }
}

/// Reads `columns` of a scanned table, in file and row order.
fn collect_columns(lf: &LazyFrame, columns: &[&str], what: &str) -> Result<DataFrame> {
    lf.clone()
        .select(columns.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .collect()
        .map_err(|e| anyhow::anyhow!("cannot read the lake's {what}: {e}"))
}

/// A UTC microsecond instant as a literal of the lake's timestamp type.
pub(crate) fn instant(us: i64) -> Expr {
    lit(us).cast(DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))
}

/// Keeps rows whose timestamp column is at or before `limit` (UTC micros).
/// Shares the columns, without copying, when every row qualifies (the
/// usual case: as-of is the latest day).
fn until(df: &DataFrame, col: &str, limit: i64) -> Result<DataFrame> {
    let mask: BooleanChunked = frame::micros(df, col)?
        .into_iter()
        .map(|v| Some(v.is_some_and(|v| v <= limit)))
        .collect();
    filter_shared(df, &mask)
}

/// `df.filter(mask)`, or a cheap clone of `df` when the mask keeps all.
fn filter_shared(df: &DataFrame, mask: &BooleanChunked) -> Result<DataFrame> {
    if mask.all() {
        Ok(df.clone())
    } else {
        Ok(df.filter(mask)?)
    }
}

/// What the last run kept for this one to reuse: the rater model's
/// results (`reuse.rs`) and the derived cases (`case_reuse.rs`).
pub struct Stores<'a> {
    pub raters: &'a mut RaterStore,
    pub cases: &'a mut CaseStore,
}

/// Builds the views as the data stood at the end of `as_of`.
pub fn build_views(
    lake: Vec<(&'static str, LazyFrame)>,
    ratings_months: &RatingMonths,
    spill: &mut Spill,
    stores: Option<Stores>,
    policy: &LoadedPolicy,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<Views> {
    let tz = policy.tz;
    let p = &policy.policy;
    let end = end_of_day(as_of, tz);
    let cal = WorkCalendar::from_policy(p);
    let mut lake: HashMap<&str, LazyFrame> = lake.into_iter().collect();
    let mut take = |name: &str| lake.remove(name).expect("every lake table is present");
    let mut small = |name: &str| -> Result<DataFrame> {
        take(name)
            .collect()
            .map_err(|e| anyhow::anyhow!("cannot read the lake's {name}: {e}"))
    };

    let departments = small("departments")?;
    let appeals = until(&small("rating_appeals")?, "decided_at", end)?;
    let complaints = until(&small("complaints")?, "received_at", end)?;
    let incidents = until(&small("incidents")?, "occurred_at", end)?;
    let measurements = {
        let df = small("measurements")?;
        let mask: BooleanChunked = frame::dates(&df, "period_start")?
            .into_iter()
            .map(|d| Some(d.is_some_and(|d| d <= as_of)))
            .collect();
        filter_shared(&df, &mask)?
    };
    let ratings = take("ratings").filter(col("rated_at").lt_eq(instant(end)));
    let events = take("process_events").filter(col("at").lt_eq(instant(end)));

    // Ratings removed on appeal (decided by as-of) are never scored.
    let removed: PlHashSet<String> = {
        let ids = frame::strs(&appeals, "rating_id")?;
        let decisions = frame::strs(&appeals, "decision")?;
        ids.into_iter()
            .zip(decisions)
            .filter_map(|(id, d)| (d.as_deref() == Some("removed")).then_some(id).flatten())
            .collect()
    };

    let complaints = complaint_view(
        &complaints,
        &cal,
        p.complaints.rectify_working_days,
        tz,
        end,
    )?;
    // Case rows borrow the events' text: made into frames right away, and
    // the events read for them freed; the frames are written out as marts
    // and read back by the queries that need them.
    let (mut store, case_store) = match stores {
        Some(s) => (Some(s.raters), Some(s.cases)),
        None => (None, None),
    };
    let (cases_scan, case_time_scan, first_case_day) = match case_store {
        Some(store) => {
            let m = case_reuse::derive(store, spill, p, &cal, tz, end, progress)?;
            (m.cases, m.case_time, m.first_day)
        }
        None => {
            let events = collect_columns(&events, &cases::EVENT_COLUMNS, "process events")?;
            let rows = cases::derive(&events, p, &cal, tz, end)?.cases;
            let m = case_reuse::write_derived(&rows, events.height(), spill, tz, progress)?;
            (m.cases, m.case_time, m.first_day)
        }
    };

    crate::release_freed_memory();
    let dept_types: HashMap<String, String> = frame::strs(&departments, "dept_id")?
        .into_iter()
        .zip(frame::strs(&departments, "dept_type")?)
        .filter_map(|(d, t)| Some((d?, t?)))
        .collect();
    if let Some(store) = store.as_deref_mut() {
        store.depend_on(&dept_types, &removed)?;
    }
    let rated = rate(
        &Ratings {
            all: ratings.clone(),
            by_months: ratings_months,
            end,
        },
        &removed,
        &dept_types,
        store,
        policy,
        as_of,
        progress,
    )?;
    let first_day = rated.first_day.into_iter().chain(first_case_day).min();

    let tables = vec![
        ("departments", departments),
        ("rating_appeals", appeals),
        ("complaints", complaints),
        ("incidents", incidents),
        ("measurements", measurements),
        (
            "satisfaction",
            satisfaction::frame(&rated.satisfaction, as_of)?,
        ),
        ("rater_effects", rated.effects),
        ("rating_flags", rated.flags),
        (
            "reliability",
            raters::reliability_frame(&rated.reliability, as_of)?,
        ),
    ];
    Ok(Views {
        tables,
        scans: vec![
            ("ratings", ratings),
            ("process_events", events),
            ("cases", cases_scan),
            ("case_time", case_time_scan),
        ],
        removed,
        satisfaction: rated.satisfaction,
        first_day,
    })
}

/// What the passes over the ratings give: the rater model's estimates and
/// flags (as frames, which hold them far more compactly than the rows), and
/// the satisfaction and reliability rows.
struct Rated {
    effects: DataFrame,
    flags: DataFrame,
    satisfaction: Vec<satisfaction::Row>,
    reliability: Vec<raters::Reliability>,
    /// First local day with a scored response.
    first_day: Option<NaiveDate>,
}

/// The lake's ratings up to the end of as-of (`end`, UTC microseconds):
/// all of them, or the files of the months `first..=last` (not yet cut).
struct Ratings<'a> {
    all: LazyFrame,
    by_months: &'a RatingMonths<'a>,
    end: i64,
}

/// Takes a derived frame the views need, and gives it back as a scan: in a
/// run, written out as its mart right away so that memory does not hold it
/// (copying what it can of the mart the last run wrote, when given).
pub type Spill<'a> =
    dyn FnMut(&'static str, DataFrame, Option<lake::Previous>) -> Result<LazyFrame> + 'a;

/// Scans the ratings files of the months `first..=last` (`YYYY-MM`).
pub type MonthScan<'a> = dyn Fn(&str, &str) -> Result<Option<LazyFrame>> + 'a;

/// The lake's ratings files: their months (`YYYY-MM`, in order) and a scan
/// of a range of them.
pub struct RatingMonths<'a> {
    pub months: Vec<String>,
    pub scan: &'a MonthScan<'a>,
}

impl RatingMonths<'_> {
    /// The first and the last rating up to `end` (UTC microseconds), read
    /// from the files at either end instead of all of them. A file holds
    /// the ratings of its month in the time zone they were loaded in,
    /// which need not be the policy's now: the file next to it may hold
    /// one a few hours earlier (or later). So each end reads the first
    /// file with a rating up to `end`, and the one next to it.
    fn bounds(&self, end: i64) -> Result<Option<(i64, i64)>> {
        let bound = |month: &String, first: bool| -> Result<Option<i64>> {
            let Some(lf) = (self.scan)(month, month)? else {
                return Ok(None);
            };
            let at = col("rated_at");
            let df = lf
                .filter(at.clone().lt_eq(instant(end)))
                .select([if first { at.min() } else { at.max() }])
                .collect()
                .map_err(|e| anyhow::anyhow!("cannot read the lake's ratings of {month}: {e}"))?;
            Ok(frame::micros(&df, "rated_at")?[0])
        };
        let edge = |mut months: Box<dyn Iterator<Item = &String> + '_>, first: bool| {
            let pick = |a: i64, b: i64| if first { a.min(b) } else { a.max(b) };
            while let Some(month) = months.next() {
                if let Some(at) = bound(month, first)? {
                    let next = match months.next() {
                        Some(m) => bound(m, first)?,
                        None => None,
                    };
                    return Ok(Some(next.map_or(at, |n| pick(at, n))));
                }
            }
            anyhow::Ok(None)
        };
        let first = edge(Box::new(self.months.iter()), true)?;
        let last = edge(Box::new(self.months.iter().rev()), false)?;
        Ok(first.zip(last))
    }
}

/// How many days before a year its first ISO week can start.
const WEEK_REACH: i64 = 6;

/// The item ratings of the days just before a year, with what the rater
/// model made of them in that year's pass: the next year's first ISO week
/// reaches back into them.
#[derive(Default)]
struct Carry {
    items: Vec<CarriedItem>,
    excluded: Vec<(String, String)>,
}

/// The rows that `keep` keeps, copied.
fn rows_of<T: Clone>(rows: &[T], keep: impl Fn(&T) -> bool) -> Vec<T> {
    rows.iter().filter(|r| keep(r)).cloned().collect()
}

/// The rater model, reliability and satisfaction, one calendar year of
/// ratings at a time, so that memory holds one year's item ratings.
///
/// Every estimation period (month, quarter or year) lies within a year, and
/// each year's pass reports the reporting periods that end in that year. A
/// week that starts in December and ends in January belongs to January's
/// year, which therefore also reads the last six days of December, with the
/// rater model's results for them carried over from December's pass. A
/// weekly estimation grain does not nest in years: then all ratings are one
/// pass. Item ratings keep the lake's order within every pass, so every sum
/// adds up in the same order as one pass over everything would.
///
/// With a `store`, the results of each year complete at as-of are kept for
/// the next run, and a year whose inputs are unchanged since the last run
/// is read from it instead of passing over its ratings; in the year not
/// complete, the same holds for the rater model of each complete
/// estimation period (see `reuse.rs`).
fn rate(
    ratings: &Ratings,
    removed: &PlHashSet<String>,
    dept_types: &HashMap<String, String>,
    mut store: Option<&mut RaterStore>,
    policy: &LoadedPolicy,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<Rated> {
    let (p, tz) = (&policy.policy, policy.tz);
    let mut rated = Rated {
        effects: raters::effects_frame(&[], as_of)?,
        flags: raters::flags_frame(&[], as_of)?,
        satisfaction: Vec::new(),
        reliability: Vec::new(),
        first_day: None,
    };
    let Some((first, last)) = ratings.by_months.bounds(ratings.end)? else {
        return Ok(rated);
    };
    let (by_months, ratings_end) = (ratings.by_months.scan, ratings.end);
    let ratings = &ratings.all;
    let years: Vec<Option<Period>> = if raters::estimation_grain(&p.raters) == Grain::Week {
        vec![None]
    } else {
        Period::range(Grain::Year, local_day(first, tz), local_day(last, tz))
            .into_iter()
            .map(Some)
            .collect()
    };
    let mut carry = Carry::default();
    let (mut n_items, mut n_effects, mut n_flags) = (0, 0, 0);
    for year in years {
        let (start, end) = year.map_or((NaiveDate::MIN, NaiveDate::MAX), |y| (y.start, y.end));
        // The year's ratings, from the days its first week reaches back to.
        let (scan, kept) = match year {
            Some(y) => {
                let pass = Pass::over(y, WEEK_REACH, tz, ratings_end);
                let scan = pass.scan(by_months)?;
                // A complete year's results are kept for the next run.
                let kept = match store.as_deref_mut() {
                    Some(store) if y.end <= as_of && scan.is_some() => Some(store.fingerprint(
                        y,
                        (&pass.months.0, &pass.months.1),
                        pass.range,
                        (&carry.items, &carry.excluded),
                    )?),
                    _ => None,
                };
                (scan, kept.map(|fingerprint| (y, fingerprint)))
            }
            None => (Some(ratings.clone()), None),
        };
        let Some(scan) = scan else { continue };
        let label = year.map_or("all".to_string(), |y| y.label());

        let reused = match (&kept, store.as_deref_mut()) {
            (Some((y, fingerprint)), Some(store)) => {
                store.reuse(*y, fingerprint, || rating_ids(Some(scan.clone())))?
            }
            _ => None,
        };
        let results = match reused {
            Some(r) => {
                progress.step(&format!(
                    "rater model, {label}: {} item ratings, {} rater estimates, {} flags (kept from the last run: its inputs are unchanged)",
                    r.n_items,
                    r.effects.height(),
                    r.flags.height()
                ));
                r
            }
            None => {
                // In a year not complete, the rater model of complete
                // estimation periods is reused or kept the same way.
                let (reused, to_keep) = match (year, store.as_deref_mut()) {
                    (Some(y), Some(store)) if kept.is_none() => complete_periods(
                        store,
                        y,
                        raters::estimation_grain(&p.raters),
                        local_day(first, tz)..=as_of,
                        by_months,
                        &carry,
                        tz,
                    )?,
                    _ => (Vec::new(), Vec::new()),
                };
                // After kept periods, the pass reads only the days after
                // them (and those the first week reaches back to).
                let scan = match reused.last() {
                    Some((q, _)) => Pass::days(
                        (q.end + Duration::days(1), end),
                        WEEK_REACH,
                        tz,
                        ratings_end,
                    )
                    .scan(by_months)?,
                    None => Some(scan.clone()),
                };
                let keep_periods: Vec<Period> = to_keep.iter().map(|(q, _)| *q).collect();
                let kept_from_last_run = match reused.as_slice() {
                    [] => String::new(),
                    [q] => format!(
                        " ({} kept from the last run; only the ratings after it read)",
                        q.0.label()
                    ),
                    [q, .., r] => format!(
                        " ({} to {} kept from the last run; only the ratings after them read)",
                        q.0.label(),
                        r.0.label()
                    ),
                };
                let (r, pieces) = rate_year(
                    scan.as_ref(),
                    (start, end),
                    &carry,
                    reused,
                    &keep_periods,
                    removed,
                    dept_types,
                    policy,
                    as_of,
                )?;
                if let Some(store) = store.as_deref_mut() {
                    for ((q, fingerprint), piece) in to_keep.iter().zip(&pieces) {
                        store.keep_period(*q, fingerprint, piece)?;
                    }
                }
                progress.step(&format!(
                    "rater model, {label}: {} item ratings, {} rater estimates, {} flags{kept_from_last_run}",
                    r.n_items,
                    r.effects.height(),
                    r.flags.height()
                ));
                if let (Some((y, fingerprint)), Some(store)) = (&kept, store.as_deref_mut()) {
                    store.keep(*y, fingerprint, &r)?;
                }
                r
            }
        };
        if year.is_some() {
            carry = Carry {
                items: results
                    .carry_items
                    .into_iter()
                    .map(|(id, item, adjusted)| (Arc::from(id), Arc::from(item), adjusted))
                    .collect(),
                excluded: results.carry_excluded,
            };
        }
        n_items += results.n_items;
        n_effects += results.effects.height();
        n_flags += results.flags.height();
        rated.reliability.extend(results.reliability);
        rated.satisfaction.extend(results.satisfaction);
        rated.first_day = rated.first_day.into_iter().chain(results.first_day).min();
        // Years come in order and each year's estimates and flags are in
        // (period, ...) order: the concatenation is in the order `check`
        // gives.
        rated.effects.vstack_mut_owned(results.effects)?;
        rated.flags.vstack_mut_owned(results.flags)?;
        crate::release_freed_memory();
    }
    rated.effects.rechunk_mut();
    rated.flags.rechunk_mut();
    // Each year's rows are in (department, period) order; the rows of one
    // department and period all come from one year.
    rated
        .satisfaction
        .sort_by(|a, b| (&a.dept_id, a.period).cmp(&(&b.dept_id, b.period)));
    rated
        .reliability
        .sort_by(|a, b| (&a.dept_id, a.period).cmp(&(&b.dept_id, b.period)));
    progress.step(&format!(
        "rater model: {n_items} item ratings, {n_effects} rater estimates, {n_flags} flags"
    ));
    Ok(rated)
}

/// What a pass over a period reads: the period's month files and the month
/// either side (a month file holds the month's rows however the time zone
/// places them), cut to the rows in `range` (UTC microseconds, `(from,
/// to]`): the period's days, and `reach` days before it.
struct Pass {
    months: (String, String),
    range: (i64, i64),
}

impl Pass {
    fn over(period: Period, reach: i64, tz: Tz, end: i64) -> Pass {
        Pass::days((period.start, period.end), reach, tz, end)
    }

    /// A pass over the days `first..=last`.
    fn days((first, last): (NaiveDate, NaiveDate), reach: i64, tz: Tz, end: i64) -> Pass {
        let month = |d: NaiveDate| d.format("%Y-%m").to_string();
        Pass {
            months: (
                month(first - Duration::days(1)),
                month(last + Duration::days(1)),
            ),
            range: (
                end_of_day(first - Duration::days(reach + 1), tz),
                end_of_day(last, tz).min(end),
            ),
        }
    }

    fn scan(&self, by_months: &MonthScan) -> Result<Option<LazyFrame>> {
        let (from, to) = self.range;
        Ok(by_months(&self.months.0, &self.months.1)?.map(|lf| {
            lf.filter(
                col("rated_at")
                    .gt(instant(from))
                    .and(col("rated_at").lt_eq(instant(to))),
            )
        }))
    }
}

/// The rating ids a scan holds (none without a scan).
fn rating_ids(scan: Option<LazyFrame>) -> Result<Vec<String>> {
    let Some(scan) = scan else {
        return Ok(Vec::new());
    };
    let df = collect_columns(&scan, &["rating_id"], "ratings")?;
    Ok(frame::strs(&df, "rating_id")?
        .into_iter()
        .flatten()
        .collect())
}

/// The complete estimation periods (month or quarter) of `year` with
/// ratings (`days`: from the first rating to as-of): the rater model of
/// the longest run of them from the year's start that the last run kept
/// with the same fingerprint, and the others with their fingerprints, to
/// be fitted and kept.
///
/// A period's results include its weeks, which reach back into the period
/// before (for the year's first period, into the days `carry` hands over
/// from the year before): its fingerprint covers those days too.
#[allow(clippy::type_complexity)]
fn complete_periods(
    store: &mut RaterStore,
    year: Period,
    grain: Grain,
    days: std::ops::RangeInclusive<NaiveDate>,
    by_months: &MonthScan,
    carry: &Carry,
    tz: Tz,
) -> Result<(Vec<(Period, PeriodResults)>, Vec<(Period, String)>)> {
    let (mut reused, mut to_keep) = (Vec::new(), Vec::new());
    if !matches!(grain, Grain::Month | Grain::Quarter) {
        return Ok((reused, to_keep));
    }
    for q in Period::range(grain, year.start, year.end)
        .into_iter()
        .filter(|q| q.end <= *days.end() && q.end >= *days.start())
    {
        let pass = Pass::over(q, WEEK_REACH, tz, i64::MAX);
        let months = (pass.months.0.as_str(), pass.months.1.as_str());
        let carried: (&[CarriedItem], &[(String, String)]) = if q.start == year.start {
            (&carry.items, &carry.excluded)
        } else {
            (&[], &[])
        };
        let fingerprint = store.fingerprint(q, months, pass.range, carried)?;
        if to_keep.is_empty() {
            let own = Pass::over(q, 0, tz, i64::MAX);
            if let Some(r) =
                store.reuse_period(q, &fingerprint, || rating_ids(own.scan(by_months)?))?
            {
                reused.push((q, r));
                continue;
            }
        }
        to_keep.push((q, fingerprint));
    }
    Ok((reused, to_keep))
}

/// One pass of the rater model, reliability and satisfaction over `scan`:
/// the ratings of the days `start..=end` and of the days before `start`
/// that the first week reaches back to, which the previous pass checked
/// and whose results it handed over in `carry`. The first estimation
/// periods of the year may come from the last run (`reused`, in order):
/// then `scan` holds only the days after them (and those the first week
/// after them reaches back to), the rows of the periods that end in them
/// are theirs, and the quarter and year still open after them continue
/// from the sums they kept. The complete periods `keep` are returned apart
/// as well, in that order, to be kept for the next run (fewer if the
/// ratings do not come in time order across one's end).
#[allow(clippy::too_many_arguments)]
fn rate_year(
    scan: Option<&LazyFrame>,
    (start, end): (NaiveDate, NaiveDate),
    carry: &Carry,
    reused: Vec<(Period, PeriodResults)>,
    keep: &[Period],
    removed: &PlHashSet<String>,
    dept_types: &HashMap<String, String>,
    policy: &LoadedPolicy,
    as_of: NaiveDate,
) -> Result<(YearResults, Vec<PeriodResults>)> {
    let (p, tz) = (&policy.policy, policy.tz);
    let items = match scan {
        Some(scan) => {
            let df = collect_columns(scan, &raters::RATING_COLUMNS, "ratings")?;
            raters::items_from_frame(&df, removed, tz)?
        }
        None => Vec::new(),
    };
    let fit_from = reused
        .last()
        .map_or(start, |(q, _)| q.end + Duration::days(1));
    // Responses are numbered on a second core while the rater model is
    // fitted (mostly on one).
    let (mut outcome, numbers) = std::thread::scope(|s| {
        let numbers = s.spawn(|| raters::ResponseNumbers::of(&items));
        let outcome = raters::check_from(&items, &p.raters, fit_from);
        let numbers = numbers
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (outcome, numbers)
    });
    let (mut effects, mut flags) = (
        raters::effects_frame(&[], as_of)?,
        raters::flags_frame(&[], as_of)?,
    );
    // What the kept periods give: their rows, and from the last of them
    // the quarter and year still open and its last days' adjusted scores.
    let (mut satisfaction, mut reliability) = (Vec::new(), Vec::new());
    let (mut first_day, mut n_items) = (None, 0);
    let mut open = (Vec::new(), Vec::new());
    let mut handed: Option<Vec<CarriedItem>> = None;
    let n_reused = reused.len();
    for (k, (_, r)) in reused.into_iter().enumerate() {
        if k + 1 == n_reused {
            open = r.open.take()?;
            handed = Some(
                r.carry_items
                    .into_iter()
                    .map(|(id, item, adjusted)| (Arc::from(id), Arc::from(item), adjusted))
                    .collect(),
            );
        }
        outcome.excluded.extend(r.excluded);
        effects.vstack_mut_owned(r.effects)?;
        flags.vstack_mut_owned(r.flags)?;
        satisfaction.extend(r.satisfaction);
        reliability.extend(r.reliability);
        first_day = first_day.into_iter().chain(r.first_day).min();
        n_items += r.n_items;
    }
    // The days before `fit_from` were checked in the pass before: the one
    // that kept the last reused period (whose exclusions are among those
    // reused), or the previous year's.
    let handed = match handed {
        Some(handed) => handed,
        None => {
            outcome.excluded.extend(carry.excluded.iter().cloned());
            carry.items.clone()
        }
    };
    let mut handed = handed.iter();
    for (i, r) in items.iter().enumerate().filter(|(_, r)| r.day < fit_from) {
        let (_, _, adjusted) = handed
            .next()
            .filter(|(id, item, _)| *id == r.rating_id && *item == r.item)
            .context("the ratings read for one period differ from those read for the period before: was the lake changed during the run?")?;
        outcome.adjusted[i] = *adjusted;
    }
    let counted: Vec<bool> = items
        .iter()
        .map(|r| !outcome.excluded.contains_key(&*r.rating_id))
        .collect();
    let window = Window {
        from: fit_from,
        to: end,
    };
    let stops: Vec<NaiveDate> = keep.iter().map(|q| q.end).collect();
    // Reliability and satisfaction read the same ratings and outcome: one
    // on each of two threads.
    let ((rel, rel_open), (sat, sat_open), pass_first_day) = std::thread::scope(|s| {
        let reliability = s.spawn(|| {
            raters::reliability_from(&items, &counted, &numbers, window, &open.1, &stops)
        });
        let responses = satisfaction::responses(&items, &numbers, &outcome);
        let first_day = responses.iter().map(|r| r.day).min();
        let satisfaction =
            satisfaction::compute_from(&responses, dept_types, p, window, &open.0, &stops);
        drop(responses);
        let reliability = reliability
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (reliability, satisfaction, first_day)
    });
    drop(numbers);
    // The item ratings of the days up to `last` that the next period's
    // first week reaches back to, and what they hand over.
    let last_days = |last: NaiveDate| -> Vec<usize> {
        let from = last + Duration::days(1) - Duration::days(WEEK_REACH);
        (0..items.len())
            .filter(|&i| from <= items[i].day && items[i].day <= last)
            .collect()
    };
    let handed_over = |rows: &[usize]| -> Vec<(String, String, Option<f64>)> {
        rows.iter()
            .map(|&i| {
                let r = &items[i];
                (
                    r.rating_id.to_string(),
                    r.item.to_string(),
                    outcome.adjusted[i],
                )
            })
            .collect()
    };
    // The complete periods fitted now, for the next run: up to the first
    // whose end the ratings do not come in time order across.
    let mut pieces = Vec::new();
    for (k, q) in keep.iter().enumerate() {
        let (Some(sat_open), rel_open) = (sat_open[k].clone(), rel_open[k].clone()) else {
            break;
        };
        let ends_in_q = |period: Period| q.start <= period.end && period.end <= q.end;
        let rows: Vec<usize> = (0..items.len())
            .filter(|&i| q.start <= items[i].day && items[i].day <= q.end)
            .collect();
        let mut seen: PlHashSet<&str> = PlHashSet::default();
        let excluded = rows
            .iter()
            .map(|&i| &*items[i].rating_id)
            .filter(|id| seen.insert(id))
            .filter_map(|id| Some((id.to_string(), outcome.excluded.get(id)?.clone())))
            .collect();
        pieces.push(PeriodResults {
            effects: raters::effects_frame(&rows_of(&outcome.effects, |e| e.period == *q), as_of)?,
            flags: raters::flags_frame(&rows_of(&outcome.flags, |f| f.period == *q), as_of)?,
            excluded,
            carry_items: handed_over(&last_days(q.end)),
            satisfaction: rows_of(&sat, |r| ends_in_q(r.period)),
            reliability: rows_of(&rel, |r| ends_in_q(r.period)),
            open: OpenSums::Held(sat_open, rel_open),
            // The pass's first day is the first up to the period's end if
            // it lies there at all.
            first_day: first_day
                .into_iter()
                .chain(pass_first_day.filter(|&d| d <= q.end))
                .min(),
            n_items: rows.len(),
        });
    }
    satisfaction.extend(sat);
    reliability.extend(rel);
    first_day = first_day.into_iter().chain(pass_first_day).min();
    n_items += items.iter().filter(|r| r.day >= fit_from).count();
    // What the next year's first week needs of this year's last days.
    let (mut carry_items, mut carry_excluded) = (Vec::new(), Vec::new());
    if end < NaiveDate::MAX {
        let rows = last_days(end);
        carry_items = handed_over(&rows);
        for &i in &rows {
            let id = &items[i].rating_id;
            if let Some(why) = outcome.excluded.get(&**id) {
                carry_excluded.push((id.to_string(), why.clone()));
            }
        }
    }
    effects.vstack_mut_owned(raters::effects_frame(&outcome.effects, as_of)?)?;
    flags.vstack_mut_owned(raters::flags_frame(&outcome.flags, as_of)?)?;
    let results = YearResults {
        effects,
        flags,
        satisfaction,
        reliability,
        carry_items,
        carry_excluded,
        first_day,
        n_items,
    };
    Ok((results, pieces))
}

/// Complaints as they stood at as-of: `due_at` filled from the policy's
/// rectification deadline where missing, `rectified_at` after as-of not yet
/// known, and `rectification` = `on_time`, `late`, `overdue` or `open`.
fn complaint_view(
    df: &DataFrame,
    cal: &WorkCalendar,
    days: u32,
    tz: Tz,
    end: i64,
) -> Result<DataFrame> {
    let received = frame::micros(df, "received_at")?;
    let due_given = frame::micros(df, "due_at")?;
    let rectified = frame::micros(df, "rectified_at")?;
    let mut due = Vec::with_capacity(df.height());
    let mut rect = Vec::with_capacity(df.height());
    let mut status = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        let d = due_given[i].or_else(|| received[i].map(|r| cal.deadline(r, days, tz)));
        let r = rectified[i].filter(|r| *r <= end);
        status.push(Some(match (r, d) {
            (Some(r), Some(d)) if r <= d => "on_time",
            (Some(_), _) => "late",
            (None, Some(d)) if d < end => "overdue",
            _ => "open",
        }));
        due.push(d);
        rect.push(r);
    }
    let mut out = df.clone();
    let extra = Builder::new()
        .ts("due_at", due)
        .ts("rectified_at", rect)
        .str("rectification", status)
        .build()?;
    for c in extra.columns() {
        out.with_column(c.clone())?;
    }
    Ok(out)
}

/// What compute produced, for the manifest.
#[derive(Debug, Default, serde::Serialize)]
pub struct ComputeReport {
    pub as_of: String,
    pub marts: std::collections::BTreeMap<String, usize>,
    /// Periods whose rater-model results were taken from the last run
    /// (their inputs unchanged), and those computed and kept now: complete
    /// years (`2025`: rater model, reliability and satisfaction), and the
    /// complete estimation periods of the current year (`2026-Q1`: the
    /// rater model only).
    pub rater_reused: Vec<String>,
    pub rater_computed: Vec<String>,
    /// Cases derived from their events by this run, and cases whose rows
    /// were taken from the last run (their events and as-of dependence
    /// unchanged).
    pub cases_derived: usize,
    pub cases_kept: usize,
}

/// Runs every compute stage and stages `OUT/marts/` (published whole).
pub fn compute(
    out: &OutDir,
    staging: &mut Staging,
    policy: &LoadedPolicy,
    catalog: &[Indicator],
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<ComputeReport> {
    let rater_key = crate::privacy::rater_key(policy)?;
    let tz = policy.tz;
    let lake = read_lake(out)?;
    let mut rows = 0;
    for s in tables::ALL {
        rows += lake::count_rows(out, s.name, s.month_column.is_some())?;
    }
    progress.step(&format!("compute: {rows} lake rows"));
    let dir = staging.stage(&out.marts());
    let mut report = ComputeReport {
        as_of: as_of.to_string(),
        ..Default::default()
    };
    // Writes a mart to the staging folder. Given the last run's file and
    // rows of it, copies the row groups they hold unchanged, and says so.
    let write_mart = |name: &str,
                      df: &mut DataFrame,
                      previous: Option<lake::Previous>|
     -> Result<std::path::PathBuf> {
        let path = dir.join(format!("{name}.parquet"));
        let reusing = previous.is_some();
        let copied = lake::write_parquet_reusing(df, &path, previous)
            .with_context(|| format!("cannot write mart {name}"))?;
        if reusing {
            progress.step(&format!(
                "{name} mart: {copied} of {} row groups copied from the last run",
                lake::row_groups(df.height())
            ));
        }
        Ok(path)
    };
    let mut store = RaterStore::open(out, staging, policy)?;
    let mut case_store = CaseStore::open(out, staging, &dir, policy)?;
    let mut views = build_views(
        lake,
        &RatingMonths {
            months: lake::partition_files(out, "ratings")?.into_keys().collect(),
            scan: &|first, last| lake::scan_months(out, "ratings", first, last),
        },
        &mut |name, mut df, previous| {
            report.marts.insert(name.to_string(), df.height());
            lake::scan_file(&write_mart(name, &mut df, previous)?)
        },
        Some(Stores {
            raters: &mut store,
            cases: &mut case_store,
        }),
        policy,
        as_of,
        progress,
    )
    .map_err(|e| name_damaged_file(out, e))?;
    report.cases_derived = case_store.derived;
    report.cases_kept = case_store.kept;
    report.rater_reused = std::mem::take(&mut store.reused);
    report.rater_computed = std::mem::take(&mut store.computed);
    progress.step(&format!("satisfaction: {} rows", views.satisfaction.len()));
    let values =
        measure::compute(catalog, &views.sql(), tz).map_err(|e| name_damaged_file(out, e))?;
    // The lake views have served the indicators: free those that scoring
    // and trends do not read.
    views
        .tables
        .retain(|(name, _)| !matches!(*name, "rating_appeals" | "complaints" | "measurements"));
    progress.step(&format!("measure: {} indicator values", values.len()));

    // The marts that scores do not change are written on a thread of their
    // own while scores, closed periods and trends are worked out (much of
    // that on one core).
    let early: Vec<(&str, DataFrame)> = vec![
        ("satisfaction", views.get("satisfaction").clone()),
        (
            "rater_effects",
            published_raters(views.get("rater_effects"), rater_key.as_deref())?,
        ),
        (
            "rating_flags",
            published_raters(views.get("rating_flags"), rater_key.as_deref())?,
        ),
        ("reliability", views.get("reliability").clone()),
        ("indicator_values", measure::values_frame(&values, as_of)?),
        ("indicator_catalog", measure::catalog_frame(catalog)?),
    ];
    for (name, df) in &early {
        report.marts.insert(name.to_string(), df.height());
    }
    // Written on every core, a mart per core at a time. The rater marts
    // change only in their last rows (the periods after those kept from
    // the last run come last), so their row groups before are copied from
    // the marts the last run published: when it kept rater results for
    // this run, that run was this program under this policy (the rater
    // store's fingerprint), so its groups are the bytes a fresh write
    // gives. The other marts change throughout (a new day moves trends,
    // ranks and partial periods everywhere).
    let same_program = !report.rater_reused.is_empty();
    let write_all = |marts: &[(&str, DataFrame)]| -> Result<()> {
        crate::on_every_core(marts.len(), |i| {
            let (name, df) = &marts[i];
            let old = out.marts().join(format!("{name}.parquet"));
            let kept = match *name {
                "rater_effects" | "rating_flags" if same_program && old.is_file() => {
                    lake::read_parquet(&old).ok()
                }
                _ => None,
            };
            let previous = kept
                .as_ref()
                .map(|rows| lake::Previous { path: &old, rows });
            write_mart(name, &mut df.clone(), previous)
        })?;
        Ok(())
    };
    let late = std::thread::scope(|s| -> Result<Vec<(&str, DataFrame)>> {
        let writer = s.spawn(|| write_all(&early));
        let late = scores_and_trends(&views, &values, catalog, policy, as_of, out, progress);
        writer
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        late
    })?;
    drop(early);
    for (name, df) in &late {
        report.marts.insert(name.to_string(), df.height());
    }
    write_all(&late)?;
    crate::failpoint("compute");
    Ok(report)
}

/// Scores, closed periods kept as published, trends and cross-checks: the
/// marts that depend on the scores.
fn scores_and_trends(
    views: &Views,
    values: &[measure::Value],
    catalog: &[Indicator],
    policy: &LoadedPolicy,
    as_of: NaiveDate,
    out: &OutDir,
    progress: &Progress,
) -> Result<Vec<(&'static str, DataFrame)>> {
    let departments: Vec<(String, String)> = {
        let d = views.get("departments");
        let mut v: Vec<(String, String)> = frame::strs(d, "dept_id")?
            .into_iter()
            .zip(frame::strs(d, "dept_type")?)
            .filter_map(|(a, b)| Some((a?, b?)))
            .collect();
        v.sort();
        v
    };
    let vetoes = veto_incidents(views.get("incidents"), policy, policy.tz)?;
    let (ind_scores, dept_scores) = match views.first_day {
        Some(first) => score::score(
            &departments,
            values,
            catalog,
            &policy.policy,
            &vetoes,
            first,
            as_of,
        )?,
        None => (Vec::new(), Vec::new()),
    };
    progress.step(&format!("score: {} department-periods", dept_scores.len()));

    // Closed periods keep their published scores (see restate.rs).
    let close_days = policy.policy.scoring.close_after_days;
    let mut ind_df = score::indicator_scores_frame(&ind_scores, as_of)?;
    let mut dept_df = score::department_scores_frame(&dept_scores, as_of)?;
    restate::add_closed(&mut ind_df, as_of, close_days)?;
    restate::add_closed(&mut dept_df, as_of, close_days)?;
    let previous = |name: &str| -> Result<Option<DataFrame>> {
        // The previous run's published marts, never this run's.
        let p = out.marts().join(format!("{name}.parquet"));
        Ok(if p.is_file() {
            Some(lake::read_parquet(&p)?)
        } else {
            None
        })
    };
    let (dept_df, ind_df, restatements) = restate::keep_closed(
        previous("department_scores")?,
        previous("indicator_scores")?,
        dept_df,
        ind_df,
    )?;
    if restatements.height() > 0 {
        progress.warn(&format!(
            "{} figure(s) of closed periods differ from a recomputation; the published figures are kept and the differences listed in marts/restatements.parquet",
            restatements.height()
        ));
    }

    // Trends and cross-checks read the published scores (closed periods
    // as published).
    let n_raters: HashMap<(String, crate::periods::Period), usize> = views
        .satisfaction
        .iter()
        .filter(|r| r.rater_group == "all")
        .map(|r| ((r.dept_id.clone(), r.period), r.n_raters))
        .collect();
    let series = trends::series(&ind_df, &dept_df, catalog, &n_raters)?;
    let (trend_rows, series_rows) = trends::compute(&series, &policy.policy);
    let findings = trends::cross_checks(&trend_rows, &policy.policy);
    progress.step(&format!(
        "trends: {} series, {} cross-check findings",
        trend_rows.len(),
        findings.len()
    ));

    Ok(vec![
        ("indicator_scores", ind_df),
        ("department_scores", dept_df),
        ("restatements", restatements),
        ("trends", trends::trends_frame(&trend_rows)?),
        ("trend_series", trends::series_frame(&series_rows)?),
        ("cross_checks", trends::findings_frame(&findings)?),
    ])
}

/// A rater mart as published: rater ids replaced by pseudonyms when the
/// policy asks for it.
fn published_raters(df: &DataFrame, key: Option<&[u8]>) -> Result<DataFrame> {
    let Some(key) = key else {
        return Ok(df.clone());
    };
    let ids: StringChunked = frame::strs(df, "rater_id")?
        .iter()
        .map(|v| v.as_deref().map(|id| crate::privacy::pseudonym(key, id)))
        .collect();
    let mut out = df.clone();
    out.with_column(ids.with_name("rater_id".into()).into_column())?;
    Ok(out)
}

fn veto_incidents(
    df: &DataFrame,
    policy: &LoadedPolicy,
    tz: Tz,
) -> Result<Vec<score::VetoIncident>> {
    let kinds = &policy.policy.veto.incident_kinds;
    let ids = frame::strs(df, "incident_id")?;
    let depts = frame::strs(df, "dept_id")?;
    let k = frame::strs(df, "kind")?;
    let confirmed = frame::bools(df, "confirmed")?;
    let at = frame::micros(df, "occurred_at")?;
    Ok((0..df.height())
        .filter(|&i| confirmed[i] == Some(true) && k[i].as_ref().is_some_and(|k| kinds.contains(k)))
        .filter_map(|i| {
            Some(score::VetoIncident {
                dept_id: depts[i].clone()?,
                incident_id: ids[i].clone()?,
                kind: k[i].clone()?,
                day: local_day(at[i]?, tz),
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::policy::{load_text, PolicySource, DEFAULT_POLICY};

    /// Two months of seeded ratings across New Year 2026, one response of
    /// five items per row group, with a lenient rater (`u0`), a rater who
    /// favours `d0` (`u1`) and a rater who straight-lines (`u2`). 2026-W01
    /// runs from Monday 29 December 2025 to Sunday 4 January 2026.
    fn ratings() -> DataFrame {
        let mut seed: u64 = 20260101;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let (mut ids, mut ats, mut depts, mut raters, mut groups, mut items, mut scores) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        let first = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
        let mut n = 0;
        for day in 0..62 {
            let date = first + Duration::days(day);
            // 10:00 in Shanghai (UTC+8 all year) is 02:00 UTC.
            let at = date
                .and_hms_opt(2, 0, 0)
                .unwrap()
                .and_utc()
                .timestamp_micros();
            for _ in 0..30 {
                n += 1;
                let (rater, dept) = (next(60), next(6));
                let lean = match (rater, dept) {
                    (0, _) => 1.5,
                    (1, 0) => 2.0,
                    _ => 0.0,
                };
                let base = 3.0 + (dept % 3) as f64 * 0.5 - 0.5 + lean;
                let flat = next(5) as f64;
                for item in 0..5 {
                    let noise = if rater == 2 {
                        0.0
                    } else {
                        next(3) as f64 - 1.0
                    };
                    let score = if rater == 2 { 1.0 + flat } else { base + noise };
                    ids.push(format!("R{n:05}"));
                    ats.push(at);
                    depts.push(format!("d{dept}"));
                    raters.push(format!("u{rater}"));
                    groups.push(if rater % 4 == 3 {
                        "peer"
                    } else {
                        "client_external"
                    });
                    items.push(format!("q{item}"));
                    scores.push(score.round().clamp(1.0, 5.0));
                }
            }
        }
        let month: Vec<String> = ats
            .iter()
            .map(|&us| {
                local_day(us, chrono_tz::Asia::Shanghai)
                    .format("%Y-%m")
                    .to_string()
            })
            .collect();
        Builder::new()
            .str("rating_id", ids.iter().map(Some))
            .ts("rated_at", ats.iter().map(|&t| Some(t)))
            .str("dept_id", depts.iter().map(Some))
            .str("rater_id", raters.iter().map(Some))
            .str("rater_group", groups.iter().map(Some))
            .str("item", items.iter().map(Some))
            .f64("score", scores.iter().map(|&s| Some(s)))
            .f64("scale_min", scores.iter().map(|_| Some(1.0)))
            .f64("scale_max", scores.iter().map(|_| Some(5.0)))
            .str("month", month.iter().map(Some))
            .build()
            .unwrap()
    }

    /// The rows of `df` whose `month` is in `first..=last`: what a scan of
    /// those months' files gives.
    fn months_of(df: &DataFrame, first: &str, last: &str) -> Result<Option<LazyFrame>> {
        Ok(Some(
            df.clone().lazy().filter(
                col("month")
                    .gt_eq(lit(first.to_string()))
                    .and(col("month").lt_eq(lit(last.to_string()))),
            ),
        ))
    }

    #[test]
    fn the_first_and_last_rating_come_from_the_files_at_either_end() {
        let at = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_micros()
        };
        // Files by month as loaded: some in UTC+8, where 18:00 UTC on 31
        // January is already 1 February and 17:00 UTC on 31 March is 1
        // April; others in UTC. May's file holds only ratings after as-of.
        let rows = [
            ("2026-01", "2026-01-31T20:00:00Z"),
            ("2026-02", "2026-01-31T18:00:00Z"),
            ("2026-02", "2026-02-10T09:00:00Z"),
            ("2026-03", "2026-03-05T09:00:00Z"),
            ("2026-03", "2026-03-31T20:00:00Z"),
            ("2026-04", "2026-03-31T17:00:00Z"),
            ("2026-04", "2026-04-10T09:00:00Z"),
            ("2026-05", "2026-05-02T09:00:00Z"),
        ];
        let df = frame::Builder::new()
            .str("month", rows.iter().map(|r| Some(r.0)))
            .ts("rated_at", rows.iter().map(|r| Some(at(r.1))))
            .build()
            .unwrap();
        let scan = |first: &str, last: &str| months_of(&df, first, last);
        let months = RatingMonths {
            months: ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
                .map(String::from)
                .to_vec(),
            scan: &scan,
        };
        // As of the end of 31 March UTC: the first rating is February's
        // file's first, earlier than January's only one; the last is in
        // March's file, later than April's only one up to as-of.
        let end = at("2026-03-31T23:59:59.999999Z");
        assert_eq!(
            months.bounds(end).unwrap(),
            Some((at("2026-01-31T18:00:00Z"), at("2026-03-31T20:00:00Z")))
        );
        // Up to the end of 10 April every file but May's counts.
        assert_eq!(
            months.bounds(at("2026-04-10T23:59:59Z")).unwrap(),
            Some((at("2026-01-31T18:00:00Z"), at("2026-04-10T09:00:00Z")))
        );
        // Before every rating there are none.
        assert_eq!(months.bounds(at("2026-01-01T00:00:00Z")).unwrap(), None);
    }

    #[test]
    fn definitions_that_read_the_same_rows_are_collected_together() {
        let policy = load_text(DEFAULT_POLICY.to_string(), PolicySource::Embedded).unwrap();
        let catalog = measure::load_catalog(&policy).unwrap();
        let views = build_views(
            empty_lake().unwrap(),
            &RatingMonths {
                months: Vec::new(),
                scan: &|_, _| Ok(None),
            },
            &mut |_, df, _| Ok(df.lazy()),
            None,
            &policy,
            NaiveDate::from_ymd_opt(2026, 1, 31).unwrap(),
            &Progress::silent(),
        )
        .unwrap()
        .sql();
        let names =
            |g: &Vec<usize>| -> Vec<&str> { g.iter().map(|&i| catalog[i].id.as_str()).collect() };
        let groups: Vec<Vec<&str>> = measure::sharing(&catalog, &views)
            .iter()
            .map(names)
            .collect();
        // By reading the definitions (the catalog is in id order): the
        // good- and bad-review rates select the same overall ratings of
        // clients; three complaint rates the valid complaints; two case
        // rates the resolved cases' reopenings and notices, two others the
        // cases' on-time columns; the instant share and visits the cases not
        // cancelled; the mean and 90th percentile of hours the resolved
        // cases' hours; three development indicators the measurements.
        // Satisfaction reads a table of its own.
        let expected: Vec<Vec<&str>> = vec![
            vec!["bad_review_rate", "good_review_rate"],
            vec![
                "complaint_rectified_on_time_rate",
                "major_complaint_rate",
                "valid_complaint_rate",
            ],
            vec!["first_time_resolution_rate", "result_notified_rate"],
            vec![
                "innovations_adopted",
                "process_compliance_rate",
                "training_hours_per_person",
            ],
            vec!["instant_handled_share", "visits_per_case"],
            vec!["mean_resolution_hours", "p90_resolution_hours"],
            vec!["on_time_resolution_rate", "on_time_response_rate"],
        ];
        assert_eq!(groups, expected);
    }

    #[test]
    fn a_year_at_a_time_gives_what_one_pass_over_all_ratings_gives() {
        let text = DEFAULT_POLICY.replace("handling = \"keep\"", "handling = \"exclude\"");
        let policy = load_text(text, PolicySource::Embedded).unwrap();
        let (p, tz) = (&policy.policy, policy.tz);
        let as_of = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
        let df = ratings();
        // One response of 30 December is removed on appeal.
        let removed: PlHashSet<String> = ["R00871".to_string()].into_iter().collect();
        let dept_types: HashMap<String, String> = (0..6)
            .map(|d| (format!("d{d}"), "hr".to_string()))
            .collect();

        // One pass over everything: the rater model, reliability and
        // satisfaction as defined.
        let items = raters::items_from_frame(&df, &removed, tz).unwrap();
        let outcome = raters::check(&items, &p.raters);
        let counted: Vec<bool> = items
            .iter()
            .map(|r| !outcome.excluded.contains_key(&*r.rating_id))
            .collect();
        let numbers = raters::ResponseNumbers::of(&items);
        let reliability = raters::reliability(&items, &counted, &numbers, Window::ALL);
        let responses = satisfaction::responses(&items, &numbers, &outcome);
        let satisfaction = satisfaction::compute(&responses, &dept_types, p, Window::ALL);

        // The same a year at a time, the months read as `rate` asks.
        let by_months = |first: &str, last: &str| months_of(&df, first, last);
        let rated = rate(
            &Ratings {
                all: df.clone().lazy(),
                by_months: &RatingMonths {
                    months: vec!["2025-12".into(), "2026-01".into()],
                    scan: &by_months,
                },
                end: end_of_day(as_of, tz),
            },
            &removed,
            &dept_types,
            None,
            &policy,
            as_of,
            &Progress::silent(),
        )
        .unwrap();

        // The data exercises what crosses New Year: estimates and flags in
        // both years, and a week of 2026 that holds December's ratings,
        // excluded responses and rater-adjusted means among them.
        let quarters = |df: &DataFrame| -> BTreeSet<String> {
            frame::strs(df, "period")
                .unwrap()
                .into_iter()
                .flatten()
                .collect()
        };
        let flags = raters::flags_frame(&outcome.flags, as_of).unwrap();
        assert_eq!(
            quarters(&flags),
            ["2025-Q4".to_string(), "2026-Q1".to_string()].into()
        );
        let flagged: BTreeSet<String> = frame::strs(&flags, "flag")
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        for f in ["lenient", "favouritism", "straight_line"] {
            assert!(flagged.contains(f), "{f} in {flagged:?}");
        }
        let w01: Vec<&satisfaction::Row> = satisfaction
            .iter()
            .filter(|r| r.period.label() == "2026-W01" && r.rater_group == "all")
            .collect();
        assert_eq!(w01.len(), 6);
        let december = responses
            .iter()
            .filter(|r| r.day >= NaiveDate::from_ymd_opt(2025, 12, 29).unwrap())
            .filter(|r| r.day <= NaiveDate::from_ymd_opt(2025, 12, 31).unwrap())
            .count();
        // 3 days x 30 responses, less the one removed on appeal.
        assert_eq!(december, 89);
        assert!(w01.iter().map(|r| r.excluded_ratings).sum::<usize>() > 0);
        assert!(w01.iter().all(|r| r.fair_mean.is_some()));

        assert!(rated
            .effects
            .equals_missing(&raters::effects_frame(&outcome.effects, as_of).unwrap()));
        assert!(rated.flags.equals_missing(&flags));
        assert_eq!(rated.satisfaction, satisfaction);
        assert_eq!(rated.reliability, reliability);
        assert_eq!(rated.first_day, responses.iter().map(|r| r.day).min());
    }
}
