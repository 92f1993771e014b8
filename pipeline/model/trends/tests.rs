use super::*;
use crate::policy::{load_text, PolicySource, DEFAULT_POLICY};

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

/// Expected values from pymannkendall 1.4.3, `original_test(x)`, whose
/// `slope` is Sen's slope over positions 0..n.
#[test]
fn mann_kendall_and_sen_match_pymannkendall() {
    // (series, S, var S, p, tau, Sen's slope)
    type Case<'a> = (&'a [f64], f64, f64, f64, f64, f64);
    let cases: [Case; 3] = [
        (
            &[4.3, 5.1, 4.9, 6.2, 6.0, 7.1, 6.8, 8.0, 7.7, 8.4],
            37.0,
            125.0,
            0.0012821837418053317,
            0.8222222222222222,
            0.4500000000000002,
        ),
        // With ties (three 2s, three 4s, two 3s, two 6s).
        (
            &[1.0, 2.0, 2.0, 3.0, 2.0, 4.0, 4.0, 4.0, 5.0, 3.0, 6.0, 6.0],
            48.0,
            203.33333333333334,
            0.0009805515398431108,
            0.7272727272727273,
            0.42857142857142855,
        ),
        (
            &[12.0, 11.5, 11.8, 10.9, 11.2, 10.1, 10.4, 9.8],
            -22.0,
            65.33333333333333,
            0.009374768459434968,
            -0.7857142857142857,
            -0.30714285714285744,
        ),
    ];
    for (x, s, var_s, p, tau, slope) in cases {
        let m = mann_kendall(x);
        assert_eq!(m.s, s);
        assert!(close(m.var_s, var_s, 1e-9), "{} vs {var_s}", m.var_s);
        assert!(close(m.p, p, 1e-6), "{} vs {p}", m.p);
        assert!(close(m.tau, tau, 1e-9), "{} vs {tau}", m.tau);
        let t: Vec<f64> = (0..x.len()).map(|i| i as f64).collect();
        assert!(close(sens_slope(&t, x).unwrap(), slope, 1e-9));
    }
}

#[test]
fn sens_slope_keeps_the_width_of_a_gap() {
    // Months 0, 1 and 3 (month 2 missing): pairwise slopes 1/1, 3/3,
    // 2/2 -> median 1. Treating the points as adjacent would give 1.5.
    assert_eq!(sens_slope(&[0.0, 1.0, 3.0], &[10.0, 11.0, 13.0]), Some(1.0));
}

#[test]
fn xmr_limits() {
    // Mean 11.6; moving ranges 2, 1, 2, 1 -> 1.5; 2.66 x 1.5 = 3.99.
    let l = xmr(&[10.0, 12.0, 11.0, 13.0, 12.0]).unwrap();
    assert!(close(l.center, 11.6, 1e-12) && close(l.mr_bar, 1.5, 1e-12));
    assert!(close(l.ucl, 15.59, 1e-12) && close(l.lcl, 7.61, 1e-12));
    let quiet = run_rules(&[10.0, 12.0, 11.0, 13.0, 12.0], &l);
    assert!(quiet.iter().all(|s| s.is_empty()));
}

fn fired(x: &[f64]) -> Vec<Vec<&'static str>> {
    run_rules(x, &xmr(x).unwrap())
}

#[test]
fn point_beyond_the_limits() {
    // Mean 14, moving ranges 0, 0, 0, 20 -> 5; UCL 14 + 13.3 = 27.3 < 30.
    let f = fired(&[10.0, 10.0, 10.0, 10.0, 30.0]);
    assert_eq!(f[4], vec!["beyond_limits"]);
    assert!(f[..4].iter().all(|s| s.is_empty()));
}

#[test]
fn seven_on_one_side() {
    // Mean (7 x 5 + 20) / 8 = 6.875: the first seven are below it, so
    // the rule fires at the seventh.
    let f = fired(&[5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 20.0]);
    assert!(f[6].contains(&"run_of_7_below"));
    assert!(f[..6].iter().all(|s| !s.contains(&"run_of_7_below")));
    // Six below (mean 50 / 7 = 7.14) is not enough.
    let f = fired(&[5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 20.0]);
    assert!(f.iter().all(|s| !s.contains(&"run_of_7_below")));
}

#[test]
fn two_of_three_beyond_two_sigma() {
    // Mean 1; moving ranges sum 9 over 9 -> 1; sigma 1 / 1.128 = 0.887;
    // two-sigma line 2.773, UCL 3.66: the last two 3s are beyond two
    // sigma but within the limits.
    let f = fired(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 3.0, 3.0]);
    assert_eq!(f[9], vec!["two_of_three_above"]);
    assert!(f[..9].iter().all(|s| s.is_empty()));
    // One 3 alone (mean 0.8, mR-bar 11/9, line 2.97) does not fire.
    let f = fired(&[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 3.0, 1.0]);
    assert!(f.iter().all(|s| !s.contains(&"two_of_three_above")));
}

fn policy() -> Policy {
    load_text(DEFAULT_POLICY.into(), PolicySource::Embedded)
        .unwrap()
        .policy
}

fn monthly(id: &str, dir: Direction, values: &[Option<f64>], last_status: &str) -> Series {
    let start = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap();
    let n = values.len();
    Series {
        dept_id: "d".into(),
        indicator_id: id.into(),
        grain: Grain::Month,
        direction: dir,
        points: values
            .iter()
            .enumerate()
            .map(|(i, v)| SeriesPoint {
                period: Period::containing(
                    Grain::Month,
                    crate::time::periods::add_months(start, i as i32),
                ),
                value: *v,
                is_partial: false,
                status: if i + 1 == n {
                    last_status.into()
                } else {
                    String::new()
                },
                n_raters: None,
            })
            .collect(),
    }
}

#[test]
fn direction_respects_lower_is_better_and_flags() {
    let p = policy();
    let falling: Vec<Option<f64>> = (0..12).map(|i| Some(20.0 - i as f64)).collect();
    // A falling complaint rate is an improvement.
    let (t, _) = analyse(
        &monthly("valid_complaint_rate", Direction::Lower, &falling, "met"),
        &p.trends,
    );
    assert_eq!(t.direction, "improving");
    assert_eq!(t.flags, vec!["continuous_improver"]);
    assert_eq!(t.sen_slope, Some(-1.0));
    // Falling satisfaction that still meets its target this month.
    let (t, _) = analyse(
        &monthly("satisfaction", Direction::Higher, &falling, "met"),
        &p.trends,
    );
    assert_eq!(t.direction, "declining");
    assert_eq!(t.flags, vec!["short_term_met_long_term_declining"]);
    // Three points: not enough for a trend, and it says why.
    let (t, _) = analyse(
        &monthly("satisfaction", Direction::Higher, &falling[..3], ""),
        &p.trends,
    );
    assert_eq!(
        (t.direction, t.reason.as_str()),
        ("no_trend", "3 point(s) in the window; at least 4 needed")
    );
    // Missing months are skipped, not zeros: 12 months, 2 empty.
    let mut gappy = falling.clone();
    gappy[3] = None;
    gappy[7] = None;
    let (t, _) = analyse(
        &monthly("satisfaction", Direction::Higher, &gappy, ""),
        &p.trends,
    );
    assert_eq!((t.n_points, t.sen_slope), (10, Some(-1.0)));
}

#[test]
fn improvement_in_each_of_the_last_periods_makes_an_improver() {
    let p = policy();
    // Flat noise, then three improvements in a row (70 -> 71 -> 72 -> 73).
    let v = [
        75.0, 70.0, 74.0, 71.0, 73.0, 70.0, 74.0, 70.0, 71.0, 72.0, 73.0,
    ];
    let values: Vec<Option<f64>> = v.iter().map(|x| Some(*x)).collect();
    let (t, _) = analyse(
        &monthly("satisfaction", Direction::Higher, &values, ""),
        &p.trends,
    );
    assert_eq!(t.direction, "no_trend");
    assert_eq!(t.flags, vec!["continuous_improver"]);
    assert_eq!(t.change_prev, Some(1.0));
    // Rolling 3-month mean (71 + 72 + 73) / 3 = 72.
    assert_eq!(t.rolling_mean, Some(72.0));
}

fn trend(id: &str, status: &str, direction: &'static str, slope: f64, mean: f64) -> Trend {
    Trend {
        dept_id: "d".into(),
        indicator_id: id.into(),
        grain: Grain::Month,
        latest: Some(Period::containing(
            Grain::Month,
            NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
        )),
        value: Some(mean),
        status: status.into(),
        change_prev: None,
        change_yoy: None,
        rolling_mean: None,
        rolling_mean_long: None,
        n_points: 12,
        window_mean: Some(mean),
        sen_slope: Some(slope),
        mk: None,
        direction,
        reason: String::new(),
        signals: vec![],
        flags: vec![],
        ptd: None,
        n_raters: None,
    }
}

fn checks(trends: &[Trend]) -> Vec<&'static str> {
    cross_checks(trends, &policy())
        .iter()
        .map(|f| f.check_id)
        .collect()
}

#[test]
fn satisfaction_up_while_complaints_do_not_fall() {
    let sat = trend("satisfaction", "met", "no_trend", 0.1, 92.0);
    // Complaints flat at 12 per 1,000: fires.
    assert_eq!(
        checks(&[
            sat.clone(),
            trend("valid_complaint_rate", "missed", "no_trend", 0.0, 12.0)
        ]),
        vec!["satisfaction_up_complaints_not_down"]
    );
    // Complaints falling: silent.
    assert!(checks(&[
        sat.clone(),
        trend("valid_complaint_rate", "missed", "improving", -0.8, 12.0)
    ])
    .is_empty());
    // No complaints at all: nothing to fall, silent.
    assert!(checks(&[
        sat,
        trend("valid_complaint_rate", "met", "no_trend", 0.0, 0.0)
    ])
    .is_empty());
    // Satisfaction neither met nor rising: silent.
    let low = trend("satisfaction", "missed", "no_trend", 0.0, 70.0);
    assert!(checks(&[
        low,
        trend("valid_complaint_rate", "missed", "no_trend", 0.5, 12.0)
    ])
    .is_empty());
}

#[test]
fn sharp_rise_on_few_raters() {
    let mut sat = trend("satisfaction", "missed", "no_trend", 0.0, 80.0);
    sat.change_prev = Some(12.0);
    sat.n_raters = Some(4);
    assert_eq!(checks(&[sat.clone()]), vec!["sharp_rise_few_raters"]);
    sat.n_raters = Some(40); // many raters: silent
    assert!(checks(&[sat.clone()]).is_empty());
    sat.n_raters = Some(4);
    sat.change_prev = Some(5.0); // small rise: silent
    assert!(checks(&[sat]).is_empty());
}

#[test]
fn good_satisfaction_with_poor_timeliness() {
    let sat = trend("satisfaction", "met", "no_trend", 0.0, 92.0);
    assert_eq!(
        checks(&[
            sat.clone(),
            trend("on_time_resolution_rate", "missed", "no_trend", 0.0, 60.0)
        ]),
        vec!["satisfaction_high_timeliness_poor"]
    );
    assert!(checks(&[
        sat,
        trend("on_time_resolution_rate", "near", "no_trend", 0.0, 92.0)
    ])
    .is_empty());
}

/// 500 departments x 30 indicators x 36 months. Run with `cargo test
/// --lib trends_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn trends_cost() {
    let p = policy();
    let mut all = Vec::new();
    for d in 0..500 {
        for i in 0..30 {
            let values: Vec<Option<f64>> = (0..36)
                .map(|m| Some(((d * 31 + i * 7 + m * 13) % 97) as f64))
                .collect();
            let mut s = monthly(&format!("ind{i}"), Direction::Higher, &values, "met");
            s.dept_id = format!("d{d}");
            all.push(s);
        }
    }
    let t = std::time::Instant::now();
    let (trends, rows) = compute(&all, &p);
    println!(
        "{} series, {} points: {:.3} s",
        trends.len(),
        rows.len(),
        t.elapsed().as_secs_f64()
    );
}
