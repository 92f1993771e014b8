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
use crate::policy::RaterPolicy;
use crate::time::periods::{Grain, Period};

mod data;
pub use data::*;
mod fit;
pub use fit::*;
mod flags;
pub use flags::*;
mod reliability;
pub use reliability::*;

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

#[cfg(test)]
mod tests;
