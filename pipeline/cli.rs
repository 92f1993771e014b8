//! The command line (docs/contract.md#command-line). Parsing and dispatch only: each
//! command calls into its stage module.

use std::path::PathBuf;

use anyhow::Result;
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};

use crate::progress::Progress;

#[derive(Debug, Parser)]
#[command(
    name = "scorecard",
    version,
    about = "Scores functional departments on the quality of the service they give",
    long_about = "Scores functional departments (HR, IT, finance, legal, a service centre) on the \
quality of the service they give: loads rating and process exports into a Parquet lake, computes \
indicator scores against department-type targets, and renders static HTML scorecards.\n\n\
Exit status: 0 success; 2 bad usage or policy; 3 input data problems; 1 anything else."
)]
pub struct Cli {
    /// Print no progress (warnings and errors still go to stderr).
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Log lines on stderr as text, or as JSON objects for log collectors.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Ingest, compute every stage, and render the site: the nightly job.
    Run(RunArgs),
    /// Validate the input folder and load it into the lake.
    Ingest(IngestArgs),
    /// Compute the marts from the lake (cases, indicators, scores, trends).
    Compute(ComputeArgs),
    /// Render the static HTML site from the lake and marts.
    Render(RenderArgs),
    /// Validate the input folder and the policy without writing anything.
    Check(CheckArgs),
    /// Run SQL over the lake and marts; tables are named after their folders.
    Query(QueryArgs),
    /// Create a starter folder: a policy to edit and one folder per input table.
    Init(InitArgs),
    /// Generate realistic synthetic input data (seeded, reproducible).
    Generate(crate::commands::generate::GenerateArgs),
}

#[derive(Debug, Args)]
pub struct InputArg {
    /// Folder of input exports, one file or folder per table.
    #[arg(long, default_value = "data_samples")]
    pub input: PathBuf,
}

#[derive(Debug, Args)]
pub struct OutArg {
    /// Output folder (lake/, marts/, rejects/, site/, run.json).
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub input: InputArg,
    #[command(flatten)]
    pub out: OutArg,
    /// Policy file [default: policy.toml in the input folder, else built-in].
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Score up to the end of this day (YYYY-MM-DD) in the policy's time zone
    /// [default: date of the latest event, never after today].
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub input: InputArg,
    #[command(flatten)]
    pub out: OutArg,
    /// Policy file [default: policy.toml in the input folder, else built-in].
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ComputeArgs {
    #[command(flatten)]
    pub out: OutArg,
    /// Policy file [default: OUT/policy.toml, the copy ingest made].
    #[arg(long)]
    pub policy: Option<PathBuf>,
    /// Score up to the end of this day (YYYY-MM-DD).
    #[arg(long, value_parser = parse_date)]
    pub as_of: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub out: OutArg,
    /// Policy file [default: OUT/policy.toml, the copy ingest made].
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub input: InputArg,
    /// Also fail (exit 3) when any record would be rejected, not only when
    /// the run itself would fail.
    #[arg(long)]
    pub strict: bool,
    /// Policy file [default: policy.toml in the input folder, else built-in].
    #[arg(long)]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub out: OutArg,
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = crate::commands::query::Format::Table)]
    pub format: crate::commands::query::Format,
    /// Write the result to this file instead: `.csv` or `.parquet`.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// SQL text, or a path to a .sql file.
    pub sql: String,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to create (or fill, if it exists without a policy.toml).
    pub dir: PathBuf,
}

fn parse_date(s: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| format!("`{s}` is not a date; expected YYYY-MM-DD"))
}

/// Parses the command line, runs it, prints any error, and returns the exit
/// status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let progress = Progress::with_format(cli.quiet, cli.log_format == LogFormat::Json);
    match dispatch(cli.command, &progress) {
        Ok(()) => 0,
        // `scorecard query ... | head` closing the pipe early is not an error.
        Err(err) if is_broken_pipe(&err) => 0,
        Err(err) => {
            let code = crate::error::exit_code(&err);
            let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
            progress.error(&err.to_string(), &causes, code);
            code
        }
    }
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn dispatch(command: Command, progress: &Progress) -> Result<()> {
    use crate::run;
    match command {
        Command::Run(a) => {
            run::run(
                &run::RunOptions {
                    input: a.input.input,
                    out: a.out.out,
                    policy: a.policy,
                    as_of: a.as_of,
                    ingest_only: false,
                },
                progress,
            )?;
        }
        Command::Ingest(a) => {
            run::run(
                &run::RunOptions {
                    input: a.input.input,
                    out: a.out.out,
                    policy: a.policy,
                    as_of: None,
                    ingest_only: true,
                },
                progress,
            )?;
        }
        Command::Compute(a) => {
            run::compute_only(&a.out.out, a.policy.as_deref(), a.as_of, progress)?;
        }
        Command::Render(a) => run::render_only(&a.out.out, a.policy.as_deref(), progress)?,
        Command::Check(a) => {
            crate::commands::check::check(&a.input.input, a.policy.as_deref(), a.strict, progress)?
        }
        Command::Query(a) => {
            crate::commands::query::run(&a.out.out, &a.sql, a.format, a.output.as_deref())?
        }
        Command::Init(a) => crate::commands::init::init(&a.dir, progress)?,
        Command::Generate(a) => crate::commands::generate::generate(&a, progress)?,
    }
    Ok(())
}
