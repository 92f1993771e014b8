//! 服务之星: each month, the best eligible staff per department or of the
//! whole organisation.
//!
//! Eligible: at least `stars.min_ratings` ratings in the month, a composite
//! of at least `stars.min_composite`, and no
//! valid complaint, confirmed incident or bad review not rectified on time
//! in the month (in any department the person was in). Ranked by
//! [`by_merit`]: the shrunk composite, ties broken by more ratings, then
//! fewer bad reviews, then staff id.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{by_merit, StaffMeasure};
use crate::policy::StaffPolicy;
use crate::time::periods::{Grain, Period};

/// One 服务之星.
#[derive(Debug, Clone, PartialEq)]
pub struct Star {
    pub period: Period,
    /// `department` or `organisation`.
    pub scope: &'static str,
    pub dept_id: String,
    pub rank: usize,
    pub staff_id: String,
    pub composite: f64,
    pub ratings: usize,
    pub fair_mean: Option<f64>,
    pub good_reviews: usize,
    pub bad_reviews: usize,
    pub cases: usize,
    /// Months in a row the person has been a star, this one included.
    pub run_months: usize,
    pub reason_zh: String,
    pub reason_en: String,
}

/// Marks the month rows of `measures` eligible or not, and picks the stars
/// of every month, in month, department and rank order.
pub fn stars(measures: &mut [StaffMeasure], policy: &StaffPolicy) -> Vec<Star> {
    let rule = &policy.stars;
    let scope: &'static str = match rule.per.as_str() {
        "organisation" => "organisation",
        _ => "department",
    };
    // What rules a person out in a month, over all their departments.
    let mut barred: HashMap<(Period, &str), BTreeSet<&'static str>> = HashMap::new();
    for m in measures.iter().filter(|m| m.period.grain == Grain::Month) {
        let e = barred.entry((m.period, m.staff_id.as_str())).or_default();
        if m.valid_complaints > 0 {
            e.insert("valid_complaint");
        }
        if m.confirmed_incidents > 0 {
            e.insert("confirmed_incident");
        }
        if m.unrectified_bad_reviews > 0 {
            e.insert("unrectified_bad_review");
        }
    }
    // Each month row's reasons, then the eligible rows by month and scope.
    let why: Vec<Option<Vec<&str>>> = measures
        .iter()
        .map(|m| {
            (m.period.grain == Grain::Month).then(|| {
                let mut why: Vec<&str> = Vec::new();
                if m.ratings < rule.min_ratings || m.composite.is_none() {
                    why.push("few_ratings");
                } else if m.composite < Some(rule.min_composite) {
                    why.push("low_composite");
                }
                why.extend(barred[&(m.period, m.staff_id.as_str())].iter().copied());
                why
            })
        })
        .collect();
    drop(barred);
    let mut candidates: BTreeMap<(Period, String), Vec<usize>> = BTreeMap::new();
    for (i, (m, why)) in measures.iter_mut().zip(why).enumerate() {
        let Some(why) = why else { continue };
        m.star_eligible = Some(why.is_empty());
        m.not_eligible_because = (!why.is_empty()).then(|| why.join(","));
        if why.is_empty() {
            let key = match scope {
                "organisation" => String::new(),
                _ => m.dept_id.clone(),
            };
            candidates.entry((m.period, key)).or_default().push(i);
        }
    }
    let mut out: Vec<Star> = Vec::new();
    // Months in order, so a run can look at the month before.
    let mut runs: HashMap<(Period, String), usize> = HashMap::new();
    for ((period, _), mut rows) in candidates {
        rows.sort_by(|&a, &b| by_merit(&measures[a], &measures[b]));
        for (k, &i) in rows.iter().take(rule.top).enumerate() {
            let m = &measures[i];
            let before = Period::containing(Grain::Month, period.start - chrono::Duration::days(1));
            let run = 1 + runs
                .get(&(before, m.staff_id.clone()))
                .copied()
                .unwrap_or(0);
            runs.insert((period, m.staff_id.clone()), run);
            let composite = m.composite.expect("eligible staff have a composite");
            out.push(Star {
                period,
                scope,
                dept_id: m.dept_id.clone(),
                rank: k + 1,
                staff_id: m.staff_id.clone(),
                composite,
                ratings: m.ratings,
                fair_mean: m.fair_mean,
                good_reviews: m.good_reviews,
                bad_reviews: m.bad_reviews,
                cases: m.cases,
                run_months: run,
                reason_zh: reason_zh(m, run),
                reason_en: reason_en(m, run),
            });
        }
    }
    out
}

/// 本月评价 48 次，公平均分 93.5，零差评，办结 120 件，综合得分 91.2
fn reason_zh(m: &StaffMeasure, run: usize) -> String {
    let mut s = format!("本月评价 {} 次", m.ratings);
    if let Some(f) = m.fair_mean {
        s.push_str(&format!("，公平均分 {f:.1}"));
    }
    match m.bad_reviews {
        0 => s.push_str("，零差评"),
        n => s.push_str(&format!("，差评 {n} 次均按时整改")),
    }
    if m.cases > 0 {
        s.push_str(&format!("，办结 {} 件", m.cases));
    }
    s.push_str(&format!(
        "，综合得分 {:.1}",
        m.composite.unwrap_or_default()
    ));
    if run > 1 {
        s.push_str(&format!("，连续 {run} 个月当选"));
    }
    s
}

/// 48 ratings this month, fair mean 93.5, no bad reviews, 120 cases
/// resolved, composite 91.2
fn reason_en(m: &StaffMeasure, run: usize) -> String {
    let mut s = format!(
        "{} rating{} this month",
        m.ratings,
        if m.ratings == 1 { "" } else { "s" }
    );
    if let Some(f) = m.fair_mean {
        s.push_str(&format!(", fair mean {f:.1}"));
    }
    match m.bad_reviews {
        0 => s.push_str(", no bad reviews"),
        1 => s.push_str(", 1 bad review rectified on time"),
        n => s.push_str(&format!(", {n} bad reviews all rectified on time")),
    }
    if m.cases > 0 {
        s.push_str(&format!(
            ", {} case{} resolved",
            m.cases,
            if m.cases == 1 { "" } else { "s" }
        ));
    }
    s.push_str(&format!(
        ", composite {:.1}",
        m.composite.unwrap_or_default()
    ));
    if run > 1 {
        s.push_str(&format!(", a star {run} months running"));
    }
    s
}
