//! Stage: raters. Scored ratings -> rater severity, flags, exclusions,
//! reliability (`rater_effects`, `rating_flags`, `reliability`) and the
//! rater-adjusted scores behind `satisfaction.fair_mean`.
//!
//! Per period of the policy's estimation grain, the additive main-effects
//! model on normalised scores
//!
//! ```text
//! score = overall mean + department effect + rater effect (+ item effect)
//! ```
//!
//! is fitted by backfitting (alternating means) to convergence. Rater
//! effects are shrunk: each is the sum of its residuals divided by (its
//! number of ratings + `shrinkage`), so a citizen who rates once does not
//! absorb its own residual; `shrinkage = 0` is plain least squares. Rater
//! effects are centred to a plain mean of zero. Raters and departments that
//! form a separate connected group (nobody links them to the rest) cannot be
//! placed on the common scale: they are fitted within their group, flagged
//! `separate_group`, and get no fair mean.
//!
//! A department's fair mean is the mean of its ratings with each rater's
//! effect removed: at the estimation grain this is the overall mean plus the
//! department effect plus its mean item effect (the "fair average" of
//! many-facet Rasch analysis); at other grains it is the same adjustment
//! summed over the period's ratings, so every grain adds up the same rows.
//! Exclusions are decided once per response at the estimation grain too.

use rayon::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::{DataFrame, PlHashMap, PlHashSet, StringChunked};

use crate::frame::Builder;
use crate::periods::{Grain, Period};
use crate::policy::RaterPolicy;

/// One item answer, as the rater model sees it.
#[derive(Debug, Clone)]
pub struct ItemRating {
    pub rating_id: Arc<str>,
    pub item: Arc<str>,
    pub rater_id: Arc<str>,
    pub group: Arc<str>,
    pub dept_id: Arc<str>,
    pub day: NaiveDate,
    /// Normalised score, 0-100.
    pub y: f64,
    /// Score on its own scale, and the number of levels of that scale.
    pub raw: f64,
    pub levels: f64,
    /// The texts' numbers (see [`Keys`]).
    pub keys: Keys,
}

/// Numbers standing for an item rating's department, rater, item and
/// rater group: one number per distinct text across the item ratings of a
/// read ([`items_from_frame`]), so the steps that number these texts for
/// themselves ([`Ids::id_by`]) look a number up in a list instead of
/// hashing the text. Item ratings made otherwise carry [`Keys::NONE`] and
/// are looked up by their texts, with the same result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    pub dept: u32,
    pub rater: u32,
    pub item: u32,
    pub group: u32,
}

impl Keys {
    pub const NONE: Keys = Keys {
        dept: u32::MAX,
        rater: u32::MAX,
        item: u32::MAX,
        group: u32::MAX,
    };
}

/// The columns of `ratings` that [`items_from_frame`] reads.
pub const RATING_COLUMNS: [&str; 9] = [
    "rating_id",
    "rated_at",
    "dept_id",
    "rater_id",
    "rater_group",
    "item",
    "score",
    "scale_min",
    "scale_max",
];

/// Item ratings from the `ratings` view, leaving out the ratings in
/// `removed` (removed on appeal), each score normalised to 0-100 on its own
/// scale. The rows are read in parts, one per core.
pub fn items_from_frame(
    df: &DataFrame,
    removed: &PlHashSet<String>,
    tz: chrono_tz::Tz,
) -> Result<Vec<ItemRating>> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    items_in_parts(df, removed, tz, cores)
}

/// [`items_from_frame`] with the rows read in `parts` parts at once, each
/// into its own slots of the result.
fn items_in_parts(
    df: &DataFrame,
    removed: &PlHashSet<String>,
    tz: chrono_tz::Tz,
    parts: usize,
) -> Result<Vec<ItemRating>> {
    let n = df.height();
    let part = n.div_ceil(parts.max(1)).max(1);
    let mut slots: Vec<Option<ItemRating>> = Vec::with_capacity(n);
    slots.resize_with(n, || None);
    let names: Vec<[Vec<Arc<str>>; 4]> = std::thread::scope(|s| {
        let readers: Vec<_> = slots
            .chunks_mut(part)
            .enumerate()
            .map(|(k, slots)| {
                let rows = df.slice((k * part) as i64, slots.len());
                s.spawn(move || read_items(&rows, removed, tz, slots))
            })
            .collect();
        readers
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect::<Result<Vec<_>>>()
    })?;
    // Each part numbered its texts in the order it met them; one number per
    // text across the parts, in the order of the parts.
    let mut numbers: [PlHashMap<Arc<str>, u32>; 4] = Default::default();
    for (slots, names) in slots.chunks_mut(part).zip(names) {
        let to_global: Vec<Vec<u32>> = numbers
            .iter_mut()
            .zip(names)
            .map(|(numbers, names)| {
                names
                    .into_iter()
                    .map(|name| {
                        let next = numbers.len() as u32;
                        *numbers.entry(name).or_insert(next)
                    })
                    .collect()
            })
            .collect();
        for k in slots.iter_mut().flatten().map(|r| &mut r.keys) {
            k.dept = to_global[0][k.dept as usize];
            k.rater = to_global[1][k.rater as usize];
            k.item = to_global[2][k.item as usize];
            k.group = to_global[3][k.group as usize];
        }
    }
    // Rows left out leave empty slots; the rest keep their order. Collected
    // in place (`flatten` would copy them into a new allocation: a second
    // copy of a year's item ratings at the peak).
    #[allow(clippy::filter_map_identity)]
    let items = slots.into_iter().filter_map(|r| r).collect();
    Ok(items)
}

/// Reads `df`'s rows into `slots` (as many), leaving a slot empty for a
/// row left out. Their keys are numbered in the order met; returns the
/// texts by number: departments, raters, items and groups.
fn read_items(
    df: &DataFrame,
    removed: &PlHashSet<String>,
    tz: chrono_tz::Tz,
    slots: &mut [Option<ItemRating>],
) -> Result<[Vec<Arc<str>>; 4]> {
    use crate::frame::float_column;
    // Read in place, row after row: only the item ratings themselves are
    // held.
    let text = |name: &str| -> Result<&StringChunked> { Ok(df.column(name)?.str()?) };
    let mut texts = [
        text("rating_id")?.iter(),
        text("item")?.iter(),
        text("rater_id")?.iter(),
        text("rater_group")?.iter(),
        text("dept_id")?.iter(),
    ];
    let mut ats = crate::frame::micros_in_place(df, "rated_at")?.iter();
    let (raw, lo, hi) = (
        float_column(df, "score")?,
        float_column(df, "scale_min")?,
        float_column(df, "scale_max")?,
    );
    let mut numbers = [raw.f64()?.iter(), lo.f64()?.iter(), hi.f64()?.iter()];
    // Each distinct text is stored once per column (and part), numbered,
    // and shared (a rater's id by all their ratings): copies are reference
    // counts. A column's rows often repeat the row before (a response's
    // items share its id, rater, group and department), which needs no
    // lookup. Response ids are only shared with the row before: a
    // response's items come together, and keeping every id seen would cost
    // more than it saves.
    /// A column's texts, each stored once and numbered in the order met.
    #[derive(Default)]
    struct Pool {
        before: Option<(Arc<str>, u32)>,
        index: PlHashMap<Arc<str>, u32>,
        names: Vec<Arc<str>>,
    }
    impl Pool {
        fn get(&mut self, s: &str) -> (Arc<str>, u32) {
            if let Some((a, n)) = self.before.as_ref().filter(|(a, _)| **a == *s) {
                return (a.clone(), *n);
            }
            let (a, n) = match self.index.get_key_value(s) {
                Some((a, &n)) => (a.clone(), n),
                None => {
                    let (a, n): (Arc<str>, u32) = (Arc::from(s), self.names.len() as u32);
                    self.index.insert(a.clone(), n);
                    self.names.push(a.clone());
                    (a, n)
                }
            };
            self.before = Some((a.clone(), n));
            (a, n)
        }
    }
    let (mut depts, mut raters, mut items, mut groups): (Pool, Pool, Pool, Pool) =
        Default::default();
    let mut id_before: Option<Arc<str>> = None;
    let mut days = crate::calendar::LocalDays::new(tz);
    for slot in slots.iter_mut() {
        let t = texts.each_mut().map(|c| c.next().flatten());
        let [raw, lo, hi] = numbers.each_mut().map(|c| c.next().flatten());
        let at = ats.next().flatten();
        // Rows with a field missing, and ratings removed on appeal, are
        // left out.
        let (Some(id), Some(item), Some(rater), Some(group), Some(dept)) =
            (t[0], t[1], t[2], t[3], t[4])
        else {
            continue;
        };
        let (Some(raw), Some(lo), Some(hi), Some(at)) = (raw, lo, hi, at) else {
            continue;
        };
        if removed.contains(id) {
            continue;
        }
        let rating_id = match id_before.take().filter(|a| **a == *id) {
            Some(a) => a,
            None => Arc::from(id),
        };
        id_before = Some(rating_id.clone());
        let ((dept_id, dept), (rater_id, rater)) = (depts.get(dept), raters.get(rater));
        let ((item, item_n), (group, group_n)) = (items.get(item), groups.get(group));
        *slot = Some(ItemRating {
            rating_id,
            item,
            rater_id,
            group,
            dept_id,
            day: days.day(at),
            y: (raw - lo) / (hi - lo) * 100.0,
            raw,
            levels: hi - lo + 1.0,
            keys: Keys {
                dept,
                rater,
                item: item_n,
                group: group_n,
            },
        });
    }
    let names = |p: Pool| p.names;
    Ok([names(depts), names(raters), names(items), names(groups)])
}

/// An observation with dense indices, for [`fit`].
#[derive(Debug, Clone, Copy)]
pub struct Obs {
    pub dept: usize,
    pub rater: usize,
    pub item: usize,
    pub y: f64,
}

/// A fitted main-effects model.
#[derive(Debug, Clone)]
pub struct Fit {
    pub mu: f64,
    pub dept: Vec<f64>,
    pub rater: Vec<f64>,
    pub item: Vec<f64>,
    pub residuals: Vec<f64>,
    /// Residual standard deviation.
    pub sigma: f64,
    pub rater_n: Vec<usize>,
    pub iterations: usize,
}

const TOLERANCE: f64 = 1e-8;
const MAX_ITERATIONS: usize = 1000;

/// Fits score = mu + dept + rater (+ item) by backfitting. Cost per
/// iteration is linear in the number of observations.
pub fn fit(obs: &[Obs], n_dept: usize, n_rater: usize, n_item: usize, shrinkage: f64) -> Fit {
    let n = obs.len();
    let mut fit = Fit {
        mu: 0.0,
        dept: vec![0.0; n_dept],
        rater: vec![0.0; n_rater],
        item: vec![0.0; n_item],
        residuals: vec![0.0; n],
        sigma: 0.0,
        rater_n: vec![0; n_rater],
        iterations: 0,
    };
    if n == 0 {
        return fit;
    }
    let mut dept_n = vec![0usize; n_dept];
    let mut item_n = vec![0usize; n_item];
    for o in obs {
        dept_n[o.dept] += 1;
        fit.rater_n[o.rater] += 1;
        item_n[o.item] += 1;
    }
    fit.mu = obs.iter().map(|o| o.y).sum::<f64>() / n as f64;
    let use_items = item_n.iter().filter(|&&c| c > 0).count() > 1;
    let mut sums_d = vec![0.0; n_dept];
    let mut sums_r = vec![0.0; n_rater];
    let mut sums_t = vec![0.0; n_item];
    for iter in 0..MAX_ITERATIONS {
        // Each facet in turn: the mean of what the other effects leave,
        // raters shrunk towards zero.
        accumulate(&mut sums_d, obs, |o| {
            (o.dept, o.y - fit.mu - fit.rater[o.rater] - fit.item[o.item])
        });
        let mut change = update(&mut fit.dept, &sums_d, &dept_n, 0.0);
        accumulate(&mut sums_r, obs, |o| {
            (o.rater, o.y - fit.mu - fit.dept[o.dept] - fit.item[o.item])
        });
        change = change.max(update(&mut fit.rater, &sums_r, &fit.rater_n, shrinkage));
        // Centre rater effects: their plain mean over raters is zero.
        fit.mu += centre(&mut fit.rater, &fit.rater_n, |_| 1.0);
        if use_items {
            accumulate(&mut sums_t, obs, |o| {
                (o.item, o.y - fit.mu - fit.dept[o.dept] - fit.rater[o.rater])
            });
            change = change.max(update(&mut fit.item, &sums_t, &item_n, 0.0));
            // Item effects average zero over the ratings.
            fit.mu += centre(&mut fit.item, &item_n, |c| c as f64);
        }
        fit.iterations = iter + 1;
        if change < TOLERANCE {
            break;
        }
    }
    let mut ss = 0.0;
    for (i, o) in obs.iter().enumerate() {
        let e = o.y - fit.mu - fit.dept[o.dept] - fit.rater[o.rater] - fit.item[o.item];
        fit.residuals[i] = e;
        ss += e * e;
    }
    let params = n_dept + if use_items { n_item } else { 0 };
    let df = n.saturating_sub(params).max(1);
    fit.sigma = (ss / df as f64).sqrt();
    fit
}

/// Sums, per effect, the partial residual `f` gives for each observation.
fn accumulate(sums: &mut [f64], obs: &[Obs], f: impl Fn(&Obs) -> (usize, f64)) {
    sums.iter_mut().for_each(|s| *s = 0.0);
    for o in obs {
        let (k, v) = f(o);
        sums[k] += v;
    }
}

/// Sets each observed effect to its sum over (count + shrinkage); returns
/// the largest change, for the convergence test.
fn update(effects: &mut [f64], sums: &[f64], counts: &[usize], shrinkage: f64) -> f64 {
    let mut change: f64 = 0.0;
    for ((e, s), &n) in effects.iter_mut().zip(sums).zip(counts) {
        if n > 0 {
            let v = s / (n as f64 + shrinkage);
            change = change.max((v - *e).abs());
            *e = v;
        }
    }
    change
}

/// Shifts the observed effects to a weighted mean of zero (weight from the
/// count); returns the shift, which the overall mean takes up.
fn centre(effects: &mut [f64], counts: &[usize], weight: impl Fn(usize) -> f64) -> f64 {
    let (mut sum, mut total) = (0.0, 0.0);
    for (e, &n) in effects.iter().zip(counts) {
        if n > 0 {
            sum += e * weight(n);
            total += weight(n);
        }
    }
    if total == 0.0 {
        return 0.0;
    }
    let mean = sum / total;
    for (e, &n) in effects.iter_mut().zip(counts) {
        if n > 0 {
            *e -= mean;
        }
    }
    mean
}

/// Connected groups of raters and departments (a rater links the
/// departments it rates). Returns each observation's group, numbered by
/// size (0 = the group with the most observations).
pub fn components(obs: &[Obs], n_dept: usize, n_rater: usize) -> Vec<usize> {
    let mut parent: Vec<usize> = (0..n_dept + n_rater).collect();
    fn find(p: &mut [usize], mut x: usize) -> usize {
        while p[x] != x {
            p[x] = p[p[x]];
            x = p[x];
        }
        x
    }
    for o in obs {
        let a = find(&mut parent, o.dept);
        let b = find(&mut parent, n_dept + o.rater);
        if a != b {
            parent[a] = b;
        }
    }
    let roots: Vec<usize> = obs.iter().map(|o| find(&mut parent, o.dept)).collect();
    let mut size: PlHashMap<usize, usize> = PlHashMap::default();
    for r in &roots {
        *size.entry(*r).or_default() += 1;
    }
    let mut order: Vec<(usize, usize)> = size.into_iter().collect();
    order.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let rank: PlHashMap<usize, usize> = order
        .iter()
        .enumerate()
        .map(|(i, (r, _))| (*r, i))
        .collect();
    roots.iter().map(|r| rank[r]).collect()
}

/// One rater's estimate in one estimation period.
#[derive(Debug, Clone, PartialEq)]
pub struct RaterEffect {
    pub rater_id: String,
    pub period: Period,
    pub n_ratings: usize,
    pub n_depts: usize,
    pub severity: f64,
    pub se: f64,
    pub flags: Vec<String>,
    pub excluded: bool,
    pub separate_group: bool,
}

/// One flag on one item rating.
#[derive(Debug, Clone, PartialEq)]
pub struct RatingFlag {
    pub period: Period,
    pub rating_id: String,
    pub item: String,
    pub rater_id: String,
    pub dept_id: String,
    pub flag: String,
    pub detail: String,
}

/// What the rater checks give the rest of the pipeline.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Per input item rating: the score with its rater's effect removed
    /// (`None` outside the common scale).
    pub adjusted: Vec<Option<f64>>,
    /// Responses left out of satisfaction, with why.
    pub excluded: BTreeMap<String, String>,
    pub effects: Vec<RaterEffect>,
    pub flags: Vec<RatingFlag>,
}

/// Numbers texts densely, in the order met: by their number of [`Keys`]
/// where they have one (an index into a list), else by the text.
pub(crate) struct Ids<'a> {
    /// Per number (see [`Ids::id_by`]), its id + 1; 0 for not met.
    by_number: Vec<u32>,
    index: PlHashMap<&'a str, usize>,
    pub(crate) names: Vec<&'a str>,
}

impl<'a> Ids<'a> {
    pub(crate) fn new() -> Ids<'a> {
        Ids {
            by_number: Vec::new(),
            index: PlHashMap::default(),
            names: Vec::new(),
        }
    }

    /// The id of `s`, for which `number` stands (a number of [`Keys`]):
    /// looked up in a list; by the text for [`Keys::NONE`]'s numbers and
    /// the first time a number is met, so numbered and unnumbered texts
    /// share ids.
    pub(crate) fn id_by(&mut self, number: u32, s: &'a str) -> usize {
        if number == u32::MAX {
            return self.id(s);
        }
        let n = number as usize;
        match self.by_number.get(n) {
            Some(&i) if i != 0 => return i as usize - 1,
            Some(_) => {}
            None => self.by_number.resize(n + 1, 0),
        }
        let i = self.id(s);
        self.by_number[n] = i as u32 + 1;
        i
    }

    /// The id of `s`, by the text.
    pub(crate) fn id(&mut self, s: &'a str) -> usize {
        match self.index.get(s) {
            Some(&i) => i,
            None => {
                self.names.push(s);
                self.index.insert(s, self.names.len() - 1);
                self.names.len() - 1
            }
        }
    }

    /// The texts of `ids`, each once, in text order.
    pub(crate) fn texts(&self, ids: &[u32]) -> Vec<String> {
        let mut texts: Vec<String> = ids
            .iter()
            .map(|&i| self.names[i as usize].to_string())
            .collect();
        texts.sort_unstable();
        texts.dedup();
        texts
    }

    /// Each id's rank when the texts are sorted.
    pub(crate) fn ranks(&self) -> Vec<usize> {
        self.sorted().0
    }

    /// Each id's rank when the texts are sorted, and the texts by rank.
    pub(crate) fn sorted(&self) -> (Vec<usize>, Vec<&'a str>) {
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_unstable_by(|&a, &b| self.names[a].cmp(self.names[b]));
        let mut rank = vec![0; order.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        (rank, order.into_iter().map(|i| self.names[i]).collect())
    }
}

/// Every item rating's response (`rating_id`), numbered once for the
/// passes that add up by response: reliability in id order, satisfaction
/// in order of first appearance.
pub struct ResponseNumbers {
    /// Per item rating, its response's number by first appearance.
    pub of_item: Vec<u32>,
    /// Per response (by first appearance), its rank in id order.
    pub rank: Vec<u32>,
}

impl ResponseNumbers {
    pub fn of(ratings: &[ItemRating]) -> ResponseNumbers {
        let ids = IdRuns::of(ratings.len(), |k| &ratings[k].rating_id);
        // Numbers by first appearance: ranks ordered by their first row.
        let mut rank: Vec<u32> = (0..ids.first_row.len() as u32).collect();
        rank.sort_unstable_by_key(|&d| ids.first_row[d as usize]);
        let mut number_of_rank = vec![0u32; rank.len()];
        for (number, &d) in rank.iter().enumerate() {
            number_of_rank[d as usize] = number as u32;
        }
        let of_item = ids.per_row(|r| number_of_rank[r as usize]);
        ResponseNumbers { of_item, rank }
    }
}

/// Numbers the responses (`rating_id`) of `rows` in id order: the number
/// of each row's response, and the ids by number.
fn number_responses<'a>(ratings: &'a [ItemRating], rows: &[usize]) -> (Vec<u32>, Vec<&'a str>) {
    let ids = IdRuns::of(rows.len(), |k| &ratings[rows[k]].rating_id);
    (ids.per_row(|r| r), ids.by_rank)
}

/// The ids of `n` rows ranked in id order. By sorting, not hashing: a
/// response's items come together, so the runs of rows with one id are few
/// (about a quarter of the rows), and sorting them by id gives the id
/// order, which is wanted anyway; an id found in two runs is one id.
/// Hashing a year's million ids took longer than the sort.
struct IdRuns<'a> {
    /// Rows in runs of one id: each run's first row, in row order.
    starts: Vec<u32>,
    /// Each run's id's rank in id order.
    rank_of_run: Vec<u32>,
    /// Per rank, the first row with that id.
    first_row: Vec<u32>,
    /// The ids by rank.
    by_rank: Vec<&'a str>,
    n: usize,
}

impl<'a> IdRuns<'a> {
    /// The ids of rows `0..n`, `id(k)` for row `k`.
    fn of(n: usize, id: impl Fn(usize) -> &'a str) -> IdRuns<'a> {
        // (id, first row) of each run, in row order.
        let mut runs: Vec<(&str, u32)> = Vec::new();
        for k in 0..n {
            let s = id(k);
            if runs.last().is_none_or(|(last, _)| *last != s) {
                runs.push((s, k as u32));
            }
        }
        // Runs in id order (of one id, the first first).
        let mut by_id: Vec<u32> = (0..runs.len() as u32).collect();
        by_id.sort_unstable_by(|&a, &b| runs[a as usize].cmp(&runs[b as usize]));
        let mut rank_of_run = vec![0u32; runs.len()];
        let (mut first_row, mut by_rank): (Vec<u32>, Vec<&str>) = (Vec::new(), Vec::new());
        for &run in &by_id {
            let (s, row) = runs[run as usize];
            if by_rank.last() != Some(&s) {
                first_row.push(row);
                by_rank.push(s);
            }
            rank_of_run[run as usize] = first_row.len() as u32 - 1;
        }
        IdRuns {
            starts: runs.into_iter().map(|(_, row)| row).collect(),
            rank_of_run,
            first_row,
            by_rank,
            n,
        }
    }

    /// Per row, `number(rank)` of its id.
    fn per_row(&self, number: impl Fn(u32) -> u32) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.n);
        for (k, &from) in self.starts.iter().enumerate() {
            let to = self.starts.get(k + 1).map_or(self.n, |&r| r as usize);
            out.extend(std::iter::repeat_n(
                number(self.rank_of_run[k]),
                to - from as usize,
            ));
        }
        out
    }
}

/// The policy's estimation grain (a quarter unless it names another).
pub fn estimation_grain(policy: &RaterPolicy) -> Grain {
    Grain::parse(&policy.estimation_grain).unwrap_or(Grain::Quarter)
}

/// Runs the model, flags and exclusions over every estimation period.
pub fn check(ratings: &[ItemRating], policy: &RaterPolicy) -> Outcome {
    check_from(ratings, policy, NaiveDate::MIN)
}

/// [`check`] over the item ratings of day `from` or later only; the others
/// are left unadjusted, for the caller to fill from an earlier check.
pub fn check_from(ratings: &[ItemRating], policy: &RaterPolicy, from: NaiveDate) -> Outcome {
    let grain = estimation_grain(policy);
    let mut by_period: BTreeMap<Period, Vec<usize>> = BTreeMap::new();
    for (i, r) in ratings.iter().enumerate().filter(|(_, r)| r.day >= from) {
        by_period
            .entry(Period::containing(grain, r.day))
            .or_default()
            .push(i);
    }
    // Periods are independent (a response lies in one period: its items
    // share a day), so they are checked on every core, each into an outcome
    // of its own rows, and put together in period order.
    let periods: Vec<(Period, Vec<usize>)> = by_period.into_iter().collect();
    let parts: Vec<Outcome> = periods
        .par_iter()
        .map(|(period, rows)| {
            let mut part = Outcome {
                adjusted: vec![None; rows.len()],
                ..Default::default()
            };
            check_period(ratings, rows, *period, policy, &mut part);
            part
        })
        .collect();
    let mut out = Outcome {
        adjusted: vec![None; ratings.len()],
        ..Default::default()
    };
    for ((_, rows), part) in periods.iter().zip(parts) {
        for (&i, a) in rows.iter().zip(part.adjusted) {
            out.adjusted[i] = a;
        }
        for (id, why) in part.excluded {
            out.excluded.entry(id).or_insert(why);
        }
        out.effects.extend(part.effects);
        out.flags.extend(part.flags);
    }
    out.flags.sort_by(|a, b| {
        (a.period, &a.rating_id, &a.item, &a.flag).cmp(&(b.period, &b.rating_id, &b.item, &b.flag))
    });
    out.effects
        .sort_by(|a, b| (a.period, &a.rater_id).cmp(&(b.period, &b.rater_id)));
    out
}

/// The rater model, flags and exclusions of one estimation period, whose
/// item ratings are `rows`, into `out`, whose `adjusted` is by position in
/// `rows`.
fn check_period(
    ratings: &[ItemRating],
    rows: &[usize],
    period: Period,
    policy: &RaterPolicy,
    out: &mut Outcome,
) {
    let th = &policy.flags;
    let (mut depts, mut raters, mut items) = (Ids::new(), Ids::new(), Ids::new());
    let obs: Vec<Obs> = rows
        .iter()
        .map(|&i| {
            let r = &ratings[i];
            Obs {
                dept: depts.id_by(r.keys.dept, &r.dept_id),
                rater: raters.id_by(r.keys.rater, &r.rater_id),
                item: items.id_by(r.keys.item, &r.item),
                y: r.y,
            }
        })
        .collect();
    let (n_dept, n_rater, n_item) = (depts.names.len(), raters.names.len(), items.names.len());
    // Per-group and per-rater observation lists: every step below walks
    // these, keeping the whole check linear in the number of ratings.
    let group_of = components(&obs, n_dept, n_rater);
    let mut members_of: Vec<Vec<usize>> = Vec::new();
    for (i, &g) in group_of.iter().enumerate() {
        if members_of.len() <= g {
            members_of.resize(g + 1, Vec::new());
        }
        members_of[g].push(i);
    }
    let mut by_rater: Vec<Vec<usize>> = vec![Vec::new(); n_rater];
    for (i, o) in obs.iter().enumerate() {
        by_rater[o.rater].push(i);
    }

    let mut residual = vec![0.0; obs.len()];
    let mut sigma_of = vec![0.0; obs.len()];
    // rater -> (effect, standard error, ratings, separate group)
    let mut stats: Vec<Option<(f64, f64, usize, bool)>> = vec![None; n_rater];
    for (g, members) in members_of.iter().enumerate() {
        let sub: Vec<Obs> = members.iter().map(|&i| obs[i]).collect();
        let f = fit(&sub, n_dept, n_rater, n_item, policy.shrinkage);
        for (local, &i) in members.iter().enumerate() {
            let k = obs[i].rater;
            residual[i] = f.residuals[local];
            sigma_of[i] = f.sigma;
            let se = f.sigma / (f.rater_n[k] as f64 + policy.shrinkage).sqrt();
            stats[k] = Some((f.rater[k], se, f.rater_n[k], g > 0));
            if g == 0 {
                out.adjusted[i] = Some(obs[i].y - f.rater[k]);
            }
        }
    }

    // Responses numbered in id order: every walk over responses below goes
    // in that order, and each response's items in input order.
    let (response_of, response_ids) = number_responses(ratings, rows);
    let mut responses: Vec<Vec<usize>> = vec![Vec::new(); response_ids.len()];
    for (i, &r) in response_of.iter().enumerate() {
        responses[r as usize].push(i);
    }

    // Spread of response-mean residuals, per connected group.
    let response_resid: Vec<(f64, usize, usize)> = responses
        .iter()
        .map(|idx| {
            let sum = idx.iter().fold(0.0, |acc, &i| acc + residual[i]);
            (sum, idx.len(), group_of[idx[0]])
        })
        .collect();
    let mut response_sigma = vec![0.0; members_of.len()];
    let mut response_n = vec![0usize; members_of.len()];
    for (sum, n, g) in &response_resid {
        response_sigma[*g] += (sum / *n as f64).powi(2);
        response_n[*g] += 1;
    }
    for (s, n) in response_sigma.iter_mut().zip(&response_n) {
        *s = (*s / (*n).max(2).saturating_sub(1) as f64).sqrt();
    }

    let mut flags: Vec<(usize, &'static str, String)> = Vec::new();
    let mut rater_flags: Vec<BTreeSet<String>> = vec![BTreeSet::new(); n_rater];
    for k in 0..n_rater {
        let Some((sev, _, _, separate)) = stats[k] else {
            continue;
        };
        if separate {
            rater_flags[k].insert("separate_group".into());
        }
        let sigma = sigma_of[by_rater[k][0]];
        let resp_sigma = response_sigma[group_of[by_rater[k][0]]];
        // What each of the rater's ratings says about the rater: the score
        // less the overall, department and item effects.
        let partial = |i: usize| residual[i] + sev;
        let n_k = by_rater[k].len() as f64;
        let total: f64 = by_rater[k].iter().map(|&i| partial(i)).sum();
        let mut per_dept: BTreeMap<usize, BTreeMap<u32, Vec<usize>>> = BTreeMap::new();
        for &i in &by_rater[k] {
            per_dept
                .entry(obs[i].dept)
                .or_default()
                .entry(response_of[i])
                .or_default()
                .push(i);
        }
        // Each department's response means, in response order.
        let resp_mean =
            |idx: &Vec<usize>| idx.iter().map(|&i| partial(i)).sum::<f64>() / idx.len() as f64;
        let means: BTreeMap<usize, Vec<f64>> = per_dept
            .iter()
            .map(|(j, r)| (*j, r.values().map(resp_mean).collect()))
            .collect();
        // Favouritism / hostility: the rater's ratings of one department
        // against its ratings of the other departments it rates (so
        // favouring one department is neither mistaken for leniency nor
        // hidden by it). Items of one response share the occasion, so the
        // test is on responses.
        // One department at a time, the most extreme first, each judged
        // against the departments not yet singled out.
        let (mut singled_sum, mut singled_n) = (0.0, 0.0);
        let mut singled: BTreeSet<usize> = BTreeSet::new();
        loop {
            let mut best: Option<(f64, usize, &'static str, f64, usize)> = None;
            for (j, responses) in &per_dept {
                let n = responses.len();
                if singled.contains(j) || n < th.favouritism_min_ratings as usize {
                    continue;
                }
                // Two-sample comparison of response means: this department
                // against the rater's other departments not singled out.
                let here = &means[j];
                let elsewhere: Vec<f64> = means
                    .iter()
                    .filter(|(d, _)| *d != j && !singled.contains(*d))
                    .flat_map(|(_, m)| m.iter().copied())
                    .collect();
                if elsewhere.is_empty() {
                    continue;
                }
                let mean = here.iter().sum::<f64>() / n as f64
                    - elsewhere.iter().sum::<f64>() / elsewhere.len() as f64;
                let se = resp_sigma * (1.0 / n as f64 + 1.0 / elsewhere.len() as f64).sqrt();
                let z = if se > 0.0 { mean / se } else { 0.0 };
                let flag = if mean >= th.favouritism_points && z >= th.favouritism_z {
                    "favouritism"
                } else if mean <= -th.favouritism_points && z <= -th.favouritism_z {
                    "hostility"
                } else {
                    continue;
                };
                if best.is_none_or(|b| z.abs() > b.0.abs()) {
                    best = Some((z, *j, flag, mean, n));
                }
            }
            let Some((z, j, flag, mean, n)) = best else {
                break;
            };
            let responses = &per_dept[&j];
            singled.insert(j);
            singled_sum += responses
                .values()
                .flatten()
                .map(|&i| partial(i))
                .sum::<f64>();
            singled_n += responses.values().map(|v| v.len() as f64).sum::<f64>();
            rater_flags[k].insert(flag.into());
            let detail = format!(
                "{mean:+.1} points against its ratings of other departments, for {} over {n} responses ({z:+.1} SE)",
                depts.names[j]
            );
            for &i in responses.values().flatten() {
                flags.push((i, flag, detail.clone()));
            }
        }
        // Lenient / severe: large in points and in standard errors, judged
        // on the departments the rater does not single out.
        let rest_n = n_k - singled_n;
        if rest_n > 0.0 {
            let lean = (total - singled_sum) / (rest_n + policy.shrinkage);
            let se = sigma / (rest_n + policy.shrinkage).sqrt();
            let z = if se > 0.0 { lean / se } else { 0.0 };
            if lean.abs() >= th.severity_points && z.abs() >= th.severity_z {
                let flag = if lean > 0.0 { "lenient" } else { "severe" };
                rater_flags[k].insert(flag.into());
                let detail = format!("rater effect {lean:+.1} points ({z:+.1} standard errors)");
                for &i in &by_rater[k] {
                    flags.push((i, flag, detail.clone()));
                }
            }
        }
    }
    // Straight-lining: one response, the same score on many items.
    for idx in &responses {
        let first = ratings[rows[idx[0]]].raw;
        if idx.len() >= th.straight_line_min_items as usize
            && idx.iter().all(|&i| ratings[rows[i]].raw == first)
        {
            rater_flags[obs[idx[0]].rater].insert("straight_line".into());
            let detail = format!("the same score ({first}) on all {} items", idx.len());
            for &i in idx {
                flags.push((i, "straight_line", detail.clone()));
            }
        }
    }
    // Outliers: single ratings far from the model.
    for (i, e) in residual.iter().enumerate() {
        if sigma_of[i] > 0.0 && (e / sigma_of[i]).abs() >= th.outlier_z {
            rater_flags[obs[i].rater].insert("outlier".into());
            let detail = format!(
                "residual {e:+.1} points ({:+.1} residual SD)",
                e / sigma_of[i]
            );
            flags.push((i, "outlier", detail));
        }
    }
    // Self inflation: a department's self ratings far above the others'.
    let mut self_rows: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut others: PlHashMap<usize, (f64, usize)> = PlHashMap::default();
    for (i, &row) in rows.iter().enumerate() {
        if &*ratings[row].group == "self" {
            self_rows.entry(obs[i].dept).or_default().push(i);
        } else {
            let e = others.entry(obs[i].dept).or_default();
            e.0 += obs[i].y;
            e.1 += 1;
        }
    }
    for (j, idx) in self_rows {
        let Some(&(sum, n)) = others.get(&j) else {
            continue;
        };
        let own = idx.iter().map(|&i| obs[i].y).sum::<f64>() / idx.len() as f64;
        let gap = own - sum / n as f64;
        if gap >= th.self_inflation_points {
            let detail = format!("self rating {gap:+.1} points above the others' mean");
            for i in idx {
                rater_flags[obs[i].rater].insert("self_inflation".into());
                flags.push((i, "self_inflation", detail.clone()));
            }
        }
    }

    // Exclusions, decided per response.
    let excluding: PlHashSet<&str> = if policy.handling == "exclude" {
        policy.exclude_flags.iter().map(String::as_str).collect()
    } else {
        PlHashSet::default()
    };
    for (i, flag, _) in &flags {
        if excluding.contains(flag) {
            out.excluded
                .entry(ratings[rows[*i]].rating_id.to_string())
                .or_insert_with(|| (*flag).to_string());
        }
    }
    if policy.trim_extremes {
        // Per department: drop the highest and the lowest response.
        let mut per_dept: BTreeMap<usize, Vec<(f64, &str)>> = BTreeMap::new();
        for (id, idx) in response_ids.iter().zip(&responses) {
            let mean = idx.iter().map(|&i| obs[i].y).sum::<f64>() / idx.len() as f64;
            per_dept
                .entry(obs[idx[0]].dept)
                .or_default()
                .push((mean, id));
        }
        for list in per_dept.values_mut() {
            if list.len() < 3 {
                continue;
            }
            list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
            for (_, id) in [list[0], list[list.len() - 1]] {
                out.excluded
                    .entry(id.to_string())
                    .or_insert_with(|| "trimmed".into());
            }
        }
    }

    for (i, flag, detail) in flags {
        let r = &ratings[rows[i]];
        out.flags.push(RatingFlag {
            period,
            rating_id: r.rating_id.to_string(),
            item: r.item.to_string(),
            rater_id: r.rater_id.to_string(),
            dept_id: r.dept_id.to_string(),
            flag: flag.into(),
            detail,
        });
    }
    for k in 0..n_rater {
        let Some((sev, se, n, separate)) = stats[k] else {
            continue;
        };
        let rated: BTreeSet<usize> = by_rater[k].iter().map(|&i| obs[i].dept).collect();
        let excluded = by_rater[k]
            .iter()
            .any(|&i| out.excluded.contains_key(&*ratings[rows[i]].rating_id));
        out.effects.push(RaterEffect {
            rater_id: raters.names[k].to_string(),
            period,
            n_ratings: n,
            n_depts: rated.len(),
            severity: sev,
            se,
            flags: std::mem::take(&mut rater_flags[k]).into_iter().collect(),
            excluded,
            separate_group: separate,
        });
    }
}

/// The spread of some values: their number, their mean, and the sum of
/// their squared deviations from the mean. The spreads of two parts merge
/// into the spread of the whole (Chan, Golub and LeVeque 1979), so a
/// quarter's or a year's is built from its months' without their values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    pub m2: f64,
}

impl Spread {
    /// In two passes: the mean, then the squared deviations from it.
    pub fn of(xs: &[f64]) -> Spread {
        if xs.is_empty() {
            return Spread::default();
        }
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let m2 = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
        Spread {
            n: xs.len(),
            mean,
            m2,
        }
    }

    /// Adds the values `other` stands for.
    pub fn merge(&mut self, other: &Spread) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let (a, b) = (self.n as f64, other.n as f64);
        let n = a + b;
        let d = other.mean - self.mean;
        self.mean += d * b / n;
        self.m2 += other.m2 + d * d * a * b / n;
        self.n += other.n;
    }

    /// The sample variance (n - 1 in the denominator).
    fn variance(&self) -> f64 {
        self.m2 / (self.n as f64 - 1.0)
    }
}

/// rwg(J) of James, Demaree and Wolf (1984) against the uniform null: per
/// item (the spread of its scores, and its scale's number of levels A), the
/// observed variance over the expected variance (A^2 - 1) / 12 of an
/// A-level scale; J items combine as J(1 - r) / (J(1 - r) + r) with r the
/// mean ratio. Set to 0 when raters disagree more than chance.
pub fn rwg(items: &[(Spread, f64)]) -> Option<f64> {
    let ratios: Vec<f64> = items
        .iter()
        .filter(|(s, levels)| s.n >= 2 && *levels >= 2.0)
        .map(|(s, levels)| s.variance() / ((levels * levels - 1.0) / 12.0))
        .collect();
    if ratios.is_empty() {
        return None;
    }
    let j = ratios.len() as f64;
    let r = ratios.iter().sum::<f64>() / j;
    if r >= 1.0 {
        return Some(0.0);
    }
    Some(j * (1.0 - r) / (j * (1.0 - r) + r))
}

/// ICC(1) and ICC(2) from a one-way ANOVA with groups as targets (Bliese
/// 2000), from each group's spread: ICC(1) = (MSB - MSW) / (MSB + (k - 1)
/// MSW), ICC(2) = (MSB - MSW) / MSB, with k the mean group size.
pub fn icc(groups: &[Spread]) -> Option<(f64, f64)> {
    let groups: Vec<&Spread> = groups.iter().filter(|s| s.n > 0).collect();
    let g = groups.len();
    let n: usize = groups.iter().map(|s| s.n).sum();
    if g < 2 || n <= g {
        return None;
    }
    let grand = groups.iter().map(|s| s.mean * s.n as f64).sum::<f64>() / n as f64;
    let ssb: f64 = groups
        .iter()
        .map(|s| s.n as f64 * (s.mean - grand).powi(2))
        .sum();
    let ssw: f64 = groups.iter().map(|s| s.m2).sum();
    let msb = ssb / (g - 1) as f64;
    let msw = ssw / (n - g) as f64;
    if msb <= 0.0 {
        return None;
    }
    let k = n as f64 / g as f64;
    Some(((msb - msw) / (msb + (k - 1.0) * msw), (msb - msw) / msb))
}

/// The `rater_effects` mart.
pub fn effects_frame(effects: &[RaterEffect], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str(
            "rater_id",
            effects.iter().map(|e| Some(e.rater_id.as_str())),
        )
        .periods(&effects.iter().map(|e| e.period).collect::<Vec<_>>(), as_of)
        .i64(
            "n_ratings",
            effects.iter().map(|e| Some(e.n_ratings as i64)),
        )
        .i64("n_depts", effects.iter().map(|e| Some(e.n_depts as i64)))
        .f64("severity", effects.iter().map(|e| Some(e.severity)))
        .f64("se", effects.iter().map(|e| Some(e.se)))
        .str("flags", effects.iter().map(|e| Some(e.flags.join(","))))
        .bool("excluded", effects.iter().map(|e| Some(e.excluded)))
        .bool(
            "separate_group",
            effects.iter().map(|e| Some(e.separate_group)),
        )
        .build()
}

/// The `rating_flags` mart.
pub fn flags_frame(flags: &[RatingFlag], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str(
            "rating_id",
            flags.iter().map(|f| Some(f.rating_id.as_str())),
        )
        .str("item", flags.iter().map(|f| Some(f.item.as_str())))
        .str("rater_id", flags.iter().map(|f| Some(f.rater_id.as_str())))
        .str("dept_id", flags.iter().map(|f| Some(f.dept_id.as_str())))
        .periods(&flags.iter().map(|f| f.period).collect::<Vec<_>>(), as_of)
        .str("flag", flags.iter().map(|f| Some(f.flag.as_str())))
        .str("detail", flags.iter().map(|f| Some(f.detail.as_str())))
        .build()
}

/// One row of the `reliability` mart.
#[derive(Debug, Clone, PartialEq)]
pub struct Reliability {
    pub dept_id: String,
    pub period: Period,
    pub n_raters: usize,
    pub rwg: Option<f64>,
    pub icc1: Option<f64>,
    pub icc2: Option<f64>,
}

/// The days a pass reports on: the periods that end in `from..=to`, each
/// made of the ratings of its days from `from` on. The days before `from`
/// that a pass reads count only toward the weeks that reach back into
/// them; what came before `from` in a quarter or year still open is handed
/// in by the pass that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Window {
    /// Every period of every day.
    pub const ALL: Window = Window {
        from: NaiveDate::MIN,
        to: NaiveDate::MAX,
    };

    pub fn keeps(&self, p: Period) -> bool {
        self.from <= p.end && p.end <= self.to
    }

    /// Whether a rating of `day` counts toward `p`, a period containing it.
    pub fn counts(&self, p: Period, day: NaiveDate) -> bool {
        self.keeps(p) && (p.grain == Grain::Week || day >= self.from)
    }
}

/// What the reliability of a quarter or year is built from, for one
/// department: handed from one pass to the next for the periods still
/// open where the first stopped, and kept with a complete estimation
/// period so that a later run need not read its ratings again.
#[derive(Debug, Clone, PartialEq)]
pub struct ReliabilityPart {
    pub dept_id: String,
    pub period: Period,
    /// Per item: the spread of its scores and its scale's number of levels.
    pub items: Vec<(String, Spread, f64)>,
    /// The distinct raters.
    pub raters: Vec<String>,
    /// The spread of the response means.
    pub responses: Spread,
}

/// [`ReliabilityPart`] with its texts by number.
#[derive(Debug, Default, Clone)]
struct Part {
    items: Vec<(usize, Spread, f64)>,
    raters: Vec<u32>,
    responses: Spread,
}

impl Part {
    /// Adds a later part of the period (items by number, raters as a set).
    fn merge(&mut self, other: &Part) {
        for (item, s, levels) in &other.items {
            match self.items.iter_mut().find(|x| x.0 == *item) {
                Some(x) => x.1.merge(s),
                None => self.items.push((*item, *s, *levels)),
            }
        }
        self.raters.extend(&other.raters);
        self.raters.sort_unstable();
        self.raters.dedup();
        self.responses.merge(&other.responses);
    }
}

/// Reliability per department and period of every grain, and one row
/// `dept_id = '*'` per period with ICC(1) and ICC(2) across departments.
/// `counted` marks the item ratings that count (not excluded); only the
/// periods of `window` are computed.
pub fn reliability(
    ratings: &[ItemRating],
    counted: &[bool],
    responses: &ResponseNumbers,
    window: Window,
) -> Vec<Reliability> {
    reliability_from(ratings, counted, responses, window, &[], &[]).0
}

/// [`reliability`], continuing the quarters and years `open` that began
/// before the window (as a pass that ended the day before `window.from`
/// left them), and giving for each day of `stops` (ascending, each the
/// last day of a month) the parts of the quarters and years then open.
///
/// Weeks and months are computed from their ratings: per item the spread
/// of its scores, the raters, and per response (in id order) the mean of
/// its scores; a quarter or year merges its months' spreads in month
/// order and counts each rater once. A response whose items fall in two
/// months counts once in each.
pub fn reliability_from<'a>(
    ratings: &'a [ItemRating],
    counted: &[bool],
    responses: &ResponseNumbers,
    window: Window,
    open: &'a [ReliabilityPart],
    stops: &[NaiveDate],
) -> (Vec<Reliability>, Vec<Vec<ReliabilityPart>>) {
    /// One department's ratings in one week or month: per item (by number)
    /// its raw scores and scale levels, the raters (by number), and per
    /// response (by number, in id order) the sum and count of its scores.
    #[derive(Default)]
    struct Cell {
        items: Vec<(usize, Vec<f64>, f64)>,
        raters: Vec<u32>,
        responses: Vec<(u32, f64, usize)>,
    }
    assert_eq!(
        responses.of_item.len(),
        ratings.len(),
        "numbers of other items"
    );
    let response_of = responses
        .of_item
        .iter()
        .map(|&n| responses.rank[n as usize]);
    let (mut depts, mut items, mut raters) = (Ids::new(), Ids::new(), Ids::new());
    // Quarters and years, by department number: those begun before the
    // window first.
    let mut coarse: BTreeMap<(Period, usize), Part> = BTreeMap::new();
    for o in open {
        let part = Part {
            items: o
                .items
                .iter()
                .map(|(item, s, levels)| (items.id(item), *s, *levels))
                .collect(),
            raters: o.raters.iter().map(|r| raters.id(r) as u32).collect(),
            responses: o.responses,
        };
        coarse
            .entry((o.period, depts.id(&o.dept_id)))
            .or_default()
            .merge(&part);
    }
    let mut cells: Vec<((Period, usize), Cell)> = Vec::new();
    let mut index: PlHashMap<(Period, usize), usize> = PlHashMap::default();
    // The cells of the last day and department seen: a response's items
    // come together.
    type Seen = ((NaiveDate, usize), [Option<usize>; 2]);
    let mut last: Option<Seen> = None;
    for ((r, &ok), response) in ratings.iter().zip(counted).zip(response_of) {
        if !ok {
            continue;
        }
        let dept = depts.id_by(r.keys.dept, &r.dept_id);
        let at = match last {
            Some((seen, at)) if seen == (r.day, dept) => at,
            _ => {
                let mut at = [None; 2];
                for (slot, g) in at.iter_mut().zip([Grain::Week, Grain::Month]) {
                    let p = Period::containing(g, r.day);
                    if window.counts(p, r.day) {
                        *slot = Some(*index.entry((p, dept)).or_insert_with(|| {
                            cells.push(((p, dept), Cell::default()));
                            cells.len() - 1
                        }));
                    }
                }
                last = Some(((r.day, dept), at));
                at
            }
        };
        let (item, rater) = (
            items.id_by(r.keys.item, &r.item),
            raters.id_by(r.keys.rater, &r.rater_id) as u32,
        );
        for c in at.into_iter().flatten() {
            let c = &mut cells[c].1;
            match c.items.iter_mut().find(|x| x.0 == item) {
                Some(x) => x.1.push(r.raw),
                None => c.items.push((item, vec![r.raw], r.levels)),
            }
            if c.raters.last() != Some(&rater) {
                c.raters.push(rater);
            }
            match c.responses.last_mut() {
                Some(x) if x.0 == response => {
                    x.1 += r.y;
                    x.2 += 1;
                }
                _ => c.responses.push((response, r.y, 1)),
            }
        }
    }
    drop(index);
    // Each cell's spreads: each rater once, each response once in id order
    // (a response found in two runs adds up in run order: the sort is
    // stable).
    let parts: Vec<((Period, usize), Part)> = cells
        .into_iter()
        .map(|(key, mut c)| {
            c.raters.sort_unstable();
            c.raters.dedup();
            c.responses.sort_by_key(|x| x.0);
            c.responses.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 += later.1;
                    kept.2 += later.2;
                }
                same
            });
            let means: Vec<f64> = c.responses.iter().map(|(_, s, n)| s / *n as f64).collect();
            let part = Part {
                items: c
                    .items
                    .into_iter()
                    .map(|(item, xs, levels)| (item, Spread::of(&xs), levels))
                    .collect(),
                raters: c.raters,
                responses: Spread::of(&means),
            };
            (key, part)
        })
        .collect();
    // Quarters and years from their months, in month order, with the
    // parts still open at each stop.
    let open_at = |coarse: &BTreeMap<(Period, usize), Part>, day: NaiveDate| {
        coarse
            .iter()
            .filter(|((p, _), _)| p.start <= day && day < p.end)
            .map(|(k, part)| (*k, part.clone()))
            .collect::<Vec<_>>()
    };
    let mut months: Vec<usize> = (0..parts.len())
        .filter(|&c| parts[c].0 .0.grain == Grain::Month)
        .collect();
    months.sort_unstable_by_key(|&c| parts[c].0 .0);
    let mut stopped = Vec::new();
    for c in months {
        let ((month, dept), part) = &parts[c];
        while let Some(&day) = stops.get(stopped.len()).filter(|&&d| month.start > d) {
            stopped.push(open_at(&coarse, day));
        }
        for g in [Grain::Quarter, Grain::Year] {
            coarse
                .entry((Period::containing(g, month.start), *dept))
                .or_default()
                .merge(part);
        }
    }
    while let Some(&day) = stops.get(stopped.len()) {
        stopped.push(open_at(&coarse, day));
    }

    // Rows in (period, department name) order, so that each period's ICC
    // adds up its departments in one order.
    let (dept_rank, by_rank) = depts.sorted();
    let item_rank = items.ranks();
    let mut keys: Vec<(Period, usize, &Part)> = parts
        .iter()
        .map(|((p, dept), part)| (*p, dept_rank[*dept], part))
        .chain(
            coarse
                .iter()
                .filter(|((p, _), _)| window.keeps(*p))
                .map(|((p, dept), part)| (*p, dept_rank[*dept], part)),
        )
        .collect();
    keys.sort_unstable_by_key(|k| (k.0, k.1));
    let mut out = Vec::new();
    for period_rows in keys.chunk_by(|a, b| a.0 == b.0) {
        let period = period_rows[0].0;
        let mut groups = Vec::with_capacity(period_rows.len());
        for &(_, rank, part) in period_rows {
            // Items in name order.
            let mut list: Vec<(usize, Spread, f64)> = part
                .items
                .iter()
                .map(|(item, s, levels)| (item_rank[*item], *s, *levels))
                .collect();
            list.sort_unstable_by_key(|x| x.0);
            let list: Vec<(Spread, f64)> = list.into_iter().map(|(_, s, l)| (s, l)).collect();
            out.push(Reliability {
                dept_id: by_rank[rank].to_string(),
                period,
                n_raters: part.raters.len(),
                rwg: rwg(&list),
                icc1: None,
                icc2: None,
            });
            groups.push(part.responses);
        }
        let (icc1, icc2) = icc(&groups).map_or((None, None), |(a, b)| (Some(a), Some(b)));
        out.push(Reliability {
            dept_id: "*".into(),
            period,
            n_raters: 0,
            rwg: None,
            icc1,
            icc2,
        });
    }
    out.sort_by(|a, b| (&a.dept_id, a.period).cmp(&(&b.dept_id, b.period)));
    // In text order throughout, so that what is kept does not depend on
    // the order the texts were met in.
    let stopped = stopped
        .into_iter()
        .map(|parts| {
            let mut parts: Vec<ReliabilityPart> = parts
                .into_iter()
                .map(|((period, dept), part)| {
                    let mut items: Vec<(String, Spread, f64)> = part
                        .items
                        .iter()
                        .map(|(item, s, levels)| (items.names[*item].to_string(), *s, *levels))
                        .collect();
                    items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    ReliabilityPart {
                        dept_id: depts.names[dept].to_string(),
                        period,
                        items,
                        raters: raters.texts(&part.raters),
                        responses: part.responses,
                    }
                })
                .collect();
            parts.sort_unstable_by(|a, b| (&a.dept_id, a.period).cmp(&(&b.dept_id, b.period)));
            parts
        })
        .collect();
    (out, stopped)
}

pub fn reliability_frame(rows: &[Reliability], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", rows.iter().map(|r| Some(r.dept_id.as_str())))
        .periods(&rows.iter().map(|r| r.period).collect::<Vec<_>>(), as_of)
        .i64("n_raters", rows.iter().map(|r| Some(r.n_raters as i64)))
        .f64("rwg", rows.iter().map(|r| r.rwg))
        .f64("icc1", rows.iter().map(|r| r.icc1))
        .f64("icc2", rows.iter().map(|r| r.icc2))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_read_in_row_order_whatever_the_parts() {
        // Seven rows: r1's two items, r2 without a score (left out), r3
        // removed on appeal (left out), r4's three items. rated_at
        // 1775001600000000 us is 2026-04-01 00:00 UTC, 08:00 in Shanghai;
        // the last row is an hour earlier in UTC than the rest, 2026-03-31
        // 23:00 UTC, which in Shanghai is still 1 April (07:00).
        let at = 1_775_001_600_000_000;
        let hour = 3_600_000_000;
        let df = Builder::new()
            .str(
                "rating_id",
                ["r1", "r1", "r2", "r3", "r4", "r4", "r4"].map(Some),
            )
            .ts("rated_at", [at, at, at, at, at, at, at - hour].map(Some))
            .str(
                "dept_id",
                ["hr", "hr", "hr", "it", "it", "it", "it"].map(Some),
            )
            .str(
                "rater_id",
                ["u1", "u1", "u2", "u3", "u4", "u4", "u4"].map(Some),
            )
            .str("rater_group", ["staff"; 7].map(Some))
            .str("item", ["a", "b", "a", "a", "a", "b", "c"].map(Some))
            .f64(
                "score",
                [
                    Some(4.0),
                    Some(2.0),
                    None,
                    Some(5.0),
                    Some(1.0),
                    Some(5.0),
                    Some(7.0),
                ],
            )
            .f64("scale_min", [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0].map(Some))
            .f64("scale_max", [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 10.0].map(Some))
            .build()
            .unwrap();
        let removed: PlHashSet<String> = ["r3".to_string()].into_iter().collect();
        // (id, item, day, y, levels): y = (score - min) / (max - min) x 100,
        // levels = max - min + 1.
        let april_1 = NaiveDate::from_ymd_opt(2026, 4, 1).unwrap();
        let expected = vec![
            ("r1", "a", april_1, 75.0, 5.0),
            ("r1", "b", april_1, 25.0, 5.0),
            ("r4", "a", april_1, 0.0, 5.0),
            ("r4", "b", april_1, 100.0, 5.0),
            ("r4", "c", april_1, 70.0, 11.0),
        ];
        for parts in [1, 2, 3, 7, 10] {
            let items = items_in_parts(&df, &removed, chrono_tz::Asia::Shanghai, parts).unwrap();
            let got: Vec<_> = items
                .iter()
                .map(|r| (&*r.rating_id, &*r.item, r.day, r.y, r.levels))
                .collect();
            assert_eq!(got, expected, "in {parts} parts");
            assert!(items.iter().all(|r| &*r.group == "staff"));
            // Numbered by first appearance over all parts (the rows left
            // out number nothing): departments hr 0, it 1; raters u1 0,
            // u4 1; items a 0, b 1, c 2; the one group 0.
            let keys: Vec<(u32, u32, u32, u32)> = items
                .iter()
                .map(|r| (r.keys.dept, r.keys.rater, r.keys.item, r.keys.group))
                .collect();
            assert_eq!(
                keys,
                [
                    (0, 0, 0, 0),
                    (0, 0, 1, 0),
                    (1, 1, 0, 0),
                    (1, 1, 1, 0),
                    (1, 1, 2, 0)
                ],
                "in {parts} parts"
            );
        }
        // No rows at all.
        let none = items_in_parts(&df.slice(0, 0), &removed, chrono_tz::Asia::Shanghai, 2);
        assert!(none.unwrap().is_empty());
    }

    #[test]
    fn icc_reproduces_shrout_and_fleiss_table_4() {
        // Shrout & Fleiss (1979), Table 4: 6 targets rated by 4 judges.
        // One-way ANOVA: BMS = 11.24, WMS = 6.26; ICC(1,1) = 0.17 and
        // ICC(1,4) = 0.44.
        let targets = [
            [9.0, 2.0, 5.0, 8.0],
            [6.0, 1.0, 3.0, 2.0],
            [8.0, 4.0, 6.0, 8.0],
            [7.0, 1.0, 2.0, 6.0],
            [10.0, 5.0, 6.0, 9.0],
            [6.0, 2.0, 4.0, 7.0],
        ];
        let spreads: Vec<Spread> = targets.iter().map(|t| Spread::of(t)).collect();
        let (icc1, icc2) = icc(&spreads).unwrap();
        assert_eq!(format!("{icc1:.2}"), "0.17");
        assert_eq!(format!("{icc2:.2}"), "0.44");
    }

    #[test]
    fn rwg_hand_worked() {
        // Five raters on a 5-point item: 4, 4, 5, 3, 4. Mean 4, variance
        // (0 + 0 + 1 + 1 + 0) / 4 = 0.5; uniform null (25 - 1) / 12 = 2;
        // rwg = 1 - 0.5 / 2 = 0.75.
        let of = |xs: &[f64]| Spread::of(xs);
        assert_eq!(rwg(&[(of(&[4.0, 4.0, 5.0, 3.0, 4.0]), 5.0)]), Some(0.75));
        // Two items: the first as above (ratio 0.5 / 2 = 0.25), the second
        // 5, 3, 5, 3 with variance 4/3 (ratio 0.667).
        let two = rwg(&[
            (of(&[4.0, 4.0, 5.0, 3.0, 4.0]), 5.0),
            (of(&[5.0, 3.0, 5.0, 3.0]), 5.0),
        ])
        .unwrap();
        // r = (0.25 + 0.6667) / 2 = 0.4583, J = 2:
        // 2 x 0.5417 / (2 x 0.5417 + 0.4583) = 1.0833 / 1.5417 = 0.7027
        assert!((two - 0.7027).abs() < 1e-3, "{two}");
        // More disagreement than chance: 0.
        assert_eq!(rwg(&[(of(&[1.0, 5.0, 1.0, 5.0]), 5.0)]), Some(0.0));
        assert_eq!(rwg(&[(of(&[4.0]), 5.0)]), None);
    }

    #[test]
    fn spreads_of_parts_merge_into_the_spread_of_the_whole() {
        // 1, 2, 3 (mean 2, squared deviations 1 + 0 + 1 = 2) and 4, 5 (mean
        // 4.5, 0.25 + 0.25 = 0.5) make 1..5: mean 3, squared deviations
        // 4 + 1 + 0 + 1 + 4 = 10 (= 2 + 0.5 + 2.5^2 x 3 x 2 / 5 = 10).
        let (a, b) = (Spread::of(&[1.0, 2.0, 3.0]), Spread::of(&[4.0, 5.0]));
        assert_eq!((a.n, a.mean, a.m2), (3, 2.0, 2.0));
        assert_eq!((b.n, b.mean, b.m2), (2, 4.5, 0.5));
        let mut whole = a;
        whole.merge(&b);
        assert_eq!((whole.n, whole.mean, whole.m2), (5, 3.0, 10.0));
        // Nothing merges as nothing, either way round.
        let mut none = Spread::default();
        none.merge(&a);
        assert_eq!(none, a);
        whole.merge(&Spread::default());
        assert_eq!(whole.n, 5);
        assert_eq!(Spread::of(&[]), Spread::default());
    }

    #[test]
    fn plain_least_squares_on_a_balanced_design() {
        // Two departments, two raters, everyone rates everyone once:
        //            rater A  rater B
        //   dept X     80       60
        //   dept Y     70       50
        // Additive exactly: mu = 65, X +5, Y -5, A +10, B -10.
        let obs = vec![
            Obs {
                dept: 0,
                rater: 0,
                item: 0,
                y: 80.0,
            },
            Obs {
                dept: 0,
                rater: 1,
                item: 0,
                y: 60.0,
            },
            Obs {
                dept: 1,
                rater: 0,
                item: 0,
                y: 70.0,
            },
            Obs {
                dept: 1,
                rater: 1,
                item: 0,
                y: 50.0,
            },
        ];
        let f = fit(&obs, 2, 2, 1, 0.0);
        let near = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(near(f.rater[0], 10.0) && near(f.rater[1], -10.0), "{f:?}");
        assert!(
            near(f.mu + f.dept[0], 70.0) && near(f.mu + f.dept[1], 60.0),
            "{f:?}"
        );
        assert!(f.residuals.iter().all(|e| e.abs() < 1e-6));
        // With shrinkage 2, each rater's effect is its residual sum over
        // (2 + 2): pulled towards zero.
        let g = fit(&obs, 2, 2, 1, 2.0);
        assert!(g.rater[0] > 0.0 && g.rater[0] < 10.0, "{g:?}");
    }

    #[test]
    fn empty_input_and_separate_groups() {
        let f = fit(&[], 0, 0, 0, 5.0);
        assert_eq!(f.iterations, 0);
        // Rater 0 rates dept 0 only; rater 1 rates dept 1 only: two groups.
        let obs = vec![
            Obs {
                dept: 0,
                rater: 0,
                item: 0,
                y: 80.0,
            },
            Obs {
                dept: 0,
                rater: 0,
                item: 0,
                y: 70.0,
            },
            Obs {
                dept: 1,
                rater: 1,
                item: 0,
                y: 50.0,
            },
        ];
        assert_eq!(components(&obs, 2, 2), vec![0, 0, 1]);
    }

    #[test]
    fn ids_are_the_same_for_the_same_text_wherever_it_is_stored() {
        let (a, b) = (String::from("dept-a"), String::from("dept-a"));
        let longer = String::from("dept-ab");
        let mut ids = Ids::new();
        assert_eq!(ids.id(&a), 0);
        // The same text at another address; a shorter text at the same
        // address as a longer one.
        assert_eq!(ids.id(&b), 0);
        assert_eq!(ids.id(&longer), 1);
        assert_eq!(ids.id(&longer[..6]), 0);
        assert_eq!(ids.id(&a), 0);
        assert_eq!(ids.ranks(), vec![0, 1]);
        // By number, by text, or both: one id per text.
        let mut ids = Ids::new();
        assert_eq!(ids.id_by(u32::MAX, &a), 0);
        assert_eq!(ids.id_by(7, &b), 0);
        assert_eq!(ids.id_by(2, &longer), 1);
        assert_eq!(ids.id_by(7, &a), 0);
        assert_eq!(ids.id(&longer), 1);
        assert_eq!(ids.id_by(u32::MAX, &longer), 1);
        assert_eq!(ids.names, ["dept-a", "dept-ab"]);
    }

    #[test]
    fn numbered_and_unnumbered_item_ratings_give_the_same_checks() {
        // Two quarters of 6 raters x 3 departments x 2 items, rater r0
        // lenient and r5 rating d2 low: item ratings read from a frame (in
        // three parts) carry numbers, the same without them are looked up
        // by text.
        let mut cols: [Vec<String>; 5] = Default::default();
        let (mut at, mut score) = (Vec::new(), Vec::new());
        let jan_1 = 1_767_225_600_000_000_i64; // 2026-01-01 00:00 UTC
        let day = 86_400_000_000_i64;
        let mut n = 0;
        for d in [3_i64, 100] {
            for rater in 0..6 {
                // Each rater meets the departments in another order, so
                // each part of the read numbers them differently.
                for dept in (0..3).map(|k| (k + rater) % 3) {
                    for rep in 0..3 {
                        n += 1;
                        // Raters r4 and r5 (first in the second part)
                        // answer q2 first and are of the second group.
                        let late = rater >= 4;
                        let order = if late { ["q2", "q1"] } else { ["q1", "q2"] };
                        for item in order {
                            cols[0].push(format!("R{n}"));
                            cols[1].push(item.into());
                            cols[2].push(format!("r{rater}"));
                            cols[3].push(if late { "client_external" } else { "staff" }.into());
                            cols[4].push(format!("d{dept}"));
                            at.push(jan_1 + (d + rep) * day);
                            let base = 2.0 + ((rater + dept + rep as usize) % 3) as f64;
                            // q2 is the harder question.
                            let hard = if item == "q2" { 1.0 } else { 0.0 };
                            score.push(match (rater, dept) {
                                (0, _) => 5.0,
                                (5, 2) => 1.0,
                                _ => base - hard,
                            });
                        }
                    }
                }
            }
        }
        let df = Builder::new()
            .str("rating_id", cols[0].iter().map(|s| Some(s.as_str())))
            .str("item", cols[1].iter().map(|s| Some(s.as_str())))
            .str("rater_id", cols[2].iter().map(|s| Some(s.as_str())))
            .str("rater_group", cols[3].iter().map(|s| Some(s.as_str())))
            .str("dept_id", cols[4].iter().map(|s| Some(s.as_str())))
            .ts("rated_at", at.iter().map(|&t| Some(t)))
            .f64("score", score.iter().map(|&x| Some(x)))
            .f64("scale_min", score.iter().map(|_| Some(1.0)))
            .f64("scale_max", score.iter().map(|_| Some(5.0)))
            .build()
            .unwrap();
        let tz = chrono_tz::Asia::Shanghai;
        let numbered = items_in_parts(&df, &PlHashSet::default(), tz, 3).unwrap();
        assert!(numbered.iter().all(|r| r.keys != Keys::NONE));
        let plain: Vec<ItemRating> = numbered
            .iter()
            .map(|r| ItemRating {
                keys: Keys::NONE,
                ..r.clone()
            })
            .collect();
        let policy = crate::policy::load_text(
            crate::policy::DEFAULT_POLICY.to_string(),
            crate::policy::PolicySource::Embedded,
        )
        .unwrap()
        .policy;
        let runs: Vec<String> = [&numbered, &plain]
            .map(|items| {
                let out = check(items, &policy.raters);
                let counted: Vec<bool> = items
                    .iter()
                    .map(|r| !out.excluded.contains_key(&*r.rating_id))
                    .collect();
                let numbers = ResponseNumbers::of(items);
                let rel = reliability(items, &counted, &numbers, Window::ALL);
                let responses = crate::satisfaction::responses(items, &numbers, &out);
                let sat = crate::satisfaction::compute(
                    &responses,
                    &Default::default(),
                    &policy,
                    Window::ALL,
                );
                format!("{out:?}\n{rel:?}\n{sat:?}")
            })
            .into();
        assert!(runs[0].contains("r0") && runs[0].contains("rwg"));
        assert_eq!(runs[0], runs[1]);
    }

    /// An item rating on a 1-5 scale, its texts stored apart from any other
    /// rating's (as in tests, not as read from the lake).
    fn rated(id: &str, rater: &str, dept: &str, day: &str, item: &str, raw: f64) -> ItemRating {
        ItemRating {
            rating_id: Arc::from(id),
            item: Arc::from(item),
            rater_id: Arc::from(rater),
            group: Arc::from("public"),
            dept_id: Arc::from(dept),
            day: day.parse().unwrap(),
            y: (raw - 1.0) / 4.0 * 100.0,
            raw,
            levels: 5.0,
            keys: Keys::NONE,
        }
    }

    #[test]
    fn responses_are_numbered_by_first_appearance_and_ranked_by_id() {
        // Rows' ids b b a c c b a: b's items come in two runs, and so do
        // a's. By first appearance b = 0, a = 1, c = 2; in id order a, b, c,
        // so the ranks by number are b 1, a 0, c 2.
        let rows: Vec<ItemRating> = ["b", "b", "a", "c", "c", "b", "a"]
            .iter()
            .map(|id| rated(id, "r1", "x", "2026-01-07", "q1", 4.0))
            .collect();
        let numbers = ResponseNumbers::of(&rows);
        assert_eq!(numbers.of_item, [0, 0, 1, 2, 2, 0, 1]);
        assert_eq!(numbers.rank, [1, 0, 2]);
        // A period's rows, numbered in id order, with the ids by number.
        let all: Vec<usize> = (0..rows.len()).collect();
        let (of_row, ids) = number_responses(&rows, &all);
        assert_eq!(
            (of_row, ids),
            (vec![1, 1, 0, 2, 2, 1, 0], vec!["a", "b", "c"])
        );
        // Rows 6, 3 and 5 hold a, c and b.
        let (of_row, ids) = number_responses(&rows, &[6, 3, 5]);
        assert_eq!((of_row, ids), (vec![0, 2, 1], vec!["a", "b", "c"]));
        let (of_row, ids) = number_responses(&rows, &[5, 0]);
        assert_eq!((of_row, ids), (vec![0, 0], vec!["b"]));
        let none = ResponseNumbers::of(&[]);
        assert!(none.of_item.is_empty() && none.rank.is_empty());
    }

    #[test]
    fn reliability_continued_where_a_pass_stopped_is_that_of_one_pass() {
        // Departments a and b, items q1 and q2, from 1 February to 28 May
        // 2026: a response every three days to each, by raters r1-r5 in
        // turn, scores 1-5 in a cycle.
        let day = |s: &str| s.parse::<NaiveDate>().unwrap();
        let mut ratings = Vec::new();
        for k in 0..40i64 {
            let on = (day("2026-02-01") + chrono::Duration::days(3 * k)).to_string();
            for (d, dept) in ["a", "b"].into_iter().enumerate() {
                let id = format!("{dept}{k}");
                let rater = format!("r{}", (k as usize + d) % 5 + 1);
                for (i, item) in ["q1", "q2"].into_iter().enumerate() {
                    let raw = ((k as usize * (2 + d) + i) % 5 + 1) as f64;
                    ratings.push(rated(&id, &rater, dept, &on, item, raw));
                }
            }
        }
        let counted = vec![true; ratings.len()];
        let numbers = ResponseNumbers::of(&ratings);
        let one = reliability(&ratings, &counted, &numbers, Window::ALL);
        // The year counts each of the five raters once in each department.
        let year = |rows: &[Reliability], dept: &str| {
            rows.iter()
                .find(|r| r.dept_id == dept && r.period.grain == Grain::Year)
                .map(|r| r.n_raters)
        };
        assert_eq!((year(&one, "a"), year(&one, "b")), (Some(5), Some(5)));

        // A pass over the days to the end of March, whose rows of periods
        // ending by then are kept, then one from 26 March (the week of 30
        // March reaches back) reporting from 1 April on.
        let march = day("2026-03-31");
        let part = |keep: &dyn Fn(&ItemRating) -> bool| -> Vec<ItemRating> {
            ratings.iter().filter(|r| keep(r)).cloned().collect()
        };
        let first = part(&|r| r.day <= march);
        let (rows, open) = reliability_from(
            &first,
            &vec![true; first.len()],
            &ResponseNumbers::of(&first),
            Window::ALL,
            &[],
            &[march],
        );
        let mut rows: Vec<Reliability> =
            rows.into_iter().filter(|r| r.period.end <= march).collect();
        // Open at the end of March: each department's year.
        let open_periods: Vec<(&str, Grain)> = open[0]
            .iter()
            .map(|p| (p.dept_id.as_str(), p.period.grain))
            .collect();
        assert_eq!(open_periods, [("a", Grain::Year), ("b", Grain::Year)]);
        let second = part(&|r| r.day >= day("2026-03-26"));
        let from_april = Window {
            from: march + chrono::Duration::days(1),
            to: NaiveDate::MAX,
        };
        let (more, _) = reliability_from(
            &second,
            &vec![true; second.len()],
            &ResponseNumbers::of(&second),
            from_april,
            &open[0],
            &[],
        );
        rows.extend(more);
        rows.sort_by(|a, b| (&a.dept_id, a.period).cmp(&(&b.dept_id, b.period)));
        // The same rows, to the last bit.
        assert_eq!(rows, one);
    }

    #[test]
    fn reliability_worked_by_hand() {
        let ratings = vec![
            rated("R1", "r1", "a", "2026-01-07", "q1", 4.0),
            rated("R1", "r1", "a", "2026-01-07", "q2", 4.0),
            rated("R2", "r2", "a", "2026-01-07", "q1", 4.0),
            rated("R2", "r2", "a", "2026-01-07", "q2", 5.0),
            rated("R3", "r1", "a", "2026-02-10", "q1", 5.0),
            rated("R3", "r1", "a", "2026-02-10", "q2", 4.0),
            // R4's and R5's items interleaved.
            rated("R4", "r3", "a", "2026-02-10", "q1", 3.0),
            rated("R5", "r1", "a", "2026-02-10", "q1", 4.0),
            rated("R4", "r3", "a", "2026-02-10", "q2", 4.0),
            rated("R5", "r1", "a", "2026-02-10", "q2", 4.0),
            rated("R6", "r4", "b", "2026-02-10", "q1", 2.0),
            rated("R6", "r4", "b", "2026-02-10", "q2", 2.0),
            rated("R7", "r5", "b", "2026-02-10", "q1", 1.0),
            rated("R7", "r5", "b", "2026-02-10", "q2", 2.0),
        ];
        let responses = ResponseNumbers::of(&ratings);
        let rows = reliability(
            &ratings,
            &vec![true; ratings.len()],
            &responses,
            Window::ALL,
        );
        let row = |dept: &str, grain: Grain, day: &str| {
            let p = Period::containing(grain, day.parse().unwrap());
            rows.iter()
                .find(|r| r.dept_id == dept && r.period == p)
                .unwrap_or_else(|| panic!("no row for {dept} {}", p.label()))
        };
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-5);

        // February, department a: raters r1 (twice), r3 -> 2. q1 = 5, 3, 4:
        // variance 1, ratio 1 / 2 = 0.5; q2 = 4, 4, 4: ratio 0. r = 0.25,
        // rwg = 2 x 0.75 / (1.5 + 0.25) = 0.857143.
        let feb = row("a", Grain::Month, "2026-02-01");
        assert_eq!(feb.n_raters, 2);
        assert!(close(feb.rwg, 0.857143), "{:?}", feb.rwg);
        // The first quarter, from both months: raters r1, r2, r3 -> 3.
        // q1 = 4, 4, 5, 3, 4: variance 0.5, ratio 0.25; q2 = 4, 5, 4, 4, 4:
        // variance 0.2, ratio 0.1. r = 0.175, rwg = 1.65 / 1.825 = 0.904110.
        let q1 = row("a", Grain::Quarter, "2026-01-01");
        assert_eq!(q1.n_raters, 3);
        assert!(close(q1.rwg, 0.904110), "{:?}", q1.rwg);
        // ICC across departments in February, on response means (0-100):
        // a = R3 87.5, R4 62.5, R5 75 (R4 is one response although its
        // items are apart); b = R6 25, R7 12.5. Grand mean 52.5, group
        // means 75 and 18.75: SSB = 3 x 22.5^2 + 2 x 33.75^2 = 3796.875,
        // SSW = 312.5 + 78.125 = 390.625, MSW = 130.2083, k = 2.5.
        // ICC(1) = 3666.667 / (3796.875 + 1.5 x 130.2083) = 0.918459,
        // ICC(2) = 3666.667 / 3796.875 = 0.965706.
        let icc = row("*", Grain::Month, "2026-02-01");
        assert!(close(icc.icc1, 0.918459), "{:?}", icc.icc1);
        assert!(close(icc.icc2, 0.965706), "{:?}", icc.icc2);
        // January has one department: no ICC.
        assert_eq!(row("*", Grain::Month, "2026-01-01").icc1, None);
    }
}
