//! Progress and warnings on stderr, so stdout stays clean for `query`
//! results. `--quiet` silences progress; warnings and errors always show.

use std::time::Instant;

#[derive(Debug)]
pub struct Progress {
    quiet: bool,
    start: Instant,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            start: Instant::now(),
        }
    }

    /// A silent reporter, for library callers and tests.
    pub fn silent() -> Progress {
        Progress::new(true)
    }

    /// A step of a long task.
    pub fn step(&self, msg: &str) {
        if !self.quiet {
            eprintln!("[{:>6.1}s] {msg}", self.start.elapsed().as_secs_f64());
        }
    }

    /// Something the user should know even in a quiet run.
    pub fn warn(&self, msg: &str) {
        eprintln!("warning: {msg}");
    }
}
