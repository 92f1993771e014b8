//! Stage: follow up, for the nightly run (compute step 2). The bad reviews
//! of each `ratings` month file, kept in `OUT/cache/bad_reviews/` so that a
//! night reads again only the month files whose bytes changed.
//!
//! What a month file holds as bad reviews depends only on its bytes, the
//! policy (which ratings are bad reviews, on which day) and the program;
//! appeals and as-of are applied to the kept rows afterwards, so neither
//! makes a month be read again. A store that does not match (another
//! program or policy, an unreadable or altered file) means every month is
//! read.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use polars::prelude::*;
use sha2::Digest;

use super::CacheFolder;
use crate::frame;
use crate::lake::{self, OutDir, Staging};
use crate::policy::{hex, LoadedPolicy};

/// Changes whenever what the folder holds changes in a way the program
/// version would not show.
const FORMAT: &str = "bad_reviews/1";

/// The bad reviews of every ratings month file, kept for the next run:
///
/// * `bad_reviews.parquet`: the rows, with the `month` of their file;
/// * `state.json`: each month file's digest, and the rows file's;
/// * `fingerprint`: the program and the policy (written last).
pub struct BadReviewStore {
    enabled: bool,
    old: PathBuf,
    new: PathBuf,
    fingerprint: String,
    /// `ratings` month files as this run sees them, and their digests.
    months: BTreeMap<String, (PathBuf, String)>,
    /// Month files read by this run, and taken from the last.
    pub read: usize,
    pub kept: usize,
}

impl BadReviewStore {
    /// Opens the previous run's folder and stages this run's; reads every
    /// `ratings` month file once for its digest.
    pub fn open(out: &OutDir, staging: &mut Staging, policy: &LoadedPolicy) -> Result<Self> {
        let folder = CacheFolder::stage(out.bad_reviews_cache(), staging, FORMAT, policy)?;
        let mut months = BTreeMap::new();
        for (month, path) in lake::partition_files(out, "ratings")? {
            let digest = lake::file_checksum(&path)?;
            months.insert(month, (path, digest));
        }
        Ok(BadReviewStore {
            enabled: folder.enabled,
            old: folder.old,
            new: folder.new,
            fingerprint: hex(&folder.base.finalize()),
            months,
            read: 0,
            kept: 0,
        })
    }

    /// Each ratings month file's digest (month -> digest).
    pub fn digests(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.months.iter().map(|(m, (_, d))| (m.clone(), d.clone()))
    }

    /// The last run's rows, by month, of the months whose file is
    /// unchanged; empty when the store does not match.
    fn previous(&self) -> BTreeMap<String, DataFrame> {
        let kept = || -> Option<BTreeMap<String, DataFrame>> {
            let fingerprint = fs::read_to_string(self.old.join("fingerprint")).ok()?;
            if !self.enabled || fingerprint.trim() != self.fingerprint {
                return None;
            }
            let state: serde_json::Value =
                serde_json::from_slice(&fs::read(self.old.join("state.json")).ok()?).ok()?;
            let rows_file = self.old.join("bad_reviews.parquet");
            if state["rows"].as_str()? != lake::file_checksum(&rows_file).ok()? {
                return None;
            }
            // Written in month order: each month's rows are one slice.
            let rows = lake::read_parquet(&rows_file).ok()?;
            let months = frame::str_refs(&rows, "month").ok()?;
            let rows = rows.drop("month").ok()?;
            let mut slices: BTreeMap<&str, DataFrame> = BTreeMap::new();
            let mut start = 0;
            while start < months.len() {
                let month = months[start]?;
                let len = months[start..]
                    .iter()
                    .take_while(|m| **m == Some(month))
                    .count();
                slices.insert(month, rows.slice(start as i64, len));
                start += len;
            }
            // Each month file unchanged since: its rows, or none (a month
            // without bad reviews has no rows in the file).
            let out = self
                .months
                .iter()
                .filter(|(month, (_, digest))| {
                    state["months"][month.as_str()].as_str() == Some(digest.as_str())
                })
                .map(|(month, _)| {
                    let rows = slices
                        .remove(month.as_str())
                        .unwrap_or_else(|| rows.clear());
                    (month.clone(), rows)
                })
                .collect();
            Some(out)
        };
        kept().unwrap_or_default()
    }

    /// The bad reviews of every month file, in month order: the last run's
    /// for the files unchanged since, `read(month)` for the others; keeps
    /// them all for the next run.
    pub fn bad_reviews(
        &mut self,
        read: &dyn Fn(&str) -> Result<Option<DataFrame>>,
    ) -> Result<Option<DataFrame>> {
        let mut previous = self.previous();
        let mut parts: Vec<(String, DataFrame)> = Vec::new();
        for month in self.months.keys() {
            let rows = match previous.remove(month) {
                Some(rows) => {
                    self.kept += 1;
                    rows
                }
                None => {
                    self.read += 1;
                    match read(month)? {
                        Some(rows) => rows,
                        None => continue,
                    }
                }
            };
            parts.push((month.clone(), rows));
        }
        let mut kept: Option<DataFrame> = None;
        for (month, mut rows) in parts {
            let n = rows.height();
            rows.with_column(Column::new("month".into(), vec![month.as_str(); n]))?;
            match &mut kept {
                Some(k) => {
                    k.vstack_mut(&rows)?;
                }
                None => kept = Some(rows),
            }
        }
        let Some(mut kept) = kept else {
            return Ok(None);
        };
        let file = self.new.join("bad_reviews.parquet");
        lake::write_parquet(&mut kept, &file)?;
        self.seal(&lake::file_checksum(&file)?)?;
        Ok(Some(kept.drop("month")?))
    }

    /// Writes the state, and last the fingerprint.
    fn seal(&self, rows: &str) -> Result<()> {
        let months: serde_json::Map<String, serde_json::Value> = self
            .months
            .iter()
            .map(|(m, (_, d))| (m.clone(), serde_json::Value::from(d.as_str())))
            .collect();
        let state = serde_json::json!({ "months": months, "rows": rows });
        let path = self.new.join("state.json");
        fs::write(&path, serde_json::to_vec_pretty(&state)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        fs::write(
            self.new.join("fingerprint"),
            format!("{}\n", self.fingerprint),
        )?;
        Ok(())
    }
}
