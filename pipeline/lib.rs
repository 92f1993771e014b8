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

/// jemalloc for every program built on this library (the command, its
/// tests): see `Cargo.toml`.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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

/// Runs `job(0)` .. `job(n - 1)` on one thread per core, each thread taking
/// the next job when it is done with one, and returns the results in job
/// order. After a job fails no new job starts, and the first error (by job
/// order) is returned. Plain threads rather than rayon: jobs may run polars
/// queries, which use polars' own thread pool.
pub fn on_every_core<T: Send>(
    n: usize,
    job: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<Vec<T>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let mut done: Vec<(usize, anyhow::Result<T>)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cores.min(n))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        let result = job(i);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        mine.push((i, result));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Hands memory the process has freed back to the system at once. The
/// allocator returns freed pages only after a delay (ten seconds), so the
/// pages a large pass freed would still count in the resident peak of the
/// next one.
pub fn release_freed_memory() {
    #[cfg(not(target_env = "msvc"))]
    {
        // "arena.4096.purge": purge every arena (4096 is jemalloc's
        // MALLCTL_ARENAS_ALL); it takes and gives no value.
        const PURGE_ALL: &[u8] = b"arena.4096.purge\0";
        // SAFETY: the name is NUL-terminated and the control takes no old or
        // new value, so null pointers with zero lengths are what it expects;
        // purging only returns unused pages and touches no live allocation.
        let status = unsafe {
            tikv_jemalloc_sys::mallctl(
                PURGE_ALL.as_ptr().cast(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            )
        };
        debug_assert_eq!(status, 0, "jemalloc refused {PURGE_ALL:?}");
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn on_every_core_returns_results_in_job_order() {
        // Job i takes longer the smaller i is, so later jobs finish first.
        let squares = on_every_core(40, |i| {
            std::thread::sleep(std::time::Duration::from_micros((40 - i as u64) * 50));
            Ok(i * i)
        })
        .unwrap();
        assert_eq!(squares, (0..40).map(|i| i * i).collect::<Vec<_>>());
        assert!(on_every_core(0, Ok).unwrap().is_empty());
    }

    #[test]
    fn on_every_core_stops_taking_jobs_after_a_failure() {
        let started = AtomicUsize::new(0);
        let err = on_every_core(1000, |i| {
            started.fetch_add(1, Ordering::Relaxed);
            if i == 3 {
                anyhow::bail!("job 3 failed");
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
            Ok(i)
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "job 3 failed");
        // Jobs 0-3, and at most a few that other threads had taken while
        // job 3 ran: far from all 1000.
        let started = started.load(Ordering::Relaxed);
        assert!((4..50).contains(&started), "{started} jobs started");
    }
}
