//! The additive main-effects model (department + rater + item) fitted by
//! backfitting, with shrunk rater effects, and its connected groups.

use super::*;

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

pub(super) const TOLERANCE: f64 = 1e-8;
pub(super) const MAX_ITERATIONS: usize = 1000;

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
pub(super) fn accumulate(sums: &mut [f64], obs: &[Obs], f: impl Fn(&Obs) -> (usize, f64)) {
    sums.iter_mut().for_each(|s| *s = 0.0);
    for o in obs {
        let (k, v) = f(o);
        sums[k] += v;
    }
}

/// Sets each observed effect to its sum over (count + shrinkage); returns
/// the largest change, for the convergence test.
pub(super) fn update(effects: &mut [f64], sums: &[f64], counts: &[usize], shrinkage: f64) -> f64 {
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
pub(super) fn centre(effects: &mut [f64], counts: &[usize], weight: impl Fn(usize) -> f64) -> f64 {
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
