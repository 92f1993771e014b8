//! Managers' 360-degree feedback (360度反馈): the ratings superiors,
//! peers, subordinates, service objects and the manager themselves give a
//! manager, per half-year and year -> the `manager_feedback` mart.
//!
//! Superiors, peers and subordinates are kept anonymous. A group with fewer
//! distinct raters than its anonymity minimum is rolled up into `others`
//! (never dropped: its counts stay); `others` shows a mean only when its
//! raters reach the highest minimum among the groups in it. Service objects
//! (`client`, whose ratings of the person `staff_measures` already shows)
//! and `self` are shown as they are.
//!
//! No pair of published figures may be subtracted to recover a hidden one:
//! nothing pooled over a hidden group is published (the `composite` weighs
//! the published means only), and a year's row is published only when it
//! adds up from its halves' published rows (a group shown alone in the
//! year must be shown alone in each half it has ratings in; the year's
//! `others` must be a union of published rows of each half). Only periods
//! that have closed are published, so a night's new rating cannot be read
//! off the change in a mean either.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use crate::policy::REVIEW360_GROUPS as G;
use crate::time::periods::{Grain, Period};

/// The groups whose raters stay anonymous, in the mart's order:
/// superior, peer, subordinate.
pub const ANONYMOUS: [&str; 3] = [G[0], G[1], G[2]];
/// The groups shown as they are: service objects (`client`) and the
/// manager (`self`).
pub const OPEN: [&str; 2] = [G[3], G[4]];

/// One response about a manager: the mean of its items, 0-100.
#[derive(Debug, Clone)]
pub struct FeedbackRating {
    pub staff_id: String,
    pub dept_id: String,
    pub day: NaiveDate,
    /// One of [`ANONYMOUS`] or [`OPEN`].
    pub group: &'static str,
    pub rater_id: String,
    pub score: f64,
}

/// One row of `manager_feedback`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackRow {
    pub period: Period,
    pub dept_id: String,
    pub staff_id: String,
    /// A group, `others` or `composite`.
    pub rater_group: &'static str,
    /// The groups behind the row, comma-separated: those rolled up into
    /// `others`; those the `composite` weighs.
    pub groups: String,
    pub raters: usize,
    pub ratings: usize,
    pub mean: Option<f64>,
    /// Why `mean` is empty: `below_minimum` (too few raters), `adds_up`
    /// (a year's row that would give away a half's hidden figures),
    /// `nothing_published` (a composite with no published group).
    pub withheld: Option<&'static str>,
}

/// What the 360 needs of the policy.
pub struct FeedbackRules<'a> {
    /// Weight of each group in the composite (absent: 0).
    pub weights: &'a BTreeMap<String, f64>,
    /// Anonymity minimum of an anonymous group.
    pub min_raters: &'a dyn Fn(&str) -> usize,
    /// The last day of a period that may be published (closed by then).
    pub closed_by: NaiveDate,
}

#[derive(Debug, Default, Clone)]
struct Acc<'a> {
    raters: BTreeSet<&'a str>,
    n: usize,
    sum: f64,
}

impl<'a> Acc<'a> {
    fn merge(&mut self, o: &Acc<'a>) {
        self.raters.extend(o.raters.iter().copied());
        self.n += o.n;
        self.sum += o.sum;
    }

    fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }
}

/// One period's rows for one manager: each anonymous group alone or in
/// `others`, and whether each row's mean is published.
struct Layout<'a> {
    /// Groups with ratings -> their sums.
    groups: BTreeMap<&'static str, Acc<'a>>,
    /// Anonymous groups shown alone.
    alone: BTreeSet<&'static str>,
    /// Anonymous groups rolled up, and whether `others` shows its mean.
    others: BTreeSet<&'static str>,
    others_shown: bool,
    /// Why `others` shows no mean.
    others_withheld: Option<&'static str>,
}

impl Layout<'_> {
    /// Whether group `g`'s ratings are in a published row made only of
    /// groups in `set`.
    fn published_within(&self, g: &str, set: &BTreeSet<&'static str>) -> bool {
        if self.alone.contains(g) {
            return true;
        }
        self.others.contains(g) && self.others_shown && self.others.is_subset(set)
    }
}

/// The `manager_feedback` rows of every closed half-year and year, in
/// department, manager, period (each half before its year) and group
/// order.
pub fn feedback(ratings: &[FeedbackRating], rules: &FeedbackRules) -> Vec<FeedbackRow> {
    // (year start, dept, staff) -> [first half, second half, year].
    type Key<'a> = (NaiveDate, &'a str, &'a str);
    let mut sums: BTreeMap<Key, [BTreeMap<&'static str, Acc>; 3]> = BTreeMap::new();
    for r in ratings {
        let year = Period::containing(Grain::Year, r.day);
        let half = Period::containing(Grain::Half, r.day);
        let slots = sums
            .entry((year.start, r.dept_id.as_str(), r.staff_id.as_str()))
            .or_default();
        let h = if half.start == year.start { 0 } else { 1 };
        for slot in [h, 2] {
            let acc = slots[slot].entry(r.group).or_default();
            acc.raters.insert(r.rater_id.as_str());
            acc.n += 1;
            acc.sum += r.score;
        }
    }
    let min = |g: &str| (rules.min_raters)(g).max(1);
    let mut out = Vec::new();
    for ((year_start, dept, staff), [h1, h2, y]) in sums {
        let year = Period::containing(Grain::Year, year_start);
        let halves = [
            Period::containing(Grain::Half, year_start),
            Period::containing(Grain::Half, year.end),
        ];
        let h1 = half_layout(h1, &min);
        let h2 = half_layout(h2, &min);
        let yl = year_layout(y, [&h1, &h2], &min);
        let mut emit = |period: Period, l: &Layout| {
            if period.end <= rules.closed_by && !l.groups.is_empty() {
                out.extend(rows(period, dept, staff, l, rules.weights));
            }
        };
        emit(halves[0], &h1);
        emit(halves[1], &h2);
        emit(year, &yl);
    }
    out
}

/// The anonymous groups with ratings split into those shown alone (enough
/// raters, and `may_stand_alone`) and those rolled up into `others`.
fn split<'a>(
    groups: BTreeMap<&'static str, Acc<'a>>,
    min: &dyn Fn(&str) -> usize,
    may_stand_alone: &dyn Fn(&str) -> bool,
) -> Layout<'a> {
    let (mut alone, mut others) = (BTreeSet::new(), BTreeSet::new());
    for g in ANONYMOUS {
        if let Some(acc) = groups.get(g) {
            if acc.raters.len() >= min(g) && may_stand_alone(g) {
                alone.insert(g);
            } else {
                others.insert(g);
            }
        }
    }
    Layout {
        groups,
        alone,
        others,
        others_shown: false,
        others_withheld: None,
    }
}

fn half_layout<'a>(
    groups: BTreeMap<&'static str, Acc<'a>>,
    min: &dyn Fn(&str) -> usize,
) -> Layout<'a> {
    let mut l = split(groups, min, &|_| true);
    let (raters, need) = others_raters(&l, min);
    l.others_shown = !l.others.is_empty() && raters >= need;
    if !l.others.is_empty() && !l.others_shown {
        l.others_withheld = Some("below_minimum");
    }
    l
}

/// The year: a group alone only if alone in each half it has ratings in;
/// `others` shown only if its raters reach the minimum and, in each half,
/// its groups' ratings all sit in published rows made of its groups only.
fn year_layout<'a>(
    groups: BTreeMap<&'static str, Acc<'a>>,
    halves: [&Layout; 2],
    min: &dyn Fn(&str) -> usize,
) -> Layout<'a> {
    // A group alone only where it is alone in each half it has ratings in.
    let alone_in_halves = |g: &str| {
        halves
            .iter()
            .all(|h| !h.groups.contains_key(g) || h.alone.contains(g))
    };
    let mut l = split(groups, min, &alone_in_halves);
    if l.others.is_empty() {
        return l;
    }
    let (raters, need) = others_raters(&l, min);
    let adds_up = halves.iter().all(|h| {
        l.others
            .iter()
            .filter(|g| h.groups.contains_key(*g))
            .all(|g| h.published_within(g, &l.others))
    });
    l.others_shown = raters >= need && adds_up;
    l.others_withheld = match (raters >= need, adds_up) {
        (false, _) => Some("below_minimum"),
        (true, false) => Some("adds_up"),
        (true, true) => None,
    };
    l
}

/// `others`' distinct raters, and the most its groups ask for.
fn others_raters(l: &Layout, min: &dyn Fn(&str) -> usize) -> (usize, usize) {
    let mut acc = Acc::default();
    for g in &l.others {
        acc.merge(&l.groups[g]);
    }
    let need = l.others.iter().map(|g| min(g)).max().unwrap_or(1);
    (acc.raters.len(), need)
}

fn rows<'a>(
    period: Period,
    dept: &str,
    staff: &str,
    l: &Layout<'a>,
    weights: &BTreeMap<String, f64>,
) -> Vec<FeedbackRow> {
    let row = |group: &'static str, groups: String, acc: &Acc, shown: bool, why| FeedbackRow {
        period,
        dept_id: dept.to_string(),
        staff_id: staff.to_string(),
        rater_group: group,
        groups,
        raters: acc.raters.len(),
        ratings: acc.n,
        mean: if shown { acc.mean() } else { None },
        withheld: if shown { None } else { why },
    };
    let weight = |g: &str| weights.get(g).copied().unwrap_or(0.0);
    let mut out = Vec::new();
    // The composite: published means, weighted.
    let (mut sum, mut w, mut weighed) = (0.0, 0.0, Vec::new());
    let mut total: Acc<'a> = Acc::default();
    let mut weigh = |names: &[&'static str], acc: &Acc<'a>, mean: Option<f64>| {
        let wt: f64 = names.iter().map(|g| weight(g)).sum();
        if let (Some(m), true) = (mean, wt > 0.0) {
            sum += wt * m;
            w += wt;
            weighed.extend_from_slice(names);
            total.merge(acc);
        }
    };
    for g in ANONYMOUS {
        if l.alone.contains(g) {
            let acc = &l.groups[g];
            out.push(row(g, g.to_string(), acc, true, None));
            weigh(&[g], acc, acc.mean());
        }
    }
    if !l.others.is_empty() {
        let mut acc = Acc::default();
        for g in &l.others {
            acc.merge(&l.groups[g]);
        }
        let names: Vec<&'static str> = ANONYMOUS
            .into_iter()
            .filter(|g| l.others.contains(g))
            .collect();
        out.push(row(
            "others",
            names.join(","),
            &acc,
            l.others_shown,
            l.others_withheld,
        ));
        if l.others_shown {
            weigh(&names, &acc, acc.mean());
        }
    }
    for g in OPEN {
        if let Some(acc) = l.groups.get(g) {
            out.push(row(g, g.to_string(), acc, true, None));
            weigh(&[g], acc, acc.mean());
        }
    }
    let composite = (w > 0.0).then(|| sum / w);
    out.push(FeedbackRow {
        period,
        dept_id: dept.to_string(),
        staff_id: staff.to_string(),
        rater_group: "composite",
        groups: weighed.join(","),
        raters: total.raters.len(),
        ratings: total.n,
        mean: composite,
        withheld: composite.is_none().then_some("nothing_published"),
    });
    out
}
