//! service-scorecard: links functional departments' performance assessment
//! to the quality of the service they give.
//!
//! The folders are the stages (see `ARCHITECTURE.md`); [`run`] calls them in
//! order. Each layer uses only the layers listed before it (checked by
//! `.ci/layers-check`, with no import cycle at any depth):
//!
//! ```text
//! error, runtime, progress   exit statuses; threads, memory, failpoints; log
//! policy, privacy            the policy file; rater pseudonyms
//! time                       instants, days, working calendar, periods
//! frame, lake                column builders; the output folder, staged and published whole
//! ingest                     raw exports -> lake/ (Parquet), rejects/
//! model                      cases, raters, satisfaction, measure, score, trends
//! nightly                    what a run keeps from the last one
//! stages                     the lake as of a day -> marts/, stage by stage
//! report                     lake/ + marts/ -> site/ (static HTML)
//! commands, run, cli         the command line
//! ```

/// jemalloc for every program built on this library (the command, its
/// tests): see `Cargo.toml`.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod error;
pub mod progress;
pub mod runtime;

pub mod policy;
pub mod privacy;
pub mod time;

pub mod frame;
pub mod lake;

pub mod ingest;
pub mod model;
pub mod nightly;
pub mod stages;

pub mod report;

pub mod cli;
pub mod commands;
pub mod run;
