//! Fuzzing ingest: random and hostile input in every format must never
//! panic, and every record read must be accounted for as stored or
//! rejected.
//!
//! The suite runs a few hundred seeded cases. For a long run:
//! `SCORECARD_FUZZ_CASES=20000 cargo test --test it fuzz -- --nocapture`
//! (`SCORECARD_FUZZ_SEED` picks another sequence).

use std::panic::{catch_unwind, AssertUnwindSafe};

use polars::prelude::*;
use scorecard::ingest;
use scorecard::policy::{load_text, PolicySource};
use scorecard::progress::Progress;

use crate::{policy_with, Rng, Workspace};

const COLUMNS: [&str; 7] = [
    "rating_id",
    "rated_at",
    "dept_id",
    "rater_id",
    "rater_group",
    "item",
    "score",
];

/// Values that have broken parsers before, and ordinary ones.
fn tricky(rng: &mut Rng, column: usize) -> String {
    let ordinary = match column {
        0 => format!("r{}", rng.below(50)),
        1 => "2026-03-02 10:00:00".to_string(),
        2 => ["hr", "gsc", "legal"][rng.below(3)].to_string(),
        3 => format!("E{}", rng.below(20)),
        4 => "client_internal".to_string(),
        5 => ["overall", "attitude"][rng.below(2)].to_string(),
        _ => (1 + rng.below(5)).to_string(),
    };
    if rng.chance(0.6) {
        return ordinary;
    }
    let pool: [&str; 32] = [
        "",
        " ",
        "NaN",
        "nan",
        "inf",
        "-inf",
        "1e309",
        "-1e309",
        "-0",
        "0",
        "5.0000000000000001",
        "１",
        "abc",
        "\0",
        "\u{feff}",
        "a,b",
        "say \"hi\"",
        "line\nbreak",
        "line\r\nbreak",
        "2026-03-08 02:30:00",
        "2026-11-01 01:30:00",
        "2026-12-31T23:59:59Z",
        "2027-01-01T00:00:00+14:00",
        "2026-W53",
        "2028-02-29 12:00:00",
        "2026-02-29 12:00:00",
        "9999-12-31T23:59:59Z",
        "-0001-01-01T00:00:00Z",
        "人力资源部",
        "مرحبا 🎉",
        "<script>",
        "../../x",
    ];
    if rng.chance(0.03) {
        return "x".repeat(100_000 + rng.below(100_000));
    }
    pool[rng.below(pool.len())].to_string()
}

struct Case {
    bytes: Vec<u8>,
    ext: &'static str,
    /// Records written, when the file's record structure is intact.
    records: Option<u64>,
}

fn make_case(rng: &mut Rng) -> Case {
    let n = rng.below(40);
    let rows: Vec<Vec<String>> = (0..n)
        .map(|_| (0..COLUMNS.len()).map(|c| tricky(rng, c)).collect())
        .collect();
    let mut case = match rng.below(3) {
        0 => {
            let mut w = csv::WriterBuilder::new()
                .flexible(true)
                .from_writer(Vec::new());
            w.write_record(COLUMNS).unwrap();
            for r in &rows {
                let mut r = r.clone();
                match rng.below(20) {
                    0 => {
                        r.pop();
                    }
                    1 => r.push("extra".into()),
                    _ => {}
                }
                w.write_record(&r).unwrap();
            }
            Case {
                bytes: w.into_inner().unwrap(),
                ext: "csv",
                records: Some(n as u64),
            }
        }
        1 => {
            let mut out = Vec::new();
            for r in &rows {
                if rng.chance(0.05) {
                    out.extend_from_slice(b"{\"rating_id\": [1, 2], \"score\": {}}\n");
                    continue;
                }
                if rng.chance(0.05) {
                    out.extend_from_slice(b"{not json\n");
                    continue;
                }
                let obj: serde_json::Map<String, serde_json::Value> = COLUMNS
                    .iter()
                    .zip(r)
                    .map(|(k, v)| {
                        let v = match v.parse::<f64>() {
                            Ok(x) if rng.chance(0.5) && x.is_finite() => serde_json::json!(x),
                            _ => serde_json::json!(v),
                        };
                        (k.to_string(), v)
                    })
                    .collect();
                out.extend(serde_json::to_vec(&obj).unwrap());
                out.push(b'\n');
            }
            Case {
                bytes: out,
                ext: "jsonl",
                records: Some(n as u64),
            }
        }
        _ => {
            let cols: Vec<Column> = COLUMNS
                .iter()
                .enumerate()
                .map(|(c, name)| {
                    let v: Vec<Option<&str>> = rows
                        .iter()
                        .map(|r| {
                            if r[c].is_empty() && rng.chance(0.5) {
                                None
                            } else {
                                Some(r[c].as_str())
                            }
                        })
                        .collect();
                    Column::new((*name).into(), v)
                })
                .collect();
            let mut df = DataFrame::new(n, cols).unwrap();
            let mut buf = Vec::new();
            ParquetWriter::new(&mut buf).finish(&mut df).unwrap();
            Case {
                bytes: buf,
                ext: "parquet",
                records: Some(n as u64),
            }
        }
    };
    // Damage: truncation, random bytes, invalid UTF-8, a NUL, CR line ends.
    match rng.below(12) {
        0 if !case.bytes.is_empty() => {
            let cut = rng.below(case.bytes.len());
            case.bytes.truncate(cut);
            case.records = None;
        }
        1 => {
            case.bytes = (0..rng.below(2000)).map(|_| rng.next_u64() as u8).collect();
            case.records = None;
        }
        2 if !case.bytes.is_empty() => {
            let at = rng.below(case.bytes.len());
            case.bytes.insert(at, 0xFF);
            case.records = None;
        }
        3 if case.ext != "parquet" => {
            case.bytes = String::from_utf8_lossy(&case.bytes)
                .replace('\n', "\r\n")
                .into_bytes();
        }
        _ => {}
    }
    case
}

fn policy() -> scorecard::policy::LoadedPolicy {
    // New York: local times in the spring-forward gap must be rejected.
    load_text(
        policy_with(&[
            (
                "timezone = \"Asia/Shanghai\"",
                "timezone = \"America/New_York\"",
            ),
            ("max_reject_share = 0.05", "max_reject_share = 1.0"),
        ]),
        PolicySource::Embedded,
    )
    .unwrap()
}

fn case_rng(seed: u64, i: u64) -> Rng {
    Rng(seed.wrapping_mul(1_000_003).wrapping_add(i))
}

/// Found by the long fuzz run (seed 7, case 3978): a byte inserted into a
/// Parquet file's data page made polars' decoder panic. It is now refused
/// as a damaged file.
#[test]
fn damaged_parquet_page_is_refused_not_a_crash() {
    let case = make_case(&mut case_rng(7, 3978));
    assert_eq!(case.ext, "parquet");
    let ws = Workspace::new();
    ws.put_departments();
    ws.put("ratings.parquet", &case.bytes);
    let err = ingest::ingest(&ws.input, None, &policy(), &Progress::silent()).unwrap_err();
    assert_eq!(scorecard::error::exit_code(&err), 3);
    assert!(
        format!("{err}").contains("ratings.parquet: not a readable Parquet file"),
        "{err}"
    );
}

/// The number in environment variable `name`, or `default` when it is
/// unset or not a number.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn ingest_never_panics_and_accounts_for_every_record() {
    let cases = env_number("SCORECARD_FUZZ_CASES", 300);
    let seed = env_number("SCORECARD_FUZZ_SEED", 2026);
    let policy = policy();
    let started = std::time::Instant::now();
    let (mut stored, mut rejected, mut failed_files) = (0u64, 0u64, 0u64);
    let ws = Workspace::new();
    ws.put_departments();
    for i in 0..cases {
        let mut rng = case_rng(seed, i);
        let case = make_case(&mut rng);
        let file = format!("ratings.{}", case.ext);
        for ext in ["csv", "jsonl", "parquet"] {
            let _ = std::fs::remove_file(ws.input.join(format!("ratings.{ext}")));
        }
        ws.put(&file, &case.bytes);
        let result = catch_unwind(AssertUnwindSafe(|| {
            ingest::ingest(&ws.input, None, &policy, &Progress::silent())
        }));
        let result = result.unwrap_or_else(|_| panic!("case {i} (seed {seed}) panicked on {file}"));
        match result {
            Ok(report) => {
                let f = report
                    .files
                    .iter()
                    .find(|f| f.table == "ratings")
                    .expect("the file was read");
                assert_eq!(
                    f.records,
                    f.valid + f.rejected,
                    "case {i}: records unaccounted for"
                );
                if let Some(n) = case.records {
                    assert_eq!(
                        f.records, n,
                        "case {i}: {n} records written, {} read",
                        f.records
                    );
                }
                stored += f.valid;
                rejected += f.rejected;
            }
            Err(e) => {
                // Only a whole-file problem may fail the read, and it says
                // which file.
                assert_eq!(scorecard::error::exit_code(&e), 3, "case {i}: {e:#}");
                assert!(format!("{e}").contains(&file), "case {i}: {e}");
                failed_files += 1;
            }
        }
    }
    eprintln!(
        "fuzz: {cases} cases in {:.1} s: {stored} records stored, {rejected} rejected, {failed_files} files refused whole",
        started.elapsed().as_secs_f64()
    );
}

/// Every file under `dir` but the ingest log (it records when files were
/// read), as (relative path, bytes) in path order.
fn lake_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_dir() {
                stack.push(p);
            } else if !rel.starts_with("lake/_ingest_log") {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Ingests `input` into a new folder `out` with the given CSV reader; the
/// lake and rejects, or the error.
fn ingest_with_reader(
    input: &std::path::Path,
    out: &std::path::Path,
    policy: &scorecard::policy::LoadedPolicy,
    csv: ingest::source::CsvReader,
) -> Result<Vec<(String, Vec<u8>)>, String> {
    let _ = std::fs::remove_dir_all(out);
    let dir = scorecard::lake::OutDir::new(out);
    let mut staging = scorecard::lake::Staging::new(&dir).unwrap();
    let options = ingest::Options {
        csv,
        ..ingest::Options::default()
    };
    match ingest::ingest_with(
        input,
        Some((&dir, &mut staging)),
        policy,
        &Progress::silent(),
        &options,
    ) {
        Ok(_) => {
            staging.publish().unwrap();
            let mut files = lake_files(&out.join("lake"));
            files.extend(lake_files(&out.join("rejects")));
            Ok(files)
        }
        Err(e) => Err(format!("{e:#}")),
    }
}

fn assert_same(
    fast: Result<Vec<(String, Vec<u8>)>, String>,
    exact: Result<Vec<(String, Vec<u8>)>, String>,
    what: &str,
) {
    match (fast, exact) {
        (Ok(a), Ok(b)) => {
            let names = |f: &[(String, Vec<u8>)]| f.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
            assert_eq!(names(&a), names(&b), "{what}");
            for ((name, x), (_, y)) in a.iter().zip(&b) {
                assert!(x == y, "{what}: {name} differs between the CSV readers");
            }
        }
        (a, b) => assert_eq!(a.err(), b.err(), "{what}"),
    }
}

/// The fast CSV reader (csv-core over the whole file) and the reference
/// (the `csv` crate a record at a time) give the same lake and rejects,
/// byte for byte, or the same error: on every CSV fuzz case (quotes,
/// line breaks inside fields, ragged rows, blank lines, CR line ends, bad
/// values) and on `data_samples/` (GB18030 and bad records included).
#[test]
fn the_fast_csv_reader_gives_what_the_reference_reader_gives() {
    let cases = env_number("SCORECARD_FUZZ_CASES", 300);
    let policy = policy();
    let ws = Workspace::new();
    ws.put_departments();
    let (fast_out, exact_out) = (ws.out.join("fast"), ws.out.join("exact"));
    let mut compared = 0;
    for i in 0..cases {
        let case = make_case(&mut case_rng(2026, i));
        if case.ext != "csv" {
            continue;
        }
        ws.put("ratings.csv", &case.bytes);
        let fast = ingest_with_reader(
            &ws.input,
            &fast_out,
            &policy,
            ingest::source::CsvReader::Fast,
        );
        let exact = ingest_with_reader(
            &ws.input,
            &exact_out,
            &policy,
            ingest::source::CsvReader::Exact,
        );
        if fast
            .as_ref()
            .is_ok_and(|f| f.iter().any(|(n, _)| n.starts_with("rejects")))
        {
            compared += 1;
        }
        assert_same(fast, exact, &format!("fuzz case {i}"));
    }
    assert!(compared > cases / 10, "only {compared} CSV cases ingested");

    let samples = crate::samples();
    let policy = scorecard::stages::load_policy(Some(&samples.join("policy.toml")), &[])
        .unwrap()
        .0;
    let fast = ingest_with_reader(
        &samples,
        &fast_out,
        &policy,
        ingest::source::CsvReader::Fast,
    );
    let exact = ingest_with_reader(
        &samples,
        &exact_out,
        &policy,
        ingest::source::CsvReader::Exact,
    );
    let rejects = ParquetReader::new(std::io::Cursor::new(
        fast.as_ref()
            .unwrap()
            .iter()
            .find(|(n, _)| n == "rejects.parquet")
            .unwrap()
            .1
            .clone(),
    ))
    .finish()
    .unwrap();
    assert_eq!(rejects.height(), 14, "data_samples' bad records");
    assert_same(fast, exact, "data_samples");
}
