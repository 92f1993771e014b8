//! What the nightly run reuses from the run before (compute step 4), kept
//! in `OUT/cache/raters/`:
//!
//! * `YYYY/`: the results of the pass over each *complete* calendar year of
//!   ratings (rater model, reliability, satisfaction);
//! * `YYYY-Qn/` (or `YYYY-MM/` with a monthly estimation grain): for each
//!   complete estimation period of the year not yet complete, the rater
//!   model's results, the reliability and satisfaction rows of the periods
//!   that end in it (its weeks, months and quarter), the sums of the
//!   quarter and year still open at its end (per rater group: responses,
//!   score sums, raters; per department: the spreads of item scores and of
//!   response means, raters), and its last days' adjusted scores. That
//!   year's pass reuses the longest run of them from the year's start,
//!   reads only the ratings after them (and the six days before, which the
//!   first week after them reaches back to), and continues the open sums
//!   from the last one's.
//!
//! An entry is used only when its fingerprint equals what this run would
//! compute from. The fingerprint covers everything the pass reads: the
//! program (its version, and the size and modification time of the
//! executable, so that any rebuild computes everything once), the policy
//! text (time zone included), the department types, the period's bounds
//! (for an estimation period, from the six days before it: its first week
//! reaches back to them), the bytes of every ratings month file the pass
//! reads (the period's months, and a month either side only if it holds a
//! rating in the range the pass reads), and for a year, or the first
//! estimation period of a year, what the previous year's pass carried into
//! it (its last days' adjusted scores and exclusions). The days before an
//! estimation period other than a year's first are the period before's,
//! which is reused only if it is unchanged too.
//! Ratings removed on appeal are checked apart: the folder records the
//! removals its entries were computed with, and a period whose ratings
//! include any rating whose removal has changed since is computed again. A
//! period not complete at as-of is never kept, so an entry's `is_partial`
//! columns (all false) hold for any later as-of.
//!
//! The folder is staged and published whole with the marts: it holds the
//! entries of this run's complete periods only, and a failed run leaves the
//! previous folder. Deleting it only makes the next run compute everything.
//! It holds rater ids as the lake does (pseudonyms are applied to the
//! published marts).

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use polars::prelude::*;
use sha2::{Digest, Sha256};

use super::{feed, CacheFolder};
use crate::frame::{self, Builder};
use crate::lake::{self, OutDir, Staging};
use crate::model::raters::{Reliability, ReliabilityPart, Spread};
use crate::model::satisfaction::{self, OpenGroup};
use crate::policy::hex;
use crate::policy::LoadedPolicy;
use crate::time::periods::{Grain, Period};

mod entries;
use entries::*;

/// Changes whenever what an entry holds, or how it is computed, changes in
/// a way the program version would not show.
const FORMAT: &str = "raters/3";

/// The ratings removed on appeal that the entries were computed with.
const REMOVED: &str = "removed.parquet";

/// An item rating handed to the next year's pass: (rating id, item,
/// adjusted score).
pub type CarriedItem = (Arc<str>, Arc<str>, Option<f64>);

/// One year's results, as kept and as reused.
pub struct YearResults {
    pub effects: DataFrame,
    pub flags: DataFrame,
    pub satisfaction: Vec<satisfaction::Row>,
    pub reliability: Vec<Reliability>,
    /// Item ratings of the year's last days: (rating id, item, adjusted
    /// score), in the order the pass read them.
    pub carry_items: Vec<(String, String, Option<f64>)>,
    /// Responses of the year's last days the rater model excluded, and why.
    pub carry_excluded: Vec<(String, String)>,
    /// First local day with a scored response in the pass.
    pub first_day: Option<NaiveDate>,
    /// Item ratings of the year itself (for progress lines).
    pub n_items: usize,
}

/// The results for one complete estimation period (month or quarter) of a
/// year not yet complete: that year's pass fits only the periods after
/// those it reuses, and reads only their ratings.
pub struct PeriodResults {
    pub effects: DataFrame,
    pub flags: DataFrame,
    /// The period's responses the rater model excluded, and why.
    pub excluded: Vec<(String, String)>,
    /// Item ratings of the period's last days: (rating id, item, adjusted
    /// score), in the order the pass read them (the next period's first
    /// week reaches back into them).
    pub carry_items: Vec<(String, String, Option<f64>)>,
    /// The rows of the periods that end in it (weeks, months, a quarter).
    pub satisfaction: Vec<satisfaction::Row>,
    pub reliability: Vec<Reliability>,
    /// The sums of the quarter and year still open at its end.
    pub open: OpenSums,
    /// First local day with a scored response in the pass, up to its end.
    pub first_day: Option<NaiveDate>,
    /// Its item ratings (for progress lines).
    pub n_items: usize,
}

/// The sums of the quarter and year open at a kept period's end: held by
/// the pass that computed them, or left in the entry they were read from
/// until asked for (only the last period reused needs them).
pub enum OpenSums {
    Held(Vec<OpenGroup>, Vec<ReliabilityPart>),
    InEntry(PathBuf),
}

impl OpenSums {
    pub fn take(self) -> Result<(Vec<OpenGroup>, Vec<ReliabilityPart>)> {
        match self {
            OpenSums::Held(groups, parts) => Ok((groups, parts)),
            OpenSums::InEntry(dir) => read_open(&dir),
        }
    }
}

/// The kept rater results (years and estimation periods): entries of the
/// previous run (read) and of this run (staged).
pub struct RaterStore {
    /// False when the running program cannot be identified: nothing is
    /// reused (results are still kept, for a later run).
    enabled: bool,
    old: PathBuf,
    new: PathBuf,
    /// What every year's fingerprint starts from.
    base: Sha256,
    /// Ratings month files as this run sees them, and their digests.
    months: BTreeMap<String, PathBuf>,
    digests: HashMap<String, String>,
    /// Removals the old entries were computed with, against this run's:
    /// the ids whose removal changed (`None`: unknown, reuse nothing).
    changed_removals: Option<PlHashSet<String>>,
    pub reused: Vec<String>,
    pub computed: Vec<String>,
}

impl RaterStore {
    /// Opens the previous run's entries and stages this run's folder.
    pub fn open(out: &OutDir, staging: &mut Staging, policy: &LoadedPolicy) -> Result<RaterStore> {
        let folder = CacheFolder::stage(out.raters_cache(), staging, FORMAT, policy)?;
        Ok(RaterStore {
            enabled: folder.enabled,
            old: folder.old,
            new: folder.new,
            base: folder.base,
            months: lake::partition_files(out, "ratings")?,
            digests: HashMap::new(),
            changed_removals: None,
            reused: Vec::new(),
            computed: Vec::new(),
        })
    }

    /// Takes the digests of ratings month files already made this run
    /// (month -> digest), so that no file is read twice for one.
    pub fn know_digests(&mut self, digests: impl IntoIterator<Item = (String, String)>) {
        self.digests.extend(digests);
    }

    /// Adds what every year depends on besides the policy: the department
    /// types, and the ratings removed on appeal (kept with this run's
    /// entries, and compared with those the old entries were computed with).
    pub fn depend_on(
        &mut self,
        dept_types: &HashMap<String, String>,
        removed: &PlHashSet<String>,
    ) -> Result<()> {
        let mut types: Vec<_> = dept_types.iter().collect();
        types.sort();
        for (d, t) in types {
            feed(&mut self.base, d.as_bytes());
            feed(&mut self.base, t.as_bytes());
        }
        self.changed_removals = lake::read_parquet(&self.old.join(REMOVED))
            .ok()
            .and_then(|df| frame::strs(&df, "rating_id").ok())
            .map(|ids| {
                let before: PlHashSet<String> = ids.into_iter().flatten().collect();
                before.symmetric_difference(removed).cloned().collect()
            });
        let mut ids: Vec<&str> = removed.iter().map(String::as_str).collect();
        ids.sort_unstable();
        let mut df = Builder::new()
            .str("rating_id", ids.into_iter().map(Some))
            .build()?;
        lake::write_parquet(&mut df, &self.new.join(REMOVED))
    }

    /// The fingerprint of the pass over a year (or of the rater model of
    /// one estimation period): it reads the month files `first..=last`
    /// (`YYYY-MM`), rows in `(from, to]` (UTC microseconds), and is handed
    /// `carry` from the year before (nothing, for a period).
    pub fn fingerprint(
        &mut self,
        period: Period,
        (first, last): (&str, &str),
        (from, to): (i64, i64),
        carry: (&[CarriedItem], &[(String, String)]),
    ) -> Result<String> {
        let mut h = self.base.clone();
        feed(&mut h, period.label().as_bytes());
        feed(&mut h, &from.to_le_bytes());
        feed(&mut h, &to.to_le_bytes());
        let months: Vec<(String, PathBuf)> = self
            .months
            .range(first.to_string()..=last.to_string())
            .map(|(m, p)| (m.clone(), p.clone()))
            .collect();
        for (month, path) in months {
            feed(&mut h, month.as_bytes());
            // The months either side are read for the rows the time zone
            // may place in the period; a file with none there does not
            // count (so the day's new file does not make the quarter or
            // year before it be computed again).
            if (month == first || month == last) && !has_rows_in(&path, (from, to))? {
                feed(&mut h, b"no rows in range");
                continue;
            }
            if !self.digests.contains_key(&month) {
                let digest = lake::file_checksum(&path)?;
                self.digests.insert(month.clone(), digest);
            }
            feed(&mut h, self.digests[&month].as_bytes());
        }
        let (items, excluded) = carry;
        feed(&mut h, &(items.len() as u64).to_le_bytes());
        for (id, item, adjusted) in items {
            feed(&mut h, id.as_bytes());
            feed(&mut h, item.as_bytes());
            feed(
                &mut h,
                &adjusted.map_or([0xff; 8], |a| a.to_bits().to_le_bytes()),
            );
            h.update([adjusted.is_some() as u8]);
        }
        for (id, why) in excluded {
            feed(&mut h, id.as_bytes());
            feed(&mut h, why.as_bytes());
        }
        Ok(hex(&h.finalize()))
    }

    /// The previous run's results for `year` if its fingerprint is
    /// `fingerprint` and no rating of the pass (`ids`, read only when
    /// removals changed) had its removal changed. Entries that cannot be
    /// read are computed again.
    pub fn reuse(
        &mut self,
        year: Period,
        fingerprint: &str,
        ids: impl FnOnce() -> Result<Vec<String>>,
    ) -> Result<Option<YearResults>> {
        self.reuse_entry(year, fingerprint, ids, read_entry)
    }

    /// [`RaterStore::reuse`] for one estimation period of a year not yet
    /// complete.
    pub fn reuse_period(
        &mut self,
        period: Period,
        fingerprint: &str,
        ids: impl FnOnce() -> Result<Vec<String>>,
    ) -> Result<Option<PeriodResults>> {
        self.reuse_entry(period, fingerprint, ids, read_period_entry)
    }

    fn reuse_entry<T>(
        &mut self,
        period: Period,
        fingerprint: &str,
        ids: impl FnOnce() -> Result<Vec<String>>,
        read: impl Fn(&Path) -> Result<T>,
    ) -> Result<Option<T>> {
        let dir = self.old.join(period.label());
        let kept = fs::read_to_string(dir.join("fingerprint")).unwrap_or_default();
        if !self.enabled || kept.trim() != fingerprint {
            return Ok(None);
        }
        let Some(changed) = &self.changed_removals else {
            return Ok(None);
        };
        if !changed.is_empty() && ids()?.iter().any(|id| changed.contains(id)) {
            return Ok(None);
        }
        let Ok(results) = read(&dir) else {
            return Ok(None);
        };
        link_entry(&dir, &self.new.join(period.label()))?;
        self.reused.push(period.label());
        Ok(Some(results))
    }

    /// Keeps the results for one complete estimation period of a year not
    /// yet complete.
    pub fn keep_period(
        &mut self,
        period: Period,
        fingerprint: &str,
        r: &PeriodResults,
    ) -> Result<()> {
        let read;
        let (sat_open, rel_open) = match &r.open {
            OpenSums::Held(sat, rel) => (sat, rel),
            OpenSums::InEntry(dir) => {
                read = read_open(dir)?;
                (&read.0, &read.1)
            }
        };
        // Rows are all of periods that end in it: complete from its end on.
        let as_of = period.end;
        let frames = [
            ("effects", r.effects.clone()),
            ("flags", r.flags.clone()),
            ("excluded", excluded_frame(&r.excluded)?),
            ("carry_items", carried_frame(&r.carry_items)?),
            ("satisfaction", satisfaction::frame(&r.satisfaction, as_of)?),
            (
                "reliability",
                crate::model::raters::reliability_frame(&r.reliability, as_of)?,
            ),
            ("open_satisfaction", open_groups_frame(sat_open, as_of)?),
            (
                "open_satisfaction_raters",
                members_frame(sat_open.iter().map(|g| &g.raters))?,
            ),
            ("open_reliability", open_parts_frame(rel_open, as_of)?),
            ("open_reliability_items", part_items_frame(rel_open)?),
            (
                "open_reliability_raters",
                members_frame(rel_open.iter().map(|p| &p.raters))?,
            ),
        ];
        let meta = serde_json::json!({
            "first_day": r.first_day.map(|d| d.to_string()),
            "n_items": r.n_items,
        });
        self.write_entry(period, fingerprint, frames, Some(meta))
    }

    /// Keeps a complete year's results for the next run.
    pub fn keep(&mut self, year: Period, fingerprint: &str, r: &YearResults) -> Result<()> {
        // Rows are all of complete periods: `is_partial` is false for any
        // as-of from the year's end on.
        let as_of = year.end;
        let frames = [
            ("effects", r.effects.clone()),
            ("flags", r.flags.clone()),
            ("satisfaction", satisfaction::frame(&r.satisfaction, as_of)?),
            (
                "reliability",
                crate::model::raters::reliability_frame(&r.reliability, as_of)?,
            ),
            ("carry_items", carried_frame(&r.carry_items)?),
            ("carry_excluded", excluded_frame(&r.carry_excluded)?),
        ];
        let meta = serde_json::json!({
            "first_day": r.first_day.map(|d| d.to_string()),
            "n_items": r.n_items,
        });
        self.write_entry(year, fingerprint, frames, Some(meta))
    }

    /// Writes one entry of this run's folder: its frames, `entry.json`
    /// when given, and last its fingerprint (an entry without one is never
    /// used).
    fn write_entry<const N: usize>(
        &mut self,
        period: Period,
        fingerprint: &str,
        mut frames: [(&str, DataFrame); N],
        meta: Option<serde_json::Value>,
    ) -> Result<()> {
        let dir = self.new.join(period.label());
        fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, df) in &mut frames {
            lake::write_parquet(df, &dir.join(format!("{name}.parquet")))?;
        }
        if let Some(meta) = meta {
            fs::write(dir.join("entry.json"), serde_json::to_vec_pretty(&meta)?)?;
        }
        fs::write(dir.join("fingerprint"), format!("{fingerprint}\n"))?;
        self.computed.push(period.label());
        Ok(())
    }
}
