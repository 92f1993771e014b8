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
            let responses = crate::model::satisfaction::responses(items, &numbers, &out);
            let sat = crate::model::satisfaction::compute(
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
    let mut rows: Vec<Reliability> = rows.into_iter().filter(|r| r.period.end <= march).collect();
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
