//! Stage 1, ingest: raw exports -> validated, deduplicated Parquet lake.
//!
//! Consumes the input folder (DESIGN.md section 5) and the existing lake;
//! produces `lake/<table>/month=YYYY-MM/part-0.parquet` (departments
//! unpartitioned), `rejects/rejects.parquet` and the ingest log
//! `lake/_ingest_log.parquet`. Files already ingested with the same content
//! (SHA-256) are skipped, so re-running adds nothing; a changed file is read
//! again and its records replace earlier versions with the same key.
//!
//! Nothing is published until every file has been read and checked: a file
//! missing a required column, undecodable, or over the reject limit fails the
//! run (exit 3) with the lake and rejects untouched.

pub mod fields;
pub mod source;
pub mod tables;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use anyhow::{Context, Result};
use chrono_tz::Tz;
use polars::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::lake::{self, OutDir, Staging};
use crate::policy::{hex, LoadedPolicy};
use crate::progress::Progress;
use source::{FileError, InputFile, RawRecord};
use tables::{Key, Kind, TableSpec};

/// Why a record was rejected. The code (`as_str`) is what `rejects.reason`
/// holds; the message beside it says what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    MissingValue,
    BadTimestamp,
    NonexistentLocalTime,
    BadDate,
    BadNumber,
    OutOfRange,
    BadValue,
    BadBool,
    UnknownDepartment,
    UnknownDeptType,
    BadScale,
    IncompleteMeasurement,
    BadPeriod,
    RaggedRow,
    BadJson,
    NotScalar,
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Reason {
    pub const ALL: [Reason; 16] = [
        Reason::MissingValue,
        Reason::BadTimestamp,
        Reason::NonexistentLocalTime,
        Reason::BadDate,
        Reason::BadNumber,
        Reason::OutOfRange,
        Reason::BadValue,
        Reason::BadBool,
        Reason::UnknownDepartment,
        Reason::UnknownDeptType,
        Reason::BadScale,
        Reason::IncompleteMeasurement,
        Reason::BadPeriod,
        Reason::RaggedRow,
        Reason::BadJson,
        Reason::NotScalar,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MissingValue => "missing_value",
            Reason::BadTimestamp => "bad_timestamp",
            Reason::NonexistentLocalTime => "nonexistent_local_time",
            Reason::BadDate => "bad_date",
            Reason::BadNumber => "bad_number",
            Reason::OutOfRange => "out_of_range",
            Reason::BadValue => "bad_value",
            Reason::BadBool => "bad_bool",
            Reason::UnknownDepartment => "unknown_department",
            Reason::UnknownDeptType => "unknown_dept_type",
            Reason::BadScale => "bad_scale",
            Reason::IncompleteMeasurement => "incomplete_measurement",
            Reason::BadPeriod => "bad_period",
            Reason::RaggedRow => "ragged_row",
            Reason::BadJson => "bad_json",
            Reason::NotScalar => "not_scalar",
        }
    }
}

/// A rejected record, as stored in `rejects/rejects.parquet`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reject {
    pub table: String,
    pub file: String,
    pub line: u64,
    pub column: Option<String>,
    pub reason: Reason,
    pub message: String,
    pub raw: String,
}

/// A typed value of one field.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    Text(String),
    Ts(i64),
    Date(i32),
    Num(f64),
    Bool(bool),
}

/// A record that passed validation.
#[derive(Debug, Clone)]
struct Row {
    line: u64,
    vals: Vec<Val>,
    /// Raw text, kept only for departments (checked again once all are known).
    raw: String,
}

/// What happened to one input file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileReport {
    pub table: String,
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
    pub format: String,
    pub encoding: String,
    /// `new`, `changed` or `unchanged` (skipped: same content as before).
    pub status: String,
    pub records: u64,
    pub valid: u64,
    pub rejected: u64,
}

/// Rows per lake table before and after an ingest.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableCount {
    pub rows_before: usize,
    pub rows_after: usize,
    pub valid_read: usize,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct IngestReport {
    pub files: Vec<FileReport>,
    pub tables: BTreeMap<String, TableCount>,
    pub rejects_new: usize,
    pub rejects_by_reason: BTreeMap<String, usize>,
    /// Up to three rejected records per reason, for the log and the site.
    pub reject_examples: Vec<Reject>,
    /// Entries of the input folder that are not a known table.
    pub ignored: Vec<String>,
    /// Latest event date in the lake (policy time zone), `YYYY-MM-DD`.
    pub latest_event: Option<String>,
}

/// Input problems that fail the run with exit status 3.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_failures(.0))]
pub struct InputFailure(pub Vec<String>);

fn render_failures(f: &[String]) -> String {
    let mut s = format!(
        "input data has {} problem{}; nothing was published:",
        f.len(),
        if f.len() == 1 { "" } else { "s" }
    );
    for m in f {
        s.push_str("\n  - ");
        s.push_str(m);
    }
    s
}

/// Everything read from one file.
struct FileResult {
    file: InputFile,
    report: FileReport,
    rows: Vec<Row>,
    rejects: Vec<Reject>,
}

/// Runs ingest from `input` into the lake of `out`; with `out = None` it
/// only reads and validates (`scorecard check`), as if the lake were empty.
pub fn ingest(
    input: &Path,
    target: Option<(&OutDir, &mut Staging)>,
    policy: &LoadedPolicy,
    progress: &Progress,
) -> Result<IngestReport> {
    let (out, mut staging) = match target {
        Some((o, s)) => (Some(o), Some(s)),
        None => (None, None),
    };
    if !input.is_dir() {
        return Err(crate::Failure::Usage(format!(
            "input folder {} does not exist or is not a folder",
            input.display()
        ))
        .into());
    }
    let (files, ignored) = source::discover(input)
        .with_context(|| format!("cannot list input folder {}", input.display()))?;
    let mut report = IngestReport {
        ignored,
        ..Default::default()
    };
    for name in &report.ignored {
        progress.warn(&format!(
            "ignoring {name}: not one of the input tables ({})",
            tables::ALL
                .iter()
                .map(|t| t.name)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }

    // What was ingested before: (table, file) -> sha256.
    let log = match out {
        Some(out) => read_log(out)?,
        None => Vec::new(),
    };
    let known_hashes: HashSet<(String, String)> = log
        .iter()
        .map(|r| (r.table.clone(), r.sha256.clone()))
        .collect();
    let known_paths: HashSet<(String, String)> = log
        .iter()
        .map(|r| (r.table.clone(), r.file.clone()))
        .collect();

    // Read bytes and hashes; skip what was ingested with the same content.
    let mut to_read = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f.path)
            .with_context(|| format!("cannot read input file {}", f.path.display()))?;
        let sha = hex(&Sha256::digest(&bytes));
        let status = if known_hashes.contains(&(f.table.name.to_string(), sha.clone())) {
            "unchanged"
        } else if known_paths.contains(&(f.table.name.to_string(), f.rel.clone())) {
            "changed"
        } else {
            "new"
        };
        if status == "unchanged" {
            let prev = log
                .iter()
                .find(|r| r.table == f.table.name && r.sha256 == sha)
                .cloned();
            let mut r = prev.expect("hash was found in the log");
            r.status = "unchanged".into();
            r.file = f.rel.clone();
            report.files.push(r);
            continue;
        }
        to_read.push((f, bytes, sha, status));
    }

    // Departments first: the other tables are checked against them.
    let mut lake_depts = match out {
        Some(out) => lake::read_table(out, "departments", false)?,
        None => None,
    };
    let (dept_files, other_files): (Vec<_>, Vec<_>) = to_read
        .into_iter()
        .partition(|(f, ..)| f.table.name == "departments");
    let ctx = Ctx {
        tz: policy.tz,
        dept_types: policy
            .policy
            .dept_type_ids()
            .into_iter()
            .map(String::from)
            .collect(),
        depts: HashSet::new(),
    };
    let mut failures = Vec::new();
    let dept_results = read_files(dept_files, &ctx, policy, progress, &mut failures);
    let mut ctx = ctx;
    ctx.depts = known_departments(lake_depts.as_ref(), &dept_results)?;
    let dept_results = check_parents(dept_results, &ctx.depts);
    let other_results = read_files(other_files, &ctx, policy, progress, &mut failures);
    if !failures.is_empty() {
        return Err(InputFailure(failures).into());
    }

    let mut results = dept_results;
    results.extend(other_results);
    let mut new_rejects = Vec::new();
    let mut by_table: BTreeMap<&'static str, Vec<FileResult>> = BTreeMap::new();
    for r in results {
        report.files.push(r.report.clone());
        by_table.entry(r.file.table.name).or_default().push(r);
    }
    report
        .files
        .sort_by(|a, b| (&a.table, &a.file).cmp(&(&b.table, &b.file)));
    for r in by_table.values().flatten() {
        new_rejects.extend(r.rejects.iter().cloned());
    }
    report.rejects_new = new_rejects.len();
    for r in &new_rejects {
        let n = report
            .rejects_by_reason
            .entry(r.reason.as_str().to_string())
            .or_default();
        *n += 1;
        if *n <= 3 {
            report.reject_examples.push(r.clone());
        }
    }

    // Build and merge each table's frame.
    let mut latest: Option<i64> = None;
    for spec in tables::ALL {
        let partitioned = spec.month_column.is_some();
        let Some(results) = by_table.get(spec.name) else {
            // Untouched: count from the Parquet footers and find the latest
            // event in the last partition, without reading the table.
            let rows_before = match out {
                Some(out) => lake::count_rows(out, spec.name, partitioned)?,
                None => 0,
            };
            if let Some(out) = out {
                latest = latest.max(latest_instant(out, spec)?);
            }
            report.tables.insert(
                spec.name.to_string(),
                TableCount {
                    rows_before,
                    rows_after: rows_before,
                    valid_read: 0,
                },
            );
            continue;
        };
        let existing = match (out, spec.name) {
            (None, _) => None,
            (Some(_), "departments") => lake_depts.take(),
            (Some(out), _) => lake::read_table(out, spec.name, partitioned)?,
        };
        let rows_before = existing.as_ref().map_or(0, |d| d.height());
        let new = build_frame(spec, results)?;
        let valid_read = new.height();
        let merged = merge(spec, existing, new)?;
        latest = latest.max(latest_event(spec, Some(&merged))?);
        report.tables.insert(
            spec.name.to_string(),
            TableCount {
                rows_before,
                rows_after: merged.height(),
                valid_read,
            },
        );
        if let (Some(out), Some(staging)) = (out, staging.as_deref_mut()) {
            write_table(staging, out, spec, merged, policy.tz)?;
        }
    }

    if let (Some(out), Some(staging)) = (out, staging) {
        // Rejects: earlier rejects of files read again are replaced.
        let reread: HashSet<(String, String)> = report
            .files
            .iter()
            .filter(|f| f.status != "unchanged")
            .map(|f| (f.table.clone(), f.file.clone()))
            .collect();
        let mut rejects = rejects_frame(&new_rejects)?;
        if out.rejects().is_file() {
            let old = lake::read_parquet(&out.rejects())?;
            let keep: Vec<bool> = {
                let t = old.column("table")?.str()?;
                let f = old.column("file")?.str()?;
                t.iter()
                    .zip(f.iter())
                    .map(|(t, f)| {
                        !reread
                            .contains(&(t.unwrap_or("").to_string(), f.unwrap_or("").to_string()))
                    })
                    .collect()
            };
            let mask = BooleanChunked::from_iter_values("keep".into(), keep.into_iter());
            let old = old.filter(&mask)?;
            rejects = old.vstack(&rejects)?;
        }
        let mut rejects = rejects.sort(
            ["table", "file", "line", "column"],
            SortMultipleOptions::default().with_maintain_order(true),
        )?;
        lake::write_parquet(&mut rejects, &staging.stage(&out.rejects()))?;
        // The log goes last: if a run dies before it is published, the next
        // run reads the files again and deduplication makes that harmless.
        let mut log_rows: Vec<FileReport> = log
            .into_iter()
            .filter(|r| !reread.contains(&(r.table.clone(), r.file.clone())))
            .collect();
        log_rows.extend(
            report
                .files
                .iter()
                .filter(|f| f.status != "unchanged")
                .cloned(),
        );
        let mut log_df = log_frame(&log_rows)?;
        lake::write_parquet(&mut log_df, &staging.stage(&out.ingest_log()))?;
        crate::failpoint("ingest");
    }
    report.latest_event = latest.map(|us| {
        chrono::DateTime::from_timestamp_micros(us)
            .expect("valid timestamp")
            .with_timezone(&policy.tz)
            .date_naive()
            .to_string()
    });
    Ok(report)
}

/// What validation needs besides the record.
struct Ctx {
    tz: Tz,
    dept_types: BTreeSet<String>,
    depts: HashSet<String>,
}

fn read_files(
    files: Vec<(InputFile, Vec<u8>, String, &'static str)>,
    ctx: &Ctx,
    policy: &LoadedPolicy,
    progress: &Progress,
    failures: &mut Vec<String>,
) -> Vec<FileResult> {
    let encoding = policy.encoding();
    let limit = policy.policy.ingest.max_reject_share;
    let min_records = policy.policy.ingest.min_records_for_limit;
    let outcomes: Vec<Result<FileResult, FileError>> = files
        .into_par_iter()
        .map(|(file, bytes, sha, status)| {
            let read = source::read(&file, &bytes, encoding)?;
            let mut rejects: Vec<Reject> = read
                .rejects
                .into_iter()
                .map(|r| Reject {
                    table: file.table.name.into(),
                    file: file.rel.clone(),
                    line: r.line,
                    column: r.column,
                    reason: r.reason,
                    message: r.message,
                    raw: r.raw,
                })
                .collect();
            let mut rows = Vec::with_capacity(read.records.len());
            for rec in read.records {
                match validate(file.table, &rec, ctx) {
                    Ok(vals) => rows.push(Row {
                        line: rec.line,
                        vals,
                        raw: if file.table.name == "departments" {
                            rec.raw
                        } else {
                            String::new()
                        },
                    }),
                    Err((column, reason, message)) => rejects.push(Reject {
                        table: file.table.name.into(),
                        file: file.rel.clone(),
                        line: rec.line,
                        column: Some(column.to_string()),
                        reason,
                        message,
                        raw: rec.raw,
                    }),
                }
            }
            let records = (rows.len() + rejects.len()) as u64;
            let share = if records == 0 {
                0.0
            } else {
                rejects.len() as f64 / records as f64
            };
            if share > limit && records >= min_records {
                let mut msg = format!(
                    "{} of {} records rejected ({:.1}%), above the policy's ingest.max_reject_share of {:.1}%",
                    rejects.len(),
                    records,
                    share * 100.0,
                    limit * 100.0
                );
                for r in rejects.iter().take(3) {
                    msg.push_str(&format!(
                        "\n      line {}, column {}: {} ({})",
                        r.line,
                        r.column.as_deref().unwrap_or("-"),
                        r.message,
                        r.reason.as_str()
                    ));
                }
                return Err(FileError {
                    file: file.rel.clone(),
                    message: msg,
                });
            }
            let report = FileReport {
                table: file.table.name.into(),
                file: file.rel.clone(),
                sha256: sha,
                bytes: bytes.len() as u64,
                format: file.format.as_str().into(),
                encoding: read.encoding.into(),
                status: status.into(),
                records,
                valid: rows.len() as u64,
                rejected: rejects.len() as u64,
            };
            Ok(FileResult {
                file,
                report,
                rows,
                rejects,
            })
        })
        .collect();
    let mut results = Vec::new();
    for o in outcomes {
        match o {
            Ok(r) => results.push(r),
            Err(e) => failures.push(e.to_string()),
        }
    }
    // One line per table: nightly folders hold hundreds of daily files.
    let mut per_table: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
    for r in &results {
        let e = per_table.entry(r.file.table.name).or_default();
        e.0 += 1;
        e.1 += r.report.records;
        e.2 += r.report.rejected;
    }
    for (table, (files, records, rejected)) in per_table {
        progress.step(&format!(
            "read {table}: {files} file(s), {records} record(s), {rejected} rejected"
        ));
    }
    results
}

/// Validates one record: typed values, or the first problem found.
fn validate(
    spec: &TableSpec,
    rec: &RawRecord,
    ctx: &Ctx,
) -> Result<Vec<Val>, (&'static str, Reason, String)> {
    let mut vals = Vec::with_capacity(spec.columns.len());
    for (col, field) in spec.columns.iter().zip(&rec.fields) {
        let Some(text) = field else {
            if col.required {
                return Err((
                    col.name,
                    Reason::MissingValue,
                    format!("`{}` is required but empty", col.name),
                ));
            }
            vals.push(Val::Null);
            continue;
        };
        let v = match col.kind {
            Kind::Text => Val::Text(text.clone()),
            Kind::Timestamp => {
                Val::Ts(fields::parse_timestamp(text, ctx.tz).map_err(|(r, m)| (col.name, r, m))?)
            }
            Kind::Date => Val::Date(fields::parse_date(text).map_err(|(r, m)| (col.name, r, m))?),
            Kind::Number { min } => {
                let n = fields::parse_number(text).map_err(|(r, m)| (col.name, r, m))?;
                if let Some(min) = min {
                    if n < min {
                        return Err((
                            col.name,
                            Reason::OutOfRange,
                            format!("{n} is below the minimum of {min}"),
                        ));
                    }
                }
                Val::Num(n)
            }
            Kind::Bool => Val::Bool(fields::parse_bool(text).map_err(|(r, m)| (col.name, r, m))?),
            Kind::Enum(allowed) => {
                if !allowed.contains(&text.as_str()) {
                    return Err((
                        col.name,
                        Reason::BadValue,
                        format!(
                            "`{}` is not one of: {}",
                            fields::clip(text),
                            allowed.join(", ")
                        ),
                    ));
                }
                Val::Text(text.clone())
            }
            Kind::DeptRef => {
                // Parents are checked once every department is known.
                if spec.name != "departments" && !ctx.depts.contains(text) {
                    return Err((
                        col.name,
                        Reason::UnknownDepartment,
                        format!(
                            "department `{}` is not in the departments table",
                            fields::clip(text)
                        ),
                    ));
                }
                Val::Text(text.clone())
            }
            Kind::DeptType => {
                if !ctx.dept_types.contains(text) {
                    return Err((
                        col.name,
                        Reason::UnknownDeptType,
                        format!(
                            "`{}` is not a department type of the policy; expected one of: {}",
                            fields::clip(text),
                            ctx.dept_types
                                .iter()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                Val::Text(text.clone())
            }
        };
        vals.push(v);
    }
    match spec.name {
        "ratings" => check_rating(spec, &mut vals)?,
        "measurements" => check_measurement(spec, &mut vals)?,
        _ => {}
    }
    Ok(vals)
}

fn num(vals: &[Val], i: usize) -> Option<f64> {
    match vals[i] {
        Val::Num(n) => Some(n),
        _ => None,
    }
}

/// Fills the default 1-5 scale and checks the score lies on it.
fn check_rating(spec: &TableSpec, vals: &mut [Val]) -> Result<(), (&'static str, Reason, String)> {
    let idx = |c| spec.column_index(c).expect("ratings column");
    let (i_score, i_min, i_max) = (idx("score"), idx("scale_min"), idx("scale_max"));
    let lo = num(vals, i_min).unwrap_or(1.0);
    let hi = num(vals, i_max).unwrap_or(5.0);
    vals[i_min] = Val::Num(lo);
    vals[i_max] = Val::Num(hi);
    if lo >= hi {
        return Err((
            "scale_max",
            Reason::BadScale,
            format!("scale_min {lo} must be below scale_max {hi}"),
        ));
    }
    let score = num(vals, i_score).expect("score is required");
    if score < lo || score > hi {
        return Err((
            "score",
            Reason::OutOfRange,
            format!("score {score} is outside its scale {lo}-{hi}"),
        ));
    }
    Ok(())
}

/// Defaults `period_end` to the month's end; needs `value` or both counts.
fn check_measurement(
    spec: &TableSpec,
    vals: &mut [Val],
) -> Result<(), (&'static str, Reason, String)> {
    let idx = |c| spec.column_index(c).expect("measurements column");
    let start = match vals[idx("period_start")] {
        Val::Date(d) => d,
        _ => unreachable!("period_start is a required date"),
    };
    let i_end = idx("period_end");
    let end = match vals[i_end] {
        Val::Date(d) => d,
        _ => fields::month_end(start),
    };
    vals[i_end] = Val::Date(end);
    if end < start {
        return Err((
            "period_end",
            Reason::BadPeriod,
            format!(
                "period_end {} is before period_start {}",
                fields::date_from_days(end),
                fields::date_from_days(start)
            ),
        ));
    }
    let value = num(vals, idx("value"));
    let numer = num(vals, idx("numerator"));
    let denom = num(vals, idx("denominator"));
    match (value, numer, denom) {
        (_, Some(_), Some(0.0)) => Err((
            "denominator",
            Reason::OutOfRange,
            "denominator is 0; leave the row out or give `value`".into(),
        )),
        (Some(_), _, _) | (None, Some(_), Some(_)) => Ok(()),
        (None, None, None) => Err((
            "value",
            Reason::IncompleteMeasurement,
            "give either `value` or both `numerator` and `denominator`".into(),
        )),
        (None, n, _) => Err((
            if n.is_none() {
                "numerator"
            } else {
                "denominator"
            },
            Reason::IncompleteMeasurement,
            "`numerator` and `denominator` must be given together (or give `value`)".into(),
        )),
    }
}

/// Department ids known after this ingest: the lake's plus the new valid ones.
fn known_departments(lake: Option<&DataFrame>, results: &[FileResult]) -> Result<HashSet<String>> {
    let mut set = HashSet::new();
    if let Some(df) = lake {
        set.extend(
            df.column("dept_id")?
                .str()?
                .iter()
                .flatten()
                .map(String::from),
        );
    }
    for r in results {
        for row in &r.rows {
            if let Val::Text(id) = &row.vals[0] {
                set.insert(id.clone());
            }
        }
    }
    Ok(set)
}

/// Rejects departments whose `parent_id` names no known department.
fn check_parents(mut results: Vec<FileResult>, depts: &HashSet<String>) -> Vec<FileResult> {
    let i_parent = tables::DEPARTMENTS
        .column_index("parent_id")
        .expect("departments.parent_id");
    for r in &mut results {
        let rows = std::mem::take(&mut r.rows);
        for row in rows {
            match &row.vals[i_parent] {
                Val::Text(p) if !depts.contains(p) => {
                    r.rejects.push(Reject {
                        table: "departments".into(),
                        file: r.file.rel.clone(),
                        line: row.line,
                        column: Some("parent_id".into()),
                        reason: Reason::UnknownDepartment,
                        message: format!(
                            "parent department `{}` is not in the departments table",
                            fields::clip(p)
                        ),
                        raw: row.raw,
                    });
                    r.report.valid -= 1;
                    r.report.rejected += 1;
                }
                _ => r.rows.push(row),
            }
        }
    }
    results
}

/// An empty frame with a table's lake schema.
pub fn empty_frame(spec: &TableSpec) -> Result<DataFrame> {
    build_frame(spec, &[])
}

/// Builds the typed frame of a table's new rows, in file then line order,
/// with lineage columns `source_file` and `source_line`.
fn build_frame(spec: &TableSpec, results: &[FileResult]) -> Result<DataFrame> {
    let n: usize = results.iter().map(|r| r.rows.len()).sum();
    let mut columns = Vec::with_capacity(spec.columns.len() + 2);
    for (i, col) in spec.columns.iter().enumerate() {
        let vals = results
            .iter()
            .flat_map(|r| r.rows.iter().map(move |row| &row.vals[i]));
        let name: PlSmallStr = col.name.into();
        let column = match col.kind {
            Kind::Timestamp => Int64Chunked::from_iter_options(
                name,
                vals.map(|v| match v {
                    Val::Ts(t) => Some(*t),
                    _ => None,
                }),
            )
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_column(),
            Kind::Date => Int32Chunked::from_iter_options(
                name,
                vals.map(|v| match v {
                    Val::Date(d) => Some(*d),
                    _ => None,
                }),
            )
            .into_date()
            .into_column(),
            Kind::Number { .. } => Float64Chunked::from_iter_options(
                name,
                vals.map(|v| match v {
                    Val::Num(x) => Some(*x),
                    _ => None,
                }),
            )
            .into_column(),
            Kind::Bool => BooleanChunked::from_iter_options(
                name,
                vals.map(|v| match v {
                    Val::Bool(b) => Some(*b),
                    _ => None,
                }),
            )
            .into_column(),
            Kind::Text | Kind::Enum(_) | Kind::DeptRef | Kind::DeptType => {
                StringChunked::from_iter_options(
                    name,
                    vals.map(|v| match v {
                        Val::Text(s) => Some(s.as_str()),
                        _ => None,
                    }),
                )
                .into_column()
            }
        };
        columns.push(column);
    }
    columns.push(
        StringChunked::from_iter_values(
            "source_file".into(),
            results
                .iter()
                .flat_map(|r| std::iter::repeat_n(r.file.rel.as_str(), r.rows.len())),
        )
        .into_column(),
    );
    columns.push(
        Int64Chunked::from_iter_values(
            "source_line".into(),
            results
                .iter()
                .flat_map(|r| r.rows.iter().map(|row| row.line as i64)),
        )
        .into_column(),
    );
    Ok(DataFrame::new(n, columns)?)
}

/// Existing lake rows then new rows; the last version of each key wins.
fn merge(spec: &TableSpec, existing: Option<DataFrame>, new: DataFrame) -> Result<DataFrame> {
    let all = match existing {
        Some(old) => {
            let unexpected = |e: PolarsError| {
                anyhow::anyhow!(
                    "the lake's `{}` table has an unexpected schema: {e}",
                    spec.name
                )
            };
            let old = old
                .select(new.get_column_names_owned())
                .map_err(unexpected)?;
            old.vstack(&new).map_err(unexpected)?
        }
        None => new,
    };
    let dedupe = |lf: LazyFrame, cols: Vec<&str>| {
        lf.unique_stable_generic(
            Some(cols.into_iter().map(col).collect()),
            UniqueKeepStrategy::Last,
        )
    };
    let lf = all.lazy();
    let merged = match spec.key {
        Key::Columns(k) => dedupe(lf, k.to_vec()).collect()?,
        Key::EventIdOrAll => {
            let with_id = dedupe(
                lf.clone().filter(col("event_id").is_not_null()),
                vec!["event_id"],
            );
            let all_cols: Vec<&str> = spec.columns.iter().map(|c| c.name).collect();
            let without = dedupe(lf.filter(col("event_id").is_null()), all_cols);
            concat([with_id, without], UnionArgs::default())?.collect()?
        }
    };
    let sorted = merged.sort(
        spec.sort_columns(),
        SortMultipleOptions::default().with_maintain_order(true),
    )?;
    Ok(sorted)
}

/// Stages a table: partitioned by month of its event column, or one file.
fn write_table(
    staging: &mut Staging,
    out: &OutDir,
    spec: &TableSpec,
    mut df: DataFrame,
    tz: Tz,
) -> Result<()> {
    let Some(month_col) = spec.month_column else {
        return lake::write_parquet(&mut df, &staging.stage(&out.table_path(spec.name, false)));
    };
    let months = month_keys(&df, spec, month_col, tz)?;
    let table_dir = staging.stage(&out.table_path(spec.name, true));
    std::fs::create_dir_all(&table_dir)?;
    // Rows are sorted by event time, so each month is one contiguous run.
    let mut start = 0usize;
    while start < months.len() {
        let mut end = start + 1;
        while end < months.len() && months[end] == months[start] {
            end += 1;
        }
        let mut part = df.slice(start as i64, end - start);
        let path = table_dir
            .join(format!("month={}", months[start]))
            .join("part-0.parquet");
        lake::write_parquet(&mut part, &path)?;
        start = end;
    }
    Ok(())
}

/// `YYYY-MM` of each row's event, in the policy's time zone.
fn month_keys(df: &DataFrame, spec: &TableSpec, month_col: &str, tz: Tz) -> Result<Vec<String>> {
    let c = df.column(month_col)?;
    let kind = spec.columns[spec.column_index(month_col).expect("month column")].kind;
    Ok(match kind {
        Kind::Timestamp => c
            .datetime()?
            .physical()
            .iter()
            .map(|v| fields::month_of_instant(v.expect("event time is required"), tz))
            .collect(),
        Kind::Date => c
            .date()?
            .physical()
            .iter()
            .map(|v| fields::month_of_date(v.expect("period_start is required")))
            .collect(),
        _ => unreachable!("month columns are timestamps or dates"),
    })
}

fn rejects_frame(rejects: &[Reject]) -> Result<DataFrame> {
    let n = rejects.len();
    let s = |name: &str, f: &dyn Fn(&Reject) -> Option<&str>| {
        StringChunked::from_iter_options(name.into(), rejects.iter().map(f)).into_column()
    };
    Ok(DataFrame::new(
        n,
        vec![
            s("table", &|r| Some(&r.table)),
            s("file", &|r| Some(&r.file)),
            Int64Chunked::from_iter_values("line".into(), rejects.iter().map(|r| r.line as i64))
                .into_column(),
            s("column", &|r| r.column.as_deref()),
            s("reason", &|r| Some(r.reason.as_str())),
            s("message", &|r| Some(&r.message)),
            s("raw", &|r| Some(&r.raw)),
        ],
    )?)
}

fn log_frame(rows: &[FileReport]) -> Result<DataFrame> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| (&a.table, &a.file).cmp(&(&b.table, &b.file)));
    let s = |name: &str, f: &dyn Fn(&FileReport) -> &str| {
        StringChunked::from_iter_values(name.into(), rows.iter().map(f)).into_column()
    };
    let u = |name: &str, f: &dyn Fn(&FileReport) -> u64| {
        Int64Chunked::from_iter_values(name.into(), rows.iter().map(|r| f(r) as i64)).into_column()
    };
    Ok(DataFrame::new(
        rows.len(),
        vec![
            s("table", &|r| &r.table),
            s("file", &|r| &r.file),
            s("sha256", &|r| &r.sha256),
            u("bytes", &|r| r.bytes),
            s("format", &|r| &r.format),
            s("encoding", &|r| &r.encoding),
            u("records", &|r| r.records),
            u("valid", &|r| r.valid),
            u("rejected", &|r| r.rejected),
        ],
    )?)
}

/// The ingest log: one row per file ingested, with its hash.
pub fn read_log(out: &OutDir) -> Result<Vec<FileReport>> {
    let path = out.read(&out.ingest_log());
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let df = lake::read_parquet(&path)?;
    let s = |c: &str| -> Result<Vec<String>> {
        Ok(df
            .column(c)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or("").to_string())
            .collect())
    };
    let u = |c: &str| -> Result<Vec<u64>> {
        Ok(df
            .column(c)?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or(0) as u64)
            .collect())
    };
    let (table, file, sha, format, enc) = (
        s("table")?,
        s("file")?,
        s("sha256")?,
        s("format")?,
        s("encoding")?,
    );
    let (bytes, records, valid, rejected) =
        (u("bytes")?, u("records")?, u("valid")?, u("rejected")?);
    Ok((0..df.height())
        .map(|i| FileReport {
            table: table[i].clone(),
            file: file[i].clone(),
            sha256: sha[i].clone(),
            bytes: bytes[i],
            format: format[i].clone(),
            encoding: enc[i].clone(),
            status: "ingested".into(),
            records: records[i],
            valid: valid[i],
            rejected: rejected[i],
        })
        .collect())
}

/// Latest event instant of a table whose month column is a timestamp
/// (measurement periods are not events).
/// Latest event instant of a lake table (timestamp month column only),
/// read from its last partition: partitions are months of the event, so the
/// latest event is always there.
pub fn latest_instant(out: &OutDir, spec: &TableSpec) -> Result<Option<i64>> {
    let Some(mc) = spec.month_column else {
        return Ok(None);
    };
    let i = spec.column_index(mc).expect("month column");
    if spec.columns[i].kind != Kind::Timestamp {
        return Ok(None);
    }
    let Some(file) = lake::last_partition(out, spec.name)? else {
        return Ok(None);
    };
    latest_event(spec, Some(&lake::read_parquet(&file)?))
}

fn latest_event(spec: &TableSpec, df: Option<&DataFrame>) -> Result<Option<i64>> {
    let (Some(mc), Some(df)) = (spec.month_column, df) else {
        return Ok(None);
    };
    let i = spec.column_index(mc).expect("month column");
    if spec.columns[i].kind != Kind::Timestamp {
        return Ok(None);
    }
    Ok(df.column(mc)?.datetime()?.physical().max())
}
