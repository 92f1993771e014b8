use super::*;
use crate::model::measure::{parse, Value};
use crate::policy::{load_text, PolicySource};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn target(rule: &str, target: f64, weight: f64) -> IndicatorTarget {
    IndicatorTarget {
        target,
        weight,
        rule: rule.into(),
        per: None,
        deduct: None,
        stepped: false,
        bands: None,
        levels: None,
    }
}

#[test]
fn linear_rule_both_directions() {
    // Satisfaction: 2 points per point below 90, weight 20.
    let mut t = target("linear", 90.0, 20.0);
    t.per = Some(1.0);
    t.deduct = Some(2.0);
    let h = Direction::Higher;
    assert_eq!(apply_rule(90.0, &t, h), (20.0, 0.0, 0.0)); // at target
    assert_eq!(apply_rule(95.0, &t, h), (20.0, 0.0, 0.0)); // above
    assert_eq!(apply_rule(87.5, &t, h), (15.0, 2.5, 5.0)); // 2.5 short x 2 = 5
    assert_eq!(apply_rule(70.0, &t, h), (0.0, 20.0, 20.0)); // 40 points off, floored at 0
    t.stepped = true;
    assert_eq!(apply_rule(87.5, &t, h).0, 16.0); // whole steps only: 2 x 2 = 4
                                                 // Bad-review rate: lower is better, 2 points per point above 2, weight 8.
    let mut t = target("linear", 2.0, 8.0);
    t.per = Some(1.0);
    t.deduct = Some(2.0);
    let l = Direction::Lower;
    assert_eq!(apply_rule(2.0, &t, l), (8.0, 0.0, 0.0));
    assert_eq!(apply_rule(1.0, &t, l), (8.0, 0.0, 0.0));
    assert_eq!(apply_rule(3.5, &t, l), (5.0, 1.5, 3.0)); // 1.5 x 2 = 3
                                                         // Timeliness: 1 point per 5 points below 95, weight 8: 85 -> 2 steps.
    let mut t = target("linear", 95.0, 8.0);
    t.per = Some(5.0);
    t.deduct = Some(1.0);
    assert_eq!(apply_rule(85.0, &t, h), (6.0, 10.0, 2.0));
}

#[test]
fn ratio_rule_both_directions() {
    let t = target("ratio", 1.7, 5.0);
    // 0.85 / 1.7 = half the weight; 3.4 is capped at the weight.
    assert_eq!(apply_rule(0.85, &t, Direction::Higher).0, 2.5);
    assert_eq!(apply_rule(1.7, &t, Direction::Higher).0, 5.0);
    assert_eq!(apply_rule(3.4, &t, Direction::Higher).0, 5.0);
    let t = target("ratio", 10.0, 6.0);
    // Lower is better: target / value = 10 / 20 = half of 6.
    assert_eq!(apply_rule(20.0, &t, Direction::Lower).0, 3.0);
    assert_eq!(apply_rule(10.0, &t, Direction::Lower).0, 6.0);
    assert_eq!(apply_rule(5.0, &t, Direction::Lower).0, 6.0);
    assert_eq!(apply_rule(0.0, &t, Direction::Lower).0, 6.0);
}

#[test]
fn bands_and_levels() {
    let mut t = target("bands", 95.0, 10.0);
    t.bands = Some(vec![[95.0, 10.0], [90.0, 7.0], [80.0, 4.0]]);
    let h = Direction::Higher;
    assert_eq!(apply_rule(96.0, &t, h).0, 10.0);
    assert_eq!(apply_rule(95.0, &t, h).0, 10.0);
    assert_eq!(apply_rule(92.0, &t, h).0, 7.0);
    assert_eq!(apply_rule(85.0, &t, h).0, 4.0);
    assert_eq!(apply_rule(70.0, &t, h).0, 0.0);
    // Visits per case, lower is better: at most 1 -> 7, at most 1.5 -> 4.
    let mut t = target("bands", 1.0, 7.0);
    t.bands = Some(vec![[1.0, 7.0], [1.5, 4.0]]);
    assert_eq!(apply_rule(0.9, &t, Direction::Lower).0, 7.0);
    assert_eq!(apply_rule(1.2, &t, Direction::Lower).0, 4.0);
    assert_eq!(apply_rule(2.0, &t, Direction::Lower).0, 0.0);
    // Behaviour-anchored levels 20 / 10 / 0 on a weight of 10.
    let mut t = target("levels", 20.0, 10.0);
    t.levels = Some(vec![[20.0, 10.0], [10.0, 5.0], [0.0, 0.0]]);
    assert_eq!(apply_rule(20.0, &t, h).0, 10.0);
    assert_eq!(apply_rule(15.0, &t, h).0, 5.0); // a year's mean between levels
    assert_eq!(apply_rule(10.0, &t, h).0, 5.0);
    assert_eq!(apply_rule(0.0, &t, h).0, 0.0);
}

/// A small policy: one type scored on satisfaction alone (weight 100),
/// target 90 in the 2025 version and 95 from 2026; a second type with
/// satisfaction 60 + on-time resolution 40.
const POLICY: &str = r#"
timezone = "Asia/Shanghai"
[raters]
estimation_grain = "quarter"
shrinkage = 5
handling = "keep"
anonymity_min = { client_internal = 3 }
flags = { severity_points = 10, severity_z = 2.5, favouritism_points = 15, favouritism_z = 3, favouritism_min_ratings = 3, straight_line_min_items = 5, outlier_z = 3.5, self_inflation_points = 15 }
[scoring]
missing = "rescale"
near_tolerance = 0.05
close_after_days = 15
[trends]
significance = 0.05
min_points = 4
window = { month = 12 }
rolling_short = { month = 3 }
rolling_long = { month = 12 }
improvement_run = 3
[cross_checks]
sharp_rise_points = 10
few_raters = 10
[complaints]
rectify_working_days = 10
[[grades]]
id = "excellent"
name_zh = "优秀"
name_en = "Excellent"
min_score = 90
bonus = 0.2
[[grades]]
id = "good"
name_zh = "良好"
name_en = "Good"
min_score = 80
bonus = 0.0
[[grades]]
id = "unqualified"
name_zh = "不合格"
name_en = "Unqualified"
min_score = 0
bonus = -0.15
[[bonus_phases]]
from = "2024-01-01"
linked_share = 0.0
[[bonus_phases]]
from = "2025-01-01"
linked_share = 0.1
[[bonus_phases]]
from = "2026-01-01"
linked_share = 0.3
[veto]
incident_kinds = ["major_service_incident"]
grade = "unqualified"
[department_types.t]
name_zh = "T"
name_en = "T"
serves = ["client_internal"]
[department_types.two]
name_zh = "Two"
name_en = "Two"
serves = ["client_internal"]
[[versions]]
id = "2025"
from = "2025-01-01"
categories = { result = 100, process = 0, development = 0 }
group_weights = { client = 50, superior = 25, peer = 15, self = 5, third_party = 5 }
[versions.indicators.t]
satisfaction = { target = 90, weight = 100, rule = "linear", per = 1, deduct = 2 }
[versions.indicators.two]
satisfaction = { target = 90, weight = 60, rule = "linear", per = 1, deduct = 2 }
on_time_resolution_rate = { target = 95, weight = 40, rule = "linear", per = 5, deduct = 1 }
[[versions]]
id = "2026"
from = "2026-01-01"
categories = { result = 100, process = 0, development = 0 }
group_weights = { client = 50, superior = 25, peer = 15, self = 5, third_party = 5 }
[versions.indicators.t]
satisfaction = { target = 95, weight = 100, rule = "linear", per = 1, deduct = 2 }
[versions.indicators.two]
satisfaction = { target = 90, weight = 60, rule = "linear", per = 1, deduct = 2 }
on_time_resolution_rate = { target = 95, weight = 40, rule = "linear", per = 5, deduct = 1 }
"#;

fn catalog() -> Vec<Indicator> {
    ["satisfaction", "on_time_resolution_rate"]
        .iter()
        .map(|id| {
            let text = std::fs::read_to_string(format!(
                "{}/queries/indicators/{id}.sql",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap();
            parse(id, &text, id).unwrap()
        })
        .collect()
}

fn month_value(id: &str, dept: &str, month: &str, value: f64) -> Value {
    Value {
        indicator_id: id.into(),
        dept_id: dept.into(),
        period: Period::containing(Grain::Month, d(&format!("{month}-01"))),
        value: Some(value),
        numerator: None,
        denominator: None,
        n: 50.0,
    }
}

fn month<'a>(rows: &'a [DeptScore], dept: &str, label: &str) -> &'a DeptScore {
    rows.iter()
        .find(|r| r.dept_id == dept && r.period.grain == Grain::Month && r.period.label() == label)
        .unwrap()
}

#[test]
fn veto_ties_bonus_phase_and_policy_version() {
    let policy = load_text(POLICY.into(), PolicySource::Embedded)
        .unwrap()
        .policy;
    let depts: Vec<(String, String)> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|d| (d.to_string(), "t".to_string()))
        .collect();
    let s = "satisfaction";
    let values = vec![
        month_value(s, "a", "2025-12", 95.0),
        month_value(s, "b", "2025-12", 88.0),
        month_value(s, "c", "2025-12", 88.0),
        month_value(s, "d", "2025-12", 95.0),
        month_value(s, "e", "2025-12", 85.0),
        month_value(s, "a", "2026-01", 95.0),
        month_value(s, "b", "2026-01", 88.0),
    ];
    let vetoes = vec![VetoIncident {
        dept_id: "d".into(),
        incident_id: "INC-1".into(),
        kind: "major_service_incident".into(),
        day: d("2025-12-24"),
    }];
    let (_, rows) = score(
        &depts,
        &values,
        &catalog(),
        &policy,
        &vetoes,
        d("2025-12-01"),
        d("2026-01-31"),
    )
    .unwrap();

    // December 2025, version 2025 (target 90, 2 points per point short):
    // a 95 -> 100; b, c 88 -> 100 - 2 x 2 = 96; e 85 -> 100 - 5 x 2 = 90;
    // d 95 -> 100 but vetoed: ranks last with the veto grade.
    let dec: Vec<(Option<f64>, Option<i64>, Option<&str>)> = ["a", "b", "c", "e", "d"]
        .iter()
        .map(|x| {
            let r = month(&rows, x, "2025-12");
            (r.total_score, r.rank_in_type, r.grade.as_deref())
        })
        .collect();
    assert_eq!(
        dec,
        vec![
            (Some(100.0), Some(1), Some("excellent")),
            (Some(96.0), Some(2), Some("excellent")),
            (Some(96.0), Some(2), Some("excellent")), // a tie shares the better rank
            (Some(90.0), Some(4), Some("excellent")),
            (Some(100.0), Some(5), Some("unqualified")),
        ]
    );
    let d_dec = month(&rows, "d", "2025-12");
    assert!(d_dec.veto);
    assert_eq!(
        d_dec.veto_reasons.as_deref(),
        Some("major_service_incident INC-1 (2025-12-24)")
    );
    // Phase 2025 links 10% of the bonus: excellent 1 + 0.1 x 0.20 = 1.02,
    // unqualified 1 + 0.1 x -0.15 = 0.985.
    assert_eq!(month(&rows, "a", "2025-12").bonus_coefficient, Some(1.02));
    assert_eq!(d_dec.bonus_coefficient, Some(0.985));
    assert_eq!(month(&rows, "a", "2025-12").policy_version, "2025");

    // January 2026, version 2026 (target 95): b 88 -> 100 - 7 x 2 = 86,
    // good; phase 2026 links 30%: good 1 + 0.3 x 0 = 1.
    let b_jan = month(&rows, "b", "2026-01");
    assert_eq!(b_jan.policy_version, "2026");
    assert_eq!(b_jan.total_score, Some(86.0));
    assert_eq!(b_jan.grade.as_deref(), Some("good"));
    assert_eq!(b_jan.bonus_coefficient, Some(1.0));
    // c has no January value: no total, no rank.
    let c_jan = month(&rows, "c", "2026-01");
    assert_eq!((c_jan.total_score, c_jan.rank_in_type), (None, None));
}

#[test]
fn missing_indicators_rescale_or_score_zero() {
    let policy = load_text(POLICY.into(), PolicySource::Embedded)
        .unwrap()
        .policy;
    let depts = vec![("f".to_string(), "two".to_string())];
    // Satisfaction 87 of target 90: 60 - 3 x 2 = 54 points of 60; no
    // on-time resolution data (weight 40).
    let values = vec![month_value("satisfaction", "f", "2025-12", 87.0)];
    let catalog = catalog();
    let run = |p: &Policy| {
        let (inds, rows) = score(
            &depts,
            &values,
            &catalog,
            p,
            &[],
            d("2025-12-01"),
            d("2025-12-31"),
        )
        .unwrap();
        let otr = inds
            .iter()
            .find(|i| i.indicator_id == "on_time_resolution_rate" && i.period.grain == Grain::Month)
            .map(|i| (i.status, i.points));
        (otr, month(&rows, "f", "2025-12").clone())
    };
    // Rescaled: 54 x 100 / 60 = 90.
    let (otr, r) = run(&policy);
    assert_eq!(r.total_score, Some(90.0));
    assert_eq!(r.coverage, 0.6);
    assert_eq!(otr, Some(("no_data", None)));
    // Zero: 54 + 0 = 54.
    let mut zero = policy.clone();
    zero.scoring.missing = "zero".into();
    assert_eq!(run(&zero).1.total_score, Some(54.0));
    // Below the minimum coverage nothing is scored.
    let mut strict = policy.clone();
    strict.scoring.min_coverage = 0.7;
    assert_eq!(run(&strict).1.total_score, None);
}

#[test]
fn status_met_near_missed_and_too_few_observations() {
    let policy = load_text(POLICY.into(), PolicySource::Embedded)
        .unwrap()
        .policy;
    let depts: Vec<(String, String)> = ["m", "n", "x", "s"]
        .iter()
        .map(|d| (d.to_string(), "t".into()))
        .collect();
    let mut values = vec![
        month_value("satisfaction", "m", "2025-12", 90.0),
        // 86 is 4 short of 90; 5% of 90 = 4.5 -> near. 85 -> missed.
        month_value("satisfaction", "n", "2025-12", 86.0),
        month_value("satisfaction", "x", "2025-12", 85.0),
        month_value("satisfaction", "s", "2025-12", 99.0),
    ];
    values[3].n = 4.0; // below satisfaction's min_n of 5
    let catalog = catalog();
    let (inds, _) = score(
        &depts,
        &values,
        &catalog,
        &policy,
        &[],
        d("2025-12-01"),
        d("2025-12-31"),
    )
    .unwrap();
    let status = |dept: &str| {
        inds.iter()
            .find(|i| i.dept_id == dept && i.period.grain == Grain::Month)
            .unwrap()
            .status
    };
    assert_eq!(
        [status("m"), status("n"), status("x"), status("s")],
        ["met", "near", "missed", "no_data"]
    );
}
