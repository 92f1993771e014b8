//! The rater model on seeded synthetic data with known injected raters.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use scorecard::model::raters::{self, ItemRating, Keys};
use scorecard::policy::{load_text, PolicySource, DEFAULT_POLICY};

use crate::Rng;

struct Synthetic {
    items: Vec<ItemRating>,
    truth: Vec<f64>,
    /// (rater id, flag) pairs injected.
    injected: BTreeSet<(String, String)>,
}

const DEPTS: usize = 30;

/// One quarter of ratings on a 0-100 scale. Departments 0-4 are rated by
/// the lenient raters (+20 points) and 5-9 by the severe ones (-20), so
/// their observed means are biased; six raters favour one department each
/// (+35 there, a 3.6 turned into a 5) while rating others normally; six straight-line (the
/// same score on all five items of a response).
fn synthetic(seed: u64) -> Synthetic {
    let mut rng = Rng(seed);
    // True quality 45-75, so +-20 points of leniency never hit the ends of
    // the scale (clipping would hide part of the bias).
    let truth: Vec<f64> = (0..DEPTS).map(|_| 45.0 + 30.0 * rng.f()).collect();
    let item_effect = [2.0, -2.0, 1.0, -1.0, 0.0];
    let day = NaiveDate::from_ymd_opt(2026, 2, 10).unwrap();
    let mut items = Vec::new();
    let mut injected = BTreeSet::new();
    let mut response = 0;
    let mut push =
        |rater: &str, dept: usize, n_items: usize, lean: f64, same: bool, rng: &mut Rng| {
            response += 1;
            let base = truth[dept] + lean + 8.0 * rng.normal();
            for (m, effect) in item_effect.iter().enumerate().take(n_items) {
                let y = if same {
                    base
                } else {
                    base + effect + 8.0 * rng.normal()
                };
                let y = y.clamp(0.0, 100.0);
                items.push(ItemRating {
                    rating_id: format!("R{response}").into(),
                    item: format!("item{m}").into(),
                    rater_id: rater.to_string().into(),
                    group: "peer".into(),
                    dept_id: format!("D{dept:02}").into(),
                    day,
                    y,
                    raw: y,
                    levels: 101.0,
                    keys: Keys::NONE,
                });
            }
        };
    for k in 0..400 {
        let lean = 3.0 * rng.normal();
        for _ in 0..12 {
            let d = rng.below(DEPTS);
            push(&format!("N{k:03}"), d, 2, lean, false, &mut rng);
        }
    }
    for k in 0..10 {
        let id = format!("LEN{k}");
        injected.insert((id.clone(), "lenient".to_string()));
        for _ in 0..12 {
            let d = rng.below(5);
            push(&id, d, 2, 20.0, false, &mut rng);
        }
        let id = format!("SEV{k}");
        injected.insert((id.clone(), "severe".to_string()));
        for _ in 0..12 {
            let d = 5 + rng.below(5);
            push(&id, d, 2, -20.0, false, &mut rng);
        }
    }
    for k in 0..6 {
        let id = format!("FAV{k}");
        injected.insert((id.clone(), "favouritism".to_string()));
        let favourite = 10 + k;
        for _ in 0..4 {
            push(&id, favourite, 2, 35.0, false, &mut rng);
        }
        for _ in 0..8 {
            let d = 16 + rng.below(DEPTS - 16);
            push(&id, d, 2, 0.0, false, &mut rng);
        }
        let id = format!("STR{k}");
        injected.insert((id.clone(), "straight_line".to_string()));
        for _ in 0..6 {
            let d = rng.below(DEPTS);
            push(&id, d, 5, 0.0, true, &mut rng);
        }
    }
    Synthetic {
        items,
        truth,
        injected,
    }
}

#[test]
fn injected_raters_are_recovered_and_fair_means_are_closer_to_the_truth() {
    let policy = load_text(DEFAULT_POLICY.into(), PolicySource::Embedded)
        .unwrap()
        .policy;
    let data = synthetic(7);
    let out = raters::check(&data.items, &policy.raters);

    let kinds = ["lenient", "severe", "favouritism", "straight_line"];
    let detected: BTreeSet<(String, String)> = out
        .effects
        .iter()
        .flat_map(|e| e.flags.iter().map(move |f| (e.rater_id.clone(), f.clone())))
        .filter(|(_, f)| kinds.contains(&f.as_str()))
        .collect();
    let hits = detected.intersection(&data.injected).count() as f64;
    let precision = hits / detected.len() as f64;
    let recall = hits / data.injected.len() as f64;
    // 32 injected (10 lenient, 10 severe, 6 favouring, 6 straight-lining).
    eprintln!(
        "rater flags: precision {precision:.3}, recall {recall:.3} ({} detected); missed {:?}; false {:?}",
        detected.len(),
        data.injected.difference(&detected).collect::<Vec<_>>(),
        detected.difference(&data.injected).collect::<Vec<_>>()
    );
    assert!(
        precision >= 0.9 && recall >= 0.9,
        "precision {precision:.3}, recall {recall:.3}; missed {:?}; false {:?}",
        data.injected.difference(&detected).collect::<Vec<_>>(),
        detected.difference(&data.injected).collect::<Vec<_>>()
    );

    // Fair (rater-adjusted) and observed means per department.
    let mut sums: BTreeMap<&str, (f64, f64, f64)> = BTreeMap::new();
    for (r, adj) in data.items.iter().zip(&out.adjusted) {
        let e = sums.entry(&*r.dept_id).or_default();
        e.0 += r.y;
        e.1 += adj.expect("one connected group");
        e.2 += 1.0;
    }
    // Over the ten departments the biased raters rated (0-4 lenient, 5-9
    // severe), the fair means' mean absolute error is smaller than the
    // observed means'. (Department by department the comparison is at the
    // mercy of each one's sampling noise, about 1 point here.)
    let (mut err_fair, mut err_obs) = (0.0, 0.0);
    for d in 0..10 {
        let (obs, fair, n) = sums[format!("D{d:02}").as_str()];
        let truth = data.truth[d];
        err_fair += (fair / n - truth).abs() / 10.0;
        err_obs += (obs / n - truth).abs() / 10.0;
    }
    eprintln!("mean absolute error: fair {err_fair:.2}, observed {err_obs:.2}");
    assert!(
        err_fair < err_obs,
        "fair {err_fair:.2} vs observed {err_obs:.2}"
    );
}

#[test]
fn a_department_whose_raters_rate_nothing_else_is_flagged_not_placed() {
    let policy = load_text(DEFAULT_POLICY.into(), PolicySource::Embedded)
        .unwrap()
        .policy;
    let mut data = synthetic(11).items;
    let day = NaiveDate::from_ymd_opt(2026, 2, 10).unwrap();
    for (i, rater) in ["X1", "X2", "X1"].iter().enumerate() {
        data.push(ItemRating {
            rating_id: format!("island{i}").into(),
            item: "item0".into(),
            rater_id: rater.to_string().into(),
            group: "client_external".into(),
            dept_id: "ISLAND".into(),
            day,
            y: 90.0,
            raw: 90.0,
            levels: 101.0,
            keys: Keys::NONE,
        });
    }
    let out = raters::check(&data, &policy.raters);
    let island: Vec<_> = out
        .effects
        .iter()
        .filter(|e| e.rater_id.starts_with('X'))
        .collect();
    assert_eq!(island.len(), 2);
    assert!(island
        .iter()
        .all(|e| e.separate_group && e.flags.contains(&"separate_group".to_string())));
    // No fair mean for the island's ratings: they are not on the common scale.
    let n = data.len();
    assert!(out.adjusted[n - 3..].iter().all(|a| a.is_none()));
    assert!(out.adjusted[..n - 3].iter().all(|a| a.is_some()));
}

/// Cost: run with `cargo test --test it rater_model_cost -- --ignored
/// --nocapture`; prints the time per rating for 1x, 2x and 4x the data.
#[test]
#[ignore]
fn rater_model_cost_grows_linearly() {
    let policy = load_text(DEFAULT_POLICY.into(), PolicySource::Embedded)
        .unwrap()
        .policy;
    for copies in [4, 8, 16] {
        let mut items = Vec::new();
        for c in 0..copies {
            for mut r in synthetic(100 + c).items {
                r.rater_id = format!("{c}-{}", r.rater_id).into();
                r.rating_id = format!("{c}-{}", r.rating_id).into();
                items.push(r);
            }
        }
        let t = std::time::Instant::now();
        let _ = raters::check(&items, &policy.raters);
        let s = t.elapsed().as_secs_f64();
        println!(
            "{} ratings: {s:.3} s, {:.2} µs per rating",
            items.len(),
            s * 1e6 / items.len() as f64
        );
    }
}
