//! The nightly run: only new files are read, only the month partitions they
//! touch are rewritten, a complete year's rater model is computed again
//! only when its ratings changed, and the result equals a run from scratch.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::SystemTime;

use crate::{files_under, manifest, samples, snapshot, strs, Workspace, RATINGS_HEADER};

fn modified(dir: &Path) -> BTreeMap<String, SystemTime> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let t = std::fs::metadata(&p).unwrap().modified().unwrap();
            (p.strip_prefix(dir).unwrap().display().to_string(), t)
        })
        .collect()
}

fn rows_in(path: &Path) -> usize {
    scorecard::lake::count_rows_file(path).unwrap()
}

#[test]
fn a_record_corrected_into_another_month_leaves_its_old_partition() {
    // Night 1: rating r1 (two items) and r2 in March.
    let night1 = format!(
        "{RATINGS_HEADER}r1,2026-03-01 10:00:00,hr,E1,peer,overall,3\n\
         r1,2026-03-01 10:00:00,hr,E1,peer,attitude,2\n\
         r2,2026-03-05 10:00:00,gsc,C1,client_external,overall,4\n"
    );
    // Night 2: r1/overall exported again, its time corrected into April.
    let night2 = format!("{RATINGS_HEADER}r1,2026-04-02 10:00:00,hr,E1,peer,overall,5\n");
    let expected = vec![
        strs(&["r1", "attitude", "2.0", "ratings/a.csv"]),
        strs(&["r1", "overall", "5.0", "ratings/b.csv"]),
        strs(&["r2", "overall", "4.0", "ratings/a.csv"]),
    ];
    let query = "SELECT rating_id, item, score, source_file FROM ratings ORDER BY rating_id, item";

    // Two nightly ingests.
    let ws = Workspace::new();
    ws.put_departments();
    ws.put("ratings/a.csv", &night1);
    ws.ingest().unwrap();
    let march = ws.out.join("lake/ratings/month=2026-03/part-0.parquet");
    assert_eq!(rows_in(&march), 3);
    ws.put("ratings/b.csv", &night2);
    let m = ws.ingest().unwrap();
    let counts = &m.ingest.tables["ratings"];
    assert_eq!((counts.rows_before, counts.rows_after), (3, 3));
    assert_eq!(ws.rows(query), expected);
    // March lost r1/overall; April holds its corrected version.
    assert_eq!(rows_in(&march), 2);
    assert_eq!(
        rows_in(&ws.out.join("lake/ratings/month=2026-04/part-0.parquet")),
        1
    );

    // Both files in one ingest give the same lake.
    let once = Workspace::new();
    once.put_departments();
    once.put("ratings/a.csv", &night1);
    once.put("ratings/b.csv", &night2);
    once.ingest().unwrap();
    assert_eq!(once.rows(query), expected);
    assert!(snapshot(&once.out.join("lake/ratings")) == snapshot(&ws.out.join("lake/ratings")));
}

/// `scorecard generate` of a small set: 6 departments, `months` months to
/// October 2026, 2,000 ratings a month.
fn generate(out: &Path, split: &str, months: u32) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scorecard"))
        .args([
            "generate",
            "--quiet",
            "--departments",
            "6",
            "--months",
            &months.to_string(),
            "--ratings",
            &(2000 * months).to_string(),
            "--cases",
            "600",
            "--split",
            split,
            "--no-bad-records",
            "--out",
        ])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Data lines (without the header) of every CSV file under `dir`, sorted.
fn data_lines(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = files_under(dir)
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .skip(1)
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

#[test]
fn daily_files_hold_the_same_records_as_monthly_files() {
    // A case received late in a month has events in the next month: they
    // belong in that month's day files, which must not be written twice.
    let ws = Workspace::new();
    let (day, month) = (ws.input.join("day"), ws.input.join("month"));
    generate(&day, "day", 3);
    generate(&month, "month", 3);
    for table in ["ratings", "process_events"] {
        let (d, m) = (data_lines(&day.join(table)), data_lines(&month.join(table)));
        assert!(m.len() > 1000, "{table}: {} records", m.len());
        assert!(
            d == m,
            "{table}: {} records in day files, {} in month files",
            d.len(),
            m.len()
        );
    }
}

#[test]
fn nightly_run_reads_only_new_files_and_equals_a_full_recompute() {
    let ws = Workspace::new();
    // September 2025 to October 2026: 2025 is a complete year.
    let all = ws.input.join("all");
    generate(&all, "day", 14);

    // The nights before: everything but the last day's files.
    let before = ws.input.join("before");
    for f in files_under(&all) {
        let rel = f.strip_prefix(&all).unwrap();
        if rel.file_name().unwrap() == "2026-10-31.csv" {
            continue;
        }
        let to = before.join(rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&f, &to).unwrap();
    }
    ws.run_cli(Some(&before), "2026-10-31");
    assert_eq!(
        rater_periods(&ws.out),
        (vec![], strs(&["2025", "2026-Q1", "2026-Q2", "2026-Q3"]))
    );
    let lake = ws.out.join("lake");
    let stamps = modified(&lake);
    let site = ws.out.join("site");
    let page_stamps = modified(&site);

    // Tonight: the same folder with the last day's files added.
    ws.run_cli(Some(&all), "2026-10-31");
    let manifest = manifest(&ws.out);
    let mut read: Vec<(String, String)> = manifest["ingest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["status"] != "unchanged")
        .map(|f| {
            (
                f["file"].as_str().unwrap().to_string(),
                f["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    read.sort();
    assert_eq!(
        read,
        vec![
            (
                "process_events/2026-10-31.csv".to_string(),
                "new".to_string()
            ),
            ("ratings/2026-10-31.csv".to_string(), "new".to_string()),
        ]
    );
    // 2025's rater passes and the results of 2026-Q1 to Q3 were kept from
    // the night before: none of their ratings changed. Q3's pass also reads
    // October's month file, which changed, but holds no rating of Q3.
    assert_eq!(
        rater_periods(&ws.out),
        (strs(&["2025", "2026-Q1", "2026-Q2", "2026-Q3"]), vec![])
    );
    // Only October's partitions of the two tables (and the ingest log) were
    // written again.
    let mut rewritten: Vec<String> = modified(&lake)
        .into_iter()
        .filter(|(f, t)| stamps.get(f) != Some(t))
        .map(|(f, _)| f)
        .collect();
    rewritten.sort();
    assert_eq!(
        rewritten,
        strs(&[
            "_ingest_log.parquet",
            "process_events/month=2026-10/part-0.parquet",
            "ratings/month=2026-10/part-0.parquet",
        ])
    );

    // Pages are written again only where their bytes changed: a complete
    // period before October shows nothing of the new day (and no as-of
    // date), so its scorecard is the file published the night before;
    // October's, and the overview's, show the new ratings.
    let rewritten_pages: BTreeSet<String> = modified(&site)
        .into_iter()
        .filter(|(f, t)| page_stamps.get(f) != Some(t))
        .map(|(f, _)| f)
        .collect();
    let dept = std::fs::read_dir(site.join("departments"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .min()
        .unwrap();
    let page = |period: &str| format!("departments/{dept}/{period}.html");
    assert!(
        !rewritten_pages.contains(&page("2026-03")),
        "{rewritten_pages:?}"
    );
    assert!(!rewritten_pages.contains(&page("2025")));
    assert!(rewritten_pages.contains(&page("2026-10")));
    assert!(rewritten_pages.contains("index.html"));
    let total = page_stamps.len();
    let render = &manifest["render"];
    assert_eq!(render["files"].as_u64().unwrap() as usize, total);
    assert_eq!(
        render["kept"].as_u64().unwrap() as usize,
        total - rewritten_pages.len()
    );
    // Only the pages whose bytes changed were rendered: every other page's
    // inputs were those of the published page, so it was linked unrendered.
    let rewritten_html = rewritten_pages.iter().filter(|p| p.ends_with(".html"));
    assert_eq!(
        render["rendered"].as_u64().unwrap() as usize,
        rewritten_html.count()
    );
    // The as-of date is on the overviews and on a partial period's
    // scorecard (2026-Q4 is partial at 2026-10-31), not on a complete one.
    let text = |rel: &str| std::fs::read_to_string(site.join(rel)).unwrap();
    assert!(text("index.html").contains("数据截至: 2026-10-31"));
    assert!(text(&page("2026-Q4")).contains("数据截至: 2026-10-31"));
    assert!(!text(&page("2026-03")).contains("数据截至"));

    // Cases with events in October, or open at the last run, were derived
    // again; the others were kept.
    let (derived, kept) = case_counts(&ws.out);
    assert!(kept > 0 && derived > 0, "{derived} derived, {kept} kept");
    assert!(derived < kept, "{derived} derived, {kept} kept");

    // A run from scratch over the same files gives the same bytes, the
    // kept results included (all but the pages' file times).
    assert_same_as_a_full_run(
        &ws,
        &all,
        &[
            "lake",
            "marts",
            "site",
            "cache/raters",
            "cache/cases",
            "cache/pages/digests.json",
            "cache/pages/fingerprint",
        ],
    );
}

#[test]
fn a_published_page_changed_by_hand_is_rendered_again() {
    let ws = Workspace::new();
    let samples = samples();
    ws.run_cli(Some(&samples), "2026-10-31");
    let site = ws.out.join("site");
    let page = site.join("index.html");
    let original = std::fs::read(&page).unwrap();
    let rendered = |ws: &Workspace| manifest(&ws.out)["render"]["rendered"].as_u64().unwrap();
    // Nothing changed: no page is rendered.
    ws.run_cli(Some(&samples), "2026-10-31");
    assert_eq!(rendered(&ws), 0);
    // A page edited in place (same size, so only its time tells) and a
    // page removed are rendered again, and nothing else.
    let mut edited = original.clone();
    let at = edited.iter().position(|b| b.is_ascii_lowercase()).unwrap();
    edited[at] = edited[at].to_ascii_uppercase();
    assert_ne!(edited, original);
    std::fs::write(&page, &edited).unwrap();
    let dept = std::fs::read_dir(site.join("departments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let removed = dept.join("2026-03.html");
    let removed_bytes = std::fs::read(&removed).unwrap();
    std::fs::remove_file(&removed).unwrap();
    ws.run_cli(Some(&samples), "2026-10-31");
    assert_eq!(rendered(&ws), 2);
    assert_eq!(std::fs::read(&page).unwrap(), original);
    assert_eq!(std::fs::read(&removed).unwrap(), removed_bytes);
}

/// Cases the last run in `out` derived from their events, and cases whose
/// rows it kept from the run before (from `run.json`).
fn case_counts(out: &Path) -> (u64, u64) {
    let manifest = manifest(out);
    let n = |key: &str| manifest["compute"][key].as_u64().unwrap();
    (n("cases_derived"), n("cases_kept"))
}

/// The case id and department of the first case received in the process
/// events files whose names start with `month` (`YYYY-MM`, or more).
fn a_case_of(input: &Path, month: &str) -> (String, String) {
    let mut files = files_under(&input.join("process_events"));
    files.sort();
    let line = files
        .into_iter()
        .filter(|f| f.file_name().unwrap().to_str().unwrap().starts_with(month))
        .flat_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines().map(str::to_string).collect::<Vec<_>>()
        })
        .find(|l| l.split(',').nth(1) == Some("received"))
        .expect("a case received in the month");
    let fields: Vec<&str> = line.split(',').collect();
    (fields[0].to_string(), fields[3].to_string())
}

/// What derived cases feed, and the cases kept for the next run.
const CASE_OUTPUTS: [&str; 4] = [
    "cache/cases",
    "marts/cases.parquet",
    "marts/case_time.parquet",
    "marts/indicator_values.parquet",
];

const EVENTS_HEADER: &str =
    "case_id,event,at,dept_id,staff_id,service_type,due_at,response_due_at,instant,event_id\n";

#[test]
fn cases_are_derived_again_exactly_when_their_events_or_as_of_change() {
    let ws = Workspace::new();
    generate(&ws.input, "day", 14);
    let cases_mart = |ws: &Workspace| ws.rows("SELECT count(*) FROM cases")[0][0].clone();
    ws.run_cli(None, "2026-10-20");
    let (all, kept) = case_counts(&ws.out);
    assert_eq!(kept, 0, "nothing to keep on the first run");
    assert_eq!(all.to_string(), cases_mart(&ws));

    // As-of moves on, with no new files: the cases with events in October
    // (the month between the two as-ofs) and the cases open at the last
    // run are derived again, the others kept.
    ws.run_cli(None, "2026-10-31");
    let (derived, kept) = case_counts(&ws.out);
    assert_eq!((derived + kept).to_string(), cases_mart(&ws));
    assert!(kept > all / 2, "{derived} derived, {kept} kept");
    assert_same_as_a_full_run(&ws, &ws.input, &CASE_OUTPUTS);

    // A late export of a visit in November 2025 to a case received at the
    // start of October 2025 changes November's file: the cases with events
    // in it are derived again, this one included.
    let (a, dept) = a_case_of(&ws.input, "2025-10-0");
    let visits = |case: &str| {
        ws.rows(&format!(
            "SELECT visit_count FROM cases WHERE case_id = '{case}'"
        ))[0][0]
            .parse::<i64>()
            .unwrap()
    };
    let before = visits(&a);
    let late_visit = |case: &str| {
        ws.put(
            "process_events/2025-11-late.csv",
            format!("{EVENTS_HEADER}{case},visit,2025-11-28 10:00:00,{dept},,,,,,LATE-VISIT\n"),
        )
    };
    late_visit(&a);
    ws.run_cli(None, "2026-10-31");
    assert_eq!(visits(&a), before + 1);
    let (derived, kept) = case_counts(&ws.out);
    assert!(
        derived > 0 && kept > all / 2,
        "{derived} derived, {kept} kept"
    );
    assert_same_as_a_full_run(&ws, &ws.input, &CASE_OUTPUTS);

    // The visit corrected to another case: the first case has no event in
    // November now, and is derived again because it had one there.
    let (b, _) = a_case_of(&ws.input, "2025-11");
    let before_b = visits(&b);
    late_visit(&b);
    ws.run_cli(None, "2026-10-31");
    assert_eq!((visits(&a), visits(&b)), (before, before_b + 1));
    assert_same_as_a_full_run(&ws, &ws.input, &CASE_OUTPUTS);

    // A case of October 2025 reopened in October 2026: the case is derived
    // again from its events of a year ago (read from their month) and the
    // new one.
    let (old, dept) = a_case_of(&ws.input, "2025-10");
    ws.put(
        "process_events/2026-10-reopened.csv",
        format!("{EVENTS_HEADER}{old},reopened,2026-10-30 09:00:00,{dept},,,,,,\n"),
    );
    ws.run_cli(None, "2026-10-31");
    assert_eq!(
        ws.rows(&format!(
            "SELECT reopen_count >= 1, status FROM cases WHERE case_id = '{old}'"
        )),
        vec![vec!["true".to_string(), "overdue".to_string()]]
    );
    assert_same_as_a_full_run(&ws, &ws.input, &CASE_OUTPUTS);

    // As-of moved back: the reopening is not known yet, and the events of
    // the last days are left out again.
    ws.run_cli(None, "2026-10-20");
    let (derived, kept) = case_counts(&ws.out);
    assert!(kept > all / 2, "{derived} derived, {kept} kept");
    let full = Workspace::new();
    full.run_cli(Some(&ws.input), "2026-10-20");
    assert_same_files(&ws.out, &full.out, &CASE_OUTPUTS);

    // As-of nine months back: most months may hold events between the two
    // as-ofs, so every case is derived.
    ws.run_cli(None, "2026-01-15");
    assert_eq!(case_counts(&ws.out).1, 0, "no case kept");
    let full = Workspace::new();
    full.run_cli(Some(&ws.input), "2026-01-15");
    assert_same_files(&ws.out, &full.out, &CASE_OUTPUTS);
}

/// The periods whose rater-model results the last run in `out` reused, and
/// those it computed and kept (from `run.json`): complete years, and the
/// complete quarters of the current year.
fn rater_periods(out: &Path) -> (Vec<String>, Vec<String>) {
    let manifest = manifest(out);
    let years = |key: &str| -> Vec<String> {
        manifest["compute"][key]
            .as_array()
            .unwrap()
            .iter()
            .map(|y| y.as_str().unwrap().to_string())
            .collect()
    };
    (years("rater_reused"), years("rater_computed"))
}

/// A run from scratch over `input` writes the same bytes under `paths`
/// (files or folders) as the runs in `ws` did, and computes every complete
/// year and quarter.
fn assert_same_as_a_full_run(ws: &Workspace, input: &Path, paths: &[&str]) {
    let full = Workspace::new();
    full.run_cli(Some(input), "2026-10-31");
    assert_eq!(
        rater_periods(&full.out),
        (vec![], strs(&["2025", "2026-Q1", "2026-Q2", "2026-Q3"]))
    );
    assert_same_files(&ws.out, &full.out, paths);
}

/// The output folders `a` and `b` hold the same bytes under `paths`.
fn assert_same_files(a: &Path, b: &Path, paths: &[&str]) {
    for folder in paths {
        let snap = |out: &Path| {
            let p = out.join(folder);
            if p.is_file() {
                vec![(folder.to_string(), std::fs::read(p).unwrap())]
            } else {
                snapshot(&p)
                    .into_iter()
                    .map(|(name, bytes)| (format!("{folder}/{name}"), bytes))
                    .collect()
            }
        };
        let (a, b) = (snap(a), snap(b));
        assert!(!a.is_empty(), "{folder} is written");
        let names = |s: &[(String, Vec<u8>)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b), "{folder}: same files");
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(x == y, "{name} differs from a full run");
        }
    }
}

/// The id of the first rating in the ratings file of `day`.
fn a_rating_of(input: &Path, day: &str) -> String {
    let text = std::fs::read_to_string(input.join(format!("ratings/{day}.csv"))).unwrap();
    let line = text.lines().nth(1).unwrap();
    line.split(',').next().unwrap().to_string()
}

/// What the rater model's results feed. Scores of closed periods are not
/// compared: a nightly run keeps them as published and lists the
/// differences in `restatements` (see model/closed_periods.rs), where a run from scratch
/// has nothing published to keep.
const RATER_OUTPUTS: [&str; 7] = [
    "cache/raters",
    "cache/cases",
    "marts/satisfaction.parquet",
    "marts/rater_effects.parquet",
    "marts/rating_flags.parquet",
    "marts/reliability.parquet",
    "marts/indicator_values.parquet",
];

#[test]
fn a_complete_period_is_computed_again_exactly_when_its_ratings_change() {
    let ws = Workspace::new();
    generate(&ws.input, "day", 14);
    // Responses of flagged raters are excluded, so that kept exclusions
    // matter too.
    let exclude =
        scorecard::policy::DEFAULT_POLICY.replace("handling = \"keep\"", "handling = \"exclude\"");
    assert_ne!(exclude, scorecard::policy::DEFAULT_POLICY);
    ws.put("policy.toml", exclude);
    ws.run_cli(None, "2026-10-31");
    let excluded = ws.rows("SELECT sum(excluded_ratings) FROM satisfaction WHERE rater_group = 'all' AND grain = 'quarter' AND period = '2026-Q2'");
    assert_ne!(
        excluded,
        vec![vec!["0".to_string()]],
        "responses are excluded in 2026-Q2"
    );
    assert_eq!(
        rater_periods(&ws.out),
        (vec![], strs(&["2025", "2026-Q1", "2026-Q2", "2026-Q3"]))
    );
    let appeal = |rating: &str| {
        let path = ws.input.join("rating_appeals.csv");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("{rating},2026-10-31 09:00:00,removed\n"));
        std::fs::write(path, text).unwrap();
    };

    // A rating of March 2026 removed on appeal: 2025's ratings are as
    // they were; 2026-Q1's are not, and the quarters after it are fitted
    // again with it.
    appeal(&a_rating_of(&ws.input, "2026-03-02"));
    ws.run_cli(None, "2026-10-31");
    assert_eq!(
        rater_periods(&ws.out),
        (strs(&["2025"]), strs(&["2026-Q1", "2026-Q2", "2026-Q3"]))
    );
    assert_same_as_a_full_run(&ws, &ws.input, &RATER_OUTPUTS);

    // A rating of September 2025 removed on appeal: 2025 is computed
    // again; the quarters of 2026 are fitted on their own ratings, and
    // their first week reaches back only into December's, which 2025's
    // third quarter does not change.
    appeal(&a_rating_of(&ws.input, "2025-09-15"));
    ws.run_cli(None, "2026-10-31");
    assert_eq!(
        rater_periods(&ws.out),
        (strs(&["2026-Q1", "2026-Q2", "2026-Q3"]), strs(&["2025"]))
    );
    assert_same_as_a_full_run(&ws, &ws.input, &RATER_OUTPUTS);

    // A rating of November 2025 removed on appeal: 2025's fourth quarter is
    // fitted again, which adjusts December's last days (the first week of
    // 2026-Q1 holds them) differently, so 2026's quarters are computed
    // again too.
    appeal(&a_rating_of(&ws.input, "2025-11-03"));
    ws.run_cli(None, "2026-10-31");
    assert_eq!(
        rater_periods(&ws.out),
        (vec![], strs(&["2025", "2026-Q1", "2026-Q2", "2026-Q3"]))
    );
    assert_same_as_a_full_run(&ws, &ws.input, &RATER_OUTPUTS);

    // Nothing changed since.
    ws.run_cli(None, "2026-10-31");
    assert_eq!(
        rater_periods(&ws.out),
        (strs(&["2025", "2026-Q1", "2026-Q2", "2026-Q3"]), vec![])
    );

    // A rating of August 2026 removed on appeal: 2026-Q3 is fitted again,
    // its pass reading only the days from late June on and continuing the
    // year's sums from where 2026-Q2's pass left them.
    appeal(&a_rating_of(&ws.input, "2026-08-03"));
    ws.run_cli(None, "2026-10-31");
    assert_eq!(
        rater_periods(&ws.out),
        (strs(&["2025", "2026-Q1", "2026-Q2"]), strs(&["2026-Q3"]))
    );
    assert_same_as_a_full_run(&ws, &ws.input, &RATER_OUTPUTS);

    // A late export of September 2025 changes its month file, which
    // 2026-Q1's pass does not read, and 2025's third quarter: only 2025 is
    // computed again.
    ws.put(
        "ratings/2025-09-late.csv",
        format!(
            "{RATINGS_HEADER}LATE1,2025-09-15 10:00:00,hr,LATE_RATER,client_internal,overall,5\n"
        ),
    );
    ws.run_cli(None, "2026-10-31");
    assert_eq!(
        rater_periods(&ws.out),
        (strs(&["2026-Q1", "2026-Q2", "2026-Q3"]), strs(&["2025"]))
    );
    assert_same_as_a_full_run(&ws, &ws.input, &RATER_OUTPUTS);

    // A late export of December 2025 changes its month file, which
    // 2026-Q1's pass reads for the days its first week reaches back to:
    // everything is computed again.
    ws.put(
        "ratings/2025-12-late.csv",
        format!(
            "{RATINGS_HEADER}LATE2,2025-12-15 10:00:00,hr,LATE_RATER,client_internal,overall,5\n"
        ),
    );
    ws.run_cli(None, "2026-10-31");
    assert_eq!(
        rater_periods(&ws.out),
        (vec![], strs(&["2025", "2026-Q1", "2026-Q2", "2026-Q3"]))
    );
    assert_same_as_a_full_run(&ws, &ws.input, &RATER_OUTPUTS);

    // An earlier as-of: 2025 is not complete at 2025-12-20, so only its
    // complete quarter with ratings (the data start in September) is kept,
    // and the folder holds no entry for the year.
    ws.run_cli(None, "2025-12-20");
    assert_eq!(rater_periods(&ws.out), (vec![], strs(&["2025-Q3"])));
    assert!(!ws.out.join("cache/raters/2025").exists());
}

#[test]
fn with_a_monthly_estimation_grain_complete_months_are_kept_and_continued() {
    let ws = Workspace::new();
    generate(&ws.input, "day", 14);
    let monthly = scorecard::policy::DEFAULT_POLICY.replace(
        "estimation_grain = \"quarter\"",
        "estimation_grain = \"month\"",
    );
    assert_ne!(monthly, scorecard::policy::DEFAULT_POLICY);
    ws.put("policy.toml", monthly);
    ws.run_cli(None, "2026-10-31");
    let months = |from: u32, to: u32| -> Vec<String> {
        (from..=to).map(|m| format!("2026-{m:02}")).collect()
    };
    // October is complete on its last day.
    assert_eq!(
        rater_periods(&ws.out),
        (vec![], [strs(&["2025"]), months(1, 10)].concat())
    );

    // A rating of August removed on appeal: January to July are kept;
    // August is fitted again, its pass continuing the third quarter's and
    // the year's sums from where July's left them, and the months after.
    let path = ws.input.join("rating_appeals.csv");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let rating = a_rating_of(&ws.input, "2026-08-03");
    text.push_str(&format!("{rating},2026-10-31 09:00:00,removed\n"));
    std::fs::write(path, text).unwrap();
    ws.run_cli(None, "2026-10-31");
    assert_eq!(
        rater_periods(&ws.out),
        ([strs(&["2025"]), months(1, 7)].concat(), months(8, 10))
    );
    let full = Workspace::new();
    full.run_cli(Some(&ws.input), "2026-10-31");
    assert_same_files(&ws.out, &full.out, &RATER_OUTPUTS);
}

#[test]
fn a_month_either_side_counts_only_with_ratings_in_the_period() {
    // The lake is partitioned in the policy's time zone at ingest
    // (Shanghai); compute then runs with the same policy in UTC, eight
    // hours behind, so October's month file may hold ratings of UTC's Q3.
    let ws = Workspace::new();
    ws.put_departments();
    let mut q3 = RATINGS_HEADER.to_string();
    let mut n = 0;
    for day in (0..92).step_by(3) {
        let date =
            chrono::NaiveDate::from_ymd_opt(2026, 7, 1).unwrap() + chrono::Duration::days(day);
        for (dept, rater, base) in [
            ("hr", "E1", 3),
            ("hr", "E2", 4),
            ("gsc", "C1", 2),
            ("gsc", "C2", 5),
        ] {
            n += 1;
            let score = 1 + (base + day as usize) % 5;
            q3.push_str(&format!(
                "Q{n},{date} 10:00:00,{dept},{rater},peer,overall,{score}\n"
            ));
        }
    }
    ws.put("ratings/q3.csv", &q3);
    ws.put(
        "ratings/october.csv",
        format!("{RATINGS_HEADER}O1,2026-10-15 10:00:00,hr,E1,peer,overall,4\n"),
    );
    let policy = ws.input.parent().unwrap().join("utc.toml");
    let utc = scorecard::policy::DEFAULT_POLICY
        .replace("timezone = \"Asia/Shanghai\"", "timezone = \"UTC\"");
    assert_ne!(utc, scorecard::policy::DEFAULT_POLICY);
    std::fs::write(&policy, utc).unwrap();
    let night = |ws: &Workspace| {
        ws.ingest().unwrap();
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_scorecard"))
            .args(["compute", "--quiet", "--as-of", "2026-10-31", "--policy"])
            .arg(&policy)
            .arg("--out")
            .arg(&ws.out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    let full_run = |ws: &Workspace| {
        let full = Workspace::new();
        for f in files_under(&ws.input) {
            let rel = f.strip_prefix(&ws.input).unwrap().to_str().unwrap();
            full.put(rel, std::fs::read(&f).unwrap());
        }
        night(&full);
        assert_eq!(rater_periods(&full.out), (vec![], strs(&["2026-Q3"])));
        assert_same_files(&ws.out, &full.out, &RATER_OUTPUTS);
    };
    night(&ws);
    assert_eq!(rater_periods(&ws.out), (vec![], strs(&["2026-Q3"])));
    // `scorecard compute` updates the manifest (render reads its as-of)
    // and keeps what the ingest before it read.
    let manifest = manifest(&ws.out);
    assert_eq!(
        (
            &manifest["command"],
            &manifest["as_of"],
            &manifest["policy"]["timezone"]
        ),
        (
            &serde_json::json!("compute"),
            &serde_json::json!("2026-10-31"),
            &serde_json::json!("UTC")
        )
    );
    assert_eq!(manifest["ingest"]["files"].as_array().unwrap().len(), 3);

    // A rating of 20 October: October's file changed, but holds no rating
    // of Q3 in UTC, so Q3's rater model is kept.
    ws.put(
        "ratings/october-20.csv",
        format!("{RATINGS_HEADER}O2,2026-10-20 10:00:00,gsc,C1,peer,overall,2\n"),
    );
    night(&ws);
    assert_eq!(rater_periods(&ws.out), (strs(&["2026-Q3"]), vec![]));
    full_run(&ws);

    // 1 October 05:00 in Shanghai is in October's file, and is 30 September
    // 21:00 in UTC: Q3 has a new rating, so it is fitted again.
    ws.put(
        "ratings/october-1.csv",
        format!("{RATINGS_HEADER}O3,2026-10-01 05:00:00,hr,E2,peer,overall,1\n"),
    );
    night(&ws);
    assert_eq!(rater_periods(&ws.out), (vec![], strs(&["2026-Q3"])));
    // October's file holds O1 to O3.
    assert_eq!(
        rows_in(&ws.out.join("lake/ratings/month=2026-10/part-0.parquet")),
        3
    );
    full_run(&ws);
}

/// Ratings month files read for their bad reviews, and kept from the last
/// run (from `run.json`).
fn bad_review_months(out: &Path) -> (u64, u64) {
    let m = manifest(out);
    let n = |key: &str| m["compute"][key].as_u64().unwrap();
    (n("bad_review_months_read"), n("bad_review_months_kept"))
}

#[test]
fn bad_reviews_are_read_again_only_from_the_month_files_that_changed() {
    let ws = Workspace::new();
    generate(&ws.input, "day", 14);
    ws.run_cli(None, "2026-10-31");
    // 14 months of ratings, September 2025 to October 2026.
    assert_eq!(bad_review_months(&ws.out), (14, 0));
    ws.run_cli(None, "2026-10-31");
    assert_eq!(bad_review_months(&ws.out), (0, 14));

    // A bad review of March 2026 arrives late, and a bad review of May is
    // removed on appeal: only March's file is read again (appeals apply to
    // the kept rows).
    let text = std::fs::read_to_string(ws.input.join("ratings/2026-03-02.csv")).unwrap();
    let dept = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(2)
        .unwrap()
        .to_string();
    ws.put(
        "ratings/late.csv",
        format!(
            "rating_id,rated_at,dept_id,rater_id,rater_group,item,score,real_name\n\
             LATE1,2026-03-10 10:00:00,{dept},LATE-RATER,client_external,overall,1,true\n"
        ),
    );
    let may = ws.rows(
        "SELECT subject_id FROM followup_status WHERE subject_kind = 'rating' \
         AND received_at >= '2026-05-01' AND received_at < '2026-06-01' ORDER BY subject_id LIMIT 1",
    );
    let removed = may[0][0].clone();
    let path = ws.input.join("rating_appeals.csv");
    let mut appeals = std::fs::read_to_string(&path).unwrap();
    appeals.push_str(&format!("{removed},2026-10-31 09:00:00,removed\n"));
    std::fs::write(path, appeals).unwrap();
    ws.run_cli(None, "2026-10-31");
    assert_eq!(bad_review_months(&ws.out), (1, 13));
    let listed = |id: &str| {
        ws.rows(&format!(
            "SELECT subject_id FROM followup_status WHERE subject_id = '{id}'"
        ))
        .len()
    };
    assert_eq!((listed("LATE1"), listed(&removed)), (1, 0));
    assert_same_as_a_full_run(
        &ws,
        &ws.input,
        &[
            "marts/followup_status.parquet",
            "marts/followup_rejects.parquet",
        ],
    );
}
