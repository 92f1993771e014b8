//! The pipeline's table of contents: which stages a command runs, in order,
//! and the run manifest (`OUT/run.json`) that records what happened.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;
use serde::Serialize;

use crate::ingest::{self, IngestReport};
use crate::lake::{OutDir, Staging};
use crate::model::measure::Indicator;
use crate::nightly::{bad_reviews::BadReviewStore, cases::CaseStore, raters::RaterStore};
use crate::policy::{self, LoadedPolicy};
use crate::progress::Progress;
use crate::report;
use crate::stages::{self, ComputeReport, Marts, Stores};

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub input: PathBuf,
    pub out: PathBuf,
    pub policy: Option<PathBuf>,
    pub as_of: Option<NaiveDate>,
    /// `scorecard ingest`: stop after ingest.
    pub ingest_only: bool,
}

/// Seconds one stage took.
#[derive(Debug, Serialize)]
pub struct StageTiming {
    pub stage: &'static str,
    pub seconds: f64,
}

/// `OUT/run.json`: the only output with wall-clock times (but the file
/// times `OUT/cache/pages/` keeps), so the site and the marts stay
/// deterministic.
#[derive(Debug, Serialize)]
pub struct Manifest {
    pub tool: &'static str,
    pub version: &'static str,
    pub command: &'static str,
    pub started_at: String,
    pub finished_at: String,
    pub input: String,
    pub out: String,
    pub as_of: Option<String>,
    pub policy: PolicyInfo,
    pub stages: Vec<StageTiming>,
    pub ingest: IngestReport,
    pub compute: Option<ComputeReport>,
    pub render: Option<report::RenderReport>,
    pub rejects_total: usize,
}

#[derive(Debug, Serialize)]
pub struct PolicyInfo {
    pub source: String,
    pub sha256: String,
    /// Ids of the policy's versions, oldest first.
    pub versions: Vec<String>,
    pub timezone: String,
    pub locale: String,
}

/// `scorecard run` and `scorecard ingest`.
pub fn run(opts: &RunOptions, progress: &Progress) -> Result<Manifest> {
    let started = chrono::Utc::now();
    // The policy and the indicator definitions are checked before any data
    // is read.
    let (policy, catalog) =
        stages::load_policy(opts.policy.as_deref(), &[opts.input.join("policy.toml")])?;
    crate::privacy::rater_key(&policy)?;
    progress.step(&format!(
        "policy: {}; {} indicator definitions",
        policy.source,
        catalog.len()
    ));
    let out = OutDir::new(&opts.out);
    let _lock = out.lock(if opts.ingest_only { "ingest" } else { "run" }, progress)?;
    // One staging area for the whole run: every stage reads what the earlier
    // ones staged, and nothing is published until the run has finished.
    let mut staging = Staging::new(&out)?;
    let mut stages = Vec::new();

    let t = Instant::now();
    let report = ingest::ingest(&opts.input, Some((&out, &mut staging)), &policy, progress)?;
    staging.write(&out.policy(), policy.text.as_bytes())?;
    stages.push(StageTiming {
        stage: "ingest",
        seconds: t.elapsed().as_secs_f64(),
    });
    summarise(&report, progress);

    let as_of = resolve_as_of(opts.as_of, report.latest_event.as_deref(), &policy);
    crate::runtime::release_freed_memory();
    let mut computed = None;
    let mut rendered = None;
    if !opts.ingest_only {
        if let Some(as_of) = as_of {
            let t = Instant::now();
            computed = Some(compute(
                &out,
                &mut staging,
                &policy,
                &catalog,
                as_of,
                progress,
            )?);
            stages.push(StageTiming {
                stage: "compute",
                seconds: t.elapsed().as_secs_f64(),
            });
            crate::runtime::release_freed_memory();
        }
        let t = Instant::now();
        rendered = Some(report::render(
            &out,
            &mut staging,
            &policy,
            as_of,
            progress,
        )?);
        stages.push(StageTiming {
            stage: "render",
            seconds: t.elapsed().as_secs_f64(),
        });
    }

    let rejects_total = crate::lake::count_rows_file(&out.read(&out.rejects()))?;
    let manifest = Manifest {
        tool: "service-scorecard",
        version: env!("CARGO_PKG_VERSION"),
        command: if opts.ingest_only { "ingest" } else { "run" },
        started_at: time(started),
        finished_at: time(chrono::Utc::now()),
        input: opts.input.display().to_string(),
        out: opts.out.display().to_string(),
        as_of: as_of.map(|d| d.to_string()),
        policy: policy_info(&policy),
        stages,
        ingest: report,
        compute: computed,
        render: rendered,
        rejects_total,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    staging.write(&out.manifest(), &json)?;
    staging.publish()?;
    progress.step(&format!("wrote {}", out.root.display()));
    Ok(manifest)
}

/// The compute stages in order: the lake as of `as_of` -> `OUT/marts/`,
/// staged and published whole with the run.
pub fn compute(
    out: &OutDir,
    staging: &mut Staging,
    policy: &LoadedPolicy,
    catalog: &[Indicator],
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<ComputeReport> {
    let rater_key = crate::privacy::rater_key(policy)?;
    // 1. The lake as this run sees it.
    let lake = stages::lake(out, progress)?;
    let marts = Marts::stage(out, staging, progress);
    // What the last run kept, for the stages to reuse.
    let mut bad_review_store = BadReviewStore::open(out, staging, policy)?;
    let mut rater_store = RaterStore::open(out, staging, policy)?;
    rater_store.know_digests(bad_review_store.digests());
    let mut case_store = CaseStore::open(out, staging, marts.dir(), policy)?;
    // 2. and 3. The views as of as-of: cases derived, ratings rated.
    let stores = Stores {
        bad_reviews: &mut bad_review_store,
        raters: &mut rater_store,
        cases: &mut case_store,
    };
    let mut views = stages::views(lake, out, &marts, stores, policy, as_of, progress)?;
    // 4. Indicator values.
    let values = stages::indicator_values(&mut views, catalog, policy, as_of, out, progress)?;
    // The marts that scores do not change are written on a thread of their
    // own while 5. scores, closed periods and 6. trends are worked out (much
    // of that on one core).
    let same_program = !rater_store.reused.is_empty();
    let early = stages::score_free_marts(&views, &values, catalog, rater_key.as_deref(), as_of)?;
    let late = marts.write_while(&early, same_program, || {
        let mut late =
            stages::scores_and_trends(&views, &values, catalog, policy, as_of, out, progress)?;
        // 9. Staff measures and the monthly 服务之星.
        late.extend(stages::people(&views, policy, as_of, progress)?);
        Ok(late)
    })?;
    drop(early);
    marts.write_all(&late, same_program)?;
    crate::runtime::failpoint("compute");
    Ok(ComputeReport {
        as_of: as_of.to_string(),
        marts: marts.rows(),
        rater_reused: rater_store.reused,
        rater_computed: rater_store.computed,
        cases_derived: case_store.derived,
        cases_kept: case_store.kept,
        bad_review_months_read: bad_review_store.read,
        bad_review_months_kept: bad_review_store.kept,
    })
}

/// The default `--as-of`: the latest event's date, never after today.
fn resolve_as_of(
    explicit: Option<NaiveDate>,
    latest: Option<&str>,
    policy: &LoadedPolicy,
) -> Option<NaiveDate> {
    if explicit.is_some() {
        return explicit;
    }
    let today = chrono::Utc::now().with_timezone(&policy.tz).date_naive();
    latest
        .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
        .map(|d| d.min(today))
}

fn policy_info(p: &LoadedPolicy) -> PolicyInfo {
    PolicyInfo {
        source: p.source.to_string(),
        sha256: p.sha256(),
        versions: p.policy.versions.iter().map(|v| v.id.clone()).collect(),
        timezone: p.policy.timezone.clone(),
        locale: p.policy.locale.clone(),
    }
}

fn summarise(report: &IngestReport, progress: &Progress) {
    let read = report
        .files
        .iter()
        .filter(|f| f.status != "unchanged")
        .count();
    let skipped = report.files.len() - read;
    progress.step(&format!(
        "ingest: {read} file(s) read, {skipped} unchanged, {} record(s) rejected",
        report.rejects_new
    ));
    for (table, c) in &report.tables {
        if c.rows_after > 0 {
            progress.step(&format!(
                "  {table}: {} rows in the lake ({:+})",
                c.rows_after,
                c.rows_after as i64 - c.rows_before as i64
            ));
        }
    }
}

/// `scorecard render`: the site from what the output folder holds.
pub fn render_only(out: &Path, policy: Option<&Path>, progress: &Progress) -> Result<()> {
    let out = OutDir::new(out);
    out.require_lake()?;
    let policy = policy::resolve(policy, &[out.policy()])?;
    let _lock = out.lock("render", progress)?;
    let as_of = std::fs::read(out.manifest())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| v.get("as_of")?.as_str().map(str::to_string))
        .and_then(|s| NaiveDate::parse_from_str(&s, "%Y-%m-%d").ok());
    let mut staging = Staging::new(&out)?;
    report::render(&out, &mut staging, &policy, as_of, progress)?;
    staging.publish()
}

/// `scorecard compute`: the marts from an output folder's lake.
pub fn compute_only(
    out: &Path,
    policy: Option<&Path>,
    as_of: Option<NaiveDate>,
    progress: &Progress,
) -> Result<()> {
    let out = OutDir::new(out);
    out.require_lake()?;
    let (policy, catalog) = stages::load_policy(policy, &[out.policy()])?;
    let _lock = out.lock("compute", progress)?;
    let latest = latest_in_lake(&out, &policy)?;
    let Some(as_of) = resolve_as_of(as_of, latest.as_deref(), &policy) else {
        progress.warn("the lake holds no events: nothing to compute");
        return Ok(());
    };
    let started = chrono::Utc::now();
    let t = Instant::now();
    let mut staging = Staging::new(&out)?;
    let report = compute(&out, &mut staging, &policy, &catalog, as_of, progress)?;
    // The manifest now describes these marts (render reads its as-of);
    // what the last ingest read is kept.
    let mut manifest = std::fs::read(out.manifest())
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .filter(serde_json::Value::is_object)
        .unwrap_or_else(|| serde_json::json!({}));
    let stages = vec![StageTiming {
        stage: "compute",
        seconds: t.elapsed().as_secs_f64(),
    }];
    for (key, value) in [
        ("tool", serde_json::json!("service-scorecard")),
        ("version", serde_json::json!(env!("CARGO_PKG_VERSION"))),
        ("command", serde_json::json!("compute")),
        ("started_at", serde_json::to_value(time(started))?),
        (
            "finished_at",
            serde_json::to_value(time(chrono::Utc::now()))?,
        ),
        ("out", serde_json::json!(out.root.display().to_string())),
        ("as_of", serde_json::json!(report.as_of)),
        ("policy", serde_json::to_value(policy_info(&policy))?),
        ("stages", serde_json::to_value(&stages)?),
        ("compute", serde_json::to_value(&report)?),
    ] {
        manifest[key] = value;
    }
    staging.write(&out.manifest(), &serde_json::to_vec_pretty(&manifest)?)?;
    staging.publish()?;
    progress.step(&format!("compute: marts as of {}", report.as_of));
    Ok(())
}

/// A manifest's time: UTC, to the second.
fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Latest event date in the lake, from a no-op ingest of nothing.
fn latest_in_lake(out: &OutDir, policy: &LoadedPolicy) -> Result<Option<String>> {
    let mut latest: Option<i64> = None;
    for spec in crate::ingest::tables::ALL {
        latest = latest.max(crate::ingest::latest_instant(out, spec)?);
    }
    Ok(latest.map(|us| crate::time::local_day(us, policy.tz).to_string()))
}
