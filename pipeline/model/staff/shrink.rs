//! Shrinking staff means toward their department's mean.
//!
//! The estimator is the empirical-Bayes (best linear unbiased) predictor
//! of a one-way random-effects model with staff nested in departments:
//!
//! ```text
//! y_ij = m_d + u_i + e_ij,   u_i ~ (0, tau2),   e_ij ~ (0, sigma2)
//! shrunk_i = m_d + B_i (mean_i - m_d),   B_i = tau2 / (tau2 + sigma2 / n_i)
//! ```
//!
//! `m_d` is the department's mean over all its units; `sigma2` and `tau2`
//! are estimated once per period over the whole organisation by the
//! analysis of variance (Searle, Casella and McCulloch, *Variance
//! Components*, 1992, section 3.6, unbalanced data): `sigma2` is the
//! within-staff mean square, `tau2 = (MSB - sigma2) / n0` with `MSB` the
//! between-staff-within-department mean square and
//! `n0 = (N - sum_d sum_{i in d} n_i^2 / N_d) / (I - D)`, floored at 0.
//! It weighs a person's own mean by how much their units can say: with
//! three ratings and the usual spread, `B` is well under one half, so three
//! lucky ratings do not top the list; with hundreds, `B` is close to one.
//! Chosen over a fixed pseudo-count because its strength follows the data
//! of each period and part (ratings on one scale, cases on another), and
//! over a beta-binomial fit because the same formula serves the 0-100
//! means and the 0/100 rates.

use std::collections::BTreeMap;

use super::Moments;

/// The variance components of one part in one period.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Components {
    pub sigma2: f64,
    pub tau2: f64,
}

/// Per department, in order (so that sums are the same on every run): its
/// units, their sum, and the sum of its staff's squared unit counts.
type ByDept<D> = BTreeMap<D, (f64, f64, f64)>;

fn by_dept<D: Ord + Copy>(depts: &[D], groups: &[Moments]) -> ByDept<D> {
    let mut dept = ByDept::new();
    for (d, g) in depts.iter().zip(groups).filter(|(_, g)| g.n > 0.0) {
        let e = dept.entry(*d).or_default();
        e.0 += g.n;
        e.1 += g.sum;
        e.2 += g.n * g.n;
    }
    dept
}

/// Estimates the components from each staff member's moments and their
/// departments; `None` when there are too few units or staff to tell.
pub fn components<D: Ord + Copy>(depts: &[D], groups: &[Moments]) -> Option<Components> {
    components_by(depts, groups, &by_dept(depts, groups))
}

fn components_by<D: Ord + Copy>(
    depts: &[D],
    groups: &[Moments],
    dept: &ByDept<D>,
) -> Option<Components> {
    let (mut n_total, mut staff, mut ssw, mut ssb) = (0.0, 0.0, 0.0, 0.0);
    for (d, g) in depts.iter().zip(groups).filter(|(_, g)| g.n > 0.0) {
        let (nd, sd, _) = dept[d];
        n_total += g.n;
        staff += 1.0;
        ssw += (g.sum_sq - g.sum * g.sum / g.n).max(0.0);
        ssb += g.n * (g.sum / g.n - sd / nd).powi(2);
    }
    let df_within = n_total - staff;
    let df_between = staff - dept.len() as f64;
    if df_within <= 0.0 || df_between <= 0.0 {
        return None;
    }
    let sigma2 = ssw / df_within;
    let n0 = (n_total - dept.values().map(|(nd, _, sq)| sq / nd).sum::<f64>()) / df_between;
    let tau2 = ((ssb / df_between - sigma2) / n0).max(0.0);
    Some(Components { sigma2, tau2 })
}

/// Each staff member's mean shrunk toward their department's mean
/// (`None` for one without units). Where the components cannot be
/// estimated the means are left as they are.
pub fn shrink<D: Ord + Copy>(depts: &[D], groups: &[Moments]) -> Vec<Option<f64>> {
    let dept = by_dept(depts, groups);
    let comps = components_by(depts, groups, &dept);
    depts
        .iter()
        .zip(groups)
        .map(|(d, g)| {
            let mean = g.mean()?;
            let Some(c) = comps else {
                return Some(mean);
            };
            let (nd, sd, _) = dept[d];
            let m = sd / nd;
            let b = if c.sigma2 == 0.0 {
                1.0
            } else {
                c.tau2 / (c.tau2 + c.sigma2 / g.n)
            };
            Some(m + b * (mean - m))
        })
        .collect()
}
