//! Stage: render. Lake, rejects and marts -> `OUT/site/`, static HTML with
//! everything inlined (no external fonts, scripts or styles).
//!
//! Templates live in `report_templates/` and are compiled into the binary;
//! a policy may name a folder whose files replace them one by one. Labels
//! come from `report_templates/locales/<locale>.toml`. Pages carry no
//! wall-clock time, so the same inputs give byte-identical pages.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use minijinja::{context, Environment};
use polars::prelude::*;
use serde::Serialize;

use crate::ingest::tables;
use crate::lake::{self, OutDir, Staging};
use crate::policy::LoadedPolicy;
use crate::progress::Progress;

/// Built-in templates: (name, text).
const TEMPLATES: [(&str, &str); 2] = [
    ("base.html", include_str!("../report_templates/base.html")),
    ("index.html", include_str!("../report_templates/index.html")),
];
const CSS: &str = include_str!("../report_templates/style.css");
const LOCALE_EN: &str = include_str!("../report_templates/locales/en.toml");
const LOCALE_ZH: &str = include_str!("../report_templates/locales/zh-CN.toml");

#[derive(Debug, Serialize)]
struct DeptRow {
    dept_id: String,
    name: String,
    dept_type: String,
    parent: Option<String>,
}

#[derive(Debug, Serialize)]
struct TableRow {
    table: &'static str,
    files: String,
    rows: String,
    rejected: String,
}

#[derive(Debug, Serialize)]
struct RejectRow {
    reason: String,
    count: String,
    file: String,
    line: i64,
    column: Option<String>,
    message: String,
}

/// Labels of a locale.
pub fn labels(locale: &str) -> Result<BTreeMap<String, String>> {
    let text = if locale == "en" { LOCALE_EN } else { LOCALE_ZH };
    Ok(toml::from_str(text)?)
}

/// Renders the site into `OUT/site/`, replacing the previous one whole.
pub fn render(
    out: &OutDir,
    policy: &LoadedPolicy,
    as_of: Option<NaiveDate>,
    progress: &Progress,
) -> Result<()> {
    let env = environment(policy)?;
    let p = &policy.policy;
    let english = p.locale == "en";
    let t = labels(&p.locale)?;

    let departments = read_departments(out, policy, english)?;
    let (tables, rejects) = data_summary(out)?;

    let page = env.get_template("index.html")?.render(context! {
        t => t,
        css => CSS,
        as_of => as_of.map(|d| d.to_string()),
        policy_version => p.version_for(as_of.unwrap_or_else(|| chrono::Utc::now().date_naive())).id,
        tool_version => env!("CARGO_PKG_VERSION"),
        departments => departments,
        tables => tables,
        rejects => rejects,
    })?;

    let mut staging = Staging::new(out)?;
    let site = staging.stage(&out.site());
    std::fs::create_dir_all(&site)?;
    std::fs::write(site.join("index.html"), page)
        .with_context(|| format!("cannot write {}", site.display()))?;
    staging.publish()?;
    progress.step(&format!(
        "render: {}",
        out.site().join("index.html").display()
    ));
    Ok(())
}

/// The template environment: built-ins, then any override folder's files.
fn environment(policy: &LoadedPolicy) -> Result<Environment<'static>> {
    let mut env = Environment::new();
    let dir = policy.templates_dir();
    if let Some(dir) = &dir {
        if !dir.is_dir() {
            return Err(crate::Failure::Usage(format!(
                "site.templates: {} is not a folder",
                dir.display()
            ))
            .into());
        }
    }
    for (name, builtin) in TEMPLATES {
        let text = match &dir {
            Some(d) if d.join(name).is_file() => std::fs::read_to_string(d.join(name))
                .with_context(|| format!("cannot read template {}", d.join(name).display()))?,
            _ => builtin.to_string(),
        };
        env.add_template_owned(name, text)
            .with_context(|| format!("template {name} does not compile"))?;
    }
    Ok(env)
}

fn read_departments(out: &OutDir, policy: &LoadedPolicy, english: bool) -> Result<Vec<DeptRow>> {
    let Some(df) = lake::read_table(out, "departments", false)? else {
        return Ok(Vec::new());
    };
    let df = df.sort(["dept_id"], SortMultipleOptions::default())?;
    let text = |c: &str| -> Result<Vec<Option<String>>> {
        Ok(df
            .column(c)?
            .str()?
            .iter()
            .map(|v| v.map(String::from))
            .collect())
    };
    let (id, name, name_en, dtype, parent) = (
        text("dept_id")?,
        text("name")?,
        text("name_en")?,
        text("dept_type")?,
        text("parent_id")?,
    );
    let types = &policy.policy.department_types;
    Ok((0..df.height())
        .map(|i| {
            let ty = dtype[i].clone().unwrap_or_default();
            DeptRow {
                dept_id: id[i].clone().unwrap_or_default(),
                name: if english {
                    name_en[i].clone().or_else(|| name[i].clone())
                } else {
                    name[i].clone()
                }
                .unwrap_or_default(),
                dept_type: types
                    .get(&ty)
                    .map(|t| {
                        if english {
                            t.name_en.clone()
                        } else {
                            t.name_zh.clone()
                        }
                    })
                    .unwrap_or(ty),
                parent: parent[i].clone(),
            }
        })
        .collect())
}

/// Files, rows and rejects per table, and rejects per reason with one example.
fn data_summary(out: &OutDir) -> Result<(Vec<TableRow>, Vec<RejectRow>)> {
    let log = crate::ingest::read_log(out)?;
    let rejects = if out.rejects().is_file() {
        Some(lake::read_parquet(&out.rejects())?)
    } else {
        None
    };
    let mut rejected_by_table: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_reason: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    if let Some(df) = &rejects {
        let table = df.column("table")?.str()?;
        let reason = df.column("reason")?.str()?;
        for (i, (t, r)) in table.iter().zip(reason.iter()).enumerate() {
            *rejected_by_table.entry(t.unwrap_or("").into()).or_default() += 1;
            by_reason.entry(r.unwrap_or("").into()).or_insert((0, i)).0 += 1;
        }
    }
    let mut tables_out = Vec::new();
    for spec in tables::ALL {
        let files = log.iter().filter(|f| f.table == spec.name).count();
        let rows = lake::count_rows(out, spec.name, spec.month_column.is_some())?;
        let rejected = rejected_by_table.get(spec.name).copied().unwrap_or(0);
        tables_out.push(TableRow {
            table: spec.name,
            files: group_digits(files as u64),
            rows: group_digits(rows as u64),
            rejected: if rejected == 0 {
                String::new()
            } else {
                group_digits(rejected as u64)
            },
        });
    }
    let mut reject_rows = Vec::new();
    if let Some(df) = &rejects {
        let s = |c: &str, i: usize| -> Result<Option<String>> {
            Ok(df.column(c)?.str()?.get(i).map(String::from))
        };
        for (reason, (count, i)) in by_reason {
            reject_rows.push(RejectRow {
                reason,
                count: group_digits(count as u64),
                file: s("file", i)?.unwrap_or_default(),
                line: df.column("line")?.i64()?.get(i).unwrap_or(0),
                column: s("column", i)?,
                message: s("message", i)?.unwrap_or_default(),
            });
        }
    }
    Ok((tables_out, reject_rows))
}

/// 1234567 -> "1,234,567" (both locales group by thousands).
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped_by_thousands() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(1234567), "1,234,567");
    }

    #[test]
    fn both_locales_define_the_same_labels() {
        let en = labels("en").unwrap();
        let zh = labels("zh-CN").unwrap();
        assert_eq!(en.keys().collect::<Vec<_>>(), zh.keys().collect::<Vec<_>>());
    }
}
