//! The output folder's layout (docs/contract.md#outputs) and the only code that
//! writes into it. Every file is written under `OUT/.staging/` first and
//! renamed into place when complete, so a reader never sees half a file and
//! a failed run leaves the previous outputs as they were.
//!
//! The lake knows paths, files and frames, never what a table means: the
//! stages above it decide what to write.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::Digest;

use anyhow::{Context, Result};
use polars::prelude::{
    concat, DataFrame, HiveOptions, LazyFrame, ParquetCompression, ParquetReader, ParquetWriter,
    PlRefPath, ScanArgsParquet, SerReader, StatisticsOptions, UnionArgs,
};

mod staging;
pub use staging::*;
mod parquet;
pub use parquet::*;
mod tables;
pub use tables::*;

/// Paths inside one output folder. Writers stage files under final paths
/// (see [`Staging`]); readers go through [`OutDir::read`], which sees what
/// the current run has staged, so later stages of a run read what earlier
/// stages made before anything is published.
#[derive(Debug, Clone)]
pub struct OutDir {
    pub root: PathBuf,
    /// (final path, staged path) of what the current run has staged.
    overlay: Arc<Mutex<Vec<(PathBuf, PathBuf)>>>,
}

impl OutDir {
    pub fn new(root: impl Into<PathBuf>) -> OutDir {
        OutDir {
            root: root.into(),
            overlay: Arc::default(),
        }
    }

    /// Where to read `final_path` now: its staged copy if this run staged it
    /// (or a folder holding it), else the published file.
    pub fn read(&self, final_path: &Path) -> PathBuf {
        let overlay = self.overlay.lock().expect("overlay lock");
        overlay
            .iter()
            .rev()
            .find_map(|(f, s)| {
                let rest = final_path.strip_prefix(f).ok()?;
                // `join("")` would add a trailing separator.
                Some(if rest.as_os_str().is_empty() {
                    s.clone()
                } else {
                    s.join(rest)
                })
            })
            .unwrap_or_else(|| final_path.to_path_buf())
    }
    pub fn lake(&self) -> PathBuf {
        self.root.join("lake")
    }
    /// Folder of a partitioned table, or the file of an unpartitioned one.
    pub fn table_path(&self, table: &str, partitioned: bool) -> PathBuf {
        if partitioned {
            self.lake().join(table)
        } else {
            self.lake().join(format!("{table}.parquet"))
        }
    }
    pub fn ingest_log(&self) -> PathBuf {
        self.lake().join("_ingest_log.parquet")
    }
    pub fn rejects(&self) -> PathBuf {
        self.root.join("rejects").join("rejects.parquet")
    }
    pub fn marts(&self) -> PathBuf {
        self.root.join("marts")
    }
    pub fn site(&self) -> PathBuf {
        self.root.join("site")
    }
    /// The HR lists' CSV and XLSX files (they name people: not in the site).
    pub fn hr(&self) -> PathBuf {
        self.root.join("hr")
    }
    pub fn policy(&self) -> PathBuf {
        self.root.join("policy.toml")
    }
    pub fn manifest(&self) -> PathBuf {
        self.root.join("run.json")
    }
    /// Results a later run may reuse (see `nightly::raters`); never read by users.
    pub fn raters_cache(&self) -> PathBuf {
        self.root.join("cache").join("raters")
    }
    /// Derived cases a later run may reuse (see `nightly::cases`).
    pub fn cases_cache(&self) -> PathBuf {
        self.root.join("cache").join("cases")
    }
    /// Bad reviews by ratings month a later run may reuse (see
    /// `nightly::bad_reviews`).
    pub fn bad_reviews_cache(&self) -> PathBuf {
        self.root.join("cache").join("bad_reviews")
    }
    /// Digests of the published pages' inputs (see `nightly::pages`).
    pub fn pages_cache(&self) -> PathBuf {
        self.root.join("cache").join("pages")
    }
    /// Takes the output folder's lock for a run that writes into it. The
    /// lock is the operating system's file lock on `OUT/.lock`: it is
    /// released when the run ends, however it ends, so a run killed at night
    /// never blocks the next one. The file names the holder for messages.
    pub fn lock(&self, command: &str, progress: &crate::progress::Progress) -> Result<RunLock> {
        fs::create_dir_all(&self.root).with_context(|| {
            format!(
                "cannot create output folder {}: is its parent writable?",
                self.root.display()
            )
        })?;
        let path = self.root.join(".lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| {
                format!(
                    "cannot open {}: is the output folder writable?",
                    path.display()
                )
            })?;
        let mut previous = String::new();
        use std::io::{Read, Seek, Write};
        let _ = file.read_to_string(&mut previous);
        let previous = previous.trim().replace('\n', ", ");
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(crate::error::Failure::Busy(format!(
                    "another scorecard run is writing to {} ({}); this one stops without touching it",
                    self.root.display(),
                    if previous.is_empty() { "holder unknown".to_string() } else { previous }
                ))
                .into());
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        if !previous.is_empty() {
            // The file stays behind after every run; only a run that did not
            // finish leaves its staging folder too.
            if self.staging_root().exists() {
                progress.warn(&format!(
                    "the previous run ({previous}) ended without finishing; its unfinished work is recovered or discarded"
                ));
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(
            file,
            "pid {}\ncommand {command}\nstarted {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )?;
        file.sync_all()?;
        Ok(RunLock { _file: file })
    }

    /// Fails with a usage error unless the folder holds a lake.
    pub fn require_lake(&self) -> std::result::Result<(), crate::error::Failure> {
        if self.lake().is_dir() {
            Ok(())
        } else {
            Err(crate::error::Failure::Usage(format!(
                "{} has no lake/: run `scorecard ingest` or `scorecard run` first",
                self.root.display()
            )))
        }
    }
    fn staging_root(&self) -> PathBuf {
        self.root.join(".staging")
    }
}

/// A file or folder name for an id from the data (a department id in a page
/// path): only letters, digits, `-`, `_` and `.` are kept; any other byte is
/// written `~XX` (so distinct ids stay distinct), a leading dot and Windows'
/// reserved names (CON, NUL, COM1, ...) are escaped, and a long id is cut
/// and finished with a hash. The result can never name a parent folder.
pub fn file_name(id: &str) -> String {
    let mut s = String::with_capacity(id.len());
    for (i, b) in id.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            s.push(b as char);
        } else {
            s.push_str(&format!("~{b:02X}"));
        }
    }
    if s.is_empty() {
        s.push('_');
    }
    let stem = s.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        s.insert(0, '_');
    }
    const MAX: usize = 100;
    if s.len() > MAX {
        let hash = crate::policy::hex(&sha2::Sha256::digest(id.as_bytes()));
        s.truncate(80);
        s.push('~');
        s.push_str(&hash[..16]);
    }
    s
}

/// Takes a derived frame the views need, and gives it back as a scan: in a
/// run, written out as its mart right away so that memory does not hold it
/// (copying what it can of the mart the last run wrote, when given).
pub type Spill<'a> = dyn FnMut(&'static str, DataFrame, Option<Previous>) -> Result<LazyFrame> + 'a;

/// Scans the ratings files of the months `first..=last` (`YYYY-MM`).
pub type MonthScan<'a> = dyn Fn(&str, &str) -> Result<Option<LazyFrame>> + 'a;

#[cfg(test)]
mod tests;
