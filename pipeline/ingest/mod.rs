//! Stage 1, ingest: raw exports -> validated, deduplicated Parquet lake.
//!
//! Consumes the input folder (docs/contract.md#inputs) and the existing lake;
//! produces `lake/<table>/month=YYYY-MM/part-0.parquet` (departments and
//! staff unpartitioned), `rejects/rejects.parquet` and the ingest log
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
//!
//! Ingest writes only `lake/` and `rejects/` and knows nothing of cases,
//! scores or pages.

pub mod fields;
pub mod source;
pub mod tables;

mod columns;
use columns::*;
mod validate;
use validate::*;
mod partitions;
pub use partitions::*;
mod log;
pub use log::*;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;
use std::path::PathBuf;

use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use polars::prelude::*;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::error::InputFailure;
use crate::lake::{self, OutDir, Staging};
use crate::policy::{hex, LoadedPolicy};
use crate::progress::Progress;
use crate::time::calendar::LocalDays;
use source::{FileError, InputFile};
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
    OutcomeWithoutCallBack,
    /// An improvement plan due before it was opened.
    DueBeforeOpened,
    /// A plan event `extended` without `new_due_on`.
    ExtensionWithoutDate,
    /// `new_due_on` on a plan event that is not `extended`.
    DateWithoutExtension,
    /// A `manager` staff row without a department.
    ManagerWithoutDepartment,
    /// A staff row whose validity overlaps another row of the same person.
    OverlappingValidity,
}

impl serde::Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Reason {
    pub const ALL: [Reason; 22] = [
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
        Reason::OutcomeWithoutCallBack,
        Reason::DueBeforeOpened,
        Reason::ExtensionWithoutDate,
        Reason::DateWithoutExtension,
        Reason::ManagerWithoutDepartment,
        Reason::OverlappingValidity,
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
            Reason::OutcomeWithoutCallBack => "outcome_without_call_back",
            Reason::DueBeforeOpened => "due_before_opened",
            Reason::ExtensionWithoutDate => "extension_without_date",
            Reason::DateWithoutExtension => "date_without_extension",
            Reason::ManagerWithoutDepartment => "manager_without_department",
            Reason::OverlappingValidity => "overlapping_validity",
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

/// Everything read from one file.
struct FileResult {
    file: InputFile,
    report: FileReport,
    /// The valid rows, as the lake types them (see [`Columns::finish`]).
    rows: DataFrame,
    /// Reference tables only: each row's raw text.
    raws: Vec<String>,
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
    ingest_with(input, target, policy, progress, &Options::default())
}

/// How [`ingest_with`] reads; tests vary what results must not depend on.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// About how much input is read per batch.
    pub batch_bytes: u64,
    /// About how much of a table's new rows is held in memory before the
    /// months read past are merged and written out.
    pub held_bytes: usize,
    pub csv: source::CsvReader,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            batch_bytes: BATCH_BYTES,
            held_bytes: HELD_BYTES,
            csv: source::CsvReader::Fast,
        }
    }
}

/// [`ingest`] with [`Options`].
pub fn ingest_with(
    input: &Path,
    target: Option<(&OutDir, &mut Staging)>,
    policy: &LoadedPolicy,
    progress: &Progress,
    options: &Options,
) -> Result<IngestReport> {
    let Options {
        batch_bytes,
        held_bytes,
        csv,
    } = *options;
    let started = std::time::SystemTime::now();
    let (out, mut staging) = match target {
        Some((o, s)) => (Some(o), Some(s)),
        None => (None, None),
    };
    if !input.is_dir() {
        return Err(crate::error::Failure::Usage(format!(
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
    let (staff_files, other_files): (Vec<_>, Vec<_>) = other_files
        .into_iter()
        .partition(|f| f.table.name == "staff");
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
    let (unchanged, dept_results) =
        read_files(dept_files, &known, &ctx, policy, csv, &mut failures)?;
    report.files.extend(unchanged);
    log_read(
        progress,
        "departments",
        dept_results.iter().map(|r| &r.report),
    );
    let mut ctx = ctx;
    ctx.depts = known_departments(lake_depts.as_ref(), &dept_results)?;
    let dept_results = check_parents(dept_results, &ctx.depts)?;
    // Staff next, against the departments; a row overlapping another of
    // the same person (in the lake or read before it) is rejected.
    let mut lake_staff = match out {
        Some(out) => lake::read_table(out, "staff", false)?,
        None => None,
    };
    let (unchanged, staff_results) =
        read_files(staff_files, &known, &ctx, policy, csv, &mut failures)?;
    report.files.extend(unchanged);
    log_read(progress, "staff", staff_results.iter().map(|r| &r.report));
    let staff_results = check_overlaps(staff_results, lake_staff.as_ref())?;

    // The other tables, table by table and a batch of files at a time: each
    // batch's valid rows are held by month, and the months read past are
    // merged and written out when too much is held (`Spill`), so memory
    // holds a few months, not the whole input.
    let mut spills: BTreeMap<&'static str, Spill> = BTreeMap::new();
    for spec in tables::ALL.iter().filter(|s| s.month_column.is_some()) {
        let files: Vec<InputFile> = other_files
            .iter()
            .filter(|f| f.table.name == spec.name)
            .cloned()
            .collect();
        if files.is_empty() {
            continue;
        }
        let total = files.len();
        let lake_parts = match out {
            Some(out) => lake::partition_files(out, spec.name)?,
            None => BTreeMap::new(),
        };
        let spill = Spill::new(
            spec,
            staging.as_deref().map(|s| s.scratch(spec.name)),
            lake_parts,
            held_bytes,
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
                    spill.add(results.into_iter().map(|r| r.rows).collect())?;
                }
                Ok(spill)
            });
            for batch in batches(files, batch_bytes) {
                done += batch.len();
                let (unchanged, mut results) =
                    read_files(batch, &known, &ctx, policy, csv, &mut failures)?;
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
    let mut staff_new = Vec::new();
    for r in staff_results {
        report.files.push(r.report.clone());
        new_rejects.extend(r.rejects.iter().cloned());
        staff_new.push(r);
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
        if !partitioned {
            let (new, lake_rows) = match spec.name {
                "departments" => (&dept_new, lake_depts.take()),
                _ => (&staff_new, lake_staff.take()),
            };
            if !new.is_empty() {
                let new = build_frame(spec, new)?;
                count.valid_read = new.height();
                let mut merged = merge(spec, lake_rows, new, false)?;
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
        crate::runtime::failpoint("ingest");
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

/// New rows of a table held in memory before the months read past are
/// written out: with files in time order, half a year of the standard set's
/// ratings.
const HELD_BYTES: usize = 512 << 20;

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

#[cfg(test)]
mod tests;
