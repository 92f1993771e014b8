//! Stage: render. Lake, rejects and marts -> `OUT/site/`, a static site
//! with everything inlined (no external fonts, scripts or styles) that
//! works opened from a file share:
//!
//! * `index.html`: the overview of the latest complete month; the overview of
//!   every month, quarter and year under `periods/`;
//! * `departments/<id>/<period>.html`, and `departments/<id>/index.html` for
//!   the latest complete month: one scorecard per department and period;
//! * `raters.html` (unless the policy leaves it out), `stars.html` (服务之星,
//!   unless `site.publish_staff` is `none`) and `data-quality.html` with the
//!   data dictionary;
//! * `downloads/results-<year>.csv`: the year's results for HR;
//! * `downloads/data-dictionary.csv`: every mart column, its type and meaning.
//!
//! Templates live in `report_templates/` and are compiled into the binary;
//! a policy may name a folder whose files replace them one by one. Labels
//! come from `report_templates/locales/<locale>.toml`; all text is escaped.
//! Pages carry no wall-clock time, so the same inputs give the same bytes;
//! they are rendered in parallel and staged with the rest of the run.
//!
//! The report reads the lake, the rejects and the marts; it computes no
//! score of its own and writes nothing outside `site/`.

mod data;
pub mod dictionary;
mod downloads;
mod pages;
mod people;
pub mod svg;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};
use minijinja::{context, Environment, Value};
use rayon::prelude::*;
use serde::Serialize;

use crate::ingest::tables;
use crate::lake::{self, OutDir, Staging};
use crate::model::measure::Direction;
use crate::model::trends;
use crate::nightly::pages::{page_digest, PageStore};
use crate::policy::{LoadedPolicy, Policy, CATEGORIES};
use crate::progress::Progress;
use crate::time::periods::{Grain, Period};
use data::SiteData;

/// Built-in templates: (name, text).
const TEMPLATES: [(&str, &str); 8] = [
    (
        "base.html",
        include_str!("../../report_templates/base.html"),
    ),
    (
        "overview.html",
        include_str!("../../report_templates/overview.html"),
    ),
    (
        "department.html",
        include_str!("../../report_templates/department.html"),
    ),
    (
        "raters.html",
        include_str!("../../report_templates/raters.html"),
    ),
    (
        "data_quality.html",
        include_str!("../../report_templates/data_quality.html"),
    ),
    (
        "stars.html",
        include_str!("../../report_templates/stars.html"),
    ),
    (
        "staff_index.html",
        include_str!("../../report_templates/staff_index.html"),
    ),
    (
        "person.html",
        include_str!("../../report_templates/person.html"),
    ),
];
const CSS: &str = include_str!("../../report_templates/style.css");
const SCRIPT: &str = include_str!("../../report_templates/sort.js");
const LOCALE_EN: &str = include_str!("../../report_templates/locales/en.toml");
const LOCALE_ZH: &str = include_str!("../../report_templates/locales/zh-CN.toml");

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

fn f1(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| svg::Fixed(v, 1).to_string())
}

fn f2(v: Option<f64>) -> String {
    v.map_or_else(|| "—".into(), |v| svg::Fixed(v, 2).to_string())
}

fn signed(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:+.1}"))
}

/// Status as a traffic-light class.
fn rag(status: &str) -> &'static str {
    match status {
        "met" => "ok",
        "near" => "warn",
        "missed" => "bad",
        _ => "na",
    }
}

fn arrow(direction: &str) -> &'static str {
    match direction {
        "improving" => "▲",
        "declining" => "▼",
        _ => "",
    }
}

/// One page to render: where, which template, what it shows.
struct Page {
    path: String,
    template: &'static str,
    ctx: Value,
}

/// Renders the site and stages it as `OUT/site/`.
pub fn render(
    out: &OutDir,
    staging: &mut Staging,
    policy: &LoadedPolicy,
    as_of: Option<NaiveDate>,
    progress: &Progress,
) -> Result<RenderReport> {
    let (env, sources) = environment(policy)?;
    let p = &policy.policy;
    let english = p.locale == "en";
    let t = labels(&p.locale)?;
    let mut d = data::load(out, english, policy.tz)?;
    if p.site.publish_staff == "all" {
        d.people = Some(people::load(out, english)?);
    }
    let site = Site {
        d: &d,
        p,
        english,
        t: &t,
        shared: Shared {
            labels: Value::from_serialize(&t),
            css: Value::from(CSS),
            script: Value::from(SCRIPT),
        },
        as_of,
    };

    let mut pages = Vec::new();
    site.overviews(&mut pages);
    site.departments(&mut pages);
    if p.site.publish_rater_audit {
        pages.push(site.raters_page());
    }
    if p.site.publish_staff != "none" {
        pages.push(site.stars_page());
    }
    if let Some(staff) = &d.people {
        site.staff_pages(staff, &mut pages);
    }
    pages.push(site.data_quality_page(out)?);

    // Each page is written as soon as it is rendered, on every core: most
    // of the time a page takes is the file system making its file. A page
    // whose bytes are those already published is linked, not written, so
    // it keeps its file and time (a mirror copies only what changed).
    let published = out.site();
    let store = PageStore::open(out, staging, policy, &sources)?;
    let dir = staging.stage(&published);
    let (kept, rendered) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let put = |rel: &Path, bytes: &[u8]| -> Result<()> {
        let file = dir.join(rel);
        if keep_published(&published.join(rel), &file, bytes) {
            kept.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        std::fs::write(&file, bytes).with_context(|| format!("cannot write {}", file.display()))
    };
    let folders: BTreeSet<std::path::PathBuf> = pages
        .iter()
        .filter_map(|page| dir.join(&page.path).parent().map(|p| p.to_path_buf()))
        .collect();
    for folder in &folders {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    // A page whose inputs are those of the published one is linked
    // without rendering it.
    pages.par_iter().try_for_each(|page| -> Result<()> {
        let digest = page_digest(page.template, &page.ctx)?;
        let (rel, file) = (page.path.as_str(), dir.join(&page.path));
        if store.reuse(rel, &digest, &published.join(rel), &file) {
            kept.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        rendered.fetch_add(1, Ordering::Relaxed);
        let html = env
            .get_template(page.template)
            .and_then(|tpl| tpl.render(&page.ctx))
            .with_context(|| format!("cannot render {} from {}", page.path, page.template))?;
        put(Path::new(rel), html.as_bytes())?;
        store.wrote(rel, digest, &file)
    })?;
    let downloads = site.downloads(out)?;
    for (name, bytes) in &downloads {
        std::fs::create_dir_all(dir.join("downloads"))?;
        put(&Path::new("downloads").join(name), bytes)?;
    }
    // The HR lists name people: a folder of their own, never the site.
    let hr = site.hr_exports(out)?;
    let hr_dir = staging.stage(&out.hr());
    std::fs::create_dir_all(&hr_dir)
        .with_context(|| format!("cannot create {}", hr_dir.display()))?;
    for (name, bytes) in &hr {
        let file = hr_dir.join(name);
        std::fs::write(&file, bytes).with_context(|| format!("cannot write {}", file.display()))?;
    }
    store.seal()?;
    crate::runtime::failpoint("render");
    let report = RenderReport {
        files: pages.len() + downloads.len(),
        kept: kept.into_inner(),
        rendered: rendered.into_inner(),
    };
    progress.step(&format!(
        "render: {} pages and downloads in {}, {} of them unchanged; {} of the {} pages rendered (the others' inputs had not changed)",
        report.files,
        published.display(),
        report.kept,
        report.rendered,
        pages.len()
    ));
    Ok(report)
}

/// What render wrote, for the manifest.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RenderReport {
    /// Pages and downloads in the site.
    pub files: usize,
    /// Of those, the ones whose bytes were already published: linked into
    /// the new site as they were, not written again.
    pub kept: usize,
    /// Pages rendered from their templates; every other page's inputs were
    /// those of the published page (see `nightly::pages`), so it was linked
    /// without rendering. Downloads are always made.
    pub rendered: usize,
}

/// Links the published file `old` to `new` when it holds exactly `bytes`;
/// false (and nothing done) when it does not, or cannot be linked.
fn keep_published(old: &Path, new: &Path, bytes: &[u8]) -> bool {
    let same_size =
        std::fs::metadata(old).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64);
    same_size
        && std::fs::read(old).is_ok_and(|b| b == bytes)
        && std::fs::hard_link(old, new).is_ok()
}

/// What every page needs.
struct Site<'a> {
    d: &'a SiteData,
    p: &'a Policy,
    english: bool,
    t: &'a BTreeMap<String, String>,
    shared: Shared,
    as_of: Option<NaiveDate>,
}

/// The parts of every page's context that are the same on every page, made
/// into template values once (a value is shared, not copied, by each page
/// that holds it).
struct Shared {
    labels: Value,
    css: Value,
    script: Value,
}

impl Site<'_> {
    /// Context shared by every page; `root` leads back to the site's top.
    /// `dated` pages show the as-of date: the front page, the audit pages,
    /// and a partial period's overview and scorecards. A complete period's
    /// pages do not, so that they stay the same from night to night.
    fn base(&self, root: &str, title: String, dated: bool) -> Value {
        context! {
            t => self.shared.labels,
            css => self.shared.css,
            script => self.shared.script,
            root => root,
            title => title,
            // Only a dated page is given as-of, so that the others' inputs
            // (and digests, see `nightly::pages`) do not move with it.
            as_of => self.as_of.filter(|_| dated).map(|d| d.to_string()),
            dated => dated,
            tool_version => env!("CARGO_PKG_VERSION"),
            publish_raters => self.p.site.publish_rater_audit,
            publish_stars => self.p.site.publish_staff != "none",
            publish_staff_pages => self.p.site.publish_staff == "all",
            lang => if self.english { "en" } else { "zh-CN" },
        }
    }

    fn grade_name(&self, id: Option<&str>) -> String {
        id.and_then(|g| self.p.grade(g))
            .map(|g| {
                if self.english {
                    g.name_en.clone()
                } else {
                    g.name_zh.clone()
                }
            })
            .unwrap_or_default()
    }

    fn indicator_name(&self, id: &str) -> String {
        self.d
            .catalog
            .get(id)
            .map(|c| {
                if self.english {
                    c.name_en.clone()
                } else {
                    c.name_zh.clone()
                }
            })
            .unwrap_or_else(|| {
                if id == "total_score" {
                    self.t["total"].clone()
                } else {
                    id.to_string()
                }
            })
    }

    fn dept_name(&self, id: &str) -> String {
        self.d
            .depts
            .iter()
            .find(|x| x.id == id)
            .map_or_else(|| id.to_string(), |x| x.name.clone())
    }

    fn dept_link(&self, root: &str, id: &str, period: &Period) -> String {
        format!(
            "{root}departments/{}/{}.html",
            lake::file_name(id),
            period.label()
        )
    }

    /// The latest complete period of a grain, else the latest.
    fn latest(&self, grain: Grain) -> Option<Period> {
        let list = self.d.periods.get(&grain)?;
        list.iter()
            .rev()
            .find(|p| self.as_of.is_none_or(|a| !p.is_partial(a)))
            .or_else(|| list.last())
            .copied()
    }

    fn previous(&self, period: &Period) -> Option<Period> {
        let list = self.d.periods.get(&period.grain)?;
        let i = list.iter().position(|p| p == period)?;
        i.checked_sub(1).map(|j| list[j])
    }

    /// Period switcher: links to every overview of every grain.
    fn switcher(&self, root: &str, link: &dyn Fn(&Period) -> String) -> Vec<Value> {
        [Grain::Month, Grain::Quarter, Grain::Year]
            .iter()
            .filter_map(|g| {
                let list = self.d.periods.get(g)?;
                let items: Vec<Value> = list
                    .iter()
                    .rev()
                    .map(|p| context! { label => p.label(), href => format!("{root}{}", link(p)) })
                    .collect();
                Some(context! { grain => self.t[&format!("grain_{}", g.as_str())].clone(), items => items })
            })
            .collect()
    }

    fn total_series(&self, dept: &str, period: &Period, n: usize) -> Vec<Option<f64>> {
        let list = self
            .d
            .periods
            .get(&period.grain)
            .cloned()
            .unwrap_or_default();
        let end = list.iter().position(|p| p == period).map_or(0, |i| i + 1);
        list[end.saturating_sub(n)..end]
            .iter()
            .map(|p| {
                self.d
                    .scores
                    .get(&(dept.to_string(), p.grain, *p))
                    .and_then(|s| s.total)
            })
            .collect()
    }
}

/// The template environment: built-ins, then any override folder's files;
/// and each template's name and source, as used.
fn environment(
    policy: &LoadedPolicy,
) -> Result<(Environment<'static>, Vec<(&'static str, String)>)> {
    let mut env = Environment::new();
    // Charts print as their SVG, drawn only for the pages rendered.
    env.set_formatter(svg::formatter);
    let dir = policy.templates_dir();
    if let Some(dir) = &dir {
        if !dir.is_dir() {
            return Err(crate::error::Failure::Usage(format!(
                "site.templates: {} is not a folder",
                dir.display()
            ))
            .into());
        }
    }
    let mut sources = Vec::new();
    for (name, builtin) in TEMPLATES {
        let text = match &dir {
            Some(d) if d.join(name).is_file() => std::fs::read_to_string(d.join(name))
                .with_context(|| format!("cannot read template {}", d.join(name).display()))?,
            _ => builtin.to_string(),
        };
        env.add_template_owned(name, text.clone())
            .with_context(|| format!("template {name} does not compile"))?;
        sources.push((name, text));
    }
    Ok((env, sources))
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

/// Column names and types, in file order.
type Schema = Vec<(String, String)>;

/// Each mart's columns and their types as polars names them, in name order.
fn mart_schemas(out: &OutDir) -> Result<Vec<(String, Schema)>> {
    let dir = out.read(&out.marts());
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_suffix(".parquet"))
                        .map(String::from)
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let schema = lake::read_schema(&dir.join(format!("{name}.parquet")))?;
            Ok((name, schema))
        })
        .collect()
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
