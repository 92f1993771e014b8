//! `scorecard init DIR`: a starter input folder with the default policy to
//! edit and one empty folder per input table, each with a note of the
//! columns it takes.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};

use crate::ingest::tables::{self, Kind};
use crate::policy::DEFAULT_POLICY;
use crate::progress::Progress;

pub fn init(dir: &Path, progress: &Progress) -> Result<()> {
    let policy = dir.join("policy.toml");
    if policy.exists() {
        return Err(crate::error::Failure::Usage(format!(
            "{} already exists; init never overwrites a policy",
            policy.display()
        ))
        .into());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    for spec in tables::ALL {
        let folder = dir.join(spec.name);
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    std::fs::write(dir.join("README.md"), columns_note())
        .with_context(|| format!("cannot write {}", dir.join("README.md").display()))?;
    std::fs::write(&policy, DEFAULT_POLICY)
        .with_context(|| format!("cannot write {}", policy.display()))?;
    progress.step(&format!("created {}", dir.display()));
    println!(
        "Created {dir}: edit {dir}/policy.toml, put each night's exports in the table folders, then run\n  scorecard run --input {dir} --out OUT",
        dir = dir.display()
    );
    Ok(())
}

/// The input tables and their columns, from the same specs ingest uses.
pub fn columns_note() -> String {
    let mut s = String::from(
        "# Input folder\n\nPut each export in the folder of its table (CSV, JSON Lines or Parquet; \
UTF-8 or GB18030). One file per nightly export is the normal case; a file already loaded is \
skipped, a changed one is loaded again. Timestamps are RFC 3339; without an offset they are \
local time in the policy's `timezone`. Columns marked optional may be left out.\n",
    );
    for spec in tables::ALL {
        let _ = write!(
            s,
            "\n## {}\n\n| column | type | |\n|---|---|---|\n",
            spec.name
        );
        for c in spec.columns {
            let ty = match c.kind {
                Kind::Text => "text".to_string(),
                Kind::Timestamp => "timestamp".to_string(),
                Kind::Date => "date (YYYY-MM-DD)".to_string(),
                Kind::Number { min: Some(m) } => format!("number >= {m}"),
                Kind::Number { min: None } => "number".to_string(),
                Kind::Bool => "true/false".to_string(),
                Kind::Enum(vals) => format!("one of {}", vals.join(", ")),
                Kind::DeptRef => "department id".to_string(),
                Kind::DeptType => "department type of the policy".to_string(),
            };
            let _ = writeln!(
                s,
                "| `{}` | {ty} | {} |",
                c.name,
                if c.required { "required" } else { "optional" }
            );
        }
    }
    s
}
