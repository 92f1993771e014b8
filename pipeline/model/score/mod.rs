//! Stage: score. Indicator values + policy -> `indicator_scores` and
//! `department_scores`: targets, rules, weights, category subtotals, total,
//! one-vote veto, grade, rank within department type, bonus coefficient.
//!
//! Every period is scored with the policy version in force at its start.
//! Partial periods (not complete at as-of) get scores but no grade, rank or
//! bonus. Missing indicators are `no_data` and handled by the policy's
//! `scoring.missing` (rescale the others to 100, or score zero); a period
//! where less than `scoring.min_coverage` of the weight has data gets no
//! total at all.

use std::collections::{BTreeMap, HashMap};

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::DataFrame;

use crate::frame::Builder;
use crate::model::measure::{self, Direction, Indicator, Value};
use crate::policy::{IndicatorTarget, Policy, CATEGORIES};
use crate::time::periods::{Grain, Period};

/// A confirmed incident of a veto kind.
#[derive(Debug, Clone)]
pub struct VetoIncident {
    pub dept_id: String,
    pub incident_id: String,
    pub kind: String,
    pub day: NaiveDate,
}

/// The score of one indicator for one department and period.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorScore<'a> {
    pub dept_id: &'a str,
    pub period: Period,
    pub indicator_id: &'a str,
    pub category: &'a str,
    pub value: Option<f64>,
    pub n: f64,
    pub target: f64,
    pub weight: f64,
    pub rule: &'a str,
    pub shortfall: Option<f64>,
    pub deduction: Option<f64>,
    /// Points out of `weight` (None without data).
    pub points: Option<f64>,
    /// Points after re-scaling for missing indicators: what the total adds.
    pub scaled_points: Option<f64>,
    pub status: &'static str,
    pub policy_version: &'a str,
}

/// One department's result for one period.
#[derive(Debug, Clone, PartialEq)]
pub struct DeptScore {
    pub dept_id: String,
    pub dept_type: String,
    pub period: Period,
    pub is_partial: bool,
    pub category_points: BTreeMap<String, Option<f64>>,
    pub total_score: Option<f64>,
    pub veto: bool,
    pub veto_reasons: Option<String>,
    pub grade: Option<String>,
    pub rank_in_type: Option<i64>,
    pub bonus_coefficient: Option<f64>,
    pub policy_version: String,
    pub coverage: f64,
}

/// Points, shortfall and deduction of a value under a rule.
/// Returns (points, shortfall, deduction).
pub fn apply_rule(value: f64, t: &IndicatorTarget, dir: Direction) -> (f64, f64, f64) {
    let shortfall = match dir {
        Direction::Higher => (t.target - value).max(0.0),
        Direction::Lower => (value - t.target).max(0.0),
    };
    let points = match t.rule.as_str() {
        "linear" => {
            let per = t.per.unwrap_or(1.0);
            let steps = if t.stepped {
                (shortfall / per + 1e-9).floor()
            } else {
                shortfall / per
            };
            (t.weight - steps * t.deduct.unwrap_or(0.0)).max(0.0)
        }
        "ratio" => {
            let r = match dir {
                Direction::Higher => value / t.target,
                Direction::Lower if value <= 0.0 => 1.0,
                Direction::Lower => t.target / value,
            };
            (t.weight * r).clamp(0.0, t.weight)
        }
        "bands" | "levels" => {
            let list = if t.rule == "bands" {
                &t.bands
            } else {
                &t.levels
            };
            list.iter()
                .flatten()
                .find(|[threshold, _]| match dir {
                    Direction::Higher => value >= *threshold - 1e-9,
                    Direction::Lower => value <= *threshold + 1e-9,
                })
                .map_or(0.0, |[_, pts]| *pts)
        }
        _ => 0.0,
    };
    (points, shortfall, t.weight - points)
}

/// Scores every department for every period of every grain from the period
/// holding `first_day` to the one holding `as_of`.
#[allow(clippy::too_many_arguments)]
pub fn score<'a>(
    departments: &'a [(String, String)],
    values: &[Value],
    catalog: &'a [Indicator],
    policy: &'a Policy,
    vetoes: &[VetoIncident],
    first_day: NaiveDate,
    as_of: NaiveDate,
) -> Result<(Vec<IndicatorScore<'a>>, Vec<DeptScore>)> {
    let index = measure::index(values);
    let by_id: HashMap<&str, &Indicator> = catalog.iter().map(|i| (i.id.as_str(), i)).collect();
    let mut ind_scores = Vec::new();
    let mut dept_scores = Vec::new();
    let missing_zero = policy.scoring.missing == "zero";
    for grain in Grain::ALL {
        for period in Period::range(grain, first_day, as_of) {
            let version = policy.version_for(period.start);
            let is_partial = period.is_partial(as_of);
            let mut this_period = Vec::new();
            for (dept, dtype) in departments {
                let Some(targets) = version.indicators.get(dtype) else {
                    continue;
                };
                let mut rows: Vec<IndicatorScore> = Vec::new();
                for (id, t) in targets {
                    let ind = by_id
                        .get(id.as_str())
                        .expect("policy validated against catalog");
                    let v = index.get(&(id.as_str(), dept.as_str(), period));
                    let n = v.map_or(0.0, |v| v.n);
                    let value = v.and_then(|v| v.value).filter(|_| n >= ind.min_n);
                    let (points, shortfall, deduction, status) = match value {
                        None => (None, None, None, "no_data"),
                        Some(x) => {
                            let (pts, short, ded) = apply_rule(x, t, ind.direction);
                            let status = if short <= 1e-9 {
                                "met"
                            } else if short <= policy.scoring.near_tolerance * t.target.abs() + 1e-9
                            {
                                "near"
                            } else {
                                "missed"
                            };
                            (Some(pts), Some(short), Some(ded), status)
                        }
                    };
                    rows.push(IndicatorScore {
                        dept_id: dept,
                        period,
                        indicator_id: id,
                        category: &ind.category,
                        value: v.and_then(|v| v.value),
                        n,
                        target: t.target,
                        weight: t.weight,
                        rule: &t.rule,
                        shortfall,
                        deduction,
                        points,
                        scaled_points: None,
                        status,
                        policy_version: &version.id,
                    });
                }
                let available: f64 = rows
                    .iter()
                    .filter(|r| r.points.is_some())
                    .map(|r| r.weight)
                    .sum();
                let total_weight: f64 = rows.iter().map(|r| r.weight).sum();
                let coverage = if total_weight > 0.0 {
                    available / total_weight
                } else {
                    0.0
                };
                let scorable = coverage + 1e-9 >= policy.scoring.min_coverage && available > 0.0;
                let factor = if missing_zero {
                    1.0
                } else if available > 0.0 {
                    total_weight / available
                } else {
                    0.0
                };
                for r in &mut rows {
                    r.scaled_points = if !scorable {
                        None
                    } else if missing_zero {
                        Some(r.points.unwrap_or(0.0))
                    } else {
                        r.points.map(|p| p * factor)
                    };
                }
                let mut category_points = BTreeMap::new();
                for c in CATEGORIES {
                    let pts: Vec<f64> = rows
                        .iter()
                        .filter(|r| r.category == c)
                        .filter_map(|r| r.scaled_points)
                        .collect();
                    let any = rows.iter().any(|r| r.category == c);
                    category_points.insert(
                        c.to_string(),
                        (scorable && any).then(|| round2(pts.iter().sum())),
                    );
                }
                let total_score =
                    scorable.then(|| round2(rows.iter().filter_map(|r| r.scaled_points).sum()));
                let reasons: Vec<String> = vetoes
                    .iter()
                    .filter(|v| &v.dept_id == dept && v.day >= period.start && v.day <= period.end)
                    .map(|v| format!("{} {} ({})", v.kind, v.incident_id, v.day))
                    .collect();
                this_period.push(DeptScore {
                    dept_id: dept.clone(),
                    dept_type: dtype.clone(),
                    period,
                    is_partial,
                    category_points,
                    total_score,
                    veto: !reasons.is_empty(),
                    veto_reasons: (!reasons.is_empty()).then(|| reasons.join("; ")),
                    grade: None,
                    rank_in_type: None,
                    bonus_coefficient: None,
                    policy_version: version.id.clone(),
                    coverage,
                });
                ind_scores.extend(rows);
            }
            if !is_partial {
                grade_rank_bonus(&mut this_period, policy, period);
            }
            dept_scores.extend(this_period);
        }
    }
    Ok((ind_scores, dept_scores))
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Grades, ranks within type (ties share the better rank; vetoed
/// departments rank after all others) and bonus coefficients of one
/// complete period.
fn grade_rank_bonus(rows: &mut [DeptScore], policy: &Policy, period: Period) {
    let share = policy.linked_share(period.start);
    for r in rows.iter_mut() {
        let Some(total) = r.total_score else { continue };
        let grade = if r.veto {
            policy
                .grade(&policy.veto.grade)
                .expect("validated veto grade")
        } else {
            policy.grade_for(total)
        };
        r.grade = Some(grade.id.clone());
        r.bonus_coefficient = Some(round4(1.0 + share * grade.bonus));
    }
    // Rank key: not vetoed first, then higher total (2 decimals).
    let key = |r: &DeptScore| {
        (
            r.veto,
            -((r.total_score.unwrap_or(0.0) * 100.0).round() as i64),
        )
    };
    // Each type's keys of scored rows, sorted: a row's rank is one more
    // than the number of keys before its own.
    let mut keys: HashMap<String, Vec<(bool, i64)>> = HashMap::new();
    for r in rows.iter().filter(|r| r.total_score.is_some()) {
        match keys.get_mut(&r.dept_type) {
            Some(k) => k.push(key(r)),
            None => {
                keys.insert(r.dept_type.clone(), vec![key(r)]);
            }
        }
    }
    for k in keys.values_mut() {
        k.sort_unstable();
    }
    for r in rows.iter_mut() {
        if r.total_score.is_none() {
            continue;
        }
        let mine = key(r);
        let better = keys[&r.dept_type].partition_point(|k| *k < mine);
        r.rank_in_type = Some(better as i64 + 1);
    }
}

fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

pub fn indicator_scores_frame(rows: &[IndicatorScore], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", rows.iter().map(|r| Some(r.dept_id)))
        .periods(&rows.iter().map(|r| r.period).collect::<Vec<_>>(), as_of)
        .str("indicator_id", rows.iter().map(|r| Some(r.indicator_id)))
        .str("category", rows.iter().map(|r| Some(r.category)))
        .f64("value", rows.iter().map(|r| r.value))
        .f64("n", rows.iter().map(|r| Some(r.n)))
        .f64("target", rows.iter().map(|r| Some(r.target)))
        .f64("weight", rows.iter().map(|r| Some(r.weight)))
        .str("rule", rows.iter().map(|r| Some(r.rule)))
        .f64("shortfall", rows.iter().map(|r| r.shortfall))
        .f64("deduction", rows.iter().map(|r| r.deduction))
        .f64("points", rows.iter().map(|r| r.points))
        .f64("scaled_points", rows.iter().map(|r| r.scaled_points))
        .str("status", rows.iter().map(|r| Some(r.status)))
        .str(
            "policy_version",
            rows.iter().map(|r| Some(r.policy_version)),
        )
        .build()
}

pub fn department_scores_frame(rows: &[DeptScore], as_of: NaiveDate) -> Result<DataFrame> {
    let cat = |c: &'static str| {
        rows.iter()
            .map(move |r| r.category_points.get(c).copied().flatten())
    };
    Builder::new()
        .str("dept_id", rows.iter().map(|r| Some(r.dept_id.as_str())))
        .periods(&rows.iter().map(|r| r.period).collect::<Vec<_>>(), as_of)
        .str("dept_type", rows.iter().map(|r| Some(r.dept_type.as_str())))
        .f64("result_points", cat("result"))
        .f64("process_points", cat("process"))
        .f64("development_points", cat("development"))
        .f64("total_score", rows.iter().map(|r| r.total_score))
        .bool("veto", rows.iter().map(|r| Some(r.veto)))
        .str(
            "veto_reasons",
            rows.iter().map(|r| r.veto_reasons.as_deref()),
        )
        .str("grade", rows.iter().map(|r| r.grade.as_deref()))
        .i64("rank_in_type", rows.iter().map(|r| r.rank_in_type))
        .f64(
            "bonus_coefficient",
            rows.iter().map(|r| r.bonus_coefficient),
        )
        .f64("weight_coverage", rows.iter().map(|r| Some(r.coverage)))
        .str(
            "policy_version",
            rows.iter().map(|r| Some(r.policy_version.as_str())),
        )
        .build()
}

#[cfg(test)]
mod tests;
