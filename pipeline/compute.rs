//! `scorecard compute`: lake -> marts. The order of the stages:
//!
//! 1. views: lake tables as they stood at the end of `--as-of` (later rows
//!    dropped, later rectifications not yet known), ratings removed on
//!    appeal left out of `scored_ratings`; `ratings` and `process_events`
//!    stay scans of their files, read a few columns at a time
//! 2. derive: `cases`, `case_time`
//! 3. satisfaction
//! 4. measure: every indicator definition -> `indicator_values`
//! 5. score: `indicator_scores`, `department_scores`
//!
//! All marts are written to a staging folder and the `marts/` folder is
//! swapped in whole, so readers never see marts of two different runs.

use std::collections::{HashMap, HashSet};

use anyhow::{Context, Result};
use chrono::{Duration, NaiveDate, NaiveTime};
use chrono_tz::Tz;
use polars::prelude::*;

use crate::calendar::WorkCalendar;
use crate::frame::{self, Builder};
use crate::ingest::{self, fields::local_to_utc, tables};
use crate::lake::{self, OutDir, Staging};
use crate::measure::{self, Indicator};
use crate::policy::LoadedPolicy;
use crate::progress::Progress;
use crate::satisfaction::{self, local_day};
use crate::{cases, raters, restate, score, trends};

/// Lake tables and derived frames that indicator SQL can read.
pub struct Views {
    /// Small lake tables and derived frames, in memory.
    pub tables: Vec<(&'static str, DataFrame)>,
    /// The large lake tables (`ratings`, `process_events`) as scans of
    /// their partition files up to as-of: each query reads only the
    /// columns it needs, and nothing stays in memory.
    pub scans: Vec<(&'static str, LazyFrame)>,
    /// Ratings removed on appeal by as-of.
    removed: HashSet<String>,
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
        .and_then(|lake| build_views(lake, policy, as_of, &Progress::silent()))
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
fn instant(us: i64) -> Expr {
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

/// Builds the views as the data stood at the end of `as_of`.
pub fn build_views(
    lake: Vec<(&'static str, LazyFrame)>,
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
    let removed: HashSet<String> = {
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
    // the events read for them freed.
    let (cases_df, case_time_df, first_case_day) = {
        let events = collect_columns(&events, &cases::EVENT_COLUMNS, "process events")?;
        let (case_rows, _orphans) = cases::derive(&events, p, &cal, tz, end)?;
        progress.step(&format!(
            "cases: {} from {} process events",
            case_rows.len(),
            events.height()
        ));
        (
            cases::cases_frame(&case_rows)?,
            cases::case_time_frame(&case_rows)?,
            case_rows.iter().map(|c| local_day(c.received_at, tz)).min(),
        )
    };

    let dept_types: HashMap<String, String> = frame::strs(&departments, "dept_id")?
        .into_iter()
        .zip(frame::strs(&departments, "dept_type")?)
        .filter_map(|(d, t)| Some((d?, t?)))
        .collect();
    let items = {
        let df = collect_columns(&ratings, &raters::RATING_COLUMNS, "ratings")?;
        raters::items_from_frame(&df, &removed, tz)?
    };
    let rater_outcome = raters::check(&items, &p.raters);
    progress.step(&format!(
        "rater model: {} item ratings, {} rater estimates, {} flags",
        items.len(),
        rater_outcome.effects.len(),
        rater_outcome.flags.len()
    ));
    let counted: Vec<bool> = items
        .iter()
        .map(|r| !rater_outcome.excluded.contains_key(&*r.rating_id))
        .collect();
    let reliability = raters::reliability(&items, &counted);
    let responses = satisfaction::responses(&items, &rater_outcome);
    let sat_rows = satisfaction::compute(&responses, &dept_types, p);

    let first_day = responses.iter().map(|r| r.day).chain(first_case_day).min();

    let tables = vec![
        ("departments", departments),
        ("rating_appeals", appeals),
        ("complaints", complaints),
        ("incidents", incidents),
        ("measurements", measurements),
        ("cases", cases_df),
        ("case_time", case_time_df),
        ("satisfaction", satisfaction::frame(&sat_rows, as_of)?),
        (
            "rater_effects",
            raters::effects_frame(&rater_outcome.effects, as_of)?,
        ),
        (
            "rating_flags",
            raters::flags_frame(&rater_outcome.flags, as_of)?,
        ),
        (
            "reliability",
            raters::reliability_frame(&reliability, as_of)?,
        ),
    ];
    Ok(Views {
        tables,
        scans: vec![("ratings", ratings), ("process_events", events)],
        removed,
        satisfaction: sat_rows,
        first_day,
    })
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
    let mut views =
        build_views(lake, policy, as_of, progress).map_err(|e| name_damaged_file(out, e))?;
    progress.step(&format!("satisfaction: {} rows", views.satisfaction.len()));
    let values =
        measure::compute(catalog, &views.sql(), tz).map_err(|e| name_damaged_file(out, e))?;
    // The raw views have served the indicators: free them
    // before scoring and trends (a large share of the peak memory).
    views.tables.retain(|(name, _)| {
        !matches!(
            *name,
            "ratings" | "rating_appeals" | "process_events" | "complaints" | "measurements"
        )
    });
    progress.step(&format!("measure: {} indicator values", values.len()));

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
    let vetoes = veto_incidents(views.get("incidents"), policy, tz)?;
    let (ind_scores, dept_scores) = match views.first_day {
        Some(first) => score::score(
            &departments,
            &values,
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

    let mut marts: Vec<(&str, DataFrame)> = vec![
        ("cases", views.get("cases").clone()),
        ("case_time", views.get("case_time").clone()),
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
        ("indicator_scores", ind_df),
        ("department_scores", dept_df),
        ("restatements", restatements),
        ("trends", trends::trends_frame(&trend_rows)?),
        ("trend_series", trends::series_frame(&series_rows)?),
        ("cross_checks", trends::findings_frame(&findings)?),
        ("indicator_catalog", measure::catalog_frame(catalog)?),
    ];
    let dir = staging.stage(&out.marts());
    let mut report = ComputeReport {
        as_of: as_of.to_string(),
        ..Default::default()
    };
    for (name, df) in &mut marts {
        report.marts.insert(name.to_string(), df.height());
        lake::write_parquet(df, &dir.join(format!("{name}.parquet")))
            .with_context(|| format!("cannot write mart {name}"))?;
    }
    crate::failpoint("compute");
    Ok(report)
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
