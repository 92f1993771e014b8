use super::*;
use chrono::Duration;

fn response(rater: &str, group: &str, day: NaiveDate, score: f64) -> Response {
    Response {
        dept_id: Arc::from("hr"),
        rater_id: Arc::from(rater),
        group: Arc::from(group),
        day,
        score,
        adjusted: Some(score - 1.0 / 3.0),
        excluded: false,
        keys: raters::Keys::NONE,
    }
}

fn by_key(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        (&a.dept_id, a.period, &a.rater_group).cmp(&(&b.dept_id, b.period, &b.rater_group))
    });
}

#[test]
fn a_pass_continued_where_another_stopped_adds_up_as_one_pass() {
    let policy = crate::policy::load_text(
        crate::policy::DEFAULT_POLICY.to_string(),
        crate::policy::PolicySource::Embedded,
    )
    .unwrap()
    .policy;
    let types = HashMap::new();
    // 40 responses to hr, one every three days from 1 February 2026
    // (to 28 May), by raters u1-u4 in turn, every third one a
    // superior's; scores in thirds, so that sums depend on their order.
    // The sixth is excluded by the rater checks.
    let day = |s: &str| s.parse::<NaiveDate>().unwrap();
    let mut all: Vec<Response> = (0..40)
        .map(|k| {
            let group = if k % 3 == 0 {
                "superior"
            } else {
                "client_internal"
            };
            let on = day("2026-02-01") + Duration::days(3 * k as i64);
            response(
                ["u1", "u2", "u3", "u4"][k % 4],
                group,
                on,
                100.0 / 3.0 + k as f64 * 7.1,
            )
        })
        .collect();
    all[5].excluded = true;
    let mut one = compute(&all, &types, &policy, Window::ALL);
    by_key(&mut one);
    // The year: 39 responses counted, 1 excluded, 4 raters.
    let year = one
        .iter()
        .find(|r| r.period.grain == Grain::Year && r.rater_group == "all")
        .unwrap();
    assert_eq!(
        (year.n_ratings, year.excluded_ratings, year.n_raters),
        (39, 1, 4)
    );

    // A pass over the days to the end of March, whose rows of periods
    // ending by then are kept, then one from 26 March (the week of
    // Monday 30 March reaches back to it; responses fall on 27 and 30
    // March and 2 April) that reports from 1 April on.
    let march = day("2026-03-31");
    let first: Vec<Response> = all.iter().filter(|r| r.day <= march).cloned().collect();
    let (rows, open) = compute_from(&first, &types, &policy, Window::ALL, &[], &[march]);
    let mut rows: Vec<Row> = rows.into_iter().filter(|r| r.period.end <= march).collect();
    let open = open[0].clone().expect("the responses come in time order");
    // Open at the end of March: the year, for both groups (the first
    // quarter has ended).
    let open_periods: Vec<(Grain, &str)> = open
        .iter()
        .map(|g| (g.period.grain, g.rater_group.as_str()))
        .collect();
    assert_eq!(
        open_periods,
        [(Grain::Year, "client_internal"), (Grain::Year, "superior")]
    );
    let second: Vec<Response> = all
        .iter()
        .filter(|r| r.day >= day("2026-03-26"))
        .cloned()
        .collect();
    let from_april = Window {
        from: march + Duration::days(1),
        to: NaiveDate::MAX,
    };
    let (more, _) = compute_from(&second, &types, &policy, from_april, &open, &[]);
    rows.extend(more);
    by_key(&mut rows);
    // The same rows, to the last bit.
    assert_eq!(rows, one);

    // A March response that comes after an April one: the sums at the
    // end of March cannot be continued.
    let mut late = all.clone();
    let march_10 = late.iter().position(|r| r.day > day("2026-03-08")).unwrap();
    let moved = late.remove(march_10);
    late.push(moved);
    let (_, open) = compute_from(&late, &types, &policy, Window::ALL, &[], &[march]);
    assert_eq!(open, vec![None]);
}
