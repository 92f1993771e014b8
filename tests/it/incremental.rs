//! The nightly run: only new files are read, only the month partitions they
//! touch are rewritten, and the result equals a run from scratch.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::{files_under, snapshot, strs, Workspace, RATINGS_HEADER};

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

/// `scorecard generate` of a small set (6 departments, 3 months).
fn generate(out: &Path, split: &str) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_scorecard"))
        .args([
            "generate",
            "--quiet",
            "--departments",
            "6",
            "--months",
            "3",
            "--ratings",
            "3000",
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
    generate(&day, "day");
    generate(&month, "month");
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
    let all = ws.input.join("all");
    generate(&all, "day");

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
    let lake = ws.out.join("lake");
    let stamps = modified(&lake);

    // Tonight: the same folder with the last day's files added.
    ws.run_cli(Some(&all), "2026-10-31");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ws.out.join("run.json")).unwrap()).unwrap();
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

    // A run from scratch over the same files gives the same bytes.
    let full = Workspace::new();
    full.run_cli(Some(&all), "2026-10-31");
    for folder in ["lake", "marts", "site"] {
        let (a, b) = (
            snapshot(&ws.out.join(folder)),
            snapshot(&full.out.join(folder)),
        );
        let names = |s: &[(String, Vec<u8>)]| s.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b), "{folder}: same files");
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(x == y, "{folder}/{name} differs from a full run");
        }
    }
}
