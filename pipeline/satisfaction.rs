//! Stage: satisfaction. Scored ratings -> the `satisfaction` mart, one row
//! per department x period x rater group (plus `others` and `all`).
//!
//! A response (`rating_id`) scores the mean of its items, each normalised
//! min-max to 0-100 on its own scale. Groups with fewer distinct raters than
//! the policy's anonymity minimum appear only rolled up as `others`. For
//! `all`, `observed_mean` pools every response and `weighted_mean` weights
//! the groups by the policy version in force (re-normalised over the groups
//! present; the `client` weight goes to the client groups the department's
//! type serves). The rater-check stage fills `fair_mean` and exclusions.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Result;
use chrono::NaiveDate;
use chrono_tz::Tz;
use polars::prelude::DataFrame;

use crate::frame::{self, Builder};
use crate::periods::{Grain, Period};
use crate::policy::{Policy, RATER_GROUPS};

/// One response: a rater's answers on one occasion.
#[derive(Debug, Clone)]
pub struct Response {
    pub dept_id: String,
    pub rater_id: String,
    pub group: String,
    pub day: NaiveDate,
    /// Mean of the response's items, 0-100.
    pub score: f64,
}

/// Groups item rows into responses. `ratings` must hold only scored rows
/// (up to as-of, not removed on appeal) with a `score_100` column.
pub fn responses(ratings: &DataFrame, tz: Tz) -> Result<Vec<Response>> {
    let ids = frame::strs(ratings, "rating_id")?;
    let depts = frame::strs(ratings, "dept_id")?;
    let raters = frame::strs(ratings, "rater_id")?;
    let groups = frame::strs(ratings, "rater_group")?;
    let ats = frame::micros(ratings, "rated_at")?;
    let scores = frame::f64s(ratings, "score_100")?;
    let mut acc: HashMap<&str, (usize, f64, usize)> = HashMap::new();
    let mut order = Vec::new();
    for i in 0..ratings.height() {
        let (Some(id), Some(s)) = (ids[i].as_deref(), scores[i]) else {
            continue;
        };
        let e = acc.entry(id).or_insert_with(|| {
            order.push(id);
            (i, 0.0, 0)
        });
        e.1 += s;
        e.2 += 1;
    }
    Ok(order
        .into_iter()
        .map(|id| {
            let (i, sum, n) = acc[id];
            Response {
                dept_id: depts[i].clone().unwrap_or_default(),
                rater_id: raters[i].clone().unwrap_or_default(),
                group: groups[i].clone().unwrap_or_default(),
                day: local_day(ats[i].unwrap_or(0), tz),
                score: sum / n as f64,
            }
        })
        .collect())
}

pub fn local_day(us: i64, tz: Tz) -> NaiveDate {
    chrono::DateTime::from_timestamp_micros(us)
        .expect("valid timestamp")
        .with_timezone(&tz)
        .date_naive()
}

#[derive(Debug, Default, Clone)]
struct Acc {
    n: usize,
    sum: f64,
    raters: BTreeSet<String>,
}

impl Acc {
    fn add(&mut self, r: &Response) {
        self.n += 1;
        self.sum += r.score;
        self.raters.insert(r.rater_id.clone());
    }
    fn merge(&mut self, o: &Acc) {
        self.n += o.n;
        self.sum += o.sum;
        self.raters.extend(o.raters.iter().cloned());
    }
    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// One row of the satisfaction mart.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub dept_id: String,
    pub period: Period,
    pub rater_group: String,
    pub n_ratings: usize,
    pub n_raters: usize,
    pub observed_mean: Option<f64>,
    pub weighted_mean: Option<f64>,
    pub value: Option<f64>,
}

/// Computes the mart rows for every department, grain and period with
/// ratings. `dept_types` maps department id to its type.
pub fn compute(
    responses: &[Response],
    dept_types: &HashMap<String, String>,
    policy: &Policy,
) -> Vec<Row> {
    let mut cells: BTreeMap<(String, Period), BTreeMap<String, Acc>> = BTreeMap::new();
    for r in responses {
        for g in Grain::ALL {
            let p = Period::containing(g, r.day);
            cells
                .entry((r.dept_id.clone(), p))
                .or_default()
                .entry(r.group.clone())
                .or_default()
                .add(r);
        }
    }
    let min = policy.raters.anonymity_min as usize;
    let mut out = Vec::new();
    for ((dept, period), groups) in cells {
        let dtype = dept_types.get(&dept).map(String::as_str).unwrap_or("");
        let mut others = Acc::default();
        let mut all = Acc::default();
        for g in RATER_GROUPS {
            let Some(acc) = groups.get(g) else { continue };
            all.merge(acc);
            if acc.raters.len() >= min {
                out.push(group_row(&dept, period, g, acc));
            } else {
                others.merge(acc);
            }
        }
        if others.n > 0 {
            let mut row = group_row(&dept, period, "others", &others);
            if others.raters.len() < min {
                // Still too few to show a mean without identifying raters.
                row.observed_mean = None;
                row.weighted_mean = None;
                row.value = None;
            }
            out.push(row);
        }
        let weighted = weighted_mean(&groups, dtype, period, policy);
        let observed = all.mean();
        out.push(Row {
            dept_id: dept.clone(),
            period,
            rater_group: "all".into(),
            n_ratings: all.n,
            n_raters: all.raters.len(),
            observed_mean: observed,
            weighted_mean: weighted,
            value: weighted.or(observed),
        });
    }
    out
}

fn group_row(dept: &str, period: Period, group: &str, acc: &Acc) -> Row {
    let mean = acc.mean();
    Row {
        dept_id: dept.to_string(),
        period,
        rater_group: group.to_string(),
        n_ratings: acc.n,
        n_raters: acc.raters.len(),
        observed_mean: mean,
        weighted_mean: mean,
        value: mean,
    }
}

/// Groups weighted by the policy version in force at the period's start,
/// over the groups present. The client groups the type serves are pooled
/// and carry the `client` weight; a client group it does not serve carries
/// none.
fn weighted_mean(
    groups: &BTreeMap<String, Acc>,
    dtype: &str,
    period: Period,
    policy: &Policy,
) -> Option<f64> {
    let version = policy.version_for(period.start);
    let weights = version
        .group_weights_by_type
        .get(dtype)
        .unwrap_or(&version.group_weights);
    let serves: &[String] = policy
        .department_types
        .get(dtype)
        .map(|t| t.serves.as_slice())
        .unwrap_or(&[]);
    let mut client = Acc::default();
    let mut units: Vec<(f64, f64)> = Vec::new();
    for (g, acc) in groups {
        if g.starts_with("client_") {
            if serves.iter().any(|s| s == g) {
                client.merge(acc);
            }
        } else if let (Some(w), Some(m)) = (weights.get(g), acc.mean()) {
            units.push((*w, m));
        }
    }
    if let (Some(w), Some(m)) = (weights.get("client"), client.mean()) {
        units.push((*w, m));
    }
    let total: f64 = units.iter().filter(|u| u.0 > 0.0).map(|u| u.0).sum();
    (total > 0.0).then(|| units.iter().map(|(w, m)| w * m).sum::<f64>() / total)
}

/// The mart as a frame, with the period columns every mart has.
pub fn frame(rows: &[Row], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", rows.iter().map(|r| Some(r.dept_id.as_str())))
        .periods(&rows.iter().map(|r| r.period).collect::<Vec<_>>(), as_of)
        .str(
            "rater_group",
            rows.iter().map(|r| Some(r.rater_group.as_str())),
        )
        .i64("n_ratings", rows.iter().map(|r| Some(r.n_ratings as i64)))
        .i64("n_raters", rows.iter().map(|r| Some(r.n_raters as i64)))
        .f64("observed_mean", rows.iter().map(|r| r.observed_mean))
        .f64("weighted_mean", rows.iter().map(|r| r.weighted_mean))
        .f64("fair_mean", rows.iter().map(|_| None))
        .f64("value", rows.iter().map(|r| r.value))
        .i64("excluded_ratings", rows.iter().map(|_| Some(0)))
        .build()
}
