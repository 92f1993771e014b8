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

use crate::frame;
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
    staging: &mut Staging,
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
    let names: BTreeMap<String, String> = departments
        .iter()
        .map(|d| (d.dept_id.clone(), d.name.clone()))
        .collect();
    let (league_period, league) = league_table(out, policy, &names, english)?;
    let restatements = read_restatements(out)?;

    let page = env.get_template("index.html")?.render(context! {
        t => t,
        css => CSS,
        as_of => as_of.map(|d| d.to_string()),
        policy_version => match as_of {
            Some(d) => p.version_for(d).id.clone(),
            None => p.versions.last().map(|v| v.id.clone()).unwrap_or_default(),
        },
        league_period => league_period,
        league => league,
        restatements => restatements,
        tool_version => env!("CARGO_PKG_VERSION"),
        departments => departments,
        tables => tables,
        rejects => rejects,
    })?;

    let site = staging.stage(&out.site());
    std::fs::create_dir_all(&site)?;
    std::fs::write(site.join("index.html"), page)
        .with_context(|| format!("cannot write {}", site.display()))?;
    crate::failpoint("render");
    progress.step(&format!(
        "render: {}",
        out.site().join("index.html").display()
    ));
    Ok(())
}

#[derive(Debug, Serialize)]
struct LeagueRow {
    #[serde(skip)]
    type_id: String,
    dept_type: String,
    rank: Option<i64>,
    dept_id: String,
    name: String,
    total: Option<String>,
    grade: String,
    bonus: Option<String>,
    veto: Option<String>,
}

/// The latest complete month's department scores, by type then rank.
fn league_table(
    out: &OutDir,
    policy: &LoadedPolicy,
    names: &BTreeMap<String, String>,
    english: bool,
) -> Result<(Option<String>, Vec<LeagueRow>)> {
    let path = out.read(&out.marts().join("department_scores.parquet"));
    if !path.is_file() {
        return Ok((None, Vec::new()));
    }
    let df = lake::read_parquet(&path)?;
    let grain = frame::strs(&df, "grain")?;
    let partial = frame::bools(&df, "is_partial")?;
    let periods = frame::strs(&df, "period")?;
    let latest = (0..df.height())
        .filter(|&i| grain[i].as_deref() == Some("month") && partial[i] == Some(false))
        .filter_map(|i| periods[i].clone())
        .max();
    let Some(latest) = latest else {
        return Ok((None, Vec::new()));
    };
    let (ids, types) = (frame::strs(&df, "dept_id")?, frame::strs(&df, "dept_type")?);
    let (ranks, totals) = (
        frame::i64s(&df, "rank_in_type")?,
        frame::f64s(&df, "total_score")?,
    );
    let (grades, bonus) = (
        frame::strs(&df, "grade")?,
        frame::f64s(&df, "bonus_coefficient")?,
    );
    let reasons = frame::strs(&df, "veto_reasons")?;
    let p = &policy.policy;
    let mut rows: Vec<LeagueRow> = (0..df.height())
        .filter(|&i| {
            grain[i].as_deref() == Some("month") && periods[i].as_deref() == Some(latest.as_str())
        })
        .map(|i| {
            let id = ids[i].clone().unwrap_or_default();
            let ty = types[i].clone().unwrap_or_default();
            LeagueRow {
                type_id: ty.clone(),
                dept_type: type_name(&policy.policy, &ty, english),
                rank: ranks[i],
                name: names.get(&id).cloned().unwrap_or_else(|| id.clone()),
                dept_id: id,
                total: totals[i].map(|t| format!("{t:.2}")),
                grade: grades[i]
                    .as_deref()
                    .and_then(|g| p.grade(g))
                    .map(|g| {
                        if english {
                            g.name_en.clone()
                        } else {
                            g.name_zh.clone()
                        }
                    })
                    .unwrap_or_default(),
                bonus: bonus[i].map(|b| format!("{b:.3}")),
                veto: reasons[i].clone(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        let order = |t: &str| p.department_types.keys().position(|k| k == t);
        (order(&a.type_id), a.rank.unwrap_or(i64::MAX), &a.dept_id).cmp(&(
            order(&b.type_id),
            b.rank.unwrap_or(i64::MAX),
            &b.dept_id,
        ))
    });
    Ok((Some(latest), rows))
}

#[derive(Debug, Serialize)]
struct RestatementRow {
    dept_id: String,
    period: String,
    item: String,
    published: String,
    recomputed: String,
}

fn read_restatements(out: &OutDir) -> Result<Vec<RestatementRow>> {
    let path = out.read(&out.marts().join("restatements.parquet"));
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let df = lake::read_parquet(&path)?;
    let c = |n: &str| frame::strs(&df, n);
    let (d, g, p, it, pu, re) = (
        c("dept_id")?,
        c("grain")?,
        c("period")?,
        c("item")?,
        c("published")?,
        c("recomputed")?,
    );
    Ok((0..df.height())
        .map(|i| RestatementRow {
            dept_id: d[i].clone().unwrap_or_default(),
            period: format!(
                "{} {}",
                g[i].clone().unwrap_or_default(),
                p[i].clone().unwrap_or_default()
            ),
            item: it[i].clone().unwrap_or_default(),
            published: pu[i].clone().unwrap_or_else(|| "—".into()),
            recomputed: re[i].clone().unwrap_or_else(|| "—".into()),
        })
        .collect())
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
                dept_type: type_name(&policy.policy, &ty, english),
                parent: parent[i].clone(),
            }
        })
        .collect())
}

/// Files, rows and rejects per table, and rejects per reason with one example.
fn data_summary(out: &OutDir) -> Result<(Vec<TableRow>, Vec<RejectRow>)> {
    let log = crate::ingest::read_log(out)?;
    let rejects_path = out.read(&out.rejects());
    let rejects = if rejects_path.is_file() {
        Some(lake::read_parquet(&rejects_path)?)
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

/// A department type's name in the page language (its id if unknown).
fn type_name(p: &crate::policy::Policy, id: &str, english: bool) -> String {
    p.department_types
        .get(id)
        .map(|t| {
            if english {
                t.name_en.clone()
            } else {
                t.name_zh.clone()
            }
        })
        .unwrap_or_else(|| id.to_string())
}

/// 1234567 -> "1,234,567" (both locales group by thousands).
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
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
