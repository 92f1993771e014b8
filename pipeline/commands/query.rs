//! `scorecard query`: SQL over the lake and the marts with polars' SQL
//! engine. Every lake table and mart is registered under its folder or file
//! name (`ratings`, `departments`, `rejects`, ...); partitioned tables carry
//! their `month` partition column, as DuckDB and Spark read them.

use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{AnyValue, DataFrame, HiveOptions, LazyFrame, PlRefPath, ScanArgsParquet};
use polars::sql::SQLContext;

use crate::ingest::tables;
use crate::lake::OutDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table (at most 100 rows shown).
    Table,
    /// CSV with a header, every row.
    Csv,
}

/// Registers every table of an output folder in a SQL context.
pub fn context(out: &OutDir) -> Result<SQLContext> {
    let ctx = SQLContext::new();
    for spec in tables::ALL {
        let partitioned = spec.month_column.is_some();
        let path = out.table_path(spec.name, partitioned);
        if !path.exists() {
            continue;
        }
        let lf = if partitioned {
            let args = ScanArgsParquet {
                hive_options: HiveOptions::new_enabled(),
                ..Default::default()
            };
            LazyFrame::scan_parquet(
                PlRefPath::new(format!("{}/**/*.parquet", path.display())),
                args,
            )?
        } else {
            LazyFrame::scan_parquet(
                PlRefPath::new(path.display().to_string()),
                Default::default(),
            )?
        };
        ctx.register(spec.name, lf);
    }
    let mut extra = vec![("rejects".to_string(), out.rejects())];
    if let Ok(entries) = std::fs::read_dir(out.marts()) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "parquet") {
                if let Some(stem) = p.file_stem().and_then(|s| s.to_str()) {
                    extra.push((stem.to_string(), p));
                }
            }
        }
    }
    for (name, p) in extra {
        if p.is_file() {
            let lf = LazyFrame::scan_parquet(
                PlRefPath::new(p.display().to_string()),
                Default::default(),
            )?;
            ctx.register(&name, lf);
        }
    }
    Ok(ctx)
}

/// Runs SQL text (or the SQL in a file) and prints the result to stdout,
/// or writes it to `output` (CSV or Parquet, by its extension).
pub fn run(out: &Path, sql: &str, format: Format, output: Option<&Path>) -> Result<()> {
    let out = OutDir::new(out);
    out.require_lake()?;
    let text = if sql.trim_end().ends_with(".sql") && Path::new(sql.trim()).is_file() {
        std::fs::read_to_string(sql.trim()).with_context(|| format!("cannot read {sql}"))?
    } else {
        sql.to_string()
    };
    let mut df = execute(&out, &text)?;
    if let Some(path) = output {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "parquet" => crate::lake::write_parquet(&mut df, path)?,
            "csv" => {
                let f = std::fs::File::create(path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                write_csv(&df, &mut std::io::BufWriter::new(f))?;
            }
            _ => {
                return Err(crate::error::Failure::Usage(format!(
                    "--output {}: the file name must end in .csv or .parquet",
                    path.display()
                ))
                .into())
            }
        }
        return Ok(());
    }
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match format {
        Format::Table => {
            use std::io::Write;
            // polars prints 8 rows unless told otherwise; the user can still
            // choose with the same variable.
            for (var, value) in [("POLARS_FMT_MAX_ROWS", "100"), ("POLARS_FMT_STR_LEN", "60")] {
                if std::env::var_os(var).is_none() {
                    std::env::set_var(var, value);
                }
            }
            writeln!(lock, "{df}")?;
        }
        Format::Csv => write_csv(&df, &mut lock)?,
    }
    Ok(())
}

/// Runs one SQL statement over an output folder.
pub fn execute(out: &OutDir, sql: &str) -> Result<DataFrame> {
    let mut ctx = context(out)?;
    let lf = ctx
        .execute(sql)
        .map_err(|e| crate::error::Failure::Usage(format!("the query does not run: {e}")))?;
    lf.collect().context("the query failed while running")
}

fn write_csv(df: &DataFrame, w: &mut impl std::io::Write) -> Result<()> {
    let mut wtr = csv::Writer::from_writer(w);
    wtr.write_record(df.get_column_names().iter().map(|s| s.as_str()))?;
    let cols = df.columns();
    for i in 0..df.height() {
        let mut rec = Vec::with_capacity(cols.len());
        for c in cols {
            let v = c.get(i)?;
            rec.push(match v {
                AnyValue::Null => String::new(),
                AnyValue::String(s) => s.to_string(),
                AnyValue::StringOwned(s) => s.to_string(),
                other => other.to_string(),
            });
        }
        wtr.write_record(&rec)?;
    }
    wtr.flush()?;
    Ok(())
}
