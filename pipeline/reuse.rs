//! What the nightly run reuses from the run before (compute step 3), kept
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

use crate::frame::{self, Builder};
use crate::lake::{self, OutDir, Staging};
use crate::periods::{Grain, Period};
use crate::policy::hex;
use crate::policy::LoadedPolicy;
use crate::raters::{Reliability, ReliabilityPart, Spread};
use crate::satisfaction::{self, OpenGroup};

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
                crate::raters::reliability_frame(&r.reliability, as_of)?,
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
                crate::raters::reliability_frame(&r.reliability, as_of)?,
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

/// A folder of `OUT/cache/`: the last run's, this run's (staged, and
/// published whole with the marts), and what every fingerprint in it
/// starts from.
pub(crate) struct CacheFolder {
    pub old: PathBuf,
    pub new: PathBuf,
    /// The folder's format, the program's version and identity, and the
    /// policy text.
    pub base: Sha256,
    /// False when the running program cannot be identified: nothing is
    /// reused (results are still kept, for a later run).
    pub enabled: bool,
}

impl CacheFolder {
    /// Stages (and creates) this run's folder for the folder `old`.
    pub fn stage(
        old: PathBuf,
        staging: &mut Staging,
        format: &str,
        policy: &LoadedPolicy,
    ) -> Result<CacheFolder> {
        let new = staging.stage(&old);
        fs::create_dir_all(&new).with_context(|| format!("cannot create {}", new.display()))?;
        let mut base = Sha256::new();
        for part in [format, env!("CARGO_PKG_VERSION"), &policy.text] {
            feed(&mut base, part.as_bytes());
        }
        let program = program_identity();
        if let Some(id) = &program {
            feed(&mut base, id.as_bytes());
        }
        Ok(CacheFolder {
            old,
            new,
            base,
            enabled: program.is_some(),
        })
    }
}

/// The running executable's path, size and modification time: changes
/// with every build and every installation of a new one.
fn program_identity() -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let meta = fs::metadata(&exe).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?;
    Some(format!(
        "{}\n{}\n{}",
        exe.display(),
        meta.len(),
        modified.as_nanos()
    ))
}

/// Whether a ratings month file holds a rating in `(from, to]` (UTC
/// microseconds), as a pass's scan cuts it.
fn has_rows_in(path: &Path, (from, to): (i64, i64)) -> Result<bool> {
    let df = lake::read_parquet_columns(path, &["rated_at"])?;
    Ok(frame::micros(&df, "rated_at")?
        .into_iter()
        .flatten()
        .any(|t| from < t && t <= to))
}

fn feed(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// Puts an old entry's files into this run's folder: hard links where the
/// file system allows, copies otherwise.
fn link_entry(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for e in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let src = e?.path();
        let dst = to.join(src.file_name().expect("entries have names"));
        if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst)
                .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// An entry's `entry.json`: the first day with a scored response, and the
/// number of item ratings.
fn read_meta(dir: &Path) -> Result<(Option<NaiveDate>, usize)> {
    let meta: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("entry.json"))?)?;
    let first_day = match meta["first_day"].as_str() {
        Some(s) => Some(NaiveDate::parse_from_str(s, "%Y-%m-%d")?),
        None => None,
    };
    let n_items = meta["n_items"].as_u64().context("entry.json: n_items")? as usize;
    Ok((first_day, n_items))
}

fn read_entry(dir: &Path) -> Result<YearResults> {
    let read = |name: &str| lake::read_parquet(&dir.join(format!("{name}.parquet")));
    let (first_day, n_items) = read_meta(dir)?;
    Ok(YearResults {
        effects: read("effects")?,
        flags: read("flags")?,
        satisfaction: satisfaction_rows(&read("satisfaction")?)?,
        reliability: reliability_rows(&read("reliability")?)?,
        carry_items: carried_rows(&read("carry_items")?)?,
        carry_excluded: excluded_rows(&read("carry_excluded")?)?,
        first_day,
        n_items,
    })
}

fn read_period_entry(dir: &Path) -> Result<PeriodResults> {
    let read = |name: &str| lake::read_parquet(&dir.join(format!("{name}.parquet")));
    let (first_day, n_items) = read_meta(dir)?;
    Ok(PeriodResults {
        effects: read("effects")?,
        flags: read("flags")?,
        excluded: excluded_rows(&read("excluded")?)?,
        carry_items: carried_rows(&read("carry_items")?)?,
        satisfaction: satisfaction_rows(&read("satisfaction")?)?,
        reliability: reliability_rows(&read("reliability")?)?,
        open: OpenSums::InEntry(dir.to_path_buf()),
        first_day,
        n_items,
    })
}

/// The sums of the quarter and year open at the end of a kept period.
fn read_open(dir: &Path) -> Result<(Vec<OpenGroup>, Vec<ReliabilityPart>)> {
    let read = |name: &str| lake::read_parquet(&dir.join(format!("{name}.parquet")));
    let groups = read("open_satisfaction")?;
    let mut group_raters = members(&read("open_satisfaction_raters")?, groups.height())?;
    let (depts, names) = (text(&groups, "dept_id")?, text(&groups, "rater_group")?);
    let (n, excluded) = (
        frame::i64s(&groups, "n")?,
        frame::i64s(&groups, "excluded")?,
    );
    let (sum, fair) = (frame::f64s(&groups, "sum")?, frame::f64s(&groups, "fair")?);
    let sat = periods(&groups)?
        .into_iter()
        .enumerate()
        .map(|(i, period)| {
            Ok(OpenGroup {
                dept_id: depts[i].clone(),
                period,
                rater_group: names[i].clone(),
                n: count(n[i])?,
                sum: sum[i].context("a missing sum")?,
                fair: fair[i],
                excluded: count(excluded[i])?,
                raters: std::mem::take(&mut group_raters[i]),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let parts = read("open_reliability")?;
    let mut part_raters = members(&read("open_reliability_raters")?, parts.height())?;
    let mut part_items: Vec<Vec<(String, Spread, f64)>> = vec![Vec::new(); parts.height()];
    let items = read("open_reliability_items")?;
    let (of, item) = (frame::i64s(&items, "of")?, text(&items, "item")?);
    let item_spreads = spreads(&items)?;
    let levels = frame::f64s(&items, "levels")?;
    for (k, item) in item.into_iter().enumerate() {
        let of = count(of[k])?;
        part_items
            .get_mut(of)
            .context("an item of no kept part")?
            .push((item, item_spreads[k], levels[k].context("missing levels")?));
    }
    let depts = text(&parts, "dept_id")?;
    let responses = spreads(&parts)?;
    let rel = periods(&parts)?
        .into_iter()
        .enumerate()
        .map(|(i, period)| ReliabilityPart {
            dept_id: depts[i].clone(),
            period,
            items: std::mem::take(&mut part_items[i]),
            raters: std::mem::take(&mut part_raters[i]),
            responses: responses[i],
        })
        .collect();
    Ok((sat, rel))
}

/// Item ratings handed to the next pass, as kept, and back.
fn carried_frame(rows: &[(String, String, Option<f64>)]) -> Result<DataFrame> {
    Builder::new()
        .str("rating_id", rows.iter().map(|c| Some(&c.0)))
        .str("item", rows.iter().map(|c| Some(&c.1)))
        .f64("adjusted", rows.iter().map(|c| c.2))
        .build()
}

fn carried_rows(df: &DataFrame) -> Result<Vec<(String, String, Option<f64>)>> {
    let (ids, items) = (text(df, "rating_id")?, text(df, "item")?);
    let adjusted = frame::f64s(df, "adjusted")?;
    Ok(ids
        .into_iter()
        .zip(items)
        .zip(adjusted)
        .map(|((a, b), c)| (a, b, c))
        .collect())
}

/// Open rater groups' sums (their raters apart, see [`members_frame`]).
fn open_groups_frame(groups: &[OpenGroup], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", groups.iter().map(|g| Some(&g.dept_id)))
        .periods(&groups.iter().map(|g| g.period).collect::<Vec<_>>(), as_of)
        .str("rater_group", groups.iter().map(|g| Some(&g.rater_group)))
        .i64("n", groups.iter().map(|g| Some(g.n as i64)))
        .f64("sum", groups.iter().map(|g| Some(g.sum)))
        .f64("fair", groups.iter().map(|g| g.fair))
        .i64("excluded", groups.iter().map(|g| Some(g.excluded as i64)))
        .build()
}

/// Open reliability parts: the spread of their response means (their
/// items and raters apart).
fn open_parts_frame(parts: &[ReliabilityPart], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", parts.iter().map(|p| Some(&p.dept_id)))
        .periods(&parts.iter().map(|p| p.period).collect::<Vec<_>>(), as_of)
        .i64("n", parts.iter().map(|p| Some(p.responses.n as i64)))
        .f64("mean", parts.iter().map(|p| Some(p.responses.mean)))
        .f64("m2", parts.iter().map(|p| Some(p.responses.m2)))
        .build()
}

/// Each open part's items: `of` its row in `open_reliability`.
fn part_items_frame(parts: &[ReliabilityPart]) -> Result<DataFrame> {
    let rows: Vec<(usize, &(String, Spread, f64))> = parts
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.items.iter().map(move |item| (k, item)))
        .collect();
    Builder::new()
        .i64("of", rows.iter().map(|r| Some(r.0 as i64)))
        .str("item", rows.iter().map(|r| Some(&r.1 .0)))
        .i64("n", rows.iter().map(|r| Some(r.1 .1.n as i64)))
        .f64("mean", rows.iter().map(|r| Some(r.1 .1.mean)))
        .f64("m2", rows.iter().map(|r| Some(r.1 .1.m2)))
        .f64("levels", rows.iter().map(|r| Some(r.1 .2)))
        .build()
}

/// Each row's raters, one per row of the result: `of` the row's number.
fn members_frame<'a>(lists: impl Iterator<Item = &'a Vec<String>>) -> Result<DataFrame> {
    let rows: Vec<(usize, &String)> = lists
        .enumerate()
        .flat_map(|(k, list)| list.iter().map(move |r| (k, r)))
        .collect();
    Builder::new()
        .i64("of", rows.iter().map(|r| Some(r.0 as i64)))
        .str("rater_id", rows.iter().map(|r| Some(r.1)))
        .build()
}

/// [`members_frame`] back, for `n` rows.
fn members(df: &DataFrame, n: usize) -> Result<Vec<Vec<String>>> {
    let mut lists = vec![Vec::new(); n];
    let of = frame::i64s(df, "of")?;
    for (k, rater) in text(df, "rater_id")?.into_iter().enumerate() {
        lists
            .get_mut(count(of[k])?)
            .context("a rater of no kept row")?
            .push(rater);
    }
    Ok(lists)
}

/// The spreads in a kept frame's `n`, `mean` and `m2` columns.
fn spreads(df: &DataFrame) -> Result<Vec<Spread>> {
    let (n, mean, m2) = (
        frame::i64s(df, "n")?,
        frame::f64s(df, "mean")?,
        frame::f64s(df, "m2")?,
    );
    (0..df.height())
        .map(|i| {
            Ok(Spread {
                n: count(n[i])?,
                mean: mean[i].context("a missing mean")?,
                m2: m2[i].context("a missing m2")?,
            })
        })
        .collect()
}

/// A text column of a kept frame, which has no missing values.
fn text(df: &DataFrame, column: &str) -> Result<Vec<String>> {
    frame::strs(df, column)?
        .into_iter()
        .map(|s| s.context("a missing value in a kept entry"))
        .collect()
}

/// Excluded responses (rating id, why) as kept, and back.
fn excluded_frame(rows: &[(String, String)]) -> Result<DataFrame> {
    Builder::new()
        .str("rating_id", rows.iter().map(|c| Some(&c.0)))
        .str("reason", rows.iter().map(|c| Some(&c.1)))
        .build()
}

fn excluded_rows(df: &DataFrame) -> Result<Vec<(String, String)>> {
    Ok(text(df, "rating_id")?
        .into_iter()
        .zip(text(df, "reason")?)
        .collect())
}

/// The periods of a mart frame's rows, from `grain` and `period_start`.
fn periods(df: &DataFrame) -> Result<Vec<Period>> {
    frame::strs(df, "grain")?
        .into_iter()
        .zip(frame::dates(df, "period_start")?)
        .map(|(g, start)| {
            let grain = g.as_deref().and_then(Grain::parse).context("grain")?;
            Ok(Period::containing(grain, start.context("period_start")?))
        })
        .collect()
}

fn count(v: Option<i64>) -> Result<usize> {
    usize::try_from(v.context("a missing count")?).context("a negative count")
}

fn satisfaction_rows(df: &DataFrame) -> Result<Vec<satisfaction::Row>> {
    let (depts, groups) = (frame::strs(df, "dept_id")?, frame::strs(df, "rater_group")?);
    let (n_ratings, n_raters, excluded) = (
        frame::i64s(df, "n_ratings")?,
        frame::i64s(df, "n_raters")?,
        frame::i64s(df, "excluded_ratings")?,
    );
    let (observed, weighted, fair, value) = (
        frame::f64s(df, "observed_mean")?,
        frame::f64s(df, "weighted_mean")?,
        frame::f64s(df, "fair_mean")?,
        frame::f64s(df, "value")?,
    );
    periods(df)?
        .into_iter()
        .enumerate()
        .map(|(i, period)| {
            Ok(satisfaction::Row {
                dept_id: depts[i].clone().context("dept_id")?,
                period,
                rater_group: groups[i].clone().context("rater_group")?,
                n_ratings: count(n_ratings[i])?,
                n_raters: count(n_raters[i])?,
                observed_mean: observed[i],
                weighted_mean: weighted[i],
                fair_mean: fair[i],
                value: value[i],
                excluded_ratings: count(excluded[i])?,
            })
        })
        .collect()
}

fn reliability_rows(df: &DataFrame) -> Result<Vec<Reliability>> {
    let depts = frame::strs(df, "dept_id")?;
    let n_raters = frame::i64s(df, "n_raters")?;
    let (rwg, icc1, icc2) = (
        frame::f64s(df, "rwg")?,
        frame::f64s(df, "icc1")?,
        frame::f64s(df, "icc2")?,
    );
    periods(df)?
        .into_iter()
        .enumerate()
        .map(|(i, period)| {
            Ok(Reliability {
                dept_id: depts[i].clone().context("dept_id")?,
                period,
                n_raters: count(n_raters[i])?,
                rwg: rwg[i],
                icc1: icc1[i],
                icc2: icc2[i],
            })
        })
        .collect()
}
