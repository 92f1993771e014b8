//! Stage 1, ingest: raw exports -> validated, deduplicated Parquet lake.
//!
//! Consumes the input folder (DESIGN.md section 5) and the existing lake;
//! produces `lake/<table>/month=YYYY-MM/part-0.parquet` (departments
//! unpartitioned), `rejects/rejects.parquet` and the ingest log
//! `lake/_ingest_log.parquet`. Files already ingested with the same content
//! (SHA-256) are skipped, so re-running adds nothing; a changed file is read
//! again and its records replace earlier versions with the same key. A file
//! with the size and modification time logged for its path is known without
//! being read, if that time was at least two seconds before the logging
//! ingest began (the log's own modification time says when that was).
//!
//! Nothing is published until every file has been read and checked: a file
//! missing a required column, undecodable, or over the reject limit fails the
//! run (exit 3) with the lake and rejects untouched.

pub mod fields;
pub mod source;
pub mod tables;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use polars::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::calendar::LocalDays;
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
    /// The file's modification time (microseconds since the epoch) when its
    /// content was last read or hashed.
    #[serde(skip)]
    pub modified: Option<i64>,
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
    ingest_in_batches(input, target, policy, progress, BATCH_BYTES)
}

/// [`ingest`] reading about `batch_bytes` of input per batch (tests use
/// small batches to cross batch boundaries with a few files).
fn ingest_in_batches(
    input: &Path,
    target: Option<(&OutDir, &mut Staging)>,
    policy: &LoadedPolicy,
    progress: &Progress,
    batch_bytes: u64,
) -> Result<IngestReport> {
    let started = std::time::SystemTime::now();
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

    // What was ingested before, and when (which vouches for nothing unless
    // the policy trusts file times).
    let (log, logged_at) = match out {
        Some(out) => (
            read_log(out)?,
            log_time(out).filter(|_| policy.policy.ingest.trust_file_times),
        ),
        None => (Vec::new(), None),
    };
    let known = Known::new(&log, logged_at);

    // Departments first: the other tables are checked against them.
    let mut lake_depts = match out {
        Some(out) => lake::read_table(out, "departments", false)?,
        None => None,
    };
    let (dept_files, other_files): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|f| f.table.name == "departments");
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
    let mut new_rejects = Vec::new();
    let (unchanged, dept_results) = read_files(dept_files, &known, &ctx, policy, &mut failures)?;
    report.files.extend(unchanged);
    log_read(
        progress,
        "departments",
        dept_results.iter().map(|r| &r.report),
    );
    let mut ctx = ctx;
    ctx.depts = known_departments(lake_depts.as_ref(), &dept_results)?;
    let dept_results = check_parents(dept_results, &ctx.depts);

    // The other tables, table by table and a batch of files at a time: each
    // batch's valid rows are spilled to the staging folder by month at
    // once, so memory holds one batch, not the whole input.
    let mut spills: BTreeMap<&'static str, Spill> = BTreeMap::new();
    for spec in tables::ALL.iter().filter(|s| s.name != "departments") {
        let files: Vec<InputFile> = other_files
            .iter()
            .filter(|f| f.table.name == spec.name)
            .cloned()
            .collect();
        if files.is_empty() {
            continue;
        }
        let total = files.len();
        let spill = Spill::new(
            spec,
            staging.as_deref().map(|s| s.scratch(spec.name)),
            policy.tz,
        );
        let mut done = 0usize;
        let mut reports = Vec::new();
        let mut last_log = std::time::Instant::now();
        // Batches are read on every core while the batch before is typed and
        // spilled on a thread of its own (it holds two batches at most).
        let spill = std::thread::scope(|s| -> Result<Spill> {
            let (parsed, to_spill) = std::sync::mpsc::sync_channel::<Vec<FileResult>>(0);
            let spiller = s.spawn(move || -> Result<Spill> {
                let mut spill = spill;
                for results in to_spill {
                    spill.add(build_frame(spec, &results)?)?;
                }
                Ok(spill)
            });
            for batch in batches(files, batch_bytes) {
                done += batch.len();
                let (unchanged, mut results) =
                    read_files(batch, &known, &ctx, policy, &mut failures)?;
                report.files.extend(unchanged);
                for r in &mut results {
                    new_rejects.append(&mut r.rejects);
                    reports.push(r.report.clone());
                }
                // Past a failure nothing is published: read on only to
                // report every problem, without spilling rows. A spiller
                // that stopped has an error, returned below.
                if failures.is_empty() && parsed.send(results).is_err() {
                    break;
                }
                if last_log.elapsed().as_secs() >= 5 && done < total {
                    progress.step(&format!("reading {}: {done} of {total} file(s)", spec.name));
                    last_log = std::time::Instant::now();
                }
            }
            drop(parsed);
            spiller
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })?;
        log_read(progress, spec.name, reports.iter());
        report.files.extend(reports);
        spills.insert(spec.name, spill);
    }
    if !failures.is_empty() {
        return Err(InputFailure(failures).into());
    }

    let mut dept_new = Vec::new();
    for r in dept_results {
        report.files.push(r.report.clone());
        new_rejects.extend(r.rejects.iter().cloned());
        dept_new.push(r);
    }
    report
        .files
        .sort_by(|a, b| (&a.table, &a.file).cmp(&(&b.table, &b.file)));
    new_rejects.sort_by(|a, b| (&a.table, &a.file, a.line).cmp(&(&b.table, &b.file, b.line)));
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

    // Merge each table into the lake: only the month partitions that new
    // rows (or rows that moved to another month) touch are rewritten.
    let mut latest: Option<i64> = None;
    for spec in tables::ALL {
        let partitioned = spec.month_column.is_some();
        let rows_before = match out {
            Some(out) => lake::count_rows(out, spec.name, partitioned)?,
            None => 0,
        };
        let mut count = TableCount {
            rows_before,
            rows_after: rows_before,
            valid_read: 0,
        };
        if spec.name == "departments" {
            if !dept_new.is_empty() {
                let new = build_frame(spec, &dept_new)?;
                count.valid_read = new.height();
                let mut merged = merge(spec, lake_depts.take(), new)?;
                count.rows_after = merged.height();
                if let (Some(out), Some(staging)) = (out, staging.as_deref_mut()) {
                    lake::write_parquet(
                        &mut merged,
                        &staging.stage(&out.table_path(spec.name, false)),
                    )?;
                }
            }
        } else if let Some(spill) = spills.remove(spec.name) {
            count.valid_read = spill.rows;
            count.rows_after = match (out, staging.as_deref_mut()) {
                (Some(out), Some(staging)) => {
                    spill.merge_into(out, staging, rows_before, progress)?
                }
                _ => spill.rows,
            };
        }
        if let Some(out) = out {
            latest = latest.max(latest_instant(out, spec)?);
        }
        report.tables.insert(spec.name.to_string(), count);
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
        // Files found unchanged keep their rows, with the modification time
        // they were found with.
        let found: HashMap<(&str, &str), Option<i64>> = report
            .files
            .iter()
            .filter(|f| f.status == "unchanged")
            .map(|f| ((f.table.as_str(), f.file.as_str()), f.modified))
            .collect();
        let mut log_rows: Vec<FileReport> = log
            .iter()
            .filter(|r| !reread.contains(&(r.table.clone(), r.file.clone())))
            .map(|r| {
                let mut r = r.clone();
                if let Some(&m) = found.get(&(r.table.as_str(), r.file.as_str())) {
                    r.modified = m;
                }
                r
            })
            .collect();
        log_rows.extend(
            report
                .files
                .iter()
                .filter(|f| f.status != "unchanged")
                .cloned(),
        );
        let mut log_df = log_frame(&log_rows)?;
        let staged = staging.stage(&out.ingest_log());
        lake::write_parquet(&mut log_df, &staged)?;
        // The log's modification time says when this ingest began: what the
        // files' logged times are measured against (`Known::same_stat`).
        std::fs::File::options()
            .write(true)
            .open(&staged)
            .and_then(|f| f.set_modified(started))
            .with_context(|| format!("cannot set the time of {}", staged.display()))?;
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

/// What earlier ingests read, from the ingest log.
struct Known<'a> {
    log: &'a [FileReport],
    /// (table, sha256) -> index in `log`.
    hashes: HashMap<(&'a str, &'a str), usize>,
    /// (table, file) -> index in `log`.
    paths: HashMap<(&'a str, &'a str), usize>,
    /// When the ingest that wrote the log began (the log's modification
    /// time): a logged modification time at least [`SETTLED`] older than
    /// that vouches for the content logged with it. An output folder copied
    /// without its times (not `cp -a`, `rsync -a`) makes the log look newer
    /// than it is, and a file written within two seconds of the old ingest
    /// could then be trusted.
    logged_at: Option<std::time::SystemTime>,
}

impl<'a> Known<'a> {
    fn new(log: &'a [FileReport], logged_at: Option<std::time::SystemTime>) -> Known<'a> {
        Known {
            log,
            hashes: log
                .iter()
                .enumerate()
                .map(|(i, r)| ((r.table.as_str(), r.sha256.as_str()), i))
                .collect(),
            paths: log
                .iter()
                .enumerate()
                .map(|(i, r)| ((r.table.as_str(), r.file.as_str()), i))
                .collect(),
            logged_at,
        }
    }

    /// The log row of a file whose size and modification time are those
    /// logged, if that time was settled when the logging ingest began: the
    /// content has not changed since it was read (as git's index and rsync
    /// reason). A file written moments before an ingest is hashed again.
    fn same_stat(&self, table: &str, rel: &str, meta: &std::fs::Metadata) -> Option<usize> {
        let &i = self.paths.get(&(table, rel))?;
        let r = &self.log[i];
        let modified = meta.modified().ok()?;
        let vouched = r.bytes == meta.len()
            && r.modified.is_some()
            && r.modified == micros_since_epoch(modified)
            && self.logged_at? >= modified + SETTLED;
        vouched.then_some(i)
    }
}

/// How much older than an ingest a file's modification time must be to
/// vouch for the content read: more than any file system's timestamp step.
const SETTLED: std::time::Duration = std::time::Duration::from_secs(2);

fn micros_since_epoch(t: std::time::SystemTime) -> Option<i64> {
    let us = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_micros();
    i64::try_from(us).ok()
}

/// Input bytes read per batch: enough to keep every core busy, small
/// enough that a batch's parsed rows stay a few hundred megabytes.
const BATCH_BYTES: u64 = 48 << 20;

/// Splits files (in name order) into batches of about `batch_bytes`.
fn batches(files: Vec<InputFile>, batch_bytes: u64) -> Vec<Vec<InputFile>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut bytes = 0u64;
    for f in files {
        bytes += std::fs::metadata(&f.path).map_or(0, |m| m.len());
        cur.push(f);
        if bytes >= batch_bytes {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// One line per table: nightly folders hold hundreds of daily files.
fn log_read<'a>(progress: &Progress, table: &str, reports: impl Iterator<Item = &'a FileReport>) {
    let (mut files, mut records, mut rejected) = (0usize, 0u64, 0u64);
    for r in reports {
        files += 1;
        records += r.records;
        rejected += r.rejected;
    }
    if files > 0 {
        progress.step(&format!(
            "read {table}: {files} file(s), {records} record(s), {rejected} rejected"
        ));
    }
}

/// Reads and validates files in parallel. Files whose content was ingested
/// before are not parsed: their earlier log rows come back as `unchanged`.
/// A file that fails whole is added to `failures`.
fn read_files(
    files: Vec<InputFile>,
    known: &Known,
    ctx: &Ctx,
    policy: &LoadedPolicy,
    failures: &mut Vec<String>,
) -> Result<(Vec<FileReport>, Vec<FileResult>)> {
    let encoding = policy.encoding();
    let limit = policy.policy.ingest.max_reject_share;
    let min_records = policy.policy.ingest.min_records_for_limit;
    let outcomes: Vec<Result<Result<FileResult, FileReport>, FileError>> = files
        .into_par_iter()
        .map(|file| {
            let cannot_read = |e: std::io::Error| FileError {
                file: file.rel.clone(),
                message: format!("cannot read {}: {e}", file.path.display()),
            };
            let table = file.table.name;
            let meta = std::fs::metadata(&file.path).map_err(cannot_read)?;
            let modified = meta.modified().ok().and_then(micros_since_epoch);
            let unchanged = |i: usize| {
                let mut r = known.log[i].clone();
                r.status = "unchanged".into();
                r.file = file.rel.clone();
                r.modified = modified;
                r
            };
            if let Some(i) = known.same_stat(table, &file.rel, &meta) {
                return Ok(Err(unchanged(i)));
            }
            let same_content = |sha: &str| known.hashes.get(&(table, sha)).map(|&i| unchanged(i));
            let logged = known.paths.contains_key(&(table, file.rel.as_str()));
            // A file at a path ingested before is most likely unchanged (most
            // files of a nightly run are): it is hashed through a small
            // buffer first, and read whole only if its content is new.
            if logged {
                let sha = lake::file_digest(&file.path).map_err(|e| FileError {
                    file: file.rel.clone(),
                    message: format!("{e:#}"),
                })?;
                let sha = hex(&sha);
                if let Some(r) = same_content(&sha) {
                    return Ok(Err(r));
                }
            }
            let bytes = std::fs::read(&file.path).map_err(cannot_read)?;
            let sha = hex(&Sha256::digest(&bytes));
            if let Some(r) = same_content(&sha) {
                return Ok(Err(r));
            }
            let status = if logged { "changed" } else { "new" };
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
                // Vouches for the content only if it is the size the
                // modification time came with.
                modified: modified.filter(|_| meta.len() == bytes.len() as u64),
                format: file.format.as_str().into(),
                encoding: read.encoding.into(),
                status: status.into(),
                records,
                valid: rows.len() as u64,
                rejected: rejects.len() as u64,
            };
            Ok(Ok(FileResult {
                file,
                report,
                rows,
                rejects,
            }))
        })
        .collect();
    let mut unchanged = Vec::new();
    let mut results = Vec::new();
    for o in outcomes {
        match o {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(u)) => unchanged.push(u),
            Err(e) => failures.push(e.to_string()),
        }
    }
    Ok((unchanged, results))
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

/// A partitioned table's new rows, spilled to scratch files month by month
/// as batches are read, then merged into the lake one month at a time.
struct Spill {
    spec: &'static TableSpec,
    /// `None` when only checking: rows are counted, not kept.
    dir: Option<PathBuf>,
    /// Month (`YYYY-MM`) -> its chunk files, in read order.
    chunks: BTreeMap<String, Vec<PathBuf>>,
    /// For keys that can move between months (the key does not contain the
    /// month column): a 128-bit hash of the key -> (month, read order) of
    /// its latest version. Later files win, as in [`merge`].
    latest: Option<PlHashMap<u128, (u32, i64)>>,
    /// The smallest and largest first key column among the keys in
    /// `latest`: an older version of one of them has its first column, so
    /// a partition with no value in this range holds none.
    key_range: Option<(String, String)>,
    months: Vec<String>,
    month_index: HashMap<String, u32>,
    days: LocalDays,
    /// Valid rows read.
    rows: usize,
}

/// The read-order column of spilled chunks (dropped before the lake).
const ORD: &str = "_ord";

impl Spill {
    fn new(spec: &'static TableSpec, dir: Option<PathBuf>, tz: Tz) -> Spill {
        let movable = match spec.key {
            Key::Columns(k) => !k.iter().any(|c| Some(*c) == spec.month_column),
            Key::EventIdOrAll => true,
        };
        Spill {
            spec,
            latest: (movable && dir.is_some()).then(PlHashMap::default),
            key_range: None,
            dir,
            chunks: BTreeMap::new(),
            months: Vec::new(),
            month_index: HashMap::new(),
            days: LocalDays::new(tz),
            rows: 0,
        }
    }

    fn month_id(&mut self, m: &str) -> u32 {
        if let Some(&i) = self.month_index.get(m) {
            return i;
        }
        let i = self.months.len() as u32;
        self.months.push(m.to_string());
        self.month_index.insert(m.to_string(), i);
        i
    }

    /// The month (as [`Spill::month_id`]) of each row's event, in the
    /// policy's time zone; a name is looked up only where the month changes
    /// from the row before.
    fn month_ids(&mut self, df: &DataFrame, month_col: &str) -> Result<Vec<u32>> {
        let c = df.column(month_col)?;
        let days: Vec<NaiveDate> = match self.spec.columns
            [self.spec.column_index(month_col).expect("month column")]
        .kind
        {
            Kind::Timestamp => c
                .datetime()?
                .physical()
                .iter()
                .map(|v| self.days.day(v.expect("event time is required")))
                .collect(),
            Kind::Date => c
                .date()?
                .physical()
                .iter()
                .map(|v| fields::date_from_days(v.expect("period_start is required")))
                .collect(),
            _ => unreachable!("month columns are timestamps or dates"),
        };
        let mut last: Option<((i32, u32), u32)> = None;
        Ok(days
            .into_iter()
            .map(|d| {
                let ym = (d.year(), d.month());
                match last {
                    Some((seen, id)) if seen == ym => id,
                    _ => {
                        let id = self.month_id(&fields::month_of_day(d));
                        last = Some((ym, id));
                        id
                    }
                }
            })
            .collect())
    }

    /// Spills one batch (rows in file, then line order).
    fn add(&mut self, mut df: DataFrame) -> Result<()> {
        let n = df.height();
        let first = self.rows as i64;
        self.rows += n;
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        if n == 0 {
            return Ok(());
        }
        let month_col = self.spec.month_column.expect("partitioned table");
        let months = self.month_ids(&df, month_col)?;
        if let Some(latest) = &mut self.latest {
            let hashes = key_hashes(&df, self.spec)?;
            for (i, h) in hashes.into_iter().enumerate() {
                if let Some(h) = h {
                    latest.insert(h, (months[i], first + i as i64));
                }
            }
            // Over every first key column, complete keys or not: a range
            // wider than needed only reads more.
            let firsts = df.column(key_columns(self.spec)[0])?.str()?;
            let (lo, hi) = (firsts.iter().flatten().min(), firsts.iter().flatten().max());
            if let (Some(lo), Some(hi)) = (lo, hi) {
                self.key_range = Some(match self.key_range.take() {
                    None => (lo.to_string(), hi.to_string()),
                    Some((a, b)) => (a.min(lo.to_string()), b.max(hi.to_string())),
                });
            }
        }
        df.with_column(
            Int64Chunked::from_iter_values(ORD.into(), first..first + n as i64).into_column(),
        )?;
        // Group rows by month, keeping read order within each month (a
        // stable sort).
        let mut order: Vec<IdxSize> = (0..n as IdxSize).collect();
        order.sort_by_key(|&a| months[a as usize]);
        let df = df.take(&IdxCa::from_vec("order".into(), order.clone()))?;
        let mut start = 0usize;
        while start < n {
            let id = months[order[start] as usize];
            let mut end = start + 1;
            while end < n && months[order[end] as usize] == id {
                end += 1;
            }
            let month = &self.months[id as usize];
            let files = self.chunks.entry(month.clone()).or_default();
            let path = dir.join(month).join(format!("{:06}.parquet", files.len()));
            lake::write_scratch_parquet(&mut df.slice(start as i64, end - start), &path)?;
            files.push(path);
            start = end;
        }
        Ok(())
    }

    /// Whether the row with this key hash, in month `month`, is superseded
    /// by a later version in another month (or, with `ord`, by any later
    /// version of the new rows).
    fn superseded(&self, h: Option<u128>, month: &str, ord: Option<i64>) -> bool {
        let (Some(latest), Some(h)) = (&self.latest, h) else {
            return false;
        };
        match latest.get(&h) {
            None => false,
            Some(&(m, o)) => self.months[m as usize] != month || ord.is_some_and(|ord| ord != o),
        }
    }

    fn drop_superseded(&self, df: DataFrame, month: &str, with_ord: bool) -> Result<DataFrame> {
        if self.latest.is_none() {
            return Ok(df);
        }
        let hashes = key_hashes(&df, self.spec)?;
        let ords: Vec<Option<i64>> = if with_ord {
            df.column(ORD)?.i64()?.iter().collect()
        } else {
            vec![None; df.height()]
        };
        let keep: BooleanChunked = hashes
            .into_iter()
            .zip(ords)
            .map(|(h, o)| Some(!self.superseded(h, month, o)))
            .collect();
        Ok(df.filter(&keep)?)
    }

    /// Merges the spilled rows into the lake, staging every month partition
    /// that changes; returns the table's row count afterwards.
    fn merge_into(
        self,
        out: &OutDir,
        staging: &mut Staging,
        rows_before: usize,
        progress: &Progress,
    ) -> Result<usize> {
        let spec = self.spec;
        let existing = lake::partition_files(out, spec.name)?;
        // Months to rewrite: those with new rows, and (when keys can move)
        // those holding an earlier version of a key now in another month.
        let mut months: BTreeSet<String> = self.chunks.keys().cloned().collect();
        if self.latest.as_ref().is_some_and(|l| !l.is_empty()) {
            let key_cols = key_columns(spec);
            let others: Vec<(&String, &PathBuf)> = existing
                .iter()
                .filter(|(month, _)| !months.contains(*month))
                .collect();
            let moved = crate::on_every_core(others.len(), |i| {
                let (month, path) = others[i];
                // Read alone first, the first key column tells whether the
                // partition can hold a version of a new key (with ids that
                // grow over time, as most systems give them, no older
                // month can): a fraction of reading and hashing every key.
                let mut keys = lake::read_parquet_columns(path, &key_cols[..1])?;
                if let Some((lo, hi)) = &self.key_range {
                    let in_range = keys
                        .column(key_cols[0])?
                        .str()?
                        .iter()
                        .flatten()
                        .any(|k| lo.as_str() <= k && k <= hi.as_str());
                    if !in_range {
                        return Ok(false);
                    }
                }
                // The other key columns, beside the first already read.
                if key_cols.len() > 1 {
                    let rest = lake::read_parquet_columns(path, &key_cols[1..])?;
                    keys.hstack_mut(rest.columns())?;
                }
                Ok(key_hashes(&keys, spec)?
                    .into_iter()
                    .any(|h| self.superseded(h, month, None)))
            })?;
            for ((month, _), moved) in others.into_iter().zip(moved) {
                if moved {
                    months.insert(month.clone());
                }
            }
        }
        // Each month is staged in month order, then merged on every core,
        // one month per core at a time (a month is read, merged and written
        // whole, so memory holds a month per core).
        let table_dir = out.table_path(spec.name, true);
        let jobs: Vec<(String, PathBuf)> = months
            .into_iter()
            .map(|month| {
                let path = table_dir
                    .join(format!("month={month}"))
                    .join("part-0.parquet");
                let staged = staging.stage(&path);
                (month, staged)
            })
            .collect();
        let last_log = std::sync::Mutex::new(std::time::Instant::now());
        let done = std::sync::atomic::AtomicUsize::new(0);
        let counts = crate::on_every_core(jobs.len(), |i| {
            let (month, staged) = &jobs[i];
            let counts = self.merge_month(month, existing.get(month), staged)?;
            let done = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let mut last = last_log.lock().expect("progress clock");
            if last.elapsed().as_secs() >= 5 && done < jobs.len() {
                progress.step(&format!(
                    "merging {} into the lake: {done} of {} month(s)",
                    spec.name,
                    jobs.len()
                ));
                *last = std::time::Instant::now();
            }
            Ok(counts)
        })?;
        Ok(counts
            .into_iter()
            .fold(rows_before, |rows, (old, merged)| rows + merged - old))
    }

    /// Merges one month's spilled rows with its lake partition (if any) and
    /// writes the result to `staged`; returns the partition's row counts
    /// before and after.
    fn merge_month(
        &self,
        month: &str,
        existing: Option<&PathBuf>,
        staged: &Path,
    ) -> Result<(usize, usize)> {
        let spec = self.spec;
        let old = existing.map(|p| lake::read_parquet(p)).transpose()?;
        let old_rows = old.as_ref().map_or(0, |d| d.height());
        let old = old
            .map(|d| self.drop_superseded(d, month, false))
            .transpose()?;
        let mut new: Option<DataFrame> = None;
        for chunk in self.chunks.get(month).into_iter().flatten() {
            let df = lake::read_parquet(chunk)?;
            match new.as_mut() {
                None => new = Some(df),
                Some(n) => {
                    n.vstack_mut_owned(df)?;
                }
            }
        }
        let new = match new {
            Some(n) => self.drop_superseded(n, month, true)?.drop(ORD)?,
            None => empty_frame(spec)?,
        };
        let mut merged = merge(spec, old, new)?;
        lake::write_parquet(&mut merged, staged)?;
        Ok((old_rows, merged.height()))
    }
}

fn key_columns(spec: &TableSpec) -> Vec<&'static str> {
    match spec.key {
        Key::Columns(k) => k.to_vec(),
        Key::EventIdOrAll => vec!["event_id"],
    }
}

/// A 128-bit hash (XXH3) of each row's key (text columns), `None` where a
/// key column is null (events without an id are deduplicated on all
/// columns, which include the month). Each value is hashed after its length,
/// so ("ab", "c") and ("a", "bc") differ; a collision among even billions of
/// keys is vanishingly unlikely.
fn key_hashes(df: &DataFrame, spec: &TableSpec) -> Result<Vec<Option<u128>>> {
    let cols = key_columns(spec)
        .into_iter()
        .map(|c| Ok(df.column(c)?.str()?))
        .collect::<Result<Vec<_>>>()?;
    let mut iters: Vec<_> = cols.iter().map(|c| c.iter()).collect();
    let mut bytes = Vec::new();
    Ok((0..df.height())
        .map(|_| {
            bytes.clear();
            let mut complete = true;
            for it in &mut iters {
                match it.next().flatten() {
                    Some(v) => {
                        bytes.extend_from_slice(&(v.len() as u64).to_le_bytes());
                        bytes.extend_from_slice(v.as_bytes());
                    }
                    None => complete = false,
                }
            }
            complete.then(|| xxhash_rust::xxh3::xxh3_128(&bytes))
        })
        .collect())
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
            Int64Chunked::from_iter_options("modified".into(), rows.iter().map(|r| r.modified))
                .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                .into_column(),
            s("format", &|r| &r.format),
            s("encoding", &|r| &r.encoding),
            u("records", &|r| r.records),
            u("valid", &|r| r.valid),
            u("rejected", &|r| r.rejected),
        ],
    )?)
}

/// When the ingest that wrote the log began (see `Known::same_stat`).
fn log_time(out: &OutDir) -> Option<std::time::SystemTime> {
    std::fs::metadata(out.read(&out.ingest_log()))
        .and_then(|m| m.modified())
        .ok()
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
    // Logs written before the column existed vouch for no modification
    // time: their files are hashed once more.
    let modified: Vec<Option<i64>> = if df.column("modified").is_ok() {
        crate::frame::micros_in_place(&df, "modified")?
            .iter()
            .collect()
    } else {
        vec![None; df.height()]
    };
    Ok((0..df.height())
        .map(|i| FileReport {
            table: table[i].clone(),
            file: file[i].clone(),
            sha256: sha[i].clone(),
            bytes: bytes[i],
            modified: modified[i],
            format: format[i].clone(),
            encoding: enc[i].clone(),
            status: "ingested".into(),
            records: records[i],
            valid: valid[i],
            rejected: rejected[i],
        })
        .collect())
}

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
    let df = lake::read_parquet_columns(&file, &[mc])?;
    Ok(df.column(mc)?.datetime()?.physical().max())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file under `dir` (relative path, bytes), in path order.
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    let rel = p.strip_prefix(dir).unwrap().display().to_string();
                    out.push((rel, std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn the_lake_does_not_depend_on_how_files_are_batched() {
        let tmp = tempfile::tempdir().unwrap();
        let input = tmp.path().join("input");
        // Three months of daily files, invalid records included.
        let args = crate::generate::GenerateArgs {
            out: input.clone(),
            departments: 4,
            months: 3,
            end_month: "2026-10".into(),
            ratings: 30_000,
            cases: 600,
            complaints: None,
            seed: 7,
            format: "csv".into(),
            split: "day".into(),
            no_bad_records: false,
        };
        crate::generate::generate(&args, &Progress::silent()).unwrap();
        // A later file moves a rating of 1 August to October.
        let first_day = std::fs::read_to_string(input.join("ratings/2026-08-01.csv")).unwrap();
        let mut lines = first_day.lines();
        let (header, line) = (lines.next().unwrap(), lines.next().unwrap());
        let at = |name: &str| header.split(',').position(|c| c == name).unwrap();
        let mut fields: Vec<String> = line.split(',').map(String::from).collect();
        let (id, item) = (fields[at("rating_id")].clone(), fields[at("item")].clone());
        assert!(fields[at("rated_at")].starts_with("2026-08-01"), "{line}");
        fields[at("rated_at")] = "2026-10-15 12:00:00".into();
        std::fs::write(
            input.join("ratings/zz-correction.csv"),
            format!("{header}\n{}\n", fields.join(",")),
        )
        .unwrap();

        let policy = crate::compute::load_policy(None, &[]).unwrap().0;
        let ingest_into = |name: &str, batch_bytes: u64| -> PathBuf {
            let root = tmp.path().join(name);
            let out = OutDir::new(&root);
            let mut staging = Staging::new(&out).unwrap();
            let p = Progress::silent();
            ingest_in_batches(&input, Some((&out, &mut staging)), &policy, &p, batch_bytes)
                .unwrap();
            staging.publish().unwrap();
            root
        };
        let whole = ingest_into("whole", BATCH_BYTES);
        // One byte a batch: every file is a batch of its own.
        let single = ingest_into("single", 1);
        let ratings_files = source::discover(&input)
            .unwrap()
            .0
            .into_iter()
            .filter(|f| f.table.name == "ratings")
            .collect::<Vec<_>>();
        assert_eq!(batches(ratings_files.clone(), BATCH_BYTES).len(), 1);
        assert_eq!(batches(ratings_files.clone(), 1).len(), ratings_files.len());
        assert!(ratings_files.len() > 90, "{} files", ratings_files.len());

        // The same partitions and rejects, byte for byte (the ingest log
        // records when each file was read, so it differs).
        let lake = |root: &Path| {
            let mut f = files(&root.join("lake"));
            f.retain(|(name, _)| !name.starts_with("_ingest_log"));
            f.extend(files(&root.join("rejects")));
            f
        };
        let (a, b) = (lake(&whole), lake(&single));
        let names = |f: &[(String, Vec<u8>)]| f.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&a), names(&b));
        assert!(a.len() > 6, "{:?}", names(&a));
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(x == y, "{name} differs between batch sizes");
        }
        // The corrected rating is in October only.
        for month in ["2026-08", "2026-09", "2026-10"] {
            let part = single.join(format!("lake/ratings/month={month}/part-0.parquet"));
            let df = lake::read_parquet(&part).unwrap();
            let ids = df.column("rating_id").unwrap().str().unwrap();
            let items = df.column("item").unwrap().str().unwrap();
            let n = ids
                .iter()
                .zip(items.iter())
                .filter(|(i, t)| *i == Some(id.as_str()) && *t == Some(item.as_str()))
                .count();
            assert_eq!(n, usize::from(month == "2026-10"), "{month}");
        }
    }

    #[test]
    fn key_hashes_tell_apart_keys_whose_texts_join_the_same() {
        let df = df!(
            "rating_id" => [Some("ab"), Some("a"), Some("ab"), None],
            "item" => [Some("c"), Some("bc"), Some("c"), Some("c")],
        )
        .unwrap();
        let h = key_hashes(&df, &tables::RATINGS).unwrap();
        // ("ab", "c") and ("a", "bc") join to the same text "abc".
        assert_ne!(h[0], h[1]);
        // The same key twice, the same hash.
        assert_eq!(h[0], h[2]);
        assert!(h[0].is_some());
        // A null key column: no key, never superseded.
        assert_eq!(h[3], None);
    }
}
