//! What a run keeps from the last one, so that the nightly run redoes only
//! what changed: the bad reviews of each ratings month ([`bad_reviews`],
//! `OUT/cache/bad_reviews/`), rater-model results of complete years and
//! quarters ([`raters`], `OUT/cache/raters/`), the derived cases
//! ([`cases`], `OUT/cache/cases/`) and the digests of the pages' inputs
//! ([`pages`], `OUT/cache/pages/`). The stages see three stores,
//! [`bad_reviews::BadReviewStore`], [`raters::RaterStore`] and
//! [`cases::CaseStore`], and render a fourth, [`pages::PageStore`]: each
//! is opened on the output folder, asked for what it kept, and told what
//! was computed; what it keeps is published with the run. Uses the models
//! and the lake; never the stages.

pub mod bad_reviews;
pub mod cases;
pub mod pages;
pub mod raters;

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::lake::Staging;
use crate::policy::LoadedPolicy;

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

/// Adds `bytes` to a fingerprint, with its length first.
pub(crate) fn feed(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}
