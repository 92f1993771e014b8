use std::collections::BTreeSet;

use super::*;
use crate::policy::{load_text, PolicySource, DEFAULT_POLICY};

/// Two months of seeded ratings across New Year 2026, one response of
/// five items per row group, with a lenient rater (`u0`), a rater who
/// favours `d0` (`u1`) and a rater who straight-lines (`u2`). 2026-W01
/// runs from Monday 29 December 2025 to Sunday 4 January 2026.
fn ratings() -> DataFrame {
    let mut seed: u64 = 20260101;
    let mut next = |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let (mut ids, mut ats, mut depts, mut raters, mut groups, mut items, mut scores) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let first = NaiveDate::from_ymd_opt(2025, 12, 1).unwrap();
    let mut n = 0;
    for day in 0..62 {
        let date = first + Duration::days(day);
        // 10:00 in Shanghai (UTC+8 all year) is 02:00 UTC.
        let at = date
            .and_hms_opt(2, 0, 0)
            .unwrap()
            .and_utc()
            .timestamp_micros();
        for _ in 0..30 {
            n += 1;
            let (rater, dept) = (next(60), next(6));
            let lean = match (rater, dept) {
                (0, _) => 1.5,
                (1, 0) => 2.0,
                _ => 0.0,
            };
            let base = 3.0 + (dept % 3) as f64 * 0.5 - 0.5 + lean;
            let flat = next(5) as f64;
            for item in 0..5 {
                let noise = if rater == 2 {
                    0.0
                } else {
                    next(3) as f64 - 1.0
                };
                let score = if rater == 2 { 1.0 + flat } else { base + noise };
                ids.push(format!("R{n:05}"));
                ats.push(at);
                depts.push(format!("d{dept}"));
                raters.push(format!("u{rater}"));
                groups.push(if rater % 4 == 3 {
                    "peer"
                } else {
                    "client_external"
                });
                items.push(format!("q{item}"));
                scores.push(score.round().clamp(1.0, 5.0));
            }
        }
    }
    let month: Vec<String> = ats
        .iter()
        .map(|&us| {
            local_day(us, chrono_tz::Asia::Shanghai)
                .format("%Y-%m")
                .to_string()
        })
        .collect();
    Builder::new()
        .str("rating_id", ids.iter().map(Some))
        .ts("rated_at", ats.iter().map(|&t| Some(t)))
        .str("dept_id", depts.iter().map(Some))
        .str("rater_id", raters.iter().map(Some))
        .str("rater_group", groups.iter().map(Some))
        .str("item", items.iter().map(Some))
        .f64("score", scores.iter().map(|&s| Some(s)))
        .f64("scale_min", scores.iter().map(|_| Some(1.0)))
        .f64("scale_max", scores.iter().map(|_| Some(5.0)))
        .str("month", month.iter().map(Some))
        .build()
        .unwrap()
}

/// The rows of `df` whose `month` is in `first..=last`: what a scan of
/// those months' files gives.
fn months_of(df: &DataFrame, first: &str, last: &str) -> Result<Option<LazyFrame>> {
    Ok(Some(
        df.clone().lazy().filter(
            col("month")
                .gt_eq(lit(first.to_string()))
                .and(col("month").lt_eq(lit(last.to_string()))),
        ),
    ))
}

#[test]
fn the_first_and_last_rating_come_from_the_files_at_either_end() {
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_micros()
    };
    // Files by month as loaded: some in UTC+8, where 18:00 UTC on 31
    // January is already 1 February and 17:00 UTC on 31 March is 1
    // April; others in UTC. May's file holds only ratings after as-of.
    let rows = [
        ("2026-01", "2026-01-31T20:00:00Z"),
        ("2026-02", "2026-01-31T18:00:00Z"),
        ("2026-02", "2026-02-10T09:00:00Z"),
        ("2026-03", "2026-03-05T09:00:00Z"),
        ("2026-03", "2026-03-31T20:00:00Z"),
        ("2026-04", "2026-03-31T17:00:00Z"),
        ("2026-04", "2026-04-10T09:00:00Z"),
        ("2026-05", "2026-05-02T09:00:00Z"),
    ];
    let df = frame::Builder::new()
        .str("month", rows.iter().map(|r| Some(r.0)))
        .ts("rated_at", rows.iter().map(|r| Some(at(r.1))))
        .build()
        .unwrap();
    let scan = |first: &str, last: &str| months_of(&df, first, last);
    let months = RatingMonths {
        months: ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05"]
            .map(String::from)
            .to_vec(),
        scan: &scan,
    };
    // As of the end of 31 March UTC: the first rating is February's
    // file's first, earlier than January's only one; the last is in
    // March's file, later than April's only one up to as-of.
    let end = at("2026-03-31T23:59:59.999999Z");
    assert_eq!(
        months.bounds(end).unwrap(),
        Some((at("2026-01-31T18:00:00Z"), at("2026-03-31T20:00:00Z")))
    );
    // Up to the end of 10 April every file but May's counts.
    assert_eq!(
        months.bounds(at("2026-04-10T23:59:59Z")).unwrap(),
        Some((at("2026-01-31T18:00:00Z"), at("2026-04-10T09:00:00Z")))
    );
    // Before every rating there are none.
    assert_eq!(months.bounds(at("2026-01-01T00:00:00Z")).unwrap(), None);
}

#[test]
fn a_year_at_a_time_gives_what_one_pass_over_all_ratings_gives() {
    let text = DEFAULT_POLICY.replace("handling = \"keep\"", "handling = \"exclude\"");
    let policy = load_text(text, PolicySource::Embedded).unwrap();
    let (p, tz) = (&policy.policy, policy.tz);
    let as_of = NaiveDate::from_ymd_opt(2026, 1, 31).unwrap();
    let df = ratings();
    // One response of 30 December is removed on appeal.
    let removed: PlHashSet<String> = ["R00871".to_string()].into_iter().collect();
    let dept_types: HashMap<String, String> = (0..6)
        .map(|d| (format!("d{d}"), "hr".to_string()))
        .collect();

    // One pass over everything: the rater model, reliability and
    // satisfaction as defined.
    let items = raters::items_from_frame(&df, &removed, tz).unwrap();
    let outcome = raters::check(&items, &p.raters);
    let counted: Vec<bool> = items
        .iter()
        .map(|r| !outcome.excluded.contains_key(&*r.rating_id))
        .collect();
    let numbers = raters::ResponseNumbers::of(&items);
    let reliability = raters::reliability(&items, &counted, &numbers, Window::ALL);
    let responses = satisfaction::responses(&items, &numbers, &outcome);
    let satisfaction = satisfaction::compute(&responses, &dept_types, p, Window::ALL);

    // The same a year at a time, the months read as `rate` asks.
    let by_months = |first: &str, last: &str| months_of(&df, first, last);
    let rated = rate(
        &Ratings {
            all: df.clone().lazy(),
            by_months: &RatingMonths {
                months: vec!["2025-12".into(), "2026-01".into()],
                scan: &by_months,
            },
            end: end_of_day(as_of, tz),
        },
        &removed,
        &dept_types,
        None,
        &policy,
        as_of,
        &Progress::silent(),
    )
    .unwrap();

    // The data exercises what crosses New Year: estimates and flags in
    // both years, and a week of 2026 that holds December's ratings,
    // excluded responses and rater-adjusted means among them.
    let quarters = |df: &DataFrame| -> BTreeSet<String> {
        frame::strs(df, "period")
            .unwrap()
            .into_iter()
            .flatten()
            .collect()
    };
    let flags = raters::flags_frame(&outcome.flags, as_of).unwrap();
    assert_eq!(
        quarters(&flags),
        ["2025-Q4".to_string(), "2026-Q1".to_string()].into()
    );
    let flagged: BTreeSet<String> = frame::strs(&flags, "flag")
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    for f in ["lenient", "favouritism", "straight_line"] {
        assert!(flagged.contains(f), "{f} in {flagged:?}");
    }
    let w01: Vec<&satisfaction::Row> = satisfaction
        .iter()
        .filter(|r| r.period.label() == "2026-W01" && r.rater_group == "all")
        .collect();
    assert_eq!(w01.len(), 6);
    let december = responses
        .iter()
        .filter(|r| r.day >= NaiveDate::from_ymd_opt(2025, 12, 29).unwrap())
        .filter(|r| r.day <= NaiveDate::from_ymd_opt(2025, 12, 31).unwrap())
        .count();
    // 3 days x 30 responses, less the one removed on appeal.
    assert_eq!(december, 89);
    assert!(w01.iter().map(|r| r.excluded_ratings).sum::<usize>() > 0);
    assert!(w01.iter().all(|r| r.fair_mean.is_some()));

    assert!(rated
        .effects
        .equals_missing(&raters::effects_frame(&outcome.effects, as_of).unwrap()));
    assert!(rated.flags.equals_missing(&flags));
    assert_eq!(rated.satisfaction, satisfaction);
    assert_eq!(rated.reliability, reliability);
    assert_eq!(rated.first_day, responses.iter().map(|r| r.day).min());
}
