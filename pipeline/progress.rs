//! Progress, warnings and errors on stderr, so stdout stays clean for
//! `query` results. `--quiet` silences progress; warnings and errors always
//! show. `--log-format json` writes one JSON object per line for log
//! collectors: `{"level": "info"|"warning"|"error", "elapsed_s": ..,
//! "message": ..}`.

use std::time::Instant;

#[derive(Debug)]
pub struct Progress {
    quiet: bool,
    json: bool,
    start: Instant,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress::with_format(quiet, false)
    }

    pub fn with_format(quiet: bool, json: bool) -> Progress {
        Progress {
            quiet,
            json,
            start: Instant::now(),
        }
    }

    /// A silent reporter, for library callers and tests.
    pub fn silent() -> Progress {
        Progress::new(true)
    }

    fn json_line(&self, level: &str, message: &str) -> serde_json::Value {
        let elapsed = self.start.elapsed().as_secs_f64();
        serde_json::json!({
            "level": level,
            "elapsed_s": (elapsed * 1000.0).round() / 1000.0,
            "message": message,
        })
    }

    fn emit(&self, level: &str, message: &str) {
        let elapsed = self.start.elapsed().as_secs_f64();
        if self.json {
            eprintln!("{}", self.json_line(level, message));
        } else if level == "info" {
            eprintln!("[{elapsed:>6.1}s] {message}");
        } else {
            eprintln!("{level}: {message}");
        }
    }

    /// A step of a long task.
    pub fn step(&self, msg: &str) {
        if !self.quiet {
            self.emit("info", msg);
        }
    }

    /// Something the user should know even in a quiet run.
    pub fn warn(&self, msg: &str) {
        self.emit("warning", msg);
    }

    /// The error that ends a run, with its causes and exit status.
    pub fn error(&self, msg: &str, causes: &[String], exit_code: i32) {
        if self.json {
            let mut obj = self.json_line("error", msg);
            obj["causes"] = serde_json::json!(causes);
            obj["exit_code"] = serde_json::json!(exit_code);
            eprintln!("{obj}");
        } else {
            eprintln!("error: {msg}");
            for c in causes {
                eprintln!("  caused by: {c}");
            }
        }
    }
}
