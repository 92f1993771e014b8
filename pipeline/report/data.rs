//! The marts the site is drawn from, read once into plain Rust structures
//! keyed for page building. One file over 600 lines because it is one
//! thing: the reader of every mart the pages show, in one pass (the case
//! marts on a thread of their own), each mart's columns beside the struct
//! they fill.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use polars::prelude::*;

use crate::frame::{self, At};
use crate::lake::{self, OutDir};
use crate::model::measure::Direction;
use crate::time::periods::{Grain, Period};

#[derive(Debug, Clone)]
pub struct Dept {
    pub id: String,
    pub name: String,
    pub type_id: String,
    pub parent: Option<String>,
}

#[derive(Debug, Clone)]
pub struct DeptScore {
    pub is_partial: bool,
    pub total: Option<f64>,
    pub result: Option<f64>,
    pub process: Option<f64>,
    pub development: Option<f64>,
    pub veto: bool,
    pub veto_reasons: Option<String>,
    pub grade: Option<String>,
    pub rank: Option<i64>,
    pub bonus: Option<f64>,
    pub coverage: Option<f64>,
    pub version: String,
}

#[derive(Debug, Clone)]
pub struct IndScore {
    pub indicator_id: String,
    pub category: String,
    pub value: Option<f64>,
    pub n: Option<f64>,
    pub target: Option<f64>,
    pub weight: Option<f64>,
    pub points: Option<f64>,
    pub status: String,
}

#[derive(Debug, Clone)]
pub struct SatRow {
    pub group: String,
    pub n_ratings: i64,
    pub n_raters: i64,
    pub observed: Option<f64>,
    pub weighted: Option<f64>,
    pub fair: Option<f64>,
    pub excluded: i64,
}

#[derive(Debug, Clone)]
pub struct Catalog {
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    /// Which side of a value is better.
    pub direction: Direction,
}

#[derive(Debug, Clone)]
pub struct TrendRow {
    pub direction: String,
    pub flags: Vec<String>,
    pub latest: Option<String>,
}

#[derive(Debug, Clone)]
/// A point of `trend_series`. Its process limits and signals are those of
/// the latest window; a page draws the ones of its own period's window
/// instead (`Site::window_at`).
pub struct SeriesPoint {
    pub period: Period,
    pub value: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Restated {
    pub dept_id: String,
    pub period: String,
    pub item: String,
    pub published: String,
    pub recomputed: String,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub dept_id: String,
    pub check_id: String,
    pub grain: String,
    pub period: String,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct RaterEffect {
    pub rater_id: String,
    pub period: String,
    pub n_ratings: i64,
    pub n_depts: i64,
    pub severity: f64,
    pub se: f64,
    pub flags: String,
}

type Key = (String, Grain, Period);

/// Transferred cases by intake department and month: of those no longer
/// open, cases and hours by holder; and how many are still open (their
/// hours run to as-of, so they are counted apart and a past month's page
/// stays as it was).
#[derive(Debug, Default)]
pub struct CaseTime {
    pub held: HashMap<(String, Period), BTreeMap<String, (usize, f64)>>,
    pub open: HashMap<(String, Period), usize>,
}

/// A department's follow-ups still owed at as-of (`followup_status`).
#[derive(Debug, Default)]
pub struct Backlog {
    /// (overdue, not yet due), of: bad reviews to rectify, call-backs,
    /// complaints to rectify.
    pub rectify: (usize, usize),
    pub call_back: (usize, usize),
    pub complaints: (usize, usize),
    /// Overdue items, the longest overdue first.
    pub overdue: Vec<Overdue>,
}

#[derive(Debug)]
pub struct Overdue {
    /// `rating` or `complaint`, and its id.
    pub kind: String,
    pub id: String,
    /// `rectify` or `call_back`.
    pub what: &'static str,
    pub received: chrono::NaiveDate,
    pub due: chrono::NaiveDate,
}

/// An improvement plan as a month's scorecard carries it (`plan_periods`,
/// with the plan's own columns from `plan_status`).
#[derive(Debug, Clone)]
pub struct PlanRow {
    pub id: String,
    pub reason: String,
    pub reason_ref: Option<String>,
    pub indicator: Option<String>,
    /// The plan's target, else the one it was verified against.
    pub target: Option<f64>,
    pub measures: Option<String>,
    pub owner: String,
    pub due: chrono::NaiveDate,
    pub completion: String,
    pub days_late: Option<i64>,
    pub verification: String,
}

/// A row of the `escalations` mart.
#[derive(Debug)]
pub struct Escalation {
    pub dept_id: String,
    pub rule: String,
    pub period: String,
    pub count: i64,
    pub detail: String,
}

/// A row of the `service_stars` mart, in the site's language.
#[derive(Debug)]
pub struct StarRow {
    pub period: Period,
    pub dept_id: String,
    pub staff_id: String,
    pub rank: i64,
    pub name: String,
    pub composite: Option<f64>,
    pub ratings: i64,
    pub fair_mean: Option<f64>,
    pub run_months: i64,
    pub is_final: bool,
    pub reason: String,
}

/// The `staff_exceptions` rows of one table and issue: records, staff ids,
/// and the first row's staff id, month and example record.
#[derive(Debug, Default)]
pub struct StaffExceptions {
    pub records: i64,
    pub staff_ids: usize,
    pub first: (String, String, String),
}

/// Everything the pages show.
#[derive(Debug, Default)]
pub struct SiteData {
    pub depts: Vec<Dept>,
    pub scores: HashMap<Key, DeptScore>,
    /// Periods with department scores, per grain, oldest first.
    pub periods: BTreeMap<Grain, Vec<Period>>,
    pub indicators: HashMap<Key, Vec<IndScore>>,
    pub satisfaction: HashMap<Key, Vec<SatRow>>,
    pub reliability: HashMap<Key, (i64, Option<f64>)>,
    pub catalog: HashMap<String, Catalog>,
    pub trends: HashMap<(String, String, Grain), TrendRow>,
    /// The indicators with trend flags, per department and grain.
    pub flagged_trends: HashMap<(String, Grain), Vec<String>>,
    pub series: HashMap<(String, String, Grain), Vec<SeriesPoint>>,
    pub findings: Vec<Finding>,
    pub restated: Vec<Restated>,
    /// The rater estimates with flags.
    pub flagged: Vec<RaterEffect>,
    /// Every rater estimate's severity.
    pub severities: Vec<f64>,
    pub flag_counts: BTreeMap<String, usize>,
    /// (intake dept, month) -> holding dept -> (cases, hours), transferred cases only.
    pub case_time: CaseTime,
    /// (dept, month) -> root cause -> valid complaints.
    pub root_causes: HashMap<(String, Period), BTreeMap<String, usize>>,
    /// dept -> follow-ups owed at as-of.
    pub backlogs: BTreeMap<String, Backlog>,
    /// Departments to call in (the `escalations` mart).
    pub escalations: Vec<Escalation>,
    /// Follow-ups left out, by reason: (count, the first one's file, line
    /// and id).
    pub followup_rejects: BTreeMap<String, (usize, String, i64, String)>,
    /// (dept, month) -> the plans its scorecard carries, by plan id.
    pub plans: HashMap<(String, Period), Vec<PlanRow>>,
    /// dept -> improvement plans overdue and still carried at as-of.
    pub overdue_plans: BTreeMap<String, usize>,
    /// Plan events left out, as `followup_rejects`.
    pub plan_rejects: BTreeMap<String, (usize, String, i64, String)>,
    /// 服务之星, latest month first, then by department and rank.
    pub stars: Vec<StarRow>,
    /// The staff pages' data, with `site.publish_staff = "all"`.
    pub people: Option<super::people::StaffData>,
    /// Facts whose staff id the staff table does not place, per (table,
    /// issue).
    pub staff_exceptions: BTreeMap<(String, String), StaffExceptions>,
    /// (table, latest event day) for the event tables.
    pub freshness: Vec<(String, String)>,
    pub rejects_total: usize,
}

/// A mart, whole (`columns` None) or some of its columns: the large marts
/// (every case, every rater estimate and flag) are read only as far as the
/// pages need them.
fn read_mart(out: &OutDir, name: &str, columns: Option<&[&str]>) -> Result<Option<DataFrame>> {
    let p = out.read(&out.marts().join(format!("{name}.parquet")));
    if !p.is_file() {
        return Ok(None);
    }
    Ok(Some(match columns {
        Some(columns) => lake::read_parquet_columns(&p, columns)?,
        None => lake::read_parquet(&p)?,
    }))
}

pub(super) fn mart(out: &OutDir, name: &str) -> Result<Option<DataFrame>> {
    read_mart(out, name, None)
}

fn mart_columns(out: &OutDir, name: &str, columns: &[&str]) -> Result<Option<DataFrame>> {
    read_mart(out, name, Some(columns))
}

pub(super) fn period_of(
    grain: &Option<String>,
    start: Option<chrono::NaiveDate>,
) -> Option<Period> {
    Some(Period::containing(Grain::parse(grain.as_deref()?)?, start?))
}

/// Reads everything the pages show: the case marts (the largest two) on a
/// thread of their own while the other marts are read.
pub fn load(out: &OutDir, english: bool, tz: chrono_tz::Tz) -> Result<SiteData> {
    std::thread::scope(|s| {
        let case_time = s.spawn(|| transferred_case_time(out, tz));
        let mut d = load_others(out, english, tz)?;
        d.case_time = case_time
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        Ok(d)
    })
}

/// Everything but the case time.
fn load_others(out: &OutDir, english: bool, tz: chrono_tz::Tz) -> Result<SiteData> {
    let day = |us: i64| crate::time::local_day(us, tz);
    let mut d = SiteData::default();
    if let Some(df) = lake::read_table(out, "departments", false)? {
        let (id, name, name_en) = (
            frame::strs(&df, "dept_id")?,
            frame::strs(&df, "name")?,
            frame::strs(&df, "name_en")?,
        );
        let (ty, parent) = (
            frame::strs(&df, "dept_type")?,
            frame::strs(&df, "parent_id")?,
        );
        for i in 0..df.height() {
            let Some(idv) = id[i].clone() else { continue };
            let nm = if english {
                name_en[i].clone().or_else(|| name[i].clone())
            } else {
                name[i].clone()
            };
            d.depts.push(Dept {
                name: nm.unwrap_or_else(|| idv.clone()),
                id: idv,
                type_id: ty[i].clone().unwrap_or_default(),
                parent: parent[i].clone(),
            });
        }
        d.depts.sort_by(|a, b| a.id.cmp(&b.id));
    }
    if let Some(df) = mart(out, "department_scores")? {
        let (dept, grain, start) = (
            frame::strs(&df, "dept_id")?,
            frame::strs(&df, "grain")?,
            frame::dates(&df, "period_start")?,
        );
        let partial = frame::bools(&df, "is_partial")?;
        let (total, res, pro, dev) = (
            frame::f64s(&df, "total_score")?,
            frame::f64s(&df, "result_points")?,
            frame::f64s(&df, "process_points")?,
            frame::f64s(&df, "development_points")?,
        );
        let (veto, reasons, grade) = (
            frame::bools(&df, "veto")?,
            frame::strs(&df, "veto_reasons")?,
            frame::strs(&df, "grade")?,
        );
        let (rank, bonus, cov, ver) = (
            frame::i64s(&df, "rank_in_type")?,
            frame::f64s(&df, "bonus_coefficient")?,
            frame::f64s(&df, "weight_coverage")?,
            frame::strs(&df, "policy_version")?,
        );
        for i in 0..df.height() {
            let (Some(dp), Some(p)) = (&dept[i], period_of(&grain[i], start[i])) else {
                continue;
            };
            if p.grain == Grain::Week {
                continue; // weeks are monitored through trends, not scored pages
            }
            d.scores.insert(
                (dp.clone(), p.grain, p),
                DeptScore {
                    is_partial: partial[i].unwrap_or(false),
                    total: total[i],
                    result: res[i],
                    process: pro[i],
                    development: dev[i],
                    veto: veto[i].unwrap_or(false),
                    veto_reasons: reasons[i].clone(),
                    grade: grade[i].clone(),
                    rank: rank[i],
                    bonus: bonus[i],
                    coverage: cov[i],
                    version: ver[i].clone().unwrap_or_default(),
                },
            );
            let list = d.periods.entry(p.grain).or_default();
            if !list.contains(&p) {
                list.push(p);
            }
        }
        for list in d.periods.values_mut() {
            list.sort();
        }
    }
    if let Some(df) = mart(out, "indicator_scores")? {
        let (dept, grain, start) = (
            frame::strs(&df, "dept_id")?,
            frame::strs(&df, "grain")?,
            frame::dates(&df, "period_start")?,
        );
        let (id, cat, value, n) = (
            frame::strs(&df, "indicator_id")?,
            frame::strs(&df, "category")?,
            frame::f64s(&df, "value")?,
            frame::f64s(&df, "n")?,
        );
        let (target, weight, points, status) = (
            frame::f64s(&df, "target")?,
            frame::f64s(&df, "weight")?,
            frame::f64s(&df, "points")?,
            frame::strs(&df, "status")?,
        );
        for i in 0..df.height() {
            let (Some(dp), Some(p)) = (&dept[i], period_of(&grain[i], start[i])) else {
                continue;
            };
            if p.grain == Grain::Week {
                continue;
            }
            d.indicators
                .entry((dp.clone(), p.grain, p))
                .or_default()
                .push(IndScore {
                    indicator_id: id[i].clone().unwrap_or_default(),
                    category: cat[i].clone().unwrap_or_default(),
                    value: value[i],
                    n: n[i],
                    target: target[i],
                    weight: weight[i],
                    points: points[i],
                    status: status[i].clone().unwrap_or_default(),
                });
        }
    }
    if let Some(df) = mart(out, "satisfaction")? {
        let (dept, grain, start) = (
            frame::strs(&df, "dept_id")?,
            frame::strs(&df, "grain")?,
            frame::dates(&df, "period_start")?,
        );
        let (group, nr, nra) = (
            frame::strs(&df, "rater_group")?,
            frame::i64s(&df, "n_ratings")?,
            frame::i64s(&df, "n_raters")?,
        );
        let (obs, wei, fair, exc) = (
            frame::f64s(&df, "observed_mean")?,
            frame::f64s(&df, "weighted_mean")?,
            frame::f64s(&df, "fair_mean")?,
            frame::i64s(&df, "excluded_ratings")?,
        );
        for i in 0..df.height() {
            let (Some(dp), Some(p)) = (&dept[i], period_of(&grain[i], start[i])) else {
                continue;
            };
            d.satisfaction
                .entry((dp.clone(), p.grain, p))
                .or_default()
                .push(SatRow {
                    group: group[i].clone().unwrap_or_default(),
                    n_ratings: nr[i].unwrap_or(0),
                    n_raters: nra[i].unwrap_or(0),
                    observed: obs[i],
                    weighted: wei[i],
                    fair: fair[i],
                    excluded: exc[i].unwrap_or(0),
                });
        }
    }
    if let Some(df) = mart(out, "reliability")? {
        let (dept, grain, start) = (
            frame::strs(&df, "dept_id")?,
            frame::strs(&df, "grain")?,
            frame::dates(&df, "period_start")?,
        );
        let (nr, rwg) = (frame::i64s(&df, "n_raters")?, frame::f64s(&df, "rwg")?);
        for i in 0..df.height() {
            let (Some(dp), Some(p)) = (&dept[i], period_of(&grain[i], start[i])) else {
                continue;
            };
            d.reliability
                .insert((dp.clone(), p.grain, p), (nr[i].unwrap_or(0), rwg[i]));
        }
    }
    if let Some(df) = mart(out, "indicator_catalog")? {
        let (id, zh, en, unit, direction) = (
            frame::strs(&df, "indicator_id")?,
            frame::strs(&df, "name_zh")?,
            frame::strs(&df, "name_en")?,
            frame::strs(&df, "unit")?,
            frame::strs(&df, "direction")?,
        );
        for i in 0..df.height() {
            d.catalog.insert(
                id[i].clone().unwrap_or_default(),
                Catalog {
                    name_zh: zh[i].clone().unwrap_or_default(),
                    name_en: en[i].clone().unwrap_or_default(),
                    unit: unit[i].clone().unwrap_or_default(),
                    direction: direction[i]
                        .as_deref()
                        .and_then(Direction::from_name)
                        .unwrap_or(Direction::Higher),
                },
            );
        }
    }
    if let Some(df) = mart(out, "trends")? {
        let (dept, ind, grain) = (
            frame::strs(&df, "dept_id")?,
            frame::strs(&df, "indicator_id")?,
            frame::strs(&df, "grain")?,
        );
        let (dir, flags, latest) = (
            frame::strs(&df, "direction")?,
            frame::strs(&df, "flags")?,
            frame::strs(&df, "latest_period")?,
        );
        for i in 0..df.height() {
            let (Some(dp), Some(id), Some(g)) = (
                &dept[i],
                &ind[i],
                grain[i].as_deref().and_then(Grain::parse),
            ) else {
                continue;
            };
            let row = TrendRow {
                direction: dir[i].clone().unwrap_or_default(),
                flags: flags[i]
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect(),
                latest: latest[i].clone(),
            };
            if !row.flags.is_empty() {
                d.flagged_trends
                    .entry((dp.clone(), g))
                    .or_default()
                    .push(id.clone());
            }
            d.trends.insert((dp.clone(), id.clone(), g), row);
        }
    }
    if let Some(df) = mart(out, "trend_series")? {
        let (dept, ind, grain, start) = (
            frame::strs(&df, "dept_id")?,
            frame::strs(&df, "indicator_id")?,
            frame::strs(&df, "grain")?,
            frame::dates(&df, "period_start")?,
        );
        let value = frame::f64s(&df, "value")?;
        for i in 0..df.height() {
            let (Some(dp), Some(id), Some(p)) = (&dept[i], &ind[i], period_of(&grain[i], start[i]))
            else {
                continue;
            };
            if p.grain == Grain::Week {
                continue;
            }
            d.series
                .entry((dp.clone(), id.clone(), p.grain))
                .or_default()
                .push(SeriesPoint {
                    period: p,
                    value: value[i],
                });
        }
    }
    if let Some(df) = mart(out, "cross_checks")? {
        let c = |n: &str| frame::strs(&df, n);
        let (dept, check, grain, period, detail) = (
            c("dept_id")?,
            c("check_id")?,
            c("grain")?,
            c("period")?,
            c("detail")?,
        );
        for i in 0..df.height() {
            d.findings.push(Finding {
                dept_id: dept[i].clone().unwrap_or_default(),
                check_id: check[i].clone().unwrap_or_default(),
                grain: grain[i].clone().unwrap_or_default(),
                period: period[i].clone().unwrap_or_default(),
                detail: detail[i].clone().unwrap_or_default(),
            });
        }
    }
    if let Some(df) = mart(out, "restatements")? {
        let c = |n: &str| frame::strs(&df, n);
        let (dept, grain, period, item, pu, re) = (
            c("dept_id")?,
            c("grain")?,
            c("period")?,
            c("item")?,
            c("published")?,
            c("recomputed")?,
        );
        for i in 0..df.height() {
            d.restated.push(Restated {
                dept_id: dept[i].clone().unwrap_or_default(),
                period: format!(
                    "{} {}",
                    grain[i].clone().unwrap_or_default(),
                    period[i].clone().unwrap_or_default()
                ),
                item: item[i].clone().unwrap_or_default(),
                published: pu[i].clone().unwrap_or_else(|| "—".into()),
                recomputed: re[i].clone().unwrap_or_else(|| "—".into()),
            });
        }
    }
    if let Some(df) = mart_columns(
        out,
        "rater_effects",
        &[
            "rater_id",
            "period",
            "flags",
            "n_ratings",
            "n_depts",
            "severity",
            "se",
        ],
    )? {
        // Every estimate's severity goes into the histogram; only the
        // flagged raters are listed, so only their rows are copied.
        let flags = At::strs(&df, "flags")?;
        let (id, period) = (At::strs(&df, "rater_id")?, At::strs(&df, "period")?);
        let (n, nd) = (frame::i64s(&df, "n_ratings")?, frame::i64s(&df, "n_depts")?);
        let (sev, se) = (frame::f64s(&df, "severity")?, frame::f64s(&df, "se")?);
        d.severities = sev.iter().map(|s| s.unwrap_or(0.0)).collect();
        for i in 0..df.height() {
            let Some(f) = flags.get(i).filter(|f| !f.is_empty()) else {
                continue;
            };
            d.flagged.push(RaterEffect {
                rater_id: id.get(i).unwrap_or_default().to_string(),
                period: period.get(i).unwrap_or_default().to_string(),
                n_ratings: n[i].unwrap_or(0),
                n_depts: nd[i].unwrap_or(0),
                severity: sev[i].unwrap_or(0.0),
                se: se[i].unwrap_or(0.0),
                flags: f.to_string(),
            });
        }
    }
    if let Some(df) = mart_columns(out, "rating_flags", &["flag"])? {
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for f in df.column("flag")?.str()?.iter().flatten() {
            *counts.entry(f).or_default() += 1;
        }
        d.flag_counts = counts
            .into_iter()
            .map(|(f, n)| (f.to_string(), n))
            .collect();
    }
    // Freshness: the latest event per table, from its latest partition only.
    for spec in crate::ingest::tables::ALL {
        let latest = if spec.name == "measurements" {
            // Measurement periods are dates, not events.
            match lake::last_partition(out, spec.name)? {
                Some(f) => frame::dates(&lake::read_parquet(&f)?, "period_start")?
                    .into_iter()
                    .flatten()
                    .max()
                    .map(|d| d.to_string()),
                None => None,
            }
        } else {
            crate::ingest::latest_instant(out, spec)?.map(|us| day(us).to_string())
        };
        if let Some(l) = latest {
            d.freshness.push((spec.name.to_string(), l));
        }
    }
    d.rejects_total = lake::count_rows_file(&out.read(&out.rejects()))?;
    if let Some(df) = lake::read_table(out, "complaints", true)? {
        let (dept, at, valid, cause) = (
            frame::strs(&df, "dept_id")?,
            frame::micros(&df, "received_at")?,
            frame::bools(&df, "valid")?,
            frame::strs(&df, "root_cause")?,
        );
        for i in 0..df.height() {
            if valid[i] != Some(true) {
                continue;
            }
            let (Some(dp), Some(us)) = (&dept[i], at[i]) else {
                continue;
            };
            *d.root_causes
                .entry((dp.clone(), Period::containing(Grain::Month, day(us))))
                .or_default()
                .entry(cause[i].clone().unwrap_or_else(|| "-".into()))
                .or_default() += 1;
        }
    }
    if let Some(df) = mart(out, "escalations")? {
        let (dept, rule) = (frame::strs(&df, "dept_id")?, frame::strs(&df, "rule")?);
        let (period, count, detail) = (
            frame::strs(&df, "period")?,
            frame::i64s(&df, "count")?,
            frame::strs(&df, "detail")?,
        );
        for i in 0..df.height() {
            if let (Some(dept_id), Some(rule)) = (dept[i].clone(), rule[i].clone()) {
                d.escalations.push(Escalation {
                    dept_id,
                    rule,
                    period: period[i].clone().unwrap_or_default(),
                    count: count[i].unwrap_or(0),
                    detail: detail[i].clone().unwrap_or_default(),
                });
            }
        }
    }
    if let Some(df) = mart(out, "followup_rejects")? {
        d.followup_rejects = rejects_by_reason(&df, "followup_id")?;
    }
    if let Some(df) = mart(out, "service_stars")? {
        let s = |c: &str| frame::strs(&df, c);
        let (grain, dept, name, name_en) = (s("grain")?, s("dept_id")?, s("name")?, s("name_en")?);
        let staff = s("staff_id")?;
        let reason = s(if english { "reason_en" } else { "reason_zh" })?;
        let start = frame::dates(&df, "period_start")?;
        let (rank, ratings, run) = (
            frame::i64s(&df, "rank")?,
            frame::i64s(&df, "ratings")?,
            frame::i64s(&df, "run_months")?,
        );
        let (composite, fair) = (
            frame::f64s(&df, "composite")?,
            frame::f64s(&df, "fair_mean")?,
        );
        let is_final = frame::bools(&df, "final")?;
        for i in 0..df.height() {
            let (Some(g), Some(start)) = (grain[i].as_deref().and_then(Grain::parse), start[i])
            else {
                continue;
            };
            let shown = if english {
                name_en[i].clone().or_else(|| name[i].clone())
            } else {
                name[i].clone()
            };
            d.stars.push(StarRow {
                period: Period::containing(g, start),
                dept_id: dept[i].clone().unwrap_or_default(),
                staff_id: staff[i].clone().unwrap_or_default(),
                rank: rank[i].unwrap_or_default(),
                name: shown.unwrap_or_default(),
                composite: composite[i],
                ratings: ratings[i].unwrap_or_default(),
                fair_mean: fair[i],
                run_months: run[i].unwrap_or(1),
                is_final: is_final[i] == Some(true),
                reason: reason[i].clone().unwrap_or_default(),
            });
        }
        d.stars
            .sort_by(|a, b| (b.period, &a.dept_id, a.rank).cmp(&(a.period, &b.dept_id, b.rank)));
    }
    if let Some(df) = mart(out, "staff_exceptions")? {
        let s = |c: &str| frame::strs(&df, c);
        let (table, issue, staff, month, example) = (
            s("table")?,
            s("issue")?,
            s("staff_id")?,
            s("month")?,
            s("example_id")?,
        );
        let records = frame::i64s(&df, "records")?;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        for i in 0..df.height() {
            let e = d
                .staff_exceptions
                .entry((text(&table[i]), text(&issue[i])))
                .or_insert_with(|| StaffExceptions {
                    first: (text(&staff[i]), text(&month[i]), text(&example[i])),
                    ..Default::default()
                });
            e.records += records[i].unwrap_or(0);
            e.staff_ids += 1;
        }
    }
    if let Some(df) = mart(out, "plan_event_rejects")? {
        d.plan_rejects = rejects_by_reason(&df, "event_id")?;
    }
    if let (Some(status), Some(carried)) = (mart(out, "plan_status")?, mart(out, "plan_periods")?) {
        let s = |c: &str| frame::strs(&status, c);
        let (id, dept, reason, reason_ref) =
            (s("plan_id")?, s("dept_id")?, s("reason")?, s("reason_ref")?);
        let (indicator, owner, completion) = (s("indicator")?, s("owner")?, s("completion")?);
        let measures = s("measures")?;
        let still_carried = frame::bools(&status, "carried")?;
        let (target, verify_target) = (
            frame::f64s(&status, "target")?,
            frame::f64s(&status, "verify_target")?,
        );
        let mut of_plan: HashMap<String, usize> = HashMap::new();
        for i in 0..status.height() {
            let (Some(pid), Some(dp)) = (&id[i], &dept[i]) else {
                continue;
            };
            of_plan.insert(pid.clone(), i);
            if completion[i].as_deref() == Some("overdue") && still_carried[i] == Some(true) {
                *d.overdue_plans.entry(dp.clone()).or_default() += 1;
            }
        }
        let c = |name: &str| frame::strs(&carried, name);
        let (pid, cdept, grain) = (c("plan_id")?, c("dept_id")?, c("grain")?);
        let (ccompletion, verification) = (c("completion")?, c("verification")?);
        let start = frame::dates(&carried, "period_start")?;
        let due = frame::dates(&carried, "due_on")?;
        let late = frame::i64s(&carried, "days_late")?;
        for r in 0..carried.height() {
            let (Some(p), Some(dp), Some(period), Some(due)) = (
                pid[r].as_ref(),
                cdept[r].clone(),
                period_of(&grain[r], start[r]),
                due[r],
            ) else {
                continue;
            };
            let Some(&i) = of_plan.get(p) else { continue };
            d.plans.entry((dp, period)).or_default().push(PlanRow {
                id: p.clone(),
                reason: reason[i].clone().unwrap_or_default(),
                reason_ref: reason_ref[i].clone(),
                indicator: indicator[i].clone(),
                target: target[i].or(verify_target[i]),
                measures: measures[i].clone(),
                owner: owner[i].clone().unwrap_or_default(),
                due,
                completion: ccompletion[r].clone().unwrap_or_default(),
                days_late: late[r],
                verification: verification[r].clone().unwrap_or_default(),
            });
        }
        for rows in d.plans.values_mut() {
            rows.sort_by(|a, b| a.id.cmp(&b.id));
        }
    }
    if let Some(df) = mart(out, "followup_status")? {
        let (kind, id, dept) = (
            frame::strs(&df, "subject_kind")?,
            frame::strs(&df, "subject_id")?,
            frame::strs(&df, "dept_id")?,
        );
        let received = frame::micros(&df, "received_at")?;
        let (cb_due, cb_status) = (
            frame::micros(&df, "call_back_due_at")?,
            frame::strs(&df, "call_back_status")?,
        );
        let (rect_due, rect_status) = (
            frame::micros(&df, "rectify_due_at")?,
            frame::strs(&df, "rectify_status")?,
        );
        for i in 0..df.height() {
            let (Some(k), Some(sid), Some(dp), Some(r)) =
                (kind[i].clone(), id[i].clone(), dept[i].clone(), received[i])
            else {
                continue;
            };
            let b = d.backlogs.entry(dp).or_default();
            let complaint = k == "complaint";
            for (what, status, due) in [
                ("rectify", rect_status[i].as_deref(), rect_due[i]),
                ("call_back", cb_status[i].as_deref(), cb_due[i]),
            ] {
                let count = match (what, complaint) {
                    ("rectify", false) => &mut b.rectify,
                    ("rectify", true) => &mut b.complaints,
                    _ => &mut b.call_back,
                };
                match (status, due) {
                    (Some("overdue"), Some(due)) => {
                        count.0 += 1;
                        b.overdue.push(Overdue {
                            kind: k.clone(),
                            id: sid.clone(),
                            what,
                            received: day(r),
                            due: day(due),
                        });
                    }
                    (Some("open"), _) => count.1 += 1,
                    _ => {}
                }
            }
        }
        for b in d.backlogs.values_mut() {
            b.overdue.sort_by(|x, y| {
                (x.due, &x.kind, &x.id, x.what).cmp(&(y.due, &y.kind, &y.id, y.what))
            });
        }
    }
    Ok(d)
}

/// Rows left out (`followup_rejects`, `plan_event_rejects`) by reason:
/// how many, and the first one's file, line and id (`id_column`).
fn rejects_by_reason(
    df: &DataFrame,
    id_column: &str,
) -> Result<BTreeMap<String, (usize, String, i64, String)>> {
    let (reason, file, line, id) = (
        frame::strs(df, "reason")?,
        frame::strs(df, "source_file")?,
        frame::i64s(df, "source_line")?,
        frame::strs(df, id_column)?,
    );
    let mut out: BTreeMap<String, (usize, String, i64, String)> = BTreeMap::new();
    for i in 0..df.height() {
        let Some(r) = reason[i].clone() else { continue };
        let example = (
            file[i].clone().unwrap_or_default(),
            line[i].unwrap_or(0),
            id[i].clone().unwrap_or_default(),
        );
        let e = out
            .entry(r)
            .or_insert((0, example.0.clone(), example.1, example.2.clone()));
        e.0 += 1;
        if (example.0.as_str(), example.1) < (e.1.as_str(), e.2) {
            (e.1, e.2, e.3) = example;
        }
    }
    Ok(out)
}

/// The time each department held the transferred cases another department
/// received, by intake department and the month received.
fn transferred_case_time(out: &OutDir, tz: chrono_tz::Tz) -> Result<CaseTime> {
    let mut days = crate::time::calendar::LocalDays::new(tz);
    let mut case_time = CaseTime::default();
    if let (Some(cases), Some(ct)) = (
        mart_columns(
            out,
            "cases",
            &[
                "case_id",
                "dept_id",
                "received_at",
                "transfer_count",
                "status",
            ],
        )?,
        mart_columns(out, "case_time", &["case_id", "dept_id", "hours"])?,
    ) {
        let (id, dept, recv, transfers) = (
            At::strs(&cases, "case_id")?,
            At::strs(&cases, "dept_id")?,
            At::micros(&cases, "received_at")?,
            frame::i64s(&cases, "transfer_count")?,
        );
        let status = At::strs(&cases, "status")?;
        // Transferred cases no longer open: intake department and month,
        // borrowed from the frame. Open ones are only counted.
        let mut intake: PlHashMap<&str, (&str, Period)> = PlHashMap::default();
        for (i, moved) in transfers.iter().enumerate() {
            if moved.unwrap_or(0) > 0 {
                if let (Some(c), Some(dp), Some(r)) = (id.get(i), dept.get(i), recv.get(i)) {
                    let month = Period::containing(Grain::Month, days.day(r));
                    if status.get(i).is_some_and(crate::model::cases::is_open) {
                        *case_time.open.entry((dp.to_string(), month)).or_default() += 1;
                    } else {
                        intake.insert(c, (dp, month));
                    }
                }
            }
        }
        let (cid, holder, hours) = (
            At::strs(&ct, "case_id")?,
            At::strs(&ct, "dept_id")?,
            frame::f64s(&ct, "hours")?,
        );
        // Added up by borrowed keys (a case's rows come together, so its
        // intake is looked up once), then made into the owned map.
        let mut sums: PlHashMap<(&str, Period, &str), (usize, f64)> = PlHashMap::default();
        let mut last: Option<(&str, Option<(&str, Period)>)> = None;
        for (i, hours) in hours.iter().enumerate() {
            let (Some(c), Some(h)) = (cid.get(i), holder.get(i)) else {
                continue;
            };
            let at = match last {
                Some((seen, at)) if seen == c => at,
                _ => {
                    let at = intake.get(c).copied();
                    last = Some((c, at));
                    at
                }
            };
            let Some((dp, month)) = at else {
                continue;
            };
            let e = sums.entry((dp, month, h)).or_default();
            e.0 += 1;
            e.1 += hours.unwrap_or(0.0);
        }
        for ((dp, month, h), sum) in sums {
            case_time
                .held
                .entry((dp.to_string(), month))
                .or_default()
                .insert(h.to_string(), sum);
        }
    }
    Ok(case_time)
}
