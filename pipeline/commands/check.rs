//! `scorecard check`: the policy, the indicator definitions and the input
//! folder validated as a run would, with nothing written; exit 3 when the
//! run would fail (and with `--strict`, when any record would be rejected).

use std::path::Path;

use anyhow::Result;

use crate::ingest;
use crate::progress::Progress;
use crate::stages;

/// `scorecard check`: reads and validates everything, writes nothing.
pub fn check(input: &Path, policy: Option<&Path>, strict: bool, progress: &Progress) -> Result<()> {
    let (policy, catalog) = stages::load_policy(policy, &[input.join("policy.toml")])?;
    progress.step(&format!(
        "{} indicator definitions are valid",
        catalog.len()
    ));
    progress.step(&format!("policy: {} is valid", policy.source));
    let report = ingest::ingest(input, None, &policy, progress)?;
    println!(
        "{} file(s), {} record(s) rejected",
        report.files.len(),
        report.rejects_new
    );
    for (table, c) in &report.tables {
        if c.valid_read > 0 {
            println!(
                "  {table}: {} valid record(s), {} after deduplication",
                c.valid_read, c.rows_after
            );
        }
    }
    for (reason, n) in &report.rejects_by_reason {
        println!("  rejected, {reason}: {n}");
    }
    for r in &report.reject_examples {
        println!(
            "  {}:{} column {}: {} ({})",
            r.file,
            r.line,
            r.column.as_deref().unwrap_or("-"),
            r.message,
            r.reason.as_str()
        );
    }
    if strict && report.rejects_new > 0 {
        return Err(crate::error::InputFailure(vec![format!(
            "{} record(s) would be rejected (--strict)",
            report.rejects_new
        )])
        .into());
    }
    Ok(())
}
