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
use crate::measure::{Direction, Indicator};
use crate::periods::{Grain, Period};
use crate::policy::{Policy, TrendPolicy};

/// Mann-Kendall test statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    pub s: f64,
    pub var_s: f64,
    pub z: f64,
    pub p: f64,
    pub tau: f64,
}

/// The Mann-Kendall test as pymannkendall's `original_test`: S, the
/// variance with the tie correction, z with the continuity correction, the
/// two-sided normal p-value, and tau = S / (n (n - 1) / 2).
pub fn mann_kendall(x: &[f64]) -> MannKendall {
    let n = x.len();
    let mut s = 0.0;
    for k in 0..n {
        for j in k + 1..n {
            s += if x[j] > x[k] {
                1.0
            } else if x[j] < x[k] {
                -1.0
            } else {
                0.0
            };
        }
    }
    let mut sorted = x.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        if t > 1.0 {
            ties += t * (t - 1.0) * (2.0 * t + 5.0);
        }
        i = j;
    }
    let nf = n as f64;
    let var_s = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    let z = if s > 0.0 {
        (s - 1.0) / var_s.sqrt()
    } else if s < 0.0 {
        (s + 1.0) / var_s.sqrt()
    } else {
        0.0
    };
    let p = if var_s > 0.0 {
        libm::erfc(z.abs() / std::f64::consts::SQRT_2)
    } else {
        1.0
    };
    let pairs = nf * (nf - 1.0) / 2.0;
    MannKendall {
        s,
        var_s,
        z,
        p,
        tau: if pairs > 0.0 { s / pairs } else { 0.0 },
    }
}

/// Sen's slope: the median of (x_j - x_k) / (t_j - t_k) over all pairs.
pub fn sens_slope(t: &[f64], x: &[f64]) -> Option<f64> {
    let mut slopes = Vec::with_capacity(x.len() * x.len() / 2);
    for k in 0..x.len() {
        for j in k + 1..x.len() {
            if t[j] != t[k] {
                slopes.push((x[j] - x[k]) / (t[j] - t[k]));
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(|a, b| a.total_cmp(b));
    let m = slopes.len();
    Some(if m % 2 == 1 {
        slopes[m / 2]
    } else {
        (slopes[m / 2 - 1] + slopes[m / 2]) / 2.0
    })
}

/// Natural process limits of an XmR chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub center: f64,
    pub mr_bar: f64,
    pub ucl: f64,
    pub lcl: f64,
}

/// Limits from the mean and the average moving range: mean +/- 2.66 mR-bar.
pub fn xmr(x: &[f64]) -> Option<Limits> {
    if x.len() < 2 {
        return None;
    }
    let center = x.iter().sum::<f64>() / x.len() as f64;
    let mr_bar = x.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (x.len() - 1) as f64;
    Some(Limits {
        center,
        mr_bar,
        ucl: center + 2.66 * mr_bar,
        lcl: center - 2.66 * mr_bar,
    })
}

/// The run rules, point by point: `beyond_limits`, `run_of_7_above` /
/// `run_of_7_below` (fires from the 7th point of a run on one side of the
/// centre line), `two_of_three_above` / `two_of_three_below` (two of three
/// successive points beyond two sigma on one side; sigma = mR-bar / 1.128).
pub fn run_rules(x: &[f64], lim: &Limits) -> Vec<Vec<&'static str>> {
    let sigma = lim.mr_bar / 1.128;
    let mut out = vec![Vec::new(); x.len()];
    let mut run = 0i64;
    for i in 0..x.len() {
        if x[i] > lim.ucl || x[i] < lim.lcl {
            out[i].push("beyond_limits");
        }
        let side = (x[i] - lim.center).signum() as i64;
        run = if side == 0 {
            0
        } else if run.signum() == side {
            run + side
        } else {
            side
        };
        if run >= 7 {
            out[i].push("run_of_7_above");
        } else if run <= -7 {
            out[i].push("run_of_7_below");
        }
        if i >= 2 {
            let window = &x[i - 2..=i];
            let above = window
                .iter()
                .filter(|v| **v > lim.center + 2.0 * sigma)
                .count();
            let below = window
                .iter()
                .filter(|v| **v < lim.center - 2.0 * sigma)
                .count();
            let this_above = x[i] > lim.center + 2.0 * sigma;
            let this_below = x[i] < lim.center - 2.0 * sigma;
            if above >= 2 && this_above {
                out[i].push("two_of_three_above");
            }
            if below >= 2 && this_below {
                out[i].push("two_of_three_below");
            }
        }
    }
    out
}

/// Where a period sits on its grain's time line (gaps keep their width).
fn ordinal(p: &Period) -> f64 {
    match p.grain {
        Grain::Week => {
            (p.start - NaiveDate::from_ymd_opt(1970, 1, 5).expect("a Monday")).num_days() as f64
                / 7.0
        }
        Grain::Month => (p.start.year() * 12 + p.start.month0() as i32) as f64,
        Grain::Quarter => (p.start.year() * 4 + (p.start.month0() / 3) as i32) as f64,
        Grain::Year => p.start.year() as f64,
    }
}

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

/// Computes one series' trend row and chart points.
pub fn analyse(s: &Series, tp: &TrendPolicy) -> (Trend, Vec<SeriesRow>) {
    let g = s.grain.as_str();
    let window = TrendPolicy::per_grain(&tp.window, g, 12);
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
            _ => crate::periods::add_months(p.period.start, -12),
        };
        let then = by_start.get(&Period::containing(s.grain, back).start)?;
        Some(value? - then.value?)
    });

    // The trend window: the last `window` complete periods with values.
    let win: Vec<(usize, f64)> = latest_i
        .map(|i| {
            (i.saturating_sub(window - 1)..=i)
                .filter_map(|k| complete[k].value.map(|v| (k, v)))
                .collect()
        })
        .unwrap_or_default();
    let xs: Vec<f64> = win.iter().map(|w| w.1).collect();
    let ts: Vec<f64> = win.iter().map(|w| ordinal(&complete[w.0].period)).collect();
    let n_points = xs.len();
    let (mk, slope) = if n_points >= 2 {
        (Some(mann_kendall(&xs)), sens_slope(&ts, &xs))
    } else {
        (None, None)
    };
    let better = |rising: bool| match (rising, s.direction) {
        (true, Direction::Higher) | (false, Direction::Lower) => "improving",
        _ => "declining",
    };
    let (direction, reason) = match mk {
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
    };
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

/// One audit finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub dept_id: String,
    pub check_id: &'static str,
    pub grain: Grain,
    pub period: Period,
    pub detail: String,
}

/// The source document's audit triggers, on the latest complete period of
/// each grain:
/// * `satisfaction_up_complaints_not_down`: satisfaction meets its target
///   or is improving, while the valid complaint rate did not fall over the
///   same window (Sen's slope not below zero, complaints present);
/// * `sharp_rise_few_raters`: satisfaction up sharply on few raters;
/// * `satisfaction_high_timeliness_poor`: satisfaction meets its target
///   while on-time resolution misses its own.
pub fn cross_checks(trends: &[Trend], policy: &Policy) -> Vec<Finding> {
    let by: HashMap<(&str, &str, Grain), &Trend> = trends
        .iter()
        .map(|t| ((t.dept_id.as_str(), t.indicator_id.as_str(), t.grain), t))
        .collect();
    let cp = &policy.cross_checks;
    let mut out = Vec::new();
    for sat in trends.iter().filter(|t| t.indicator_id == "satisfaction") {
        let Some(period) = sat.latest else { continue };
        let (dept, grain) = (sat.dept_id.as_str(), sat.grain);
        let mut find = |check_id: &'static str, detail: String| {
            out.push(Finding {
                dept_id: dept.to_string(),
                check_id,
                grain,
                period,
                detail,
            });
        };
        let sat_value = sat.value.map_or("-".into(), |v| format!("{v:.1}"));
        let sat_ok = sat.status == "met" || sat.direction == "improving";
        if let Some(c) = by.get(&(dept, "valid_complaint_rate", grain)) {
            let present = c.window_mean.is_some_and(|m| m > 0.0);
            if sat_ok
                && present
                && c.n_points >= policy.trends.min_points
                && c.sen_slope.is_some_and(|s| s >= 0.0)
            {
                find(
                    "satisfaction_up_complaints_not_down",
                    format!(
                        "satisfaction {sat_value} ({}, {}) while valid complaints per 1,000 cases did not fall: Sen's slope {:+.2} per {} over {} periods, mean {:.1}",
                        if sat.status.is_empty() { "-" } else { &sat.status },
                        sat.direction,
                        c.sen_slope.unwrap_or(0.0),
                        grain.as_str(),
                        c.n_points,
                        c.window_mean.unwrap_or(0.0)
                    ),
                );
            }
        }
        if let (Some(rise), Some(raters)) = (sat.change_prev, sat.n_raters) {
            if rise >= cp.sharp_rise_points && raters < cp.few_raters {
                find(
                    "sharp_rise_few_raters",
                    format!("satisfaction up {rise:+.1} points to {sat_value} on {raters} distinct raters"),
                );
            }
        }
        if sat.status == "met" {
            if let Some(t) = by.get(&(dept, "on_time_resolution_rate", grain)) {
                if t.status == "missed" && t.latest == Some(period) {
                    find(
                        "satisfaction_high_timeliness_poor",
                        format!(
                            "satisfaction {sat_value} meets its target while on-time resolution is {} (missed)",
                            t.value.map_or("-".into(), |v| format!("{v:.1}%"))
                        ),
                    );
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.dept_id, a.grain, a.period, a.check_id)
            .cmp(&(&b.dept_id, b.grain, b.period, b.check_id))
    });
    out
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
mod tests {
    use super::*;
    use crate::policy::{load_text, PolicySource, DEFAULT_POLICY};

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    /// Expected values from pymannkendall 1.4.3, `original_test(x)`, whose
    /// `slope` is Sen's slope over positions 0..n.
    #[test]
    fn mann_kendall_and_sen_match_pymannkendall() {
        // (series, S, var S, p, tau, Sen's slope)
        type Case<'a> = (&'a [f64], f64, f64, f64, f64, f64);
        let cases: [Case; 3] = [
            (
                &[4.3, 5.1, 4.9, 6.2, 6.0, 7.1, 6.8, 8.0, 7.7, 8.4],
                37.0,
                125.0,
                0.0012821837418053317,
                0.8222222222222222,
                0.4500000000000002,
            ),
            // With ties (three 2s, three 4s, two 3s, two 6s).
            (
                &[1.0, 2.0, 2.0, 3.0, 2.0, 4.0, 4.0, 4.0, 5.0, 3.0, 6.0, 6.0],
                48.0,
                203.33333333333334,
                0.0009805515398431108,
                0.7272727272727273,
                0.42857142857142855,
            ),
            (
                &[12.0, 11.5, 11.8, 10.9, 11.2, 10.1, 10.4, 9.8],
                -22.0,
                65.33333333333333,
                0.009374768459434968,
                -0.7857142857142857,
                -0.30714285714285744,
            ),
        ];
        for (x, s, var_s, p, tau, slope) in cases {
            let m = mann_kendall(x);
            assert_eq!(m.s, s);
            assert!(close(m.var_s, var_s, 1e-9), "{} vs {var_s}", m.var_s);
            assert!(close(m.p, p, 1e-6), "{} vs {p}", m.p);
            assert!(close(m.tau, tau, 1e-9), "{} vs {tau}", m.tau);
            let t: Vec<f64> = (0..x.len()).map(|i| i as f64).collect();
            assert!(close(sens_slope(&t, x).unwrap(), slope, 1e-9));
        }
    }

    #[test]
    fn sens_slope_keeps_the_width_of_a_gap() {
        // Months 0, 1 and 3 (month 2 missing): pairwise slopes 1/1, 3/3,
        // 2/2 -> median 1. Treating the points as adjacent would give 1.5.
        assert_eq!(sens_slope(&[0.0, 1.0, 3.0], &[10.0, 11.0, 13.0]), Some(1.0));
    }

    #[test]
    fn xmr_limits() {
        // Mean 11.6; moving ranges 2, 1, 2, 1 -> 1.5; 2.66 x 1.5 = 3.99.
        let l = xmr(&[10.0, 12.0, 11.0, 13.0, 12.0]).unwrap();
        assert!(close(l.center, 11.6, 1e-12) && close(l.mr_bar, 1.5, 1e-12));
        assert!(close(l.ucl, 15.59, 1e-12) && close(l.lcl, 7.61, 1e-12));
        let quiet = run_rules(&[10.0, 12.0, 11.0, 13.0, 12.0], &l);
        assert!(quiet.iter().all(|s| s.is_empty()));
    }

    fn fired(x: &[f64]) -> Vec<Vec<&'static str>> {
        run_rules(x, &xmr(x).unwrap())
    }

    #[test]
    fn point_beyond_the_limits() {
        // Mean 14, moving ranges 0, 0, 0, 20 -> 5; UCL 14 + 13.3 = 27.3 < 30.
        let f = fired(&[10.0, 10.0, 10.0, 10.0, 30.0]);
        assert_eq!(f[4], vec!["beyond_limits"]);
        assert!(f[..4].iter().all(|s| s.is_empty()));
    }

    #[test]
    fn seven_on_one_side() {
        // Mean (7 x 5 + 20) / 8 = 6.875: the first seven are below it, so
        // the rule fires at the seventh.
        let f = fired(&[5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 20.0]);
        assert!(f[6].contains(&"run_of_7_below"));
        assert!(f[..6].iter().all(|s| !s.contains(&"run_of_7_below")));
        // Six below (mean 50 / 7 = 7.14) is not enough.
        let f = fired(&[5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 20.0]);
        assert!(f.iter().all(|s| !s.contains(&"run_of_7_below")));
    }

    #[test]
    fn two_of_three_beyond_two_sigma() {
        // Mean 1; moving ranges sum 9 over 9 -> 1; sigma 1 / 1.128 = 0.887;
        // two-sigma line 2.773, UCL 3.66: the last two 3s are beyond two
        // sigma but within the limits.
        let f = fired(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 3.0, 3.0]);
        assert_eq!(f[9], vec!["two_of_three_above"]);
        assert!(f[..9].iter().all(|s| s.is_empty()));
        // One 3 alone (mean 0.8, mR-bar 11/9, line 2.97) does not fire.
        let f = fired(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 3.0, 1.0]);
        assert!(f.iter().all(|s| !s.contains(&"two_of_three_above")));
    }

    fn policy() -> Policy {
        load_text(DEFAULT_POLICY.into(), PolicySource::Embedded)
            .unwrap()
            .policy
    }

    fn monthly(id: &str, dir: Direction, values: &[Option<f64>], last_status: &str) -> Series {
        let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
        let n = values.len();
        Series {
            dept_id: "d".into(),
            indicator_id: id.into(),
            grain: Grain::Month,
            direction: dir,
            points: values
                .iter()
                .enumerate()
                .map(|(i, v)| SeriesPoint {
                    period: Period::containing(
                        Grain::Month,
                        crate::periods::add_months(start, i as i32),
                    ),
                    value: *v,
                    is_partial: false,
                    status: if i + 1 == n {
                        last_status.into()
                    } else {
                        String::new()
                    },
                    n_raters: None,
                })
                .collect(),
        }
    }

    #[test]
    fn direction_respects_lower_is_better_and_flags() {
        let p = policy();
        let falling: Vec<Option<f64>> = (0..12).map(|i| Some(20.0 - i as f64)).collect();
        // A falling complaint rate is an improvement.
        let (t, _) = analyse(
            &monthly("valid_complaint_rate", Direction::Lower, &falling, "met"),
            &p.trends,
        );
        assert_eq!(t.direction, "improving");
        assert_eq!(t.flags, vec!["continuous_improver"]);
        assert_eq!(t.sen_slope, Some(-1.0));
        // Falling satisfaction that still meets its target this month.
        let (t, _) = analyse(
            &monthly("satisfaction", Direction::Higher, &falling, "met"),
            &p.trends,
        );
        assert_eq!(t.direction, "declining");
        assert_eq!(t.flags, vec!["short_term_met_long_term_declining"]);
        // Three points: not enough for a trend, and it says why.
        let (t, _) = analyse(
            &monthly("satisfaction", Direction::Higher, &falling[..3], ""),
            &p.trends,
        );
        assert_eq!(
            (t.direction, t.reason.as_str()),
            ("no_trend", "3 point(s) in the window; at least 4 needed")
        );
        // Missing months are skipped, not zeros: 12 months, 2 empty.
        let mut gappy = falling.clone();
        gappy[3] = None;
        gappy[7] = None;
        let (t, _) = analyse(
            &monthly("satisfaction", Direction::Higher, &gappy, ""),
            &p.trends,
        );
        assert_eq!((t.n_points, t.sen_slope), (10, Some(-1.0)));
    }

    #[test]
    fn improvement_in_each_of_the_last_periods_makes_an_improver() {
        let p = policy();
        // Flat noise, then three improvements in a row (70 -> 71 -> 72 -> 73).
        let v = [
            75.0, 70.0, 74.0, 71.0, 73.0, 70.0, 74.0, 70.0, 71.0, 72.0, 73.0,
        ];
        let values: Vec<Option<f64>> = v.iter().map(|x| Some(*x)).collect();
        let (t, _) = analyse(
            &monthly("satisfaction", Direction::Higher, &values, ""),
            &p.trends,
        );
        assert_eq!(t.direction, "no_trend");
        assert_eq!(t.flags, vec!["continuous_improver"]);
        assert_eq!(t.change_prev, Some(1.0));
        // Rolling 3-month mean (71 + 72 + 73) / 3 = 72.
        assert_eq!(t.rolling_mean, Some(72.0));
    }

    fn trend(id: &str, status: &str, direction: &'static str, slope: f64, mean: f64) -> Trend {
        Trend {
            dept_id: "d".into(),
            indicator_id: id.into(),
            grain: Grain::Month,
            latest: Some(Period::containing(
                Grain::Month,
                NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
            )),
            value: Some(mean),
            status: status.into(),
            change_prev: None,
            change_yoy: None,
            rolling_mean: None,
            rolling_mean_long: None,
            n_points: 12,
            window_mean: Some(mean),
            sen_slope: Some(slope),
            mk: None,
            direction,
            reason: String::new(),
            signals: vec![],
            flags: vec![],
            ptd: None,
            n_raters: None,
        }
    }

    fn checks(trends: &[Trend]) -> Vec<&'static str> {
        cross_checks(trends, &policy())
            .iter()
            .map(|f| f.check_id)
            .collect()
    }

    #[test]
    fn satisfaction_up_while_complaints_do_not_fall() {
        let sat = trend("satisfaction", "met", "no_trend", 0.1, 92.0);
        // Complaints flat at 12 per 1,000: fires.
        assert_eq!(
            checks(&[
                sat.clone(),
                trend("valid_complaint_rate", "missed", "no_trend", 0.0, 12.0)
            ]),
            vec!["satisfaction_up_complaints_not_down"]
        );
        // Complaints falling: silent.
        assert!(checks(&[
            sat.clone(),
            trend("valid_complaint_rate", "missed", "improving", -0.8, 12.0)
        ])
        .is_empty());
        // No complaints at all: nothing to fall, silent.
        assert!(checks(&[
            sat,
            trend("valid_complaint_rate", "met", "no_trend", 0.0, 0.0)
        ])
        .is_empty());
        // Satisfaction neither met nor rising: silent.
        let low = trend("satisfaction", "missed", "no_trend", 0.0, 70.0);
        assert!(checks(&[
            low,
            trend("valid_complaint_rate", "missed", "no_trend", 0.5, 12.0)
        ])
        .is_empty());
    }

    #[test]
    fn sharp_rise_on_few_raters() {
        let mut sat = trend("satisfaction", "missed", "no_trend", 0.0, 80.0);
        sat.change_prev = Some(12.0);
        sat.n_raters = Some(4);
        assert_eq!(checks(&[sat.clone()]), vec!["sharp_rise_few_raters"]);
        sat.n_raters = Some(40); // many raters: silent
        assert!(checks(&[sat.clone()]).is_empty());
        sat.n_raters = Some(4);
        sat.change_prev = Some(5.0); // small rise: silent
        assert!(checks(&[sat]).is_empty());
    }

    #[test]
    fn good_satisfaction_with_poor_timeliness() {
        let sat = trend("satisfaction", "met", "no_trend", 0.0, 92.0);
        assert_eq!(
            checks(&[
                sat.clone(),
                trend("on_time_resolution_rate", "missed", "no_trend", 0.0, 60.0)
            ]),
            vec!["satisfaction_high_timeliness_poor"]
        );
        assert!(checks(&[
            sat,
            trend("on_time_resolution_rate", "near", "no_trend", 0.0, 92.0)
        ])
        .is_empty());
    }

    /// 500 departments x 30 indicators x 36 months. Run with `cargo test
    /// --lib trends_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn trends_cost() {
        let p = policy();
        let mut all = Vec::new();
        for d in 0..500 {
            for i in 0..30 {
                let values: Vec<Option<f64>> = (0..36)
                    .map(|m| Some(((d * 31 + i * 7 + m * 13) % 97) as f64))
                    .collect();
                let mut s = monthly(&format!("ind{i}"), Direction::Higher, &values, "met");
                s.dept_id = format!("d{d}");
                all.push(s);
            }
        }
        let t = std::time::Instant::now();
        let (trends, rows) = compute(&all, &p);
        println!(
            "{} series, {} points: {:.3} s",
            trends.len(),
            rows.len(),
            t.elapsed().as_secs_f64()
        );
    }
}
