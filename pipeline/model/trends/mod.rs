//! Stage: trends. Indicator and department scores -> `trends` (one row per
//! department x indicator x grain, and `total_score`, for the latest complete
//! period), `trend_series` (the points the charts draw) and `cross_checks`
//! (the source document's audit triggers).
//!
//! Over the policy's window of complete periods: Sen's slope (median of
//! pairwise slopes, periods placed by their ordinal so a gap keeps its
//! width), the Mann-Kendall S, tau and two-sided p with the tie and
//! continuity corrections (as pymannkendall's `original_test`), a direction
//! that respects whether higher or lower is better, and process-behaviour
//! (XmR) limits with three run rules. Periods without data are skipped, not
//! filled. Series are independent and computed in parallel.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use chrono::{Datelike, Duration, NaiveDate};
use polars::prelude::DataFrame;
use rayon::prelude::*;

use crate::frame::{self, Builder};
use crate::model::measure::{Direction, Indicator};
use crate::policy::{Policy, TrendPolicy};
use crate::time::periods::{Grain, Period};

mod stats;
pub use stats::*;
mod checks;
pub use checks::*;

/// One point of a series as read from the score marts.
#[derive(Debug, Clone)]
pub struct SeriesPoint {
    pub period: Period,
    pub value: Option<f64>,
    pub is_partial: bool,
    /// Indicator status (`met`, ...), empty for the total.
    pub status: String,
    /// Distinct raters behind the value (satisfaction), when known.
    pub n_raters: Option<usize>,
}

/// A department x indicator x grain series, oldest first.
#[derive(Debug, Clone)]
pub struct Series {
    pub dept_id: String,
    pub indicator_id: String,
    pub grain: Grain,
    pub direction: Direction,
    pub points: Vec<SeriesPoint>,
}

/// One row of the `trends` mart.
#[derive(Debug, Clone, PartialEq)]
pub struct Trend {
    pub dept_id: String,
    pub indicator_id: String,
    pub grain: Grain,
    pub latest: Option<Period>,
    pub value: Option<f64>,
    pub status: String,
    pub change_prev: Option<f64>,
    pub change_yoy: Option<f64>,
    pub rolling_mean: Option<f64>,
    pub rolling_mean_long: Option<f64>,
    pub n_points: usize,
    pub window_mean: Option<f64>,
    pub sen_slope: Option<f64>,
    pub mk: Option<MannKendall>,
    pub direction: &'static str,
    pub reason: String,
    pub signals: Vec<String>,
    pub flags: Vec<String>,
    pub ptd: Option<(Period, Option<f64>)>,
    pub n_raters: Option<usize>,
}

/// One row of `trend_series`.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesRow {
    pub dept_id: String,
    pub indicator_id: String,
    pub period: Period,
    pub is_partial: bool,
    pub value: Option<f64>,
    pub rolling_mean: Option<f64>,
    pub rolling_mean_long: Option<f64>,
    pub limits: Option<Limits>,
    pub signals: Vec<&'static str>,
}

fn mean(xs: &[f64]) -> Option<f64> {
    (!xs.is_empty()).then(|| xs.iter().sum::<f64>() / xs.len() as f64)
}

/// The trend window over `values`, those of the complete periods in order:
/// the last `window` periods, those of them with a value, as (position,
/// value).
pub fn trend_window(values: &[Option<f64>], window: usize) -> Vec<(usize, f64)> {
    values
        .iter()
        .enumerate()
        .skip(values.len().saturating_sub(window))
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
}

/// The direction of a window of `n_points` values with Mann-Kendall result
/// `mk`: `improving` or `declining` (by the indicator's better side) when
/// the test is significant, else `no_trend` with the reason.
pub fn direction(
    n_points: usize,
    mk: Option<&MannKendall>,
    side: Direction,
    tp: &TrendPolicy,
) -> (&'static str, String) {
    let better = |rising: bool| match (rising, side) {
        (true, Direction::Higher) | (false, Direction::Lower) => "improving",
        _ => "declining",
    };
    match mk {
        _ if n_points < tp.min_points => (
            "no_trend",
            format!(
                "{n_points} point(s) in the window; at least {} needed",
                tp.min_points
            ),
        ),
        Some(m) if m.p < tp.significance && m.s != 0.0 => (better(m.s > 0.0), String::new()),
        Some(m) => ("no_trend", format!("not significant (p = {:.3})", m.p)),
        None => ("no_trend", "no data".into()),
    }
}

/// Computes one series' trend row and chart points.
pub fn analyse(s: &Series, tp: &TrendPolicy) -> (Trend, Vec<SeriesRow>) {
    let g = s.grain.as_str();
    let window = tp.window_for(g);
    let short = TrendPolicy::per_grain(&tp.rolling_short, g, 3);
    let long = TrendPolicy::per_grain(&tp.rolling_long, g, 12);
    let complete: Vec<&SeriesPoint> = s.points.iter().filter(|p| !p.is_partial).collect();
    let by_start: HashMap<NaiveDate, &SeriesPoint> =
        complete.iter().map(|p| (p.period.start, *p)).collect();
    // Values of the last `n` complete periods ending at index `i`.
    let trailing = |i: usize, n: usize| -> Vec<f64> {
        complete[i.saturating_sub(n - 1)..=i]
            .iter()
            .filter_map(|p| p.value)
            .collect()
    };
    let latest_i = complete.len().checked_sub(1);
    let latest = latest_i.map(|i| complete[i]);
    let value = latest.and_then(|p| p.value);
    let change_prev = latest_i
        .filter(|&i| i > 0)
        .and_then(|i| Some(value? - complete[i - 1].value?));
    let change_yoy = latest.and_then(|p| {
        let back = match s.grain {
            Grain::Week => p.period.start - Duration::days(364),
            _ => crate::time::periods::add_months(p.period.start, -12),
        };
        let then = by_start.get(&Period::containing(s.grain, back).start)?;
        Some(value? - then.value?)
    });

    let values: Vec<Option<f64>> = complete.iter().map(|p| p.value).collect();
    let win = trend_window(&values, window);
    let xs: Vec<f64> = win.iter().map(|w| w.1).collect();
    let ts: Vec<f64> = win.iter().map(|w| ordinal(&complete[w.0].period)).collect();
    let n_points = xs.len();
    let (mk, slope) = if n_points >= 2 {
        (Some(mann_kendall(&xs)), sens_slope(&ts, &xs))
    } else {
        (None, None)
    };
    let (direction, reason) = direction(n_points, mk.as_ref(), s.direction, tp);
    let limits = xmr(&xs);
    let rules = limits.map(|l| run_rules(&xs, &l)).unwrap_or_default();
    let mut signals = Vec::new();
    for (w, fired) in win.iter().zip(&rules) {
        for r in fired {
            signals.push(format!("{r}@{}", complete[w.0].period.label()));
        }
    }

    let mut flags = Vec::new();
    let run = tp.improvement_run;
    let improving_run = xs.len() > run
        && xs[xs.len() - run - 1..]
            .windows(2)
            .all(|w| match s.direction {
                Direction::Higher => w[1] > w[0],
                Direction::Lower => w[1] < w[0],
            });
    if direction == "improving" || improving_run {
        flags.push("continuous_improver".to_string());
    }
    let status = latest.map(|p| p.status.clone()).unwrap_or_default();
    if direction == "declining" && status == "met" {
        flags.push("short_term_met_long_term_declining".to_string());
    }
    let ptd = s
        .points
        .iter()
        .rev()
        .find(|p| p.is_partial)
        .filter(|p| latest.is_none_or(|l| p.period.start > l.period.start))
        .map(|p| (p.period, p.value));

    let trend = Trend {
        dept_id: s.dept_id.clone(),
        indicator_id: s.indicator_id.clone(),
        grain: s.grain,
        latest: latest.map(|p| p.period),
        value,
        status,
        change_prev,
        change_yoy,
        rolling_mean: latest_i.and_then(|i| mean(&trailing(i, short))),
        rolling_mean_long: latest_i.and_then(|i| mean(&trailing(i, long))),
        n_points,
        window_mean: mean(&xs),
        sen_slope: slope,
        mk,
        direction,
        reason,
        signals,
        flags,
        ptd,
        n_raters: latest.and_then(|p| p.n_raters),
    };

    let in_window: HashMap<usize, usize> =
        win.iter().enumerate().map(|(w, (k, _))| (*k, w)).collect();
    let mut rows: Vec<SeriesRow> = complete
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let w = in_window.get(&i);
            SeriesRow {
                dept_id: s.dept_id.clone(),
                indicator_id: s.indicator_id.clone(),
                period: p.period,
                is_partial: false,
                value: p.value,
                rolling_mean: mean(&trailing(i, short)),
                rolling_mean_long: mean(&trailing(i, long)),
                limits: w.and(limits),
                signals: w.and_then(|&w| rules.get(w).cloned()).unwrap_or_default(),
            }
        })
        .collect();
    if let Some((period, value)) = ptd {
        rows.push(SeriesRow {
            dept_id: s.dept_id.clone(),
            indicator_id: s.indicator_id.clone(),
            period,
            is_partial: true,
            value,
            rolling_mean: None,
            rolling_mean_long: None,
            limits: None,
            signals: Vec::new(),
        });
    }
    (trend, rows)
}

/// Builds every series from the score marts: each indicator, and
/// `total_score`, per department and grain.
pub fn series(
    indicator_scores: &DataFrame,
    department_scores: &DataFrame,
    catalog: &[Indicator],
    n_raters: &HashMap<(String, Period), usize>,
) -> Result<Vec<Series>> {
    let direction: HashMap<&str, Direction> = catalog
        .iter()
        .map(|i| (i.id.as_str(), i.direction))
        .collect();
    let mut map: BTreeMap<(String, String, Grain), Vec<SeriesPoint>> = BTreeMap::new();
    let mut read = |df: &DataFrame, indicator: Option<&str>| -> Result<()> {
        let depts = frame::strs(df, "dept_id")?;
        let grains = frame::strs(df, "grain")?;
        let starts = frame::dates(df, "period_start")?;
        let partial = frame::bools(df, "is_partial")?;
        let (values, ids, status) = match indicator {
            None => (
                frame::f64s(df, "value")?,
                frame::strs(df, "indicator_id")?,
                frame::strs(df, "status")?,
            ),
            Some(_) => (
                frame::f64s(df, "total_score")?,
                vec![None; df.height()],
                vec![None; df.height()],
            ),
        };
        for i in 0..df.height() {
            let (Some(d), Some(g), Some(start)) = (
                &depts[i],
                grains[i].as_deref().and_then(Grain::parse),
                starts[i],
            ) else {
                continue;
            };
            let id = indicator
                .map(String::from)
                .or_else(|| ids[i].clone())
                .unwrap_or_default();
            let period = Period::containing(g, start);
            let raters = (id == "satisfaction")
                .then(|| n_raters.get(&(d.clone(), period)).copied())
                .flatten();
            map.entry((d.clone(), id, g))
                .or_default()
                .push(SeriesPoint {
                    period,
                    value: values[i],
                    is_partial: partial[i].unwrap_or(false),
                    status: status[i].clone().unwrap_or_default(),
                    n_raters: raters,
                });
        }
        Ok(())
    };
    read(indicator_scores, None)?;
    read(department_scores, Some("total_score"))?;
    Ok(map
        .into_iter()
        .map(|((dept_id, indicator_id, grain), mut points)| {
            points.sort_by_key(|p| p.period.start);
            Series {
                direction: direction
                    .get(indicator_id.as_str())
                    .copied()
                    .unwrap_or(Direction::Higher),
                dept_id,
                indicator_id,
                grain,
                points,
            }
        })
        .collect())
}

/// Analyses every series in parallel.
pub fn compute(series: &[Series], policy: &Policy) -> (Vec<Trend>, Vec<SeriesRow>) {
    let results: Vec<(Trend, Vec<SeriesRow>)> = series
        .par_iter()
        .map(|s| analyse(s, &policy.trends))
        .collect();
    let mut trends = Vec::with_capacity(results.len());
    let mut rows = Vec::new();
    for (t, r) in results {
        trends.push(t);
        rows.extend(r);
    }
    (trends, rows)
}

pub fn trends_frame(rows: &[Trend]) -> Result<DataFrame> {
    let mk = |f: fn(&MannKendall) -> f64| rows.iter().map(move |r| r.mk.as_ref().map(f));
    Builder::new()
        .str("dept_id", rows.iter().map(|r| Some(r.dept_id.as_str())))
        .str(
            "indicator_id",
            rows.iter().map(|r| Some(r.indicator_id.as_str())),
        )
        .str("grain", rows.iter().map(|r| Some(r.grain.as_str())))
        .str(
            "latest_period",
            rows.iter().map(|r| r.latest.map(|p| p.label())),
        )
        .date(
            "period_start",
            rows.iter().map(|r| r.latest.map(|p| p.start)),
        )
        .date("period_end", rows.iter().map(|r| r.latest.map(|p| p.end)))
        .f64("value", rows.iter().map(|r| r.value))
        .str("status", rows.iter().map(|r| Some(r.status.as_str())))
        .f64("change_prev", rows.iter().map(|r| r.change_prev))
        .f64("change_yoy", rows.iter().map(|r| r.change_yoy))
        .f64("rolling_mean", rows.iter().map(|r| r.rolling_mean))
        .f64(
            "rolling_mean_long",
            rows.iter().map(|r| r.rolling_mean_long),
        )
        .i64("n_points", rows.iter().map(|r| Some(r.n_points as i64)))
        .f64("sen_slope", rows.iter().map(|r| r.sen_slope))
        .f64("mk_s", mk(|m| m.s))
        .f64("mk_tau", mk(|m| m.tau))
        .f64("mk_p", mk(|m| m.p))
        .str("direction", rows.iter().map(|r| Some(r.direction)))
        .str("reason", rows.iter().map(|r| Some(r.reason.as_str())))
        .str("signals", rows.iter().map(|r| Some(r.signals.join(","))))
        .str("flags", rows.iter().map(|r| Some(r.flags.join(","))))
        .str(
            "ptd_period",
            rows.iter().map(|r| r.ptd.map(|p| p.0.label())),
        )
        .f64("ptd_value", rows.iter().map(|r| r.ptd.and_then(|p| p.1)))
        .build()
}

pub fn series_frame(rows: &[SeriesRow]) -> Result<DataFrame> {
    let lim = |f: fn(&Limits) -> f64| rows.iter().map(move |r| r.limits.as_ref().map(f));
    Builder::new()
        .str("dept_id", rows.iter().map(|r| Some(r.dept_id.as_str())))
        .str(
            "indicator_id",
            rows.iter().map(|r| Some(r.indicator_id.as_str())),
        )
        .str("grain", rows.iter().map(|r| Some(r.period.grain.as_str())))
        .str("period", rows.iter().map(|r| Some(r.period.label())))
        .date("period_start", rows.iter().map(|r| Some(r.period.start)))
        .date("period_end", rows.iter().map(|r| Some(r.period.end)))
        .bool("is_partial", rows.iter().map(|r| Some(r.is_partial)))
        .f64("value", rows.iter().map(|r| r.value))
        .f64("rolling_mean", rows.iter().map(|r| r.rolling_mean))
        .f64(
            "rolling_mean_long",
            rows.iter().map(|r| r.rolling_mean_long),
        )
        .f64("center", lim(|l| l.center))
        .f64("ucl", lim(|l| l.ucl))
        .f64("lcl", lim(|l| l.lcl))
        .str("signals", rows.iter().map(|r| Some(r.signals.join(","))))
        .build()
}

pub fn findings_frame(rows: &[Finding]) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", rows.iter().map(|r| Some(r.dept_id.as_str())))
        .str("check_id", rows.iter().map(|r| Some(r.check_id)))
        .str("grain", rows.iter().map(|r| Some(r.grain.as_str())))
        .str("period", rows.iter().map(|r| Some(r.period.label())))
        .date("period_start", rows.iter().map(|r| Some(r.period.start)))
        .date("period_end", rows.iter().map(|r| Some(r.period.end)))
        .str("detail", rows.iter().map(|r| Some(r.detail.as_str())))
        .build()
}

#[cfg(test)]
mod tests;
