//! service-scorecard: links functional departments' performance assessment
//! to the quality of the service they give.
//!
//! The pipeline reads the stages below in order (see `ARCHITECTURE.md`);
//! [`run::run`] is the table of contents. Each stage reads and writes Parquet
//! under one output folder, so any stage can be re-run alone and inspected.
//!
//! ```text
//! ingest        raw exports -> lake/ (Parquet), rejects/          ingest
//! derive        process events -> cases                           cases
//! raters        severity, flags, exclusions, reliability          raters
//! satisfaction  ratings -> satisfaction per rater group           satisfaction
//! measure       indicator SQL -> values per dept x period         measure
//! score         targets, rules, veto, grade, rank, bonus          score
//! trends        Sen's slope, Mann-Kendall, XmR, cross-checks      trends
//! render        lake/ + marts/ -> site/ (static HTML)             render
//! ```
//! `compute` runs derive to score over the lake and writes `marts/`.

pub mod calendar;
pub mod case_reuse;
pub mod cases;
pub mod cli;
pub mod compute;
pub mod frame;
pub mod generate;
pub mod ingest;
pub mod init;
pub mod lake;
pub mod measure;
pub mod periods;
pub mod policy;
pub mod privacy;
pub mod progress;
pub mod query;
pub mod raters;
pub mod render;
pub mod restate;
pub mod reuse;
pub mod run;
pub mod satisfaction;
pub mod score;
pub mod trends;

/// Failures with their own exit status (DESIGN.md section 4). Anything else
/// that goes wrong exits with 1.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad command line or unusable paths: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The policy file is invalid: exit 2.
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
    /// Input data problems (missing column, rejects over the limit): exit 3.
    #[error(transparent)]
    Input(#[from] ingest::InputFailure),
    /// Another run holds the output folder: exit 1.
    #[error("{0}")]
    Busy(String),
}

/// A named point where a test can stop the process: with the environment
/// variable `SCORECARD_FAILPOINT` set to `name`, the run announces it on
/// stderr and waits there to be killed. Crash tests use it to kill a run
/// (SIGKILL) at a known step; it is never set in production.
pub fn failpoint(name: &str) {
    if std::env::var("SCORECARD_FAILPOINT").as_deref() == Ok(name) {
        eprintln!("failpoint {name}: waiting to be killed");
        loop {
            std::thread::sleep(std::time::Duration::from_secs(60));
        }
    }
}

/// Hands memory the process has freed back to the system. glibc keeps
/// freed memory in its per-thread pools, where the next pass, needing other
/// sizes, may not reuse it: between large passes that counts twice in the
/// resident peak.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns the allocator's own unused pages;
    // it touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Exit status for an error: 2 usage or policy, 3 input data, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> i32 {
    for cause in err.chain() {
        if let Some(f) = cause.downcast_ref::<Failure>() {
            return match f {
                Failure::Usage(_) | Failure::Policy(_) => 2,
                Failure::Input(_) => 3,
                Failure::Busy(_) => 1,
            };
        }
        if cause.downcast_ref::<policy::PolicyError>().is_some() {
            return 2;
        }
        if cause.downcast_ref::<ingest::InputFailure>().is_some() {
            return 3;
        }
    }
    1
}
