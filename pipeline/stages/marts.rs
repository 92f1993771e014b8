//! Writing the marts: each into the staging folder (published whole with
//! the run, so readers never see marts of two runs), row groups kept from
//! the last run's file where they are unchanged, rater ids pseudonymised
//! where the policy asks; and what compute reports in the manifest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::*;

/// What compute produced, for the manifest.
#[derive(Debug, Default, serde::Serialize)]
pub struct ComputeReport {
    pub as_of: String,
    pub marts: std::collections::BTreeMap<String, usize>,
    /// Periods whose rater-model results were taken from the last run
    /// (their inputs unchanged), and those computed and kept now: complete
    /// years (`2025`: rater model, reliability and satisfaction), and the
    /// complete estimation periods of the current year (`2026-Q1`: the
    /// rater model only).
    pub rater_reused: Vec<String>,
    pub rater_computed: Vec<String>,
    /// Cases derived from their events by this run, and cases whose rows
    /// were taken from the last run (their events and as-of dependence
    /// unchanged).
    pub cases_derived: usize,
    pub cases_kept: usize,
    /// Ratings month files read for their bad reviews by this run, and
    /// taken from the last run (unchanged since).
    pub bad_review_months_read: usize,
    pub bad_review_months_kept: usize,
}

/// The marts being written: this run's folder of them in the staging area,
/// and the rows written to each.
pub struct Marts<'a> {
    out: &'a OutDir,
    dir: PathBuf,
    progress: &'a Progress,
    rows: Mutex<BTreeMap<String, usize>>,
}

/// One mart's name and rows.
pub type Mart = (&'static str, DataFrame);

impl<'a> Marts<'a> {
    /// Stages `OUT/marts/`, to be published whole with the run.
    pub fn stage(out: &'a OutDir, staging: &mut Staging, progress: &'a Progress) -> Marts<'a> {
        Marts {
            out,
            dir: staging.stage(&out.marts()),
            progress,
            rows: Mutex::new(BTreeMap::new()),
        }
    }

    /// The staged folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a mart to the staging folder. Given the last run's file and
    /// rows of it, copies the row groups they hold unchanged, and says so.
    pub fn write(
        &self,
        name: &str,
        df: &mut DataFrame,
        previous: Option<lake::Previous>,
    ) -> Result<PathBuf> {
        self.rows
            .lock()
            .expect("no writer panicked")
            .insert(name.to_string(), df.height());
        let path = self.dir.join(format!("{name}.parquet"));
        let reusing = previous.is_some();
        let copied = lake::write_parquet_reusing(df, &path, previous)
            .with_context(|| format!("cannot write mart {name}"))?;
        if reusing {
            self.progress.step(&format!(
                "{name} mart: {copied} of {} row groups copied from the last run",
                lake::row_groups(df.height())
            ));
        }
        Ok(path)
    }

    /// Writes marts on every core, a mart per core at a time. The rater
    /// marts change only in their last rows (the periods after those kept
    /// from the last run come last), so with `same_program` their row
    /// groups before are copied from the marts the last run published:
    /// when it kept rater results for this run, that run was this program
    /// under this policy (the rater store's fingerprint), so its groups are
    /// the bytes a fresh write gives. The other marts change throughout (a
    /// new day moves trends, ranks and partial periods everywhere).
    pub fn write_all(&self, marts: &[Mart], same_program: bool) -> Result<()> {
        crate::runtime::on_every_core(marts.len(), |i| {
            let (name, df) = &marts[i];
            let old = self.out.marts().join(format!("{name}.parquet"));
            let kept = match *name {
                "rater_effects" | "rating_flags" if same_program && old.is_file() => {
                    lake::read_parquet(&old).ok()
                }
                _ => None,
            };
            let previous = kept
                .as_ref()
                .map(|rows| lake::Previous { path: &old, rows });
            self.write(name, &mut df.clone(), previous)
        })?;
        Ok(())
    }

    /// Writes `marts` (as [`Marts::write_all`]) on a thread of its own while
    /// `work` runs on this one.
    pub fn write_while<T>(
        &self,
        marts: &[Mart],
        same_program: bool,
        work: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        std::thread::scope(|s| {
            let writer = s.spawn(|| self.write_all(marts, same_program));
            let done = work();
            writer
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
            done
        })
    }

    /// The rows written to each mart.
    pub fn rows(self) -> BTreeMap<String, usize> {
        self.rows.into_inner().expect("no writer panicked")
    }
}

/// The marts that scores do not change: satisfaction, the rater marts (as
/// published), reliability, follow-ups, the indicator values and the
/// catalog.
pub fn score_free_marts(
    views: &Views,
    values: &[measure::Value],
    catalog: &[Indicator],
    rater_key: Option<&[u8]>,
    as_of: NaiveDate,
) -> Result<Vec<Mart>> {
    Ok(vec![
        ("satisfaction", views.get("satisfaction").clone()),
        (
            "rater_effects",
            published_raters(views.get("rater_effects"), rater_key)?,
        ),
        (
            "rating_flags",
            published_raters(views.get("rating_flags"), rater_key)?,
        ),
        ("reliability", views.get("reliability").clone()),
        ("followup_status", views.get("followup_status").clone()),
        ("followup_rejects", views.get("followup_rejects").clone()),
        ("plan_status", views.get("plan_status").clone()),
        ("plan_periods", views.get("plan_periods").clone()),
        (
            "plan_event_rejects",
            views.get("plan_event_rejects").clone(),
        ),
        ("indicator_values", measure::values_frame(values, as_of)?),
        ("indicator_catalog", measure::catalog_frame(catalog)?),
    ])
}

/// A rater mart as published: rater ids replaced by pseudonyms when the
/// policy asks for it.
pub(super) fn published_raters(df: &DataFrame, key: Option<&[u8]>) -> Result<DataFrame> {
    let Some(key) = key else {
        return Ok(df.clone());
    };
    let ids: StringChunked = frame::strs(df, "rater_id")?
        .iter()
        .map(|v| v.as_deref().map(|id| crate::privacy::pseudonym(key, id)))
        .collect();
    let mut out = df.clone();
    out.with_column(ids.with_name("rater_id".into()).into_column())?;
    Ok(out)
}
