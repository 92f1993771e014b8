//! Stage: people. What each staff member did (ratings received, cases
//! resolved, complaints and incidents laid at their door) -> the
//! `staff_measures` mart, one row per staff member x department x period,
//! and the monthly 服务之星 (`service_stars`).
//!
//! A fact counts for the department the staff table puts its person in on
//! the fact's day ([`Roster::at`]); so a transfer in mid-month gives two
//! rows for that month, one per department. Facts whose staff id the
//! staff table does not know on that day count for no one.
//!
//! Each part of the composite (satisfaction, good reviews, on-time and
//! first-time resolution) is a mean of units on 0-100 (a rating, or a case
//! scoring 100 or 0), and is shrunk toward the department's mean before
//! the parts are weighted ([`shrink`]): three lucky ratings do not top the
//! list. The workload part (`volume`) is a count and is not shrunk.
//!
//! Managers' 360-degree feedback ([`feedback`]) and the yearly HR lists
//! ([`hr_lists`]) are made here too.

use std::collections::HashMap;

use polars::prelude::PlHashMap;

use chrono::NaiveDate;

use crate::policy::StaffPolicy;
use crate::time::periods::{Grain, Period};

mod shrink;
pub use shrink::*;
mod stars;
pub use stars::*;
mod feedback;
pub use feedback::*;
mod hr;
pub use hr::*;

#[cfg(test)]
mod tests;

/// One row of the staff table.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub staff_id: String,
    pub name: String,
    pub name_en: Option<String>,
    pub dept_id: Option<String>,
    pub role: String,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

impl Member {
    pub fn is_manager(&self) -> bool {
        self.role == "manager"
    }

    fn covers(&self, day: NaiveDate) -> bool {
        self.from.is_none_or(|f| f <= day) && self.to.is_none_or(|t| day <= t)
    }
}

/// The staff table, looked up by person and day.
#[derive(Debug, Default)]
pub struct Roster {
    pub members: Vec<Member>,
    by_id: PlHashMap<String, Vec<usize>>,
}

impl Roster {
    pub fn new(members: Vec<Member>) -> Roster {
        let mut by_id: PlHashMap<String, Vec<usize>> = PlHashMap::default();
        for (i, m) in members.iter().enumerate() {
            by_id.entry(m.staff_id.clone()).or_default().push(i);
        }
        Roster { members, by_id }
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The row in force for `staff_id` on `day` (ingest rejects overlaps,
    /// so there is at most one).
    pub fn at(&self, staff_id: &str, day: NaiveDate) -> Option<&Member> {
        self.by_id
            .get(staff_id)?
            .iter()
            .map(|&i| &self.members[i])
            .find(|m| m.covers(day))
    }

    /// The row that names `staff_id` on `day`: the one in force, else
    /// their first.
    pub fn as_of(&self, staff_id: &str, day: NaiveDate) -> Option<&Member> {
        self.at(staff_id, day).or_else(|| {
            let first = *self.by_id.get(staff_id)?.first()?;
            Some(&self.members[first])
        })
    }

    /// Where a fact of `staff_id` on `day`, recorded for department
    /// `dept`, counts: the department the table puts the person in then
    /// (`dept` for a person without one), and what is amiss, if anything:
    /// `unknown_staff` (not in the table: the fact counts for no one),
    /// `not_in_force` (in the table, but no row covers the day: likewise),
    /// `other_department` (the fact's department is not the person's: it
    /// counts for the person's).
    pub fn place<'a>(
        &'a self,
        staff_id: &str,
        dept: &'a str,
        day: NaiveDate,
    ) -> (Option<&'a str>, Option<&'static str>) {
        self.placement(self.at(staff_id, day), staff_id, dept)
    }

    /// [`Roster::place`] with the row in force already looked up.
    pub fn placement<'a>(
        &'a self,
        member: Option<&'a Member>,
        staff_id: &str,
        dept: &'a str,
    ) -> (Option<&'a str>, Option<&'static str>) {
        match member {
            None if self.by_id.contains_key(staff_id) => (None, Some("not_in_force")),
            None => (None, Some("unknown_staff")),
            Some(m) => match m.dept_id.as_deref() {
                Some(d) if d != dept => (Some(d), Some("other_department")),
                Some(d) => (Some(d), None),
                None => (Some(dept), None),
            },
        }
    }
}

/// What one fact says about its staff member.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fact {
    /// A service object's response (the mean of its items, 0-100), with
    /// the rater's effect removed where the rater model places the rater
    /// (`fair`); whether its `overall` answer is a good review (top two of
    /// five levels; `None`: no overall answer), a bad review, and a bad
    /// review not rectified or explained on time.
    Rating {
        score: f64,
        fair: Option<f64>,
        good: Option<bool>,
        bad: bool,
        unrectified: bool,
    },
    /// A case they resolved: on time (`None`: no deadline) and never
    /// reopened.
    Case {
        on_time: Option<bool>,
        first_time: bool,
    },
    /// A complaint about them that was found valid.
    ValidComplaint,
    /// A confirmed service incident they were responsible for.
    ConfirmedIncident,
}

/// A staff id or department id as a number: its index in [`Names`].
pub type Key = u32;

/// The staff and department ids that facts name, each once, numbered in
/// order of first appearance: facts carry the numbers, not the text.
#[derive(Debug, Default)]
pub struct Names {
    names: Vec<String>,
    keys: PlHashMap<String, Key>,
}

impl Names {
    /// The number of `name`, given one if it has none yet.
    pub fn key(&mut self, name: &str) -> Key {
        if let Some(&k) = self.keys.get(name) {
            return k;
        }
        let k = Key::try_from(self.names.len()).expect("fewer than 2^32 ids");
        self.names.push(name.to_string());
        self.keys.insert(name.to_string(), k);
        k
    }

    pub fn name(&self, key: Key) -> &str {
        &self.names[key as usize]
    }

    /// Each key's place in the order of the names.
    fn ranks(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.names.len() as u32).collect();
        order.sort_unstable_by(|&a, &b| self.names[a as usize].cmp(&self.names[b as usize]));
        let mut rank = vec![0; order.len()];
        for (r, &k) in order.iter().enumerate() {
            rank[k as usize] = r as u32;
        }
        rank
    }
}

/// A fact about a staff member, on a local day, for the department they
/// belonged to on that day.
#[derive(Debug, Clone)]
pub struct StaffFact {
    pub staff: Key,
    pub dept: Key,
    pub day: NaiveDate,
    pub fact: Fact,
}

/// Sums of one part's units: count, sum and sum of squares (0-100).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub n: f64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Moments {
    fn merge(&mut self, o: &Moments) {
        self.n += o.n;
        self.sum += o.sum;
        self.sum_sq += o.sum_sq;
    }

    pub fn add(&mut self, y: f64) {
        self.n += 1.0;
        self.sum += y;
        self.sum_sq += y * y;
    }

    pub fn mean(&self) -> Option<f64> {
        (self.n > 0.0).then(|| self.sum / self.n)
    }
}

/// The parts of the composite, in the order of the policy's weights.
pub use crate::policy::STAFF_PARTS as PARTS;
/// The parts that are means of units, and shrunk.
const SHRUNK: usize = 4;

/// Per staff member x department x period: the sums behind its measures.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    pub ratings: usize,
    pub observed: Moments,
    /// Per part of [`PARTS`] but `volume`: the units' moments.
    pub parts: [Moments; SHRUNK],
    pub bad_reviews: usize,
    pub unrectified: usize,
    pub cases: usize,
    pub valid_complaints: usize,
    pub confirmed_incidents: usize,
}

impl Tally {
    fn merge(&mut self, o: &Tally) {
        self.ratings += o.ratings;
        self.observed.merge(&o.observed);
        for (p, q) in self.parts.iter_mut().zip(&o.parts) {
            p.merge(q);
        }
        self.bad_reviews += o.bad_reviews;
        self.unrectified += o.unrectified;
        self.cases += o.cases;
        self.valid_complaints += o.valid_complaints;
        self.confirmed_incidents += o.confirmed_incidents;
    }

    fn add(&mut self, fact: &Fact) {
        let bin = |b: bool| if b { 100.0 } else { 0.0 };
        match *fact {
            Fact::Rating {
                score,
                fair,
                good,
                bad,
                unrectified,
            } => {
                self.ratings += 1;
                self.observed.add(score);
                self.parts[0].add(fair.unwrap_or(score));
                if let Some(g) = good {
                    self.parts[1].add(bin(g));
                }
                self.bad_reviews += bad as usize;
                self.unrectified += unrectified as usize;
            }
            Fact::Case {
                on_time,
                first_time,
            } => {
                self.cases += 1;
                if let Some(t) = on_time {
                    self.parts[2].add(bin(t));
                }
                self.parts[3].add(bin(first_time));
            }
            Fact::ValidComplaint => self.valid_complaints += 1,
            Fact::ConfirmedIncident => self.confirmed_incidents += 1,
        }
    }
}

/// One row of `staff_measures`.
#[derive(Debug, Clone, PartialEq)]
pub struct StaffMeasure {
    pub period: Period,
    pub staff_id: String,
    pub dept_id: String,
    pub ratings: usize,
    pub observed_mean: Option<f64>,
    /// Mean of the ratings with each rater's effect removed.
    pub fair_mean: Option<f64>,
    pub good_reviews: usize,
    pub bad_reviews: usize,
    pub unrectified_bad_reviews: usize,
    pub cases: usize,
    pub on_time_rate: Option<f64>,
    pub first_time_rate: Option<f64>,
    pub valid_complaints: usize,
    pub confirmed_incidents: usize,
    /// Per part of [`PARTS`]: its points (0-100) after shrinkage (`volume`
    /// as it is).
    pub points: [Option<f64>; 5],
    /// The weighted parts without shrinkage, and with it; `None` below the
    /// policy's minimum of ratings.
    pub composite_observed: Option<f64>,
    pub composite: Option<f64>,
    /// Rank by `composite` within the department and period (1 = best).
    pub rank_in_dept: Option<usize>,
    /// Months only: whether the person could be a 服务之星 that month, and
    /// if not, why (`few_ratings`, `low_composite`, `valid_complaint`,
    /// `confirmed_incident`, `unrectified_bad_review`, comma-separated).
    pub star_eligible: Option<bool>,
    pub not_eligible_because: Option<String>,
}

/// Adds the facts up per period of every grain, measures and shrinks.
///
/// The facts are put in department, staff and day order (departments and
/// staff by id), so that each person's weeks and months are runs of facts,
/// added up as they pass; quarters and years are added up from the
/// months. Every sum adds up in the same order on every run.
pub fn measures(facts: &[StaffFact], names: &Names, policy: &StaffPolicy) -> Vec<StaffMeasure> {
    let rank = names.ranks();
    let mut order: Vec<(u32, u32, NaiveDate, u32)> = facts
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                rank[f.dept as usize],
                rank[f.staff as usize],
                f.day,
                i as u32,
            )
        })
        .collect();
    order.sort_unstable();
    // Each day's week and month, worked out once.
    let first = facts.iter().map(|f| f.day).min();
    let last = facts.iter().map(|f| f.day).max();
    let days: Vec<[Period; 2]> = first
        .zip(last)
        .map(|(first, last)| {
            first
                .iter_days()
                .take_while(|d| *d <= last)
                .map(|d| [Grain::Week, Grain::Month].map(|g| Period::containing(g, d)))
                .collect()
        })
        .unwrap_or_default();
    let mut rows: Vec<(Period, Key, Key, Tally)> = Vec::new();
    // The open period of each grain for the person being added up.
    let mut open: [Option<(Period, Tally)>; 4] = Default::default();
    let flush = |open: &mut [Option<(Period, Tally)>; 4],
                 rows: &mut Vec<(Period, Key, Key, Tally)>,
                 k: usize,
                 who: (Key, Key)| {
        if let Some((p, t)) = open[k].take() {
            if k == 1 {
                // A month ends: it adds to its quarter and year.
                for g in [2, 3] {
                    let q = Period::containing(Grain::ALL[g], p.start);
                    if open[g].as_ref().is_some_and(|(o, _)| *o != q) {
                        let (o, t) = open[g].take().expect("open");
                        rows.push((o, who.0, who.1, t));
                    }
                    open[g]
                        .get_or_insert_with(|| (q, Tally::default()))
                        .1
                        .merge(&t);
                }
            }
            rows.push((p, who.0, who.1, t));
        }
    };
    let mut who: Option<(Key, Key)> = None;
    let mut last_day: Option<NaiveDate> = None;
    for &(_, _, day, i) in &order {
        let f = &facts[i as usize];
        let this = (f.dept, f.staff);
        if who != Some(this) {
            if let Some(w) = who {
                for k in 0..4 {
                    flush(&mut open, &mut rows, k, w);
                }
            }
            who = Some(this);
            last_day = None;
        }
        if last_day != Some(day) {
            let of_day = days[(day - first.expect("a fact")).num_days() as usize];
            for (k, p) in of_day.into_iter().enumerate() {
                if open[k].as_ref().is_some_and(|(o, _)| *o != p) {
                    flush(&mut open, &mut rows, k, this);
                }
                open[k].get_or_insert_with(|| (p, Tally::default()));
            }
            last_day = Some(day);
        }
        for o in open.iter_mut().take(2) {
            o.as_mut().expect("open").1.add(&f.fact);
        }
    }
    if let Some(w) = who {
        for k in 0..4 {
            flush(&mut open, &mut rows, k, w);
        }
    }
    // By period, each in department and staff order (the order they were
    // made in).
    let mut by_period: HashMap<Period, Vec<&(Period, Key, Key, Tally)>> = HashMap::new();
    for r in &rows {
        by_period.entry(r.0).or_default().push(r);
    }
    let mut periods: Vec<_> = by_period.into_iter().collect();
    periods.sort_unstable_by_key(|p| p.0);
    let mut out = Vec::with_capacity(rows.len());
    for (_, same) in periods {
        out.extend(measure_period(&same, names, &rank, policy));
    }
    out
}

/// The measures of one period's rows (period, department, staff, tally),
/// in department and staff order; `order`: each key's place in the order
/// of the names.
fn measure_period(
    rows: &[&(Period, Key, Key, Tally)],
    names: &Names,
    order: &[u32],
    policy: &StaffPolicy,
) -> Vec<StaffMeasure> {
    let period = rows[0].0;
    let depts: Vec<u32> = rows.iter().map(|r| order[r.1 as usize]).collect();
    let shrunk: Vec<Vec<Option<f64>>> = (0..SHRUNK)
        .map(|k| {
            let groups: Vec<Moments> = rows.iter().map(|r| r.3.parts[k]).collect();
            shrink(&depts, &groups)
        })
        .collect();
    // Workload: of those who resolved cases, the cases resolved against
    // the mean of the department's staff who resolved any, capped at 100
    // (no part for a person who resolves none, such as a front desk).
    let mut dept_cases: HashMap<Key, (usize, usize)> = HashMap::new();
    for (_, d, _, t) in rows.iter().copied() {
        if t.cases > 0 {
            let e = dept_cases.entry(*d).or_default();
            e.0 += t.cases;
            e.1 += 1;
        }
    }
    let weights = policy.part_weights();
    let mut measures: Vec<StaffMeasure> = rows
        .iter()
        .enumerate()
        .map(|(i, &&(_, d, s, ref t))| {
            let volume = dept_cases
                .get(&d)
                .filter(|_| t.cases > 0)
                .map(|&(cases, staff)| {
                    (100.0 * t.cases as f64 * staff as f64 / cases as f64).min(100.0)
                });
            let mut observed = [volume; 5];
            let mut points = [volume; 5];
            for k in 0..SHRUNK {
                observed[k] = t.parts[k].mean();
                points[k] = shrunk[k][i];
            }
            let shown = t.ratings >= policy.min_ratings;
            let composite =
                |parts: &[Option<f64>; 5]| shown.then(|| weighted(parts, &weights)).flatten();
            StaffMeasure {
                period,
                staff_id: names.name(s).to_string(),
                dept_id: names.name(d).to_string(),
                ratings: t.ratings,
                observed_mean: t.observed.mean(),
                fair_mean: t.parts[0].mean(),
                good_reviews: (t.parts[1].sum / 100.0).round() as usize,
                bad_reviews: t.bad_reviews,
                unrectified_bad_reviews: t.unrectified,
                cases: t.cases,
                on_time_rate: t.parts[2].mean(),
                first_time_rate: t.parts[3].mean(),
                valid_complaints: t.valid_complaints,
                confirmed_incidents: t.confirmed_incidents,
                points,
                composite_observed: composite(&observed),
                composite: composite(&points),
                rank_in_dept: None,
                star_eligible: None,
                not_eligible_because: None,
            }
        })
        .collect();
    rank(&mut measures);
    measures
}

/// The weighted mean of the parts with points, weights re-normalised over
/// them; `None` when none has points.
fn weighted(parts: &[Option<f64>; 5], weights: &[f64; 5]) -> Option<f64> {
    let (mut sum, mut w) = (0.0, 0.0);
    for (p, &wt) in parts.iter().zip(weights) {
        if let Some(p) = p {
            if wt > 0.0 {
                sum += p * wt;
                w += wt;
            }
        }
    }
    (w > 0.0).then(|| sum / w)
}

/// The order of staff by merit: composite (higher first), then more
/// ratings, then fewer bad reviews, then staff id (so the order is total
/// and the same on every run).
pub fn by_merit(a: &StaffMeasure, b: &StaffMeasure) -> std::cmp::Ordering {
    let c = |m: &StaffMeasure| m.composite.unwrap_or(f64::NEG_INFINITY);
    c(b).total_cmp(&c(a))
        .then(b.ratings.cmp(&a.ratings))
        .then(a.bad_reviews.cmp(&b.bad_reviews))
        .then(a.staff_id.cmp(&b.staff_id))
}

/// Sets `rank_in_dept` of the measures with a composite.
fn rank(measures: &mut [StaffMeasure]) {
    let mut order: Vec<usize> = (0..measures.len())
        .filter(|&i| measures[i].composite.is_some())
        .collect();
    order.sort_by(|&a, &b| {
        measures[a]
            .dept_id
            .cmp(&measures[b].dept_id)
            .then(by_merit(&measures[a], &measures[b]))
    });
    let mut last: Option<&str> = None;
    let mut n = 0;
    let ranks: Vec<(usize, usize)> = order
        .iter()
        .map(|&i| {
            let d = measures[i].dept_id.as_str();
            if last != Some(d) {
                n = 0;
                last = Some(d);
            }
            n += 1;
            (i, n)
        })
        .collect();
    for (i, r) in ranks {
        measures[i].rank_in_dept = Some(r);
    }
}
