//! Stage: escalate. Which departments are to be called in (约谈), by the
//! rules of the policy's `[escalation]`: the `escalations` mart
//! (docs/contract.md#escalation).
//!
//! * `lowest_grade_run`: at least `lowest_grade_months` complete months
//!   in a row at the lowest grade; one row per such run, at its last
//!   month.
//! * `short_term_met_long_term_declining`: the trend flag of that name on
//!   an indicator (or the total) at the latest complete period of a grain.
//! * `overdue_followups`: at least `overdue_followups` bad reviews and
//!   complaints with a rectification or call-back overdue at as-of.
//! * `overdue_plans`: at least `overdue_plans` improvement plans past their
//!   due date and not done at as-of, and not closed by a verdict.

use std::collections::BTreeMap;

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::DataFrame;

use crate::frame::{self, Builder};
use crate::policy::EscalationPolicy;
use crate::time::periods::{Grain, Period};

/// One escalation: the rule, where it applies, and its evidence (a count
/// and the periods or indicator it is about).
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    pub dept_id: String,
    pub rule: &'static str,
    pub grain: String,
    pub period: String,
    pub count: i64,
    pub detail: String,
}

/// The escalations from the published `department_scores`, the `trends`,
/// `followup_status` and `plan_status` marts; `lowest_grade` is the
/// policy's lowest grade id. The rules are those `rules_on` gives for the
/// first day of a run's last month, and for `as_of` for the others.
pub fn escalations<'p>(
    dept_scores: &DataFrame,
    trends: &DataFrame,
    followups: &DataFrame,
    plans: &DataFrame,
    rules_on: &dyn Fn(NaiveDate) -> &'p EscalationPolicy,
    lowest_grade: &str,
    as_of: NaiveDate,
) -> Result<Vec<Escalation>> {
    let mut out = Vec::new();
    let policy = rules_on(as_of);
    let as_of_month = Period::containing(Grain::Month, as_of).label();
    let as_of_month = as_of_month.as_str();
    {
        let (dept, grain) = (
            frame::strs(dept_scores, "dept_id")?,
            frame::strs(dept_scores, "grain")?,
        );
        let (start, partial, grade) = (
            frame::dates(dept_scores, "period_start")?,
            frame::bools(dept_scores, "is_partial")?,
            frame::strs(dept_scores, "grade")?,
        );
        // Complete months by department, in order.
        let mut months: BTreeMap<&str, Vec<(Period, bool)>> = BTreeMap::new();
        for i in 0..dept_scores.height() {
            if grain[i].as_deref() != Some("month") || partial[i] != Some(false) {
                continue;
            }
            let (Some(d), Some(start)) = (dept[i].as_deref(), start[i]) else {
                continue;
            };
            let lowest = grade[i].as_deref() == Some(lowest_grade);
            months
                .entry(d)
                .or_default()
                .push((Period::containing(Grain::Month, start), lowest));
        }
        for (d, mut ms) in months {
            ms.sort_by_key(|(p, _)| p.start);
            // A run is broken by a month at another grade or a month
            // without a score.
            let mut run: Vec<Period> = Vec::new();
            let mut flush = |run: &mut Vec<Period>| {
                if let (Some(first), Some(last)) = (run.first(), run.last()) {
                    let months = rules_on(last.start).lowest_grade_months as usize;
                    if months > 0 && run.len() >= months {
                        out.push(Escalation {
                            dept_id: d.to_string(),
                            rule: "lowest_grade_run",
                            grain: "month".into(),
                            period: last.label(),
                            count: run.len() as i64,
                            detail: format!("{}..{}", first.label(), last.label()),
                        });
                    }
                }
                run.clear();
            };
            for (p, lowest) in ms {
                if !lowest || run.last().is_some_and(|last| last.next() != p) {
                    flush(&mut run);
                }
                if lowest {
                    run.push(p);
                }
            }
            flush(&mut run);
        }
    }
    if policy.short_term_met_long_term_declining {
        let (dept, ind, grain) = (
            frame::strs(trends, "dept_id")?,
            frame::strs(trends, "indicator_id")?,
            frame::strs(trends, "grain")?,
        );
        let (latest, flags) = (
            frame::strs(trends, "latest_period")?,
            frame::strs(trends, "flags")?,
        );
        for i in 0..trends.height() {
            let flagged = flags[i].as_deref().is_some_and(|f| {
                f.split(',')
                    .any(|f| f == "short_term_met_long_term_declining")
            });
            if let (true, Some(d), Some(ind), Some(g), Some(p)) =
                (flagged, &dept[i], &ind[i], &grain[i], &latest[i])
            {
                out.push(Escalation {
                    dept_id: d.clone(),
                    rule: "short_term_met_long_term_declining",
                    grain: g.clone(),
                    period: p.clone(),
                    count: 1,
                    detail: ind.clone(),
                });
            }
        }
    }
    if policy.overdue_followups > 0 {
        let dept = frame::strs(followups, "dept_id")?;
        let (cb, rect) = (
            frame::strs(followups, "call_back_status")?,
            frame::strs(followups, "rectify_status")?,
        );
        let mut overdue: BTreeMap<&str, i64> = BTreeMap::new();
        for i in 0..followups.height() {
            let late = [&cb[i], &rect[i]]
                .iter()
                .any(|s| s.as_deref() == Some("overdue"));
            if let (true, Some(d)) = (late, dept[i].as_deref()) {
                *overdue.entry(d).or_default() += 1;
            }
        }
        overdue_at_as_of(
            &mut out,
            overdue,
            policy.overdue_followups,
            "overdue_followups",
            as_of_month,
        );
    }
    if policy.overdue_plans > 0 {
        let dept = frame::strs(plans, "dept_id")?;
        let completion = frame::strs(plans, "completion")?;
        let carried = frame::bools(plans, "carried")?;
        let mut overdue: BTreeMap<&str, i64> = BTreeMap::new();
        for i in 0..plans.height() {
            let still = carried[i] == Some(true);
            if let (Some("overdue"), true, Some(d)) =
                (completion[i].as_deref(), still, dept[i].as_deref())
            {
                *overdue.entry(d).or_default() += 1;
            }
        }
        overdue_at_as_of(
            &mut out,
            overdue,
            policy.overdue_plans,
            "overdue_plans",
            as_of_month,
        );
    }
    out.sort_by(|a, b| {
        (&a.dept_id, a.rule, &a.grain, &a.period, &a.detail)
            .cmp(&(&b.dept_id, b.rule, &b.grain, &b.period, &b.detail))
    });
    Ok(out)
}

/// An escalation under `rule` for each department with at least `threshold`
/// items overdue at as-of (`overdue`: department -> items).
fn overdue_at_as_of(
    out: &mut Vec<Escalation>,
    overdue: BTreeMap<&str, i64>,
    threshold: u32,
    rule: &'static str,
    as_of_month: &str,
) {
    for (d, n) in overdue {
        if n >= threshold as i64 {
            out.push(Escalation {
                dept_id: d.to_string(),
                rule,
                grain: "month".into(),
                period: as_of_month.to_string(),
                count: n,
                detail: String::new(),
            });
        }
    }
}

/// The `escalations` mart.
pub fn frame(rows: &[Escalation]) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", rows.iter().map(|r| Some(r.dept_id.as_str())))
        .str("rule", rows.iter().map(|r| Some(r.rule)))
        .str("grain", rows.iter().map(|r| Some(r.grain.as_str())))
        .str("period", rows.iter().map(|r| Some(r.period.as_str())))
        .i64("count", rows.iter().map(|r| Some(r.count)))
        .str("detail", rows.iter().map(|r| Some(r.detail.as_str())))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores(rows: &[(&str, &str, bool, &str)]) -> DataFrame {
        let start = |label: &str| {
            chrono::NaiveDate::parse_from_str(&format!("{label}-01"), "%Y-%m-%d").unwrap()
        };
        Builder::new()
            .str("dept_id", rows.iter().map(|r| Some(r.0)))
            .str("grain", rows.iter().map(|_| Some("month")))
            .date("period_start", rows.iter().map(|r| Some(start(r.1))))
            .bool("is_partial", rows.iter().map(|r| Some(r.2)))
            .str("grade", rows.iter().map(|r| Some(r.3)))
            .build()
            .unwrap()
    }

    #[test]
    fn each_rule_by_hand() {
        // a: D in January and February (a run of 2), C in March, D from
        // April to June (a run of 3), D in July but July is partial. b: D
        // in January and March, with no score in February: no run.
        let dept_scores = scores(&[
            ("a", "2026-01", false, "D"),
            ("a", "2026-02", false, "D"),
            ("a", "2026-03", false, "C"),
            ("a", "2026-04", false, "D"),
            ("a", "2026-05", false, "D"),
            ("a", "2026-06", false, "D"),
            ("a", "2026-07", true, "D"),
            ("b", "2026-01", false, "D"),
            ("b", "2026-03", false, "D"),
        ]);
        let trends = Builder::new()
            .str("dept_id", [Some("b"), Some("b")])
            .str("indicator_id", [Some("satisfaction"), Some("total_score")])
            .str("grain", [Some("quarter"), Some("quarter")])
            .str("latest_period", [Some("2026-Q2"), Some("2026-Q2")])
            .str(
                "flags",
                [
                    Some("continuous_improver,short_term_met_long_term_declining"),
                    None,
                ],
            )
            .build()
            .unwrap();
        // a: five subjects overdue (one of them on both counts); b: four.
        let rows = [
            ("a", "overdue", "overdue"),
            ("a", "not_required", "overdue"),
            ("a", "on_time", "overdue"),
            ("a", "overdue", "late"),
            ("a", "open", "overdue"),
            ("a", "on_time", "on_time"),
            ("b", "overdue", "open"),
            ("b", "overdue", "open"),
            ("b", "not_required", "overdue"),
            ("b", "not_required", "overdue"),
        ];
        let followups = Builder::new()
            .str("dept_id", rows.iter().map(|r| Some(r.0)))
            .str("call_back_status", rows.iter().map(|r| Some(r.1)))
            .str("rectify_status", rows.iter().map(|r| Some(r.2)))
            .build()
            .unwrap();
        // b: two plans overdue and still carried (the default's
        // threshold), one done late; a: two overdue, but one closed by a
        // verdict, and one open.
        let plan_rows = [
            ("a", "overdue", true),
            ("a", "overdue", false),
            ("a", "open", true),
            ("b", "overdue", true),
            ("b", "late", true),
            ("b", "overdue", true),
        ];
        let plans = Builder::new()
            .str("dept_id", plan_rows.iter().map(|r| Some(r.0)))
            .str("completion", plan_rows.iter().map(|r| Some(r.1)))
            .bool("carried", plan_rows.iter().map(|r| Some(r.2)))
            .build()
            .unwrap();
        let policy = EscalationPolicy::default();
        let july = NaiveDate::from_ymd_opt(2026, 7, 15).unwrap();
        let got = escalations(
            &dept_scores,
            &trends,
            &followups,
            &plans,
            &|_| &policy,
            "D",
            july,
        )
        .unwrap();
        let got: Vec<(&str, &str, &str, i64, &str)> = got
            .iter()
            .map(|e| {
                (
                    e.dept_id.as_str(),
                    e.rule,
                    e.period.as_str(),
                    e.count,
                    e.detail.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a", "lowest_grade_run", "2026-02", 2, "2026-01..2026-02"),
                ("a", "lowest_grade_run", "2026-06", 3, "2026-04..2026-06"),
                ("a", "overdue_followups", "2026-07", 5, ""),
                ("b", "overdue_plans", "2026-07", 2, ""),
                (
                    "b",
                    "short_term_met_long_term_declining",
                    "2026-Q2",
                    1,
                    "satisfaction"
                ),
            ]
        );
        // Rules off: nothing.
        let off = EscalationPolicy {
            lowest_grade_months: 0,
            short_term_met_long_term_declining: false,
            overdue_followups: 0,
            overdue_plans: 0,
        };
        assert!(escalations(
            &dept_scores,
            &trends,
            &followups,
            &plans,
            &|_| &off,
            "D",
            july
        )
        .unwrap()
        .is_empty());

        // Rules that change on 1 May: four months in a row from then on.
        // a's run of two ending in February still counts; its run of three
        // ending in June no longer does.
        let stricter = EscalationPolicy {
            lowest_grade_months: 4,
            ..EscalationPolicy::default()
        };
        let may = NaiveDate::from_ymd_opt(2026, 5, 1).unwrap();
        let dated = |day: NaiveDate| if day < may { &policy } else { &stricter };
        let runs: Vec<String> =
            escalations(&dept_scores, &trends, &followups, &plans, &dated, "D", july)
                .unwrap()
                .into_iter()
                .filter(|e| e.rule == "lowest_grade_run")
                .map(|e| format!("{} {}", e.dept_id, e.detail))
                .collect();
        assert_eq!(runs, ["a 2026-01..2026-02"]);
    }
}
