//! Stage: measure. Indicator definitions (`queries/indicators/*.sql`) ->
//! `indicator_values`, one row per department x period x indicator.
//!
//! Each definition is one SQL file whose leading `-- key: value` comments
//! are its catalog entry (id, names, unit, category, direction, how it
//! aggregates, minimum sample). The SQL returns rows at the finest grain:
//! an instant `at` or a covered range `period_start`..`period_end`, with
//! `numerator` + `denominator` (ratio) or `value` (mean, quantile). This
//! module places the rows in weeks, months, quarters and years and adds
//! them up, so every grain comes from one definition; quantiles are taken
//! per period from the rows. `per_period` definitions return one value per
//! `grain` and `period_start` themselves (satisfaction).
//!
//! The built-in definitions are compiled in; the policy's `site.indicators`
//! folder adds definitions or replaces built-ins with the same id.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use polars::prelude::{DataFrame, DataType, Float64Chunked, LazyFrame, PlHashMap};
use polars::sql::SQLContext;

use crate::error::PolicyError;
use crate::frame::{self, Builder};
use crate::policy::{LoadedPolicy, CATEGORIES};
use crate::time::calendar::LocalDays;
use crate::time::periods::{Grain, Period};

mod values;
pub use values::*;

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../../queries/indicators/", $name, ".sql")))),*]
    };
}

const BUILTIN: [(&str, &str); 22] = builtin!(
    "satisfaction",
    "good_review_rate",
    "bad_review_rate",
    "valid_complaint_rate",
    "major_complaint_rate",
    "on_time_response_rate",
    "on_time_resolution_rate",
    "first_time_resolution_rate",
    "mean_resolution_hours",
    "p90_resolution_hours",
    "visits_per_case",
    "instant_handled_share",
    "result_notified_rate",
    "complaint_rectified_on_time_rate",
    "bad_review_rectified_on_time_rate",
    "real_name_call_back_rate",
    "call_back_satisfied_rate",
    "plan_completed_on_time_rate",
    "plan_verified_met_rate",
    "process_compliance_rate",
    "training_hours_per_person",
    "innovations_adopted",
);

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregate {
    Ratio,
    Mean,
    Quantile(f64),
    PerPeriod,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Higher,
    Lower,
}

impl Direction {
    /// `higher` or `lower`, as a definition's header and the catalog mart
    /// name it.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Higher => "higher",
            Direction::Lower => "lower",
        }
    }

    pub fn from_name(name: &str) -> Option<Direction> {
        [Direction::Higher, Direction::Lower]
            .into_iter()
            .find(|d| d.name() == name)
    }
}

/// One indicator definition: catalog entry and SQL.
#[derive(Debug, Clone)]
pub struct Indicator {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub unit: String,
    pub category: String,
    pub direction: Direction,
    pub aggregate: Aggregate,
    /// Multiplier of a ratio (100 for percent, 1000 per thousand).
    pub scale: f64,
    pub min_n: f64,
    pub description: String,
    pub sql: String,
    /// Where the definition came from, for messages.
    pub source: String,
}

/// The views of improvement plans, made from the values of the
/// definitions that do not read them: a definition that reads one is
/// measured after those.
pub const PLAN_VIEWS: [&str; 3] = ["plan_status", "plan_periods", "plan_event_rejects"];

impl Indicator {
    /// Whether the SQL names one of [`PLAN_VIEWS`] (anywhere, as a whole
    /// identifier, case-insensitive).
    pub fn reads_plans(&self) -> bool {
        self.sql
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|word| PLAN_VIEWS.iter().any(|v| word.eq_ignore_ascii_case(v)))
    }
}

/// Parses one definition; `stem` is the file name without `.sql`.
pub fn parse(stem: &str, text: &str, source: &str) -> Result<Indicator, Vec<String>> {
    let mut meta: BTreeMap<String, String> = BTreeMap::new();
    let mut description = Vec::new();
    for line in text.lines() {
        let Some(c) = line.trim_start().strip_prefix("--") else {
            break;
        };
        let c = c.trim();
        match c.split_once(':') {
            Some((k, v)) if !k.contains(' ') && description.is_empty() => {
                meta.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ if c.is_empty() && description.is_empty() => {}
            _ => description.push(c.to_string()),
        }
    }
    let mut p = Vec::new();
    let mut get = |k: &str| -> String {
        meta.remove(k).unwrap_or_else(|| {
            p.push(format!("{source}: missing `-- {k}: ...` in the header"));
            String::new()
        })
    };
    let id = get("id");
    let name_zh = get("name_zh");
    let name_en = get("name_en");
    let unit = get("unit");
    let category = get("category");
    let direction = get("direction");
    let aggregate = get("aggregate");
    let mut p2 = Vec::new();
    let num = |meta: &mut BTreeMap<String, String>, k: &str, default: f64, p: &mut Vec<String>| {
        match meta.remove(k) {
            None => default,
            Some(v) => v.parse::<f64>().unwrap_or_else(|_| {
                p.push(format!("{source}: `{k}: {v}` is not a number"));
                default
            }),
        }
    };
    let scale = num(&mut meta, "scale", 1.0, &mut p2);
    let min_n = num(&mut meta, "min_n", 1.0, &mut p2);
    let quantile = num(&mut meta, "quantile", 0.5, &mut p2);
    p.extend(p2);
    for k in meta.keys() {
        p.push(format!(
            "{source}: unknown header key `{k}` (known: id, name_zh, name_en, unit, category, direction, aggregate, scale, quantile, min_n)"
        ));
    }
    if !id.is_empty() && id != stem {
        p.push(format!(
            "{source}: id `{id}` must match the file name `{stem}.sql`"
        ));
    }
    if !category.is_empty() && !CATEGORIES.contains(&category.as_str()) {
        p.push(format!(
            "{source}: category `{category}` is not one of {}",
            CATEGORIES.join(", ")
        ));
    }
    let direction = Direction::from_name(&direction).unwrap_or_else(|| {
        if !direction.is_empty() {
            p.push(format!(
                "{source}: direction `{direction}` is not `higher` or `lower`"
            ));
        }
        Direction::Higher
    });
    let aggregate = match aggregate.as_str() {
        "ratio" => Aggregate::Ratio,
        "mean" => Aggregate::Mean,
        "quantile" => {
            if !(0.0..=1.0).contains(&quantile) {
                p.push(format!(
                    "{source}: quantile {quantile} must be between 0 and 1"
                ));
            }
            Aggregate::Quantile(quantile)
        }
        "per_period" => Aggregate::PerPeriod,
        other => {
            if !other.is_empty() {
                p.push(format!(
                    "{source}: aggregate `{other}` is not one of ratio, mean, quantile, per_period"
                ));
            }
            Aggregate::Mean
        }
    };
    if !p.is_empty() {
        return Err(p);
    }
    Ok(Indicator {
        id,
        name_zh,
        name_en,
        unit,
        category,
        direction,
        aggregate,
        scale,
        min_n,
        description: description.join(" "),
        sql: text.to_string(),
        source: source.to_string(),
    })
}

/// The catalog: built-in definitions, then the policy's folder (same id
/// replaces). Problems are reported all at once as a policy error.
pub fn load_catalog(policy: &LoadedPolicy) -> Result<Vec<Indicator>, PolicyError> {
    let mut problems = Vec::new();
    let mut by_id: BTreeMap<String, Indicator> = BTreeMap::new();
    for (stem, text) in BUILTIN {
        match parse(
            stem,
            text,
            &format!("queries/indicators/{stem}.sql (built in)"),
        ) {
            Ok(i) => {
                by_id.insert(i.id.clone(), i);
            }
            Err(p) => problems.extend(p),
        }
    }
    if let Some(dir) = policy.indicators_dir() {
        match read_folder(&dir) {
            Ok(files) => {
                for (stem, path, text) in files {
                    match parse(&stem, &text, &path.display().to_string()) {
                        Ok(i) => {
                            by_id.insert(i.id.clone(), i);
                        }
                        Err(p) => problems.extend(p),
                    }
                }
            }
            Err(e) => problems.push(format!("site.indicators: {e}")),
        }
    }
    if problems.is_empty() {
        Ok(by_id.into_values().collect())
    } else {
        Err(PolicyError {
            source_name: policy.source.to_string(),
            problems,
        })
    }
}

fn read_folder(dir: &Path) -> Result<Vec<(String, std::path::PathBuf, String)>> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("{} is not a readable folder", dir.display()))?;
    for e in entries {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "sql") {
            let stem = p
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("")
                .to_string();
            let text = std::fs::read_to_string(&p)
                .with_context(|| format!("cannot read {}", p.display()))?;
            out.push((stem, p, text));
        }
    }
    out.sort();
    Ok(out)
}

/// Columns a definition must return, by how it aggregates and places rows.
fn required_columns(agg: Aggregate, names: &[String]) -> Result<(), String> {
    let has = |c: &str| names.iter().any(|n| n == c);
    let mut missing: Vec<&str> = vec![];
    if !has("dept_id") {
        missing.push("dept_id");
    }
    match agg {
        Aggregate::PerPeriod => {
            for c in ["grain", "period_start", "value", "n"] {
                if !has(c) {
                    missing.push(c);
                }
            }
        }
        _ => {
            let placed = has("at") || (has("period_start") && has("period_end"));
            if !placed {
                missing.push("at (or period_start and period_end)");
            }
            let values: &[&str] = if agg == Aggregate::Ratio {
                &["numerator", "denominator"]
            } else {
                &["value"]
            };
            for c in values {
                if !has(c) {
                    missing.push(c);
                }
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the query must return column(s) {}; it returns {}",
            missing.join(", "),
            names.join(", ")
        ))
    }
}

/// Runs every definition against the views (possibly empty frames) and
/// checks that it parses and returns the columns its aggregate needs.
pub fn validate(catalog: &[Indicator], views: &[(&str, LazyFrame)]) -> Vec<String> {
    let mut p = Vec::new();
    for ind in catalog {
        let mut ctx = context(views);
        let schema = ctx.execute(&ind.sql).and_then(|mut lf| lf.collect_schema());
        match schema {
            Err(e) => p.push(format!("{}: the SQL does not run: {e}", ind.source)),
            Ok(s) => {
                let names: Vec<String> = s.iter_names().map(|n| n.to_string()).collect();
                if let Err(e) = required_columns(ind.aggregate, &names) {
                    p.push(format!("{}: {e}", ind.source));
                }
            }
        }
    }
    p
}

fn context(views: &[(&str, LazyFrame)]) -> SQLContext {
    let ctx = SQLContext::new();
    for (name, lf) in views {
        ctx.register(name, lf.clone());
    }
    ctx
}

#[cfg(test)]
mod tests;
