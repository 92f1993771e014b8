//! Stage: satisfaction. Scored ratings -> the `satisfaction` mart, one row
//! per department x period x rater group (plus `others` and `all`).
//!
//! A response (`rating_id`) scores the mean of its items, each normalised
//! min-max to 0-100 on its own scale. Groups with fewer distinct raters than
//! the policy's anonymity minimum appear only rolled up as `others`. For
//! `all`, `observed_mean` pools every response and `weighted_mean` weights
//! the groups by the policy version in force (re-normalised over the groups
//! present; the `client` weight goes to the client groups the department's
//! type serves). Responses the rater checks exclude are left out (counted in
//! `excluded_ratings`); `fair_mean` is the same weighting of rater-adjusted
//! scores; `value` is `fair_mean` when the policy scores on it, else the
//! weighted mean.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::{DataFrame, PlHashMap};

use crate::frame::Builder;
use crate::model::raters::{self, ItemRating, Window};
use crate::policy::{Policy, RATER_GROUPS};
use crate::time::periods::{Grain, Period};

/// One response: a rater's answers on one occasion.
#[derive(Debug, Clone)]
pub struct Response {
    pub dept_id: Arc<str>,
    pub rater_id: Arc<str>,
    pub group: Arc<str>,
    pub day: NaiveDate,
    /// Mean of the response's items, 0-100.
    pub score: f64,
    /// The same with the rater's effect removed (`None` off the common scale).
    pub adjusted: Option<f64>,
    /// Left out by the rater checks.
    pub excluded: bool,
    /// Its item ratings' department, rater and group numbers.
    pub keys: raters::Keys,
}

/// Groups item ratings into responses, with the rater checks' adjusted
/// scores and exclusions.
pub fn responses(
    items: &[ItemRating],
    numbers: &raters::ResponseNumbers,
    outcome: &raters::Outcome,
) -> Vec<Response> {
    // Per response, in order of first appearance: its first item, the sum
    // of its scores and of its adjusted scores, and its number of items.
    assert_eq!(numbers.of_item.len(), items.len(), "numbers of other items");
    let mut acc: Vec<(usize, f64, Option<f64>, usize)> = Vec::with_capacity(numbers.rank.len());
    for ((i, r), &n) in items.iter().enumerate().zip(&numbers.of_item) {
        let n = n as usize;
        if n == acc.len() {
            acc.push((i, 0.0, Some(0.0), 0));
        }
        let e = &mut acc[n];
        e.1 += r.y;
        e.2 = match (e.2, outcome.adjusted.get(i).copied().flatten()) {
            (Some(a), Some(b)) => Some(a + b),
            _ => None,
        };
        e.3 += 1;
    }
    acc.into_iter()
        .map(|(i, sum, adj, n)| {
            let r = &items[i];
            Response {
                dept_id: r.dept_id.clone(),
                rater_id: r.rater_id.clone(),
                group: r.group.clone(),
                day: r.day,
                score: sum / n as f64,
                adjusted: adj.map(|a| a / n as f64),
                excluded: outcome.excluded.contains_key(&*r.rating_id),
                keys: r.keys,
            }
        })
        .collect()
}

#[derive(Debug, Default, Clone)]
struct Acc {
    n: usize,
    sum: f64,
    /// Sum of rater-adjusted scores; `None` once any is off the scale.
    fair: Option<f64>,
    /// The raters (by number): each once, in order, after [`Acc::distinct`].
    raters: Vec<u32>,
    excluded: usize,
}

impl Acc {
    fn add(&mut self, r: &Response, rater: u32) {
        if r.excluded {
            self.excluded += 1;
            return;
        }
        self.fair = match (self.n, self.fair, r.adjusted) {
            (0, _, a) => a,
            (_, Some(f), Some(a)) => Some(f + a),
            _ => None,
        };
        self.n += 1;
        self.sum += r.score;
        if self.raters.last() != Some(&rater) {
            self.raters.push(rater);
        }
    }
    fn distinct(&mut self) {
        self.raters.sort_unstable();
        self.raters.dedup();
    }
    fn merge(&mut self, o: &Acc) {
        self.fair = match (self.n, o.n) {
            (0, _) => o.fair,
            (_, 0) => self.fair,
            _ => self.fair.zip(o.fair).map(|(a, b)| a + b),
        };
        self.n += o.n;
        self.sum += o.sum;
        self.excluded += o.excluded;
        self.raters.extend(&o.raters);
        self.distinct();
    }
    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
    fn fair_mean(&self) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        self.fair.map(|f| f / self.n as f64)
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
    pub fair_mean: Option<f64>,
    pub value: Option<f64>,
    pub excluded_ratings: usize,
}

/// One rater group's sums for a quarter or year still open where a pass
/// stopped, for one department: handed to the pass that continues it, and
/// kept with a complete estimation period so that a later run need not
/// read its ratings again.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenGroup {
    pub dept_id: String,
    pub period: Period,
    pub rater_group: String,
    pub n: usize,
    pub sum: f64,
    pub fair: Option<f64>,
    pub excluded: usize,
    /// The distinct raters.
    pub raters: Vec<String>,
}

/// Computes the mart rows for every department, grain and period of
/// `window` with ratings. `dept_types` maps department id to its type.
pub fn compute(
    responses: &[Response],
    dept_types: &HashMap<String, String>,
    policy: &Policy,
    window: Window,
) -> Vec<Row> {
    let (rows, _) = compute_from(responses, dept_types, policy, window, &[], &[]);
    rows
}

/// [`compute`], continuing the quarters and years `open` that began before
/// the window (as a pass that ended the day before `window.from` left
/// them), and giving for each day of `stops` (ascending) the sums of the
/// quarters and years then open. Sums add up response by response in the
/// order given, so a pass continued from where another stopped adds up
/// exactly as one pass over both. That holds only if every response up to
/// a stop comes before every response after it: a stop after which an
/// earlier day's response still comes gives `None`.
pub fn compute_from<'a>(
    responses: &'a [Response],
    dept_types: &HashMap<String, String>,
    policy: &Policy,
    window: Window,
    open: &'a [OpenGroup],
    stops: &[NaiveDate],
) -> (Vec<Row>, Vec<Option<Vec<OpenGroup>>>) {
    // Departments, rater groups and raters numbered; cells found by
    // (department, period) while adding up (every response meets four
    // grains), sorted by department name and period after.
    let (mut depts, mut groups, mut raters) =
        (raters::Ids::new(), raters::Ids::new(), raters::Ids::new());
    // ((department, period), [(group, sums)]), by number.
    type Cell = ((usize, Period), Vec<(usize, Acc)>);
    let mut cells: Vec<Cell> = Vec::new();
    let mut index: PlHashMap<(usize, Period), usize> = PlHashMap::default();
    for o in open {
        let key = (depts.id(&o.dept_id), o.period);
        let c = *index.entry(key).or_insert_with(|| {
            cells.push((key, Vec::new()));
            cells.len() - 1
        });
        let acc = Acc {
            n: o.n,
            sum: o.sum,
            fair: o.fair,
            raters: o.raters.iter().map(|r| raters.id(r) as u32).collect(),
            excluded: o.excluded,
        };
        cells[c].1.push((groups.id(&o.rater_group), acc));
    }
    // The open quarters and years at each stop: (department, period,
    // group, sums) by number, and whether every response of a day up to
    // that stop came before it.
    type Open = Vec<(usize, Period, usize, Acc)>;
    let mut stopped: Vec<(Open, bool)> = Vec::new();
    let open_at = |cells: &[Cell], day: NaiveDate| {
        cells
            .iter()
            .filter(|((_, p), _)| {
                matches!(p.grain, Grain::Quarter | Grain::Year) && p.start <= day && day < p.end
            })
            .flat_map(|((dept, p), accs)| accs.iter().map(|(g, acc)| (*dept, *p, *g, acc.clone())))
            .collect::<Vec<_>>()
    };
    // Per department, the cells of the last day it was rated on.
    let mut last: Vec<Option<(NaiveDate, [Option<usize>; 4])>> = Vec::new();
    for r in responses {
        if r.day >= window.from {
            while let Some(&day) = stops.get(stopped.len()).filter(|&&d| r.day > d) {
                stopped.push((open_at(&cells, day), true));
            }
            for (s, ok) in stopped.iter_mut().enumerate() {
                if r.day <= stops[s] {
                    ok.1 = false;
                }
            }
        }
        let dept = depts.id_by(r.keys.dept, &r.dept_id);
        if dept >= last.len() {
            last.resize(dept + 1, None);
        }
        let at = match last[dept] {
            Some((day, at)) if day == r.day => at,
            _ => {
                let mut at = [None; 4];
                for (slot, g) in at.iter_mut().zip(Grain::ALL) {
                    let p = Period::containing(g, r.day);
                    if window.counts(p, r.day) {
                        *slot = Some(*index.entry((dept, p)).or_insert_with(|| {
                            cells.push(((dept, p), Vec::new()));
                            cells.len() - 1
                        }));
                    }
                }
                last[dept] = Some((r.day, at));
                at
            }
        };
        let (group, rater) = (
            groups.id_by(r.keys.group, &r.group),
            raters.id_by(r.keys.rater, &r.rater_id) as u32,
        );
        for c in at.into_iter().flatten() {
            let accs = &mut cells[c].1;
            let i = match accs.iter().position(|a| a.0 == group) {
                Some(i) => i,
                None => {
                    accs.push((group, Acc::default()));
                    accs.len() - 1
                }
            };
            accs[i].1.add(r, rater);
        }
    }
    while let Some(&day) = stops.get(stopped.len()) {
        stopped.push((open_at(&cells, day), true));
    }
    drop(index);
    // In text order throughout, so that what is kept does not depend on
    // the order the texts were met in.
    let stopped = stopped
        .into_iter()
        .map(|(accs, in_order)| {
            in_order.then(|| {
                let mut open: Vec<OpenGroup> = accs
                    .into_iter()
                    .map(|(dept, period, g, acc)| OpenGroup {
                        dept_id: depts.names[dept].to_string(),
                        period,
                        rater_group: groups.names[g].to_string(),
                        n: acc.n,
                        sum: acc.sum,
                        fair: acc.fair,
                        excluded: acc.excluded,
                        raters: raters.texts(&acc.raters),
                    })
                    .collect();
                open.sort_unstable_by(|a, b| {
                    (&a.dept_id, a.period, &a.rater_group).cmp(&(
                        &b.dept_id,
                        b.period,
                        &b.rater_group,
                    ))
                });
                open
            })
        })
        .collect();
    let dept_rank = depts.ranks();
    cells.sort_unstable_by_key(|((dept, p), _)| (dept_rank[*dept], *p));
    let fair_value = policy.raters.handling == "fair_mean";
    let mut out = Vec::new();
    for ((dept, period), accs) in cells {
        let dept = depts.names[dept];
        let groups: BTreeMap<&str, Acc> = accs
            .into_iter()
            .map(|(g, mut acc)| {
                acc.distinct();
                (groups.names[g], acc)
            })
            .collect();
        let dtype = dept_types.get(dept).map(String::as_str).unwrap_or("");
        let mut others = Acc::default();
        let mut others_min = 1;
        let mut all = Acc::default();
        for g in RATER_GROUPS {
            let Some(acc) = groups.get(g) else {
                continue;
            };
            all.merge(acc);
            let min = policy.raters.min_raters(g);
            if acc.raters.len() >= min {
                out.push(group_row(dept, period, g, acc, fair_value));
            } else {
                others.merge(acc);
                others_min = others_min.max(min);
            }
        }
        if others.n + others.excluded > 0 {
            let mut row = group_row(dept, period, "others", &others, fair_value);
            if others.raters.len() < others_min {
                // Still too few to show a mean without identifying raters.
                row.observed_mean = None;
                row.weighted_mean = None;
                row.fair_mean = None;
                row.value = None;
            }
            out.push(row);
        }
        let weighted = weighted_mean(&groups, dtype, period, policy, Acc::mean);
        let fair = weighted_mean(&groups, dtype, period, policy, Acc::fair_mean);
        let observed = all.mean();
        let value = if fair_value {
            fair.or(weighted).or(observed)
        } else {
            weighted.or(observed)
        };
        out.push(Row {
            dept_id: dept.to_string(),
            period,
            rater_group: "all".into(),
            n_ratings: all.n,
            n_raters: all.raters.len(),
            observed_mean: observed,
            weighted_mean: weighted,
            fair_mean: fair,
            value,
            excluded_ratings: all.excluded,
        });
    }
    (out, stopped)
}

fn group_row(dept: &str, period: Period, group: &str, acc: &Acc, fair_value: bool) -> Row {
    let mean = acc.mean();
    let fair = acc.fair_mean();
    Row {
        dept_id: dept.to_string(),
        period,
        rater_group: group.to_string(),
        n_ratings: acc.n,
        n_raters: acc.raters.len(),
        observed_mean: mean,
        weighted_mean: mean,
        fair_mean: fair,
        value: if fair_value { fair.or(mean) } else { mean },
        excluded_ratings: acc.excluded,
    }
}

/// Groups weighted by the policy version in force at the period's start,
/// over the groups present. The client groups the type serves are pooled
/// and carry the `client` weight; a client group it does not serve carries
/// none.
fn weighted_mean(
    groups: &BTreeMap<&str, Acc>,
    dtype: &str,
    period: Period,
    policy: &Policy,
    mean: fn(&Acc) -> Option<f64>,
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
    let mut units: Vec<(f64, Option<f64>)> = Vec::new();
    for (g, acc) in groups {
        if g.starts_with("client_") {
            if serves.iter().any(|s| **s == **g) {
                client.merge(acc);
            }
        } else if let Some(w) = weights.get(&**g) {
            if acc.n > 0 {
                units.push((*w, mean(acc)));
            }
        }
    }
    if let Some(w) = weights.get("client") {
        if client.n > 0 {
            units.push((*w, mean(&client)));
        }
    }
    // A group without a mean (off the common scale) leaves the whole
    // weighted mean undefined rather than silently re-weighted.
    let units: Option<Vec<(f64, f64)>> =
        units.into_iter().map(|(w, m)| m.map(|m| (w, m))).collect();
    let units = units?;
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
        .f64("fair_mean", rows.iter().map(|r| r.fair_mean))
        .f64("value", rows.iter().map(|r| r.value))
        .i64(
            "excluded_ratings",
            rows.iter().map(|r| Some(r.excluded_ratings as i64)),
        )
        .build()
}

#[cfg(test)]
mod tests;
