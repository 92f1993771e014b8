use super::*;
use crate::policy::StaffPolicy;
use std::collections::BTreeSet;

fn day(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

fn moments(ys: &[f64]) -> Moments {
    let mut m = Moments::default();
    for &y in ys {
        m.add(y);
    }
    m
}

fn repeat(pairs: &[(f64, usize)]) -> Vec<f64> {
    pairs
        .iter()
        .flat_map(|&(y, n)| std::iter::repeat_n(y, n))
        .collect()
}

/// Three people in one department, worked by hand:
///
/// ```text
/// A: 3 x 100                  n = 3,  mean 100,    SS within 0
/// B: 14 x 100, 2 x 75         n = 16, mean 96.875, SS 14(3.125^2) + 2(21.875^2) = 1093.75
/// C: 10 x 75, 10 x 100        n = 20, mean 87.5,   SS 20(12.5^2) = 3125
/// N = 39, sigma2 = 4218.75 / (39 - 3) = 117.1875
/// m = 3600 / 39 = 92.3077
/// SSB = 3(7.6923^2) + 16(4.5673^2) + 20(4.8077^2) = 177.51 + 333.77 + 462.28 = 973.56
/// MSB = 973.56 / 2 = 486.78;  n0 = (39 - (9 + 256 + 400) / 39) / 2 = 10.9744
/// tau2 = (486.78 - 117.1875) / 10.9744 = 33.678
/// B_A = 33.678 / (33.678 + 117.1875 / 3)  = 0.46299 -> 92.3077 + 0.46299 (7.6923)  = 95.869
/// B_B = 33.678 / (33.678 + 117.1875 / 16) = 0.82137 -> 92.3077 + 0.82137 (4.5673)  = 96.059
/// B_C = 33.678 / (33.678 + 117.1875 / 20) = 0.85181 -> 92.3077 - 0.85181 (4.8077)  = 88.212
/// ```
///
/// A's three perfect ratings top the observed means but not the shrunk ones.
#[test]
fn shrinkage_on_three_people() {
    let groups = [
        moments(&repeat(&[(100.0, 3)])),
        moments(&repeat(&[(100.0, 14), (75.0, 2)])),
        moments(&repeat(&[(75.0, 10), (100.0, 10)])),
    ];
    let depts = ["D", "D", "D"];
    let c = components(&depts, &groups).expect("enough to estimate");
    assert!((c.sigma2 - 117.1875).abs() < 1e-9, "{c:?}");
    assert!((c.tau2 - 33.678).abs() < 1e-3, "{c:?}");
    let s: Vec<f64> = shrink(&depts, &groups).into_iter().flatten().collect();
    for (got, want) in s.iter().zip([95.869, 96.059, 88.212]) {
        assert!((got - want).abs() < 1e-3, "{s:?}");
    }
    assert!(s[1] > s[0] && s[0] > s[2]);
}

/// Between-staff spread no larger than chance (tau2 floored at 0): every
/// mean goes to its department's mean; each department keeps its own.
#[test]
fn no_spread_beyond_chance_shrinks_to_department_means() {
    let groups = [
        moments(&[0.0, 100.0]),
        moments(&[100.0, 0.0]),
        moments(&[50.0, 50.0]),
        moments(&[50.0, 50.0]),
    ];
    // D1: A and B both mean 50; D2: C and D both mean 50 but no spread
    // inside: SSB = 0, so tau2 = 0.
    let depts = ["D1", "D1", "D2", "D2"];
    let s: Vec<f64> = shrink(&depts, &groups).into_iter().flatten().collect();
    assert_eq!(s, vec![50.0, 50.0, 50.0, 50.0]);
    // One person per department: nothing to estimate from, means kept.
    let one = [moments(&[80.0, 90.0]), moments(&[40.0])];
    assert_eq!(shrink(&["D1", "D2"], &one), vec![Some(85.0), Some(40.0)]);
}

fn member(id: &str, dept: &str, from: Option<&str>, to: Option<&str>) -> Member {
    Member {
        staff_id: id.into(),
        name: format!("name of {id}"),
        name_en: None,
        dept_id: Some(dept.into()),
        role: "staff".into(),
        from: from.map(day),
        to: to.map(day),
    }
}

fn rating(names: &mut Names, staff: &str, dept: &str, on: &str, score: f64) -> StaffFact {
    StaffFact {
        staff: names.key(staff),
        dept: names.key(dept),
        day: day(on),
        fact: Fact::Rating {
            score,
            fair: Some(score),
            good: Some(score >= 75.0),
            bad: score <= 25.0,
            unrectified: false,
        },
    }
}

/// X moves from D1 to D2 on 16 March: a rating on the 10th counts for D1,
/// one on the 20th for D2; March (and the quarter, and the year) has a row
/// in each department, with one rating each.
#[test]
fn transfer_mid_month() {
    let roster = Roster::new(vec![
        member("X", "D1", None, Some("2026-03-15")),
        member("X", "D2", Some("2026-03-16"), None),
    ]);
    assert_eq!(
        roster.place("X", "D1", day("2026-03-15")),
        (Some("D1"), None)
    );
    assert_eq!(
        roster.place("X", "D1", day("2026-03-16")),
        (Some("D2"), Some("other_department"))
    );
    assert_eq!(
        roster.place("Y", "D1", day("2026-03-16")),
        (None, Some("unknown_staff"))
    );
    let early = Roster::new(vec![member("Z", "D1", Some("2026-04-01"), None)]);
    assert_eq!(
        early.place("Z", "D1", day("2026-03-31")),
        (None, Some("not_in_force"))
    );

    let mut names = Names::default();
    let facts: Vec<StaffFact> = [("2026-03-10", 80.0), ("2026-03-20", 60.0)]
        .iter()
        .map(|&(on, score)| {
            let (dept, _) = roster.place("X", "D2", day(on));
            rating(&mut names, "X", dept.unwrap(), on, score)
        })
        .collect();
    let m = measures(&facts, &names, &StaffPolicy::default());
    let march: Vec<(&str, usize, Option<f64>)> = m
        .iter()
        .filter(|r| r.period.grain == Grain::Month)
        .map(|r| (r.dept_id.as_str(), r.ratings, r.observed_mean))
        .collect();
    assert_eq!(march, vec![("D1", 1, Some(80.0)), ("D2", 1, Some(60.0))]);
    for grain in [Grain::Quarter, Grain::Year] {
        assert_eq!(m.iter().filter(|r| r.period.grain == grain).count(), 2);
    }
}

/// A month row as the measures give it, for the star rules.
fn month_row(staff: &str, dept: &str, composite: f64, ratings: usize) -> StaffMeasure {
    StaffMeasure {
        period: Period::containing(Grain::Month, day("2026-03-01")),
        staff_id: staff.into(),
        dept_id: dept.into(),
        ratings,
        observed_mean: Some(composite),
        fair_mean: Some(composite),
        good_reviews: ratings,
        bad_reviews: 0,
        unrectified_bad_reviews: 0,
        cases: 0,
        on_time_rate: None,
        first_time_rate: None,
        valid_complaints: 0,
        confirmed_incidents: 0,
        points: [Some(composite), None, None, None, None],
        composite_observed: Some(composite),
        composite: Some(composite),
        rank_in_dept: None,
        star_eligible: None,
        not_eligible_because: None,
    }
}

/// Two stars per department; in D1 the best composite (P, 95) has a valid
/// complaint, and Q has fewer than the 20 ratings a star needs. R, S and T
/// tie at 90: R and S have 30 ratings, T 25; S has a bad review (rectified
/// on time), R none. So D1's stars are R then S. In D2, U's valid complaint
/// is recorded under D1 (U moved mid-month): U is out in D2 as well, and
/// V is D2's only star.
#[test]
fn star_eligibility_and_ties() {
    let mut p = StaffPolicy::default();
    p.stars.top = 2;
    let mut rows = vec![
        month_row("P", "D1", 95.0, 40),
        month_row("Q", "D1", 93.0, 19),
        month_row("R", "D1", 90.0, 30),
        month_row("S", "D1", 90.0, 30),
        month_row("T", "D1", 90.0, 25),
        month_row("U", "D1", 10.0, 0),
        month_row("U", "D2", 99.0, 30),
        month_row("V", "D2", 80.0, 30),
    ];
    rows[0].valid_complaints = 1;
    rows[3].bad_reviews = 1;
    rows[5].composite = None;
    rows[5].valid_complaints = 1;
    let stars = stars(&mut rows, &p);
    let picked: Vec<(&str, usize, &str)> = stars
        .iter()
        .map(|s| (s.dept_id.as_str(), s.rank, s.staff_id.as_str()))
        .collect();
    assert_eq!(picked, vec![("D1", 1, "R"), ("D1", 2, "S"), ("D2", 1, "V")]);
    let why: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.not_eligible_because.as_deref())
        .collect();
    assert_eq!(
        why,
        vec![
            Some("valid_complaint"),
            Some("few_ratings"),
            None,
            None,
            None,
            Some("few_ratings,valid_complaint"),
            Some("valid_complaint"),
            None,
        ]
    );
    assert_eq!(
        stars[0].reason_zh,
        "本月评价 30 次，公平均分 90.0，零差评，综合得分 90.0"
    );
    assert_eq!(
        stars[1].reason_en,
        "30 ratings this month, fair mean 90.0, 1 bad review rectified on time, composite 90.0"
    );
}

/// A star two months running says so.
#[test]
fn star_runs() {
    let p = StaffPolicy::default();
    let mut rows = Vec::new();
    for (month, best) in [
        ("2026-01-01", "A"),
        ("2026-02-01", "A"),
        ("2026-03-01", "B"),
        ("2026-04-01", "A"),
    ] {
        for (id, c) in [("A", 80.0), ("B", 70.0)] {
            let mut r = month_row(id, "D", if id == best { 90.0 } else { c }, 30);
            r.period = Period::containing(Grain::Month, day(month));
            rows.push(r);
        }
    }
    let runs: Vec<(String, usize)> = stars(&mut rows, &p)
        .into_iter()
        .map(|s| (s.staff_id, s.run_months))
        .collect();
    assert_eq!(
        runs,
        vec![
            ("A".into(), 1),
            ("A".into(), 2),
            ("B".into(), 1),
            ("A".into(), 1)
        ]
    );
}

fn fb(staff: &str, on: &str, group: &'static str, rater: &str, score: f64) -> FeedbackRating {
    FeedbackRating {
        staff_id: staff.into(),
        dept_id: "D".into(),
        day: day(on),
        group,
        rater_id: rater.into(),
        score,
    }
}

fn review360(ratings: &[FeedbackRating], closed_by: &str) -> Vec<FeedbackRow> {
    let weights = crate::policy::Review360Policy::default().weights;
    let min = |g: &str| match g {
        "superior" => 1,
        _ => 3,
    };
    feedback(
        ratings,
        &FeedbackRules {
            weights: &weights,
            min_raters: &min,
            closed_by: day(closed_by),
        },
    )
}

fn find<'a>(rows: &'a [FeedbackRow], label: &str, group: &str) -> &'a FeedbackRow {
    rows.iter()
        .find(|r| r.period.label() == label && r.rater_group == group)
        .unwrap_or_else(|| panic!("no {label} {group} row in {rows:#?}"))
}

/// One manager's first half of 2026, worked by hand (minimums: superior 1,
/// others 3; weights superior 30, peer 20, subordinate 25, client 25,
/// self 0):
///
/// ```text
/// superior  A: 80                      1 rater  >= 1: shown, 80
/// peer      P1: 60, P2: 70             2 raters <  3: rolled up into others
/// others    {peer}                     2 raters <  3: counts only (2, 2)
/// subordinate S1..S4: 90 80 70 60      4 raters >= 3: shown, 75
/// client    C1: 100                    shown, 100
/// self      M: 95                      shown, weight 0
/// composite (30 x 80 + 25 x 75 + 25 x 100) / 80 = 6775 / 80 = 84.6875
/// ```
///
/// The second half is not closed by 2026-08-01: not published.
#[test]
fn a_group_below_its_minimum_is_rolled_up_and_its_mean_withheld() {
    let mut r = vec![
        fb("M", "2026-02-01", "superior", "A", 80.0),
        fb("M", "2026-02-01", "peer", "P1", 60.0),
        fb("M", "2026-03-01", "peer", "P2", 70.0),
        fb("M", "2026-07-05", "peer", "P3", 10.0),
    ];
    for (s, y) in [("S1", 90.0), ("S2", 80.0), ("S3", 70.0), ("S4", 60.0)] {
        r.push(fb("M", "2026-04-01", "subordinate", s, y));
    }
    r.push(fb("M", "2026-05-01", "client", "C1", 100.0));
    r.push(fb("M", "2026-06-30", "self", "M", 95.0));
    let rows = review360(&r, "2026-08-01");
    assert!(
        rows.iter().all(|r| r.period.label() == "2026-H1"),
        "{rows:#?}"
    );
    let groups: Vec<&str> = rows.iter().map(|r| r.rater_group).collect();
    assert_eq!(
        groups,
        [
            "superior",
            "subordinate",
            "others",
            "client",
            "self",
            "composite"
        ]
    );
    assert_eq!(find(&rows, "2026-H1", "superior").mean, Some(80.0));
    assert_eq!(find(&rows, "2026-H1", "subordinate").mean, Some(75.0));
    let others = find(&rows, "2026-H1", "others");
    assert_eq!(
        (
            others.groups.as_str(),
            others.raters,
            others.ratings,
            others.mean,
            others.withheld
        ),
        ("peer", 2, 2, None, Some("below_minimum"))
    );
    let c = find(&rows, "2026-H1", "composite");
    assert_eq!(c.groups, "superior,subordinate,client");
    assert!((c.mean.unwrap() - 84.6875).abs() < 1e-9, "{c:?}");
}

/// Two groups each below the minimum reach it together: peers P1, P2 (60,
/// 70) and subordinates S1, S2 (80, 90) give `others` 4 raters and a mean
/// of 75.
#[test]
fn groups_rolled_up_together_can_reach_the_minimum() {
    let r = vec![
        fb("M", "2026-01-10", "peer", "P1", 60.0),
        fb("M", "2026-01-10", "peer", "P2", 70.0),
        fb("M", "2026-01-10", "subordinate", "S1", 80.0),
        fb("M", "2026-01-10", "subordinate", "S2", 90.0),
    ];
    let rows = review360(&r, "2026-12-31");
    let o = find(&rows, "2026-H1", "others");
    assert_eq!(
        (o.groups.as_str(), o.raters, o.mean),
        ("peer,subordinate", 4, Some(75.0))
    );
    let c = find(&rows, "2026-H1", "composite");
    assert_eq!(
        (c.groups.as_str(), c.mean),
        ("peer,subordinate", Some(75.0))
    );
}

/// The differencing attack: the first half hides its two subordinates
/// (40, 50); the second half shows three (90 each). Were the year's
/// subordinate mean published (3 raters, 5 ratings: 360 / 5 = 72), the
/// first half would follow: 72 x 5 - 3 x 90 = 90 = 40 + 50. So the year
/// rolls them up and withholds the mean (`adds_up`).
#[test]
fn the_year_withholds_what_would_reveal_a_hidden_half() {
    let mut r = vec![
        fb("M", "2026-02-01", "subordinate", "S1", 40.0),
        fb("M", "2026-02-01", "subordinate", "S2", 50.0),
    ];
    for s in ["S1", "S2", "S3"] {
        r.push(fb("M", "2026-09-01", "subordinate", s, 90.0));
    }
    let rows = review360(&r, "2026-12-31");
    assert_eq!(find(&rows, "2026-H1", "others").mean, None);
    assert_eq!(find(&rows, "2026-H2", "subordinate").mean, Some(90.0));
    let y = find(&rows, "2026", "others");
    assert_eq!(
        (y.groups.as_str(), y.raters, y.ratings, y.mean, y.withheld),
        ("subordinate", 3, 5, None, Some("adds_up"))
    );
    assert!(!rows
        .iter()
        .any(|r| r.period.label() == "2026" && r.rater_group == "subordinate"));
}

/// Whatever the ratings, no published figure can be subtracted from
/// another to recover a hidden one. Over many random managers: (1) every
/// year row with a mean is the sum of published rows of its halves made
/// of its groups (so it says nothing the halves do not); (2) a composite
/// weighs only groups whose rows show a mean; (3) every group with ratings
/// appears in a row (rolled up, never dropped).
#[test]
fn no_pair_of_published_figures_reveals_a_hidden_group() {
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut ratings = Vec::new();
    for m in 0..300 {
        let staff = format!("M{m}");
        for g in ["superior", "peer", "subordinate", "client", "self"] {
            let n = next(7);
            for _ in 0..n {
                let rater = format!("{g}{}", next(5));
                let month = 1 + next(12);
                let on = format!("2026-{month:02}-15");
                ratings.push(fb(&staff, &on, g, &rater, 20.0 * (1 + next(5)) as f64));
            }
        }
    }
    let rows = review360(&ratings, "2026-12-31");
    let shown_years = rows.iter().filter(|r| {
        r.period.grain == Grain::Year && r.mean.is_some() && r.rater_group != "composite"
    });
    let mut checked = 0;
    for y in shown_years {
        let groups: BTreeSet<&str> = y.groups.split(',').collect();
        let parts: Vec<&FeedbackRow> = rows
            .iter()
            .filter(|h| {
                h.staff_id == y.staff_id
                    && h.period.grain == Grain::Half
                    && h.rater_group != "composite"
                    && h.groups.split(',').all(|g| groups.contains(g))
            })
            .collect();
        assert!(
            parts.iter().all(|h| h.mean.is_some()),
            "{y:?} from {parts:#?}"
        );
        let n: usize = parts.iter().map(|h| h.ratings).sum();
        let sum: f64 = parts
            .iter()
            .map(|h| h.mean.unwrap() * h.ratings as f64)
            .sum();
        assert_eq!(n, y.ratings, "{y:?} from {parts:#?}");
        assert!((sum - y.mean.unwrap() * y.ratings as f64).abs() < 1e-6);
        checked += 1;
    }
    assert!(checked > 300, "only {checked} year rows checked");
    for c in rows.iter().filter(|r| r.rater_group == "composite") {
        for g in c.groups.split(',').filter(|g| !g.is_empty()) {
            let row = rows
                .iter()
                .find(|r| {
                    r.staff_id == c.staff_id
                        && r.period == c.period
                        && r.rater_group != "composite"
                        && r.groups.split(',').any(|x| x == g)
                })
                .unwrap();
            assert!(row.mean.is_some(), "{c:?} weighs hidden {row:?}");
        }
    }
    let mut with_ratings: BTreeSet<(String, &str)> = BTreeSet::new();
    for r in &ratings {
        with_ratings.insert((r.staff_id.clone(), r.group));
    }
    for (staff, g) in with_ratings {
        assert!(rows.iter().any(|r| r.staff_id == staff
            && r.period.grain == Grain::Year
            && r.rater_group != "composite"
            && r.groups.split(',').any(|x| x == g)));
    }
    // Some year rows were withheld for adding up, and some rolled-up rows
    // were shown: the rules were exercised.
    assert!(rows.iter().any(|r| r.withheld == Some("adds_up")));
    assert!(rows
        .iter()
        .any(|r| r.rater_group == "others" && r.mean.is_some()));
}

fn at(grain: Grain, on: &str, staff: &str, composite: f64) -> StaffMeasure {
    StaffMeasure {
        period: Period::containing(grain, day(on)),
        ..month_row(staff, "D", composite, 30)
    }
}

/// One department, years 2025 and 2026 (default grades: excellent from
/// 90, good from 80; top share 20%, declining from 6 months):
///
/// ```text
/// 2025: A 92 (excellent), B 85                 ranked 2 -> pool ceil(0.4) = 1: A
/// 2026: A 95, B 93, C 91, then 7 people 70-88  ranked 10 -> pool ceil(2.0) = 2: A, B
///       top grade both years: A only (B was good in 2025; C has no 2025)
/// E's months 2026-01..12: 90, 88, ..., 68     S = -66, var S = 12 x 11 x 29 / 18
///       = 212.67, z = -65 / 14.583 = -4.457, p = 8.3e-6 < 0.05: declining
/// F's months 2026-01..05: falling too          5 < 6 months: not claimed
/// ```
#[test]
fn hr_lists_top_two_years_reserve_pool_and_declining() {
    let mut p = crate::policy::load_text(
        crate::policy::DEFAULT_POLICY.into(),
        crate::policy::PolicySource::Embedded,
    )
    .unwrap()
    .policy;
    p.staff.hr.top_share = 0.2;
    let mut m = vec![
        at(Grain::Year, "2025-06-01", "A", 92.0),
        at(Grain::Year, "2025-06-01", "B", 85.0),
        at(Grain::Year, "2026-06-01", "A", 95.0),
        at(Grain::Year, "2026-06-01", "B", 93.0),
        at(Grain::Year, "2026-06-01", "C", 91.0),
    ];
    for (i, c) in [88.0, 85.0, 82.0, 79.0, 76.0, 73.0, 70.0]
        .iter()
        .enumerate()
    {
        m.push(at(Grain::Year, "2026-06-01", &format!("P{i}"), *c));
    }
    for k in 0..12 {
        let on = format!("2026-{:02}-01", k + 1);
        m.push(at(Grain::Month, &on, "E", 90.0 - 2.0 * k as f64));
        if k < 5 {
            m.push(at(Grain::Month, &on, "F", 90.0 - 5.0 * k as f64));
        }
    }
    let rows = hr_lists(
        &m,
        &HrRules {
            policy: &p,
            closed_by: day("2026-12-31"),
        },
    );
    let got: Vec<(String, &str, &str, Option<usize>)> = rows
        .iter()
        .map(|r| (r.year.label(), r.list, r.staff_id.as_str(), r.rank_in_dept))
        .collect();
    assert_eq!(
        got,
        [
            ("2025".into(), "reserve_pool", "A", Some(1)),
            ("2026".into(), "top_two_years", "A", Some(1)),
            ("2026".into(), "reserve_pool", "A", Some(1)),
            ("2026".into(), "reserve_pool", "B", Some(2)),
            ("2026".into(), "declining", "E", None),
        ]
    );
    let a = &rows[1];
    assert_eq!(
        (a.grade.as_deref(), a.previous_grade.as_deref(), a.ranked),
        (Some("excellent"), Some("excellent"), 10)
    );
    let e = rows.last().unwrap();
    assert_eq!((e.months, e.trend_tau), (Some(12), Some(-1.0)));
    assert!((e.trend_p.unwrap() - 8.3e-6).abs() < 0.1e-6, "{e:?}");
    // Not closed: 2026 gives no lists as of 2026-12-30.
    let early = hr_lists(
        &m,
        &HrRules {
            policy: &p,
            closed_by: day("2026-12-30"),
        },
    );
    assert!(early.iter().all(|r| r.year.label() == "2025"));
}
