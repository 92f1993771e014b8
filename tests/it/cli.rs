//! The command line end to end: the README's run on data_samples/, exit
//! statuses, init, check and query.

use std::path::Path;
use std::process::{Command, Output};

use chrono::Datelike;

use crate::{manifest, samples, Workspace};

fn scorecard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_scorecard"))
        .args(args)
        .output()
        .expect("run scorecard")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_on_the_samples_writes_every_output_and_is_idempotent() {
    let ws = Workspace::new();
    let out = ws.out.to_str().unwrap();
    let input = samples();
    let args = [
        "run",
        "--quiet",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out,
        "--as-of",
        "2026-10-31",
    ];
    let first = scorecard(&args);
    assert!(first.status.success(), "{}", text(&first.stderr));
    for p in [
        "lake/departments.parquet",
        "lake/_ingest_log.parquet",
        "rejects/rejects.parquet",
        "site/index.html",
        "run.json",
        "policy.toml",
    ] {
        assert!(ws.out.join(p).is_file(), "{p} is missing");
    }
    for t in ["ratings", "process_events", "measurements"] {
        let month = ws.out.join("lake").join(t).join("month=2026-10");
        assert!(month.is_dir(), "{t} has no October partition");
    }
    for t in ["rating_appeals", "complaints", "incidents"] {
        assert!(ws.out.join("lake").join(t).is_dir(), "{t} is missing");
    }
    // The policy used is copied beside the outputs: the samples' own file.
    assert_eq!(
        std::fs::read_to_string(ws.out.join("policy.toml")).unwrap(),
        std::fs::read_to_string(input.join("policy.toml")).unwrap()
    );

    let m1 = manifest(&ws.out);
    assert_eq!(m1["as_of"], "2026-10-31");
    // The generator plants fourteen invalid records (see commands/generate/world.rs: six bad
    // ratings, a truncated JSON line and an unknown event, one complaint
    // with valid=maybe, one measurement with no value, one improvement plan
    // due before it was opened; and in commands/generate/staff.rs three
    // staff rows: an unknown department, a manager without one, and a row
    // overlapping another of its person).
    assert_eq!(
        m1["rejects_total"], 14,
        "{:#}",
        m1["ingest"]["rejects_by_reason"]
    );
    let reasons = &m1["ingest"]["rejects_by_reason"];
    for (reason, n) in [
        ("out_of_range", 1),
        ("unknown_department", 2),
        ("manager_without_department", 1),
        ("overlapping_validity", 1),
        ("bad_timestamp", 1),
        ("bad_value", 2),
        ("missing_value", 1),
        ("bad_number", 1),
        ("bad_json", 1),
        ("bad_bool", 1),
        ("incomplete_measurement", 1),
        ("due_before_opened", 1),
    ] {
        assert_eq!(reasons[reason], n, "{reason}");
    }
    assert_eq!(m1["ingest"]["tables"]["departments"]["rows_after"], 14);

    let second = scorecard(&args);
    assert!(second.status.success(), "{}", text(&second.stderr));
    let m2 = manifest(&ws.out);
    for (table, c) in m1["ingest"]["tables"].as_object().unwrap() {
        assert_eq!(
            c["rows_after"], m2["ingest"]["tables"][table]["rows_after"],
            "{table}"
        );
        assert!(c["rows_after"].as_u64().unwrap() > 0, "{table} is empty");
    }
    assert!(m2["ingest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["status"] == "unchanged"));
    assert_eq!(m2["rejects_total"], 14);

    let page = std::fs::read_to_string(ws.out.join("site/index.html")).unwrap();
    assert!(page.contains("人力资源部"), "department names are listed");
    let quality = std::fs::read_to_string(ws.out.join("site/data-quality.html")).unwrap();
    assert!(quality.contains("unknown_department"), "rejects are listed");
    assert!(
        page.contains("data-quality.html#rejects"),
        "the overview links to them"
    );
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external resources"
    );
}

#[test]
fn exit_status_is_2_for_a_bad_policy_and_every_problem_is_listed() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put_policy(&[
        ("locale = \"zh-CN\"", "locale = \"de\""),
        ("max_reject_share = 0.05", "max_reject_share = 5"),
    ]);
    let o = scorecard(&[
        "run",
        "--input",
        ws.input.to_str().unwrap(),
        "--out",
        ws.out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("has 2 problems"), "{err}");
    assert!(err.contains("locale: `de` is not supported"), "{err}");
    assert!(
        err.contains("ingest.max_reject_share: 5 must be between 0 and 1"),
        "{err}"
    );
    assert!(!ws.out.exists(), "nothing is written for a bad policy");
}

#[test]
fn exit_status_is_3_when_rejects_pass_the_limit() {
    let ws = Workspace::new();
    ws.put_departments();
    // 60 records (at least min_records_for_limit = 50), 4 rejected: 6.7% > 5%.
    let mut csv = String::from("rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n");
    for i in 0..56 {
        csv.push_str(&format!("r{i},2026-03-01 10:00:00,hr,E1,peer,overall,4\n"));
    }
    for i in 0..4 {
        csv.push_str(&format!("x{i},2026-03-01 10:00:00,hr,E1,peer,overall,0\n"));
    }
    ws.put("ratings.csv", csv);
    let o = scorecard(&[
        "ingest",
        "--input",
        ws.input.to_str().unwrap(),
        "--out",
        ws.out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(3));
    let err = text(&o.stderr);
    assert!(
        err.contains("ratings.csv: 4 of 60 records rejected (6.7%)"),
        "{err}"
    );
    assert!(
        err.contains("line 58, column score: score 0 is outside its scale 1-5"),
        "{err}"
    );
    assert!(!ws.out.join("lake").exists());
}

#[test]
fn compute_needs_a_lake() {
    let ws = Workspace::new();
    let o = scorecard(&["compute", "--out", ws.out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("has no lake/"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn init_writes_the_default_policy_and_never_overwrites_it() {
    let ws = Workspace::new();
    let dir = ws.input.join("starter");
    let o = scorecard(&["init", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(dir.join("policy.toml")).unwrap(),
        scorecard::policy::DEFAULT_POLICY
    );
    assert!(dir.join("ratings").is_dir() && dir.join("README.md").is_file());
    let again = scorecard(&["init", dir.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("already exists"));
}

#[test]
fn check_reports_rejects_and_writes_nothing() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score\nr1,2026-03-01 10:00:00,hr,E1,peer,overall,4\nr2,2026-03-01 10:00:00,zz,E1,peer,overall,4\n",
    );
    let before: Vec<_> = std::fs::read_dir(&ws.input)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    let o = Command::new(env!("CARGO_BIN_EXE_scorecard"))
        .args(["check", "--input", ws.input.to_str().unwrap()])
        .current_dir(ws.input.parent().unwrap())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert!(
        stdout.contains(
            "ratings.csv:3 column dept_id: department `zz` is not in the departments table"
        ),
        "{stdout}"
    );
    let after: Vec<_> = std::fs::read_dir(&ws.input)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(before, after);
    assert!(!ws.out.exists() && !ws.input.parent().unwrap().join("out").exists());
}

#[test]
fn query_runs_sql_over_the_lake_as_csv() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.ingest().unwrap();
    let o = scorecard(&[
        "query",
        "--out",
        ws.out.to_str().unwrap(),
        "--format",
        "csv",
        "SELECT dept_id, dept_type FROM departments WHERE parent_id IS NOT NULL ORDER BY dept_id",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "dept_id,dept_type\nlegal,professional_support\n"
    );
}

#[test]
fn every_department_has_a_score_for_every_month_quarter_and_year_of_the_samples() {
    let ws = Workspace::new();
    let input = samples();
    let o = scorecard(&[
        "run",
        "--quiet",
        "--input",
        input.to_str().unwrap(),
        "--out",
        ws.out.to_str().unwrap(),
        "--as-of",
        "2026-10-31",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // 14 departments; November 2024 to October 2026 is 24 months, 2024-Q4 to
    // 2026-Q4 is 9 quarters, 2024 to 2026 is 3 years.
    let q = "SELECT grain, COUNT(*) AS scored FROM department_scores \
             WHERE total_score IS NOT NULL AND grain <> 'week' GROUP BY grain ORDER BY grain";
    let o = scorecard(&[
        "query",
        "--out",
        ws.out.to_str().unwrap(),
        "--format",
        "csv",
        q,
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "grain,scored\nmonth,336\nquarter,126\nyear,42\n"
    );
    // 2026-Q4 and 2026 are not complete at 31 October: no grade, no rank.
    let q =
        "SELECT COUNT(*) AS graded FROM department_scores WHERE is_partial AND grade IS NOT NULL";
    let o = scorecard(&[
        "query",
        "--out",
        ws.out.to_str().unwrap(),
        "--format",
        "csv",
        q,
    ]);
    assert_eq!(text(&o.stdout), "graded\n0\n");
    // The generator builds improving departments (every 3rd of the list:
    // hr, facilities, socsec, legal, procurement) and declining ones (gsc,
    // finance); the monthly satisfaction trends find some of each, and
    // never the opposite direction.
    let q = "SELECT dept_id, direction FROM trends WHERE grain = 'month' AND indicator_id = 'satisfaction' \
             AND direction <> 'no_trend' ORDER BY dept_id";
    let o = scorecard(&[
        "query",
        "--out",
        ws.out.to_str().unwrap(),
        "--format",
        "csv",
        q,
    ]);
    let found: Vec<(String, String)> = text(&o.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let (d, t) = l.split_once(',').unwrap();
            (d.to_string(), t.to_string())
        })
        .collect();
    let improving = ["hr", "facilities", "socsec", "legal", "procurement"];
    let declining = ["gsc", "finance"];
    assert!(
        found
            .iter()
            .any(|(d, t)| t == "improving" && improving.contains(&d.as_str())),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|(d, t)| t == "declining" && declining.contains(&d.as_str())),
        "{found:?}"
    );
    assert!(
        !found
            .iter()
            .any(|(d, t)| t == "declining" && improving.contains(&d.as_str())),
        "{found:?}"
    );
    assert!(
        !found
            .iter()
            .any(|(d, t)| t == "improving" && declining.contains(&d.as_str())),
        "{found:?}"
    );
    // Every example query for data teams runs on the samples' marts.
    let mut examples: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/examples"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
    examples.sort();
    assert!(examples.len() >= 5);
    for q in examples {
        let o = scorecard(&[
            "query",
            "--out",
            ws.out.to_str().unwrap(),
            "--format",
            "csv",
            q.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}: {}", q.display(), text(&o.stderr));
        assert!(
            text(&o.stdout).lines().count() > 1,
            "{} returned no rows",
            q.display()
        );
    }
    // The generator's confirmed incident (June 2026, the second external
    // department: realestate) vetoes its June, Q2 and 2026 results.
    let q = "SELECT grain, period, grade FROM department_scores WHERE veto ORDER BY grain, period";
    let o = scorecard(&[
        "query",
        "--out",
        ws.out.to_str().unwrap(),
        "--format",
        "csv",
        q,
    ]);
    // Its week (ungraded: weeks have no audit data, so no total) is read
    // from the sample file itself.
    let incidents = std::fs::read_to_string(input.join("incidents.jsonl")).unwrap();
    let veto: serde_json::Value = incidents
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["kind"] == "major_service_incident" && v["confirmed"] == true)
        .unwrap();
    let day =
        chrono::NaiveDate::parse_from_str(&veto["occurred_at"].as_str().unwrap()[..10], "%Y-%m-%d")
            .unwrap();
    let week = day.iso_week();
    assert_eq!(
        text(&o.stdout),
        format!(
            "grain,period,grade\nmonth,2026-06,unqualified\nquarter,2026-Q2,unqualified\nweek,{}-W{:02},\nyear,2026,\n",
            week.year(),
            week.week()
        )
    );
}

/// Writes an indicator folder next to a policy that points at it.
fn policy_with_indicators(ws: &Workspace, files: &[(&str, &str)]) {
    ws.put_policy(&[("indicators = \"\"", "indicators = \"my-indicators\"")]);
    for (name, text) in files {
        ws.put(&format!("my-indicators/{name}"), *text);
    }
}

#[test]
fn bad_indicator_definitions_fail_before_any_data_is_read() {
    let ws = Workspace::new();
    ws.put_departments();
    // This file would fail ingest with exit 3; the definitions fail first.
    ws.put("ratings.csv", "rating_id\nr1\n");
    policy_with_indicators(
        &ws,
        &[
            (
                "broken_sql.sql",
                "-- id: broken_sql\n-- name_zh: 坏\n-- name_en: Broken\n-- unit: %\n-- category: result\n\
                 -- direction: higher\n-- aggregate: ratio\nSELEC dept_id FROM cases",
            ),
            (
                "no_numerator.sql",
                "-- id: no_numerator\n-- name_zh: 缺\n-- name_en: Missing\n-- unit: %\n-- category: result\n\
                 -- direction: higher\n-- aggregate: ratio\nSELECT dept_id, received_at AS at, 1 AS denominator FROM cases",
            ),
        ],
    );
    let o = scorecard(&[
        "run",
        "--input",
        ws.input.to_str().unwrap(),
        "--out",
        ws.out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("my-indicators/broken_sql.sql: the SQL does not run"),
        "{err}"
    );
    assert!(
        err.contains("my-indicators/no_numerator.sql: the query must return column(s) numerator; it returns dept_id, at, denominator"),
        "{err}"
    );
    assert!(!ws.out.exists());
}

#[test]
fn unknown_indicator_id_in_the_policy_fails_naming_the_key() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put_policy(&[(
        "[versions.indicators.internal_service]\n",
        "[versions.indicators.internal_service]\nhappiness_index = { target = 1, weight = 1, rule = \"ratio\" }\n",
    )]);
    let o = scorecard(&["check", "--input", ws.input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("versions[0].indicators.internal_service.happiness_index: no indicator `happiness_index` is defined"),
        "{err}"
    );
    // The extra point also breaks the type's weights: reported in the same run.
    assert!(
        err.contains(
            "versions[0].indicators.internal_service (weights): weights add up to 101, not 100"
        ),
        "{err}"
    );
}

#[test]
fn an_analyst_adds_an_indicator_by_adding_a_file() {
    let ws = Workspace::new();
    ws.put_departments();
    ws.put(
        "complaints.csv",
        "complaint_id,received_at,dept_id,severity,valid\n\
         k1,2026-03-03 09:00:00,gsc,general,true\n\
         k2,2026-03-04 09:00:00,gsc,major,true\n\
         k3,2026-03-05 09:00:00,gsc,major,false\n",
    );
    policy_with_indicators(
        &ws,
        &[(
            "valid_complaints.sql",
            "-- id: valid_complaints\n-- name_zh: 有效投诉数\n-- name_en: Valid complaints\n-- unit: complaints\n\
             -- category: result\n-- direction: lower\n-- aggregate: ratio\n\
             SELECT dept_id, received_at AS at, CASE WHEN valid THEN 1 ELSE 0 END AS numerator, 1 AS denominator FROM complaints",
        )],
    );
    let o = scorecard(&[
        "run",
        "-q",
        "--input",
        ws.input.to_str().unwrap(),
        "--out",
        ws.out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    // Two of three complaints are valid: 2/3 with scale 1.
    let out = ws.out.join("valid.csv");
    let o = scorecard(&[
        "query",
        "--out",
        ws.out.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
        "SELECT period, ROUND(value, 4) AS value, numerator, denominator FROM indicator_values \
         WHERE indicator_id = 'valid_complaints' AND grain = 'month'",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(out).unwrap(),
        "period,value,numerator,denominator\n2026-03,0.6667,2.0,3.0\n"
    );
}
