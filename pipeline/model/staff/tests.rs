use super::*;
use crate::policy::StaffPolicy;

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

fn rating(staff: &str, dept: &str, on: &str, score: f64) -> StaffFact {
    StaffFact {
        staff_id: staff.into(),
        dept_id: dept.into(),
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

    let facts: Vec<StaffFact> = [("2026-03-10", 80.0), ("2026-03-20", 60.0)]
        .iter()
        .map(|&(on, score)| {
            let (dept, _) = roster.place("X", "D2", day(on));
            rating("X", dept.unwrap(), on, score)
        })
        .collect();
    let m = measures(&facts, &StaffPolicy::default());
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
