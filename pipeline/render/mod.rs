//! Stage: render. Lake, rejects and marts -> `OUT/site/`, a static site
//! with everything inlined (no external fonts, scripts or styles) that
//! works opened from a file share:
//!
//! * `index.html`: the overview of the latest complete month; the overview of
//!   every month, quarter and year under `periods/`;
//! * `departments/<id>/<period>.html`, and `departments/<id>/index.html` for
//!   the latest complete month: one scorecard per department and period;
//! * `raters.html` (unless the policy leaves it out) and `data-quality.html`
//!   with the data dictionary;
//! * `downloads/results-<year>.csv`: the year's results for HR;
//! * `downloads/data-dictionary.csv`: every mart column, its type and meaning.
//!
//! Templates live in `report_templates/` and are compiled into the binary;
//! a policy may name a folder whose files replace them one by one. Labels
//! come from `report_templates/locales/<locale>.toml`; all text is escaped.
//! Pages carry no wall-clock time, so the same inputs give the same bytes;
//! they are rendered in parallel and staged with the rest of the run.

mod data;
pub mod dictionary;
pub mod svg;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};
use minijinja::{context, Environment, Value};
use rayon::prelude::*;
use serde::Serialize;

use crate::ingest::tables;
use crate::lake::{self, OutDir, Staging};
use crate::periods::{Grain, Period};
use crate::policy::{LoadedPolicy, Policy, CATEGORIES};
use crate::progress::Progress;
use data::SiteData;

/// Built-in templates: (name, text).
const TEMPLATES: [(&str, &str); 5] = [
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
) -> Result<()> {
    let env = environment(policy)?;
    let p = &policy.policy;
    let english = p.locale == "en";
    let t = labels(&p.locale)?;
    let d = data::load(out, english, policy.tz)?;
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
    pages.push(site.data_quality_page(out)?);

    // Each page is written as soon as it is rendered, on every core: most
    // of the time a page takes is the file system making its file.
    let dir = staging.stage(&out.site());
    let folders: BTreeSet<std::path::PathBuf> = pages
        .iter()
        .filter_map(|page| dir.join(&page.path).parent().map(|p| p.to_path_buf()))
        .collect();
    for folder in &folders {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
    }
    pages.par_iter().try_for_each(|page| -> Result<()> {
        let html = env
            .get_template(page.template)
            .and_then(|tpl| tpl.render(&page.ctx))
            .with_context(|| format!("cannot render {} from {}", page.path, page.template))?;
        let file = dir.join(&page.path);
        std::fs::write(&file, html).with_context(|| format!("cannot write {}", file.display()))
    })?;
    for (name, csv) in site.downloads(out)? {
        let file = dir.join("downloads").join(name);
        std::fs::create_dir_all(file.parent().expect("has a parent"))?;
        std::fs::write(&file, csv).with_context(|| format!("cannot write {}", file.display()))?;
    }
    crate::failpoint("render");
    progress.step(&format!(
        "render: {} pages in {}",
        pages.len(),
        out.site().display()
    ));
    Ok(())
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
    fn base(&self, root: &str, title: String) -> Value {
        context! {
            t => self.shared.labels,
            css => self.shared.css,
            script => self.shared.script,
            root => root,
            title => title,
            as_of => self.as_of.map(|d| d.to_string()),
            tool_version => env!("CARGO_PKG_VERSION"),
            publish_raters => self.p.site.publish_rater_audit,
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

    fn overviews(&self, pages: &mut Vec<Page>) {
        let latest_month = self.latest(Grain::Month);
        for grain in [Grain::Month, Grain::Quarter, Grain::Year] {
            for period in self.d.periods.get(&grain).cloned().unwrap_or_default() {
                pages.push(Page {
                    path: format!("periods/{}.html", period.label()),
                    template: "overview.html",
                    ctx: self.overview(&period, "../"),
                });
                if Some(period) == latest_month {
                    pages.push(Page {
                        path: "index.html".into(),
                        template: "overview.html",
                        ctx: self.overview(&period, ""),
                    });
                }
            }
        }
        if latest_month.is_none() {
            pages.push(Page {
                path: "index.html".into(),
                template: "overview.html",
                ctx: context! { ..self.base("", self.t["site_title"].clone()), ..context! { empty => true } },
            });
        }
    }

    fn overview(&self, period: &Period, root: &str) -> Value {
        let prev = self.previous(period);
        let partial = self.as_of.is_some_and(|a| period.is_partial(a));
        let mut by_type: BTreeMap<usize, (String, Vec<Value>)> = BTreeMap::new();
        let mut grades: BTreeMap<String, usize> = BTreeMap::new();
        let mut vetoes = Vec::new();
        for dept in &self.d.depts {
            let Some(s) = self.d.scores.get(&(dept.id.clone(), period.grain, *period)) else {
                continue;
            };
            let before = prev
                .and_then(|q| self.d.scores.get(&(dept.id.clone(), q.grain, q)))
                .and_then(|x| x.total);
            let trend = self
                .d
                .trends
                .get(&(dept.id.clone(), "total_score".into(), period.grain));
            let dir = trend
                .filter(|t| t.latest.as_deref() == Some(&period.label()))
                .map_or("", |t| t.direction.as_str());
            if let Some(g) = &s.grade {
                *grades.entry(g.clone()).or_default() += 1;
            }
            if s.veto {
                vetoes.push(
                    context! { name => dept.name.clone(), reasons => s.veto_reasons.clone() },
                );
            }
            let order = self
                .p
                .department_types
                .keys()
                .position(|k| *k == dept.type_id)
                .unwrap_or(usize::MAX);
            let entry = by_type
                .entry(order)
                .or_insert_with(|| (type_name(self.p, &dept.type_id, self.english), Vec::new()));
            entry.1.push(context! {
                rank => s.rank,
                rank_sort => s.rank.unwrap_or(i64::MAX),
                name => dept.name.clone(),
                href => self.dept_link(root, &dept.id, period),
                total => f2(s.total),
                total_sort => s.total.unwrap_or(-1.0),
                change => signed(s.total.zip(before).map(|(a, b)| a - b)),
                arrow => arrow(dir),
                spark => svg::sparkline(&self.total_series(&dept.id, period, 12)),
                grade => self.grade_name(s.grade.as_deref()),
                grade_class => if s.veto { "bad" } else { "" },
                bonus => s.bonus.map(|b| format!("{b:.3}")),
                veto => s.veto,
            });
        }
        let league: Vec<Value> = by_type
            .into_values()
            .map(|(name, mut rows)| {
                rows.sort_by_key(|r| {
                    (
                        r.get_attr("rank_sort")
                            .ok()
                            .and_then(|v| i64::try_from(v).ok())
                            .unwrap_or(i64::MAX),
                        r.get_attr("name")
                            .map(|v| v.to_string())
                            .unwrap_or_default(),
                    )
                });
                context! { name => name, rows => rows }
            })
            .collect();
        let grade_rows: Vec<Value> = self
            .p
            .grades
            .iter()
            .map(|g| context! { name => if self.english { g.name_en.clone() } else { g.name_zh.clone() }, count => grades.get(&g.id).copied().unwrap_or(0) })
            .collect();
        // Watch list and improvers: trend flags at this period, findings.
        let mut watch = Vec::new();
        let mut improvers = Vec::new();
        for ((dept, ind, grain), tr) in &self.d.trends {
            if *grain != period.grain || tr.latest.as_deref() != Some(&period.label()) {
                continue;
            }
            let item = context! { name => self.dept_name(dept), indicator => self.indicator_name(ind), href => self.dept_link(root, dept, period) };
            if tr.flags.iter().any(|f| f == "continuous_improver") && ind == "total_score" {
                improvers.push(item.clone());
            }
            if tr.direction == "declining"
                || tr
                    .flags
                    .iter()
                    .any(|f| f == "short_term_met_long_term_declining")
            {
                let why = if tr
                    .flags
                    .iter()
                    .any(|f| f == "short_term_met_long_term_declining")
                {
                    "met_but_declining"
                } else {
                    "declining"
                };
                watch.push(context! { ..item, ..context! { why => self.t[why].clone(), sort => format!("{dept}{ind}") } });
            }
        }
        watch.sort_by_key(|v| {
            v.get_attr("sort")
                .map(|s| s.to_string())
                .unwrap_or_default()
        });
        improvers.sort_by_key(|v| {
            v.get_attr("name")
                .map(|s| s.to_string())
                .unwrap_or_default()
        });
        let findings: Vec<Value> = self
            .d
            .findings
            .iter()
            .filter(|f| f.grain == period.grain.as_str() && f.period == period.label())
            .map(|f| context! { name => self.dept_name(&f.dept_id), check => self.t.get(&f.check_id).cloned().unwrap_or(f.check_id.clone()), detail => f.detail.clone(), href => self.dept_link(root, &f.dept_id, period) })
            .collect();
        let title = format!("{} · {}", self.t["site_title"], period.label());
        context! {
            ..self.base(root, title),
            ..context! {
                period => period.label(),
                grain => self.t[&format!("grain_{}", period.grain.as_str())].clone(),
                partial => partial,
                league => league,
                grades => grade_rows,
                vetoes => vetoes,
                watch => watch,
                findings => findings,
                improvers => improvers,
                switcher => self.switcher(root, &|p| format!("periods/{}.html", p.label())),
                freshness => self.d.freshness.iter().map(|(t, l)| context! { table => t.clone(), latest => l.clone() }).collect::<Vec<_>>(),
                rejects_total => self.d.rejects_total,
                downloads => self.d.periods.get(&Grain::Year).map(|ys| ys.iter().rev().map(|y| context! { label => y.label(), href => format!("{root}downloads/results-{}", y.label()) }).collect::<Vec<_>>()).unwrap_or_default(),
            }
        }
    }

    fn departments(&self, pages: &mut Vec<Page>) {
        let latest = self.latest(Grain::Month);
        let mut scored: Vec<(&data::Dept, Period)> = Vec::new();
        for dept in &self.d.depts {
            for grain in [Grain::Month, Grain::Quarter, Grain::Year] {
                for period in self.d.periods.get(&grain).into_iter().flatten() {
                    if self
                        .d
                        .scores
                        .contains_key(&(dept.id.clone(), grain, *period))
                    {
                        scored.push((dept, *period));
                    }
                }
            }
        }
        // Most of the site: its contexts are built on every core, and
        // added in the order above.
        let contexts: Vec<Value> = scored
            .par_iter()
            .map(|(dept, period)| self.department(dept, period))
            .collect();
        for ((dept, period), ctx) in scored.into_iter().zip(contexts) {
            let dir = format!("departments/{}", lake::file_name(&dept.id));
            // The latest month's page is also the department's index, in
            // the same folder: one context serves both.
            if Some(period) == latest {
                pages.push(Page {
                    path: format!("{dir}/index.html"),
                    template: "department.html",
                    ctx: ctx.clone(),
                });
            }
            pages.push(Page {
                path: format!("{dir}/{}.html", period.label()),
                template: "department.html",
                ctx,
            });
        }
    }

    fn department(&self, dept: &data::Dept, period: &Period) -> Value {
        let root = "../../";
        let key = (dept.id.clone(), period.grain, *period);
        let s = self.d.scores.get(&key);
        let prev = self.previous(period);
        let prev_values: BTreeMap<String, Option<f64>> = prev
            .and_then(|q| self.d.indicators.get(&(dept.id.clone(), q.grain, q)))
            .map(|v| {
                v.iter()
                    .map(|i| (i.indicator_id.clone(), i.value))
                    .collect()
            })
            .unwrap_or_default();
        let series_of = |ind: &str| -> Vec<data::SeriesPoint> {
            self.d
                .series
                .get(&(dept.id.clone(), ind.to_string(), period.grain))
                .map(|v| v.iter().filter(|p| p.period <= *period).cloned().collect())
                .unwrap_or_default()
        };
        let mut categories = Vec::new();
        for cat in CATEGORIES {
            let rows: Vec<Value> = self
                .d
                .indicators
                .get(&key)
                .into_iter()
                .flatten()
                .filter(|i| i.category == cat)
                .map(|i| {
                    let spark: Vec<Option<f64>> = series_of(&i.indicator_id).iter().rev().take(12).rev().map(|p| p.value).collect();
                    let unit = self.d.catalog.get(&i.indicator_id).map(|c| c.unit.clone()).unwrap_or_default();
                    context! {
                        id => i.indicator_id.clone(),
                        name => self.indicator_name(&i.indicator_id),
                        unit => unit,
                        target => f1(i.target),
                        value => f1(i.value),
                        points => f1(i.points),
                        weight => f1(i.weight),
                        status => self.t.get(&format!("status_{}", i.status)).cloned().unwrap_or(i.status.clone()),
                        rag => rag(&i.status),
                        n => i.n.map(|n| format!("{n:.0}")),
                        change => signed(i.value.zip(prev_values.get(&i.indicator_id).copied().flatten()).map(|(a, b)| a - b)),
                        spark => svg::sparkline(&spark),
                    }
                })
                .collect();
            if !rows.is_empty() {
                categories.push(
                    context! { name => self.t[&format!("category_{cat}")].clone(), rows => rows },
                );
            }
        }
        let groups: Vec<Value> = self
            .d
            .satisfaction
            .get(&key)
            .into_iter()
            .flatten()
            .map(|g| context! {
                group => self.t.get(&format!("group_{}", g.group)).cloned().unwrap_or(g.group.clone()),
                n_ratings => g.n_ratings,
                n_raters => g.n_raters,
                observed => f1(g.observed),
                weighted => f1(g.weighted),
                fair => f1(g.fair),
                excluded => g.excluded,
                all => g.group == "all",
            })
            .collect();
        let reliability = self.d.reliability.get(&key).map(|(n, rwg)| {
            let weak = *n < 5 || rwg.is_some_and(|r| r < 0.7);
            context! { n_raters => n, rwg => f2(*rwg), weak => weak }
        });
        let targets: BTreeMap<String, f64> = self
            .d
            .indicators
            .get(&key)
            .into_iter()
            .flatten()
            .filter_map(|i| Some((i.indicator_id.clone(), i.target?)))
            .collect();
        let mut charts = Vec::new();
        let mut chart_ids = vec!["total_score".to_string()];
        let mut by_weight: Vec<&data::IndScore> =
            self.d.indicators.get(&key).into_iter().flatten().collect();
        by_weight.sort_by(|a, b| {
            b.weight
                .unwrap_or(0.0)
                .total_cmp(&a.weight.unwrap_or(0.0))
                .then(a.indicator_id.cmp(&b.indicator_id))
        });
        chart_ids.extend(by_weight.iter().take(3).map(|i| i.indicator_id.clone()));
        for id in chart_ids {
            let pts = series_of(&id);
            let pts: Vec<&data::SeriesPoint> = pts.iter().rev().take(24).rev().collect();
            let limits = pts.iter().rev().find_map(|p| p.limits);
            let chart_points: Vec<svg::ChartPoint> = pts
                .iter()
                .map(|p| svg::ChartPoint {
                    label: p.period.label(),
                    value: p.value,
                    signal: p.signal,
                })
                .collect();
            let svg = svg::trend_chart(
                &self.indicator_name(&id),
                &chart_points,
                targets.get(&id).copied(),
                limits,
            );
            if !svg.is_empty() {
                let trend = self
                    .d
                    .trends
                    .get(&(dept.id.clone(), id.clone(), period.grain));
                charts.push(context! {
                    name => self.indicator_name(&id),
                    svg => Value::from_safe_string(svg),
                    direction => trend.map(|t| self.t.get(&format!("direction_{}", t.direction)).cloned().unwrap_or_default()),
                });
            }
        }
        let case_time: Vec<Value> = if period.grain == Grain::Month {
            self.d
                .case_time
                .get(&(dept.id.clone(), *period))
                .into_iter()
                .flatten()
                .map(|(holder, (n, h))| context! { name => self.dept_name(holder), cases => n, hours => format!("{h:.1}") })
                .collect()
        } else {
            Vec::new()
        };
        let causes: Vec<Value> = if period.grain == Grain::Month {
            self.d
                .root_causes
                .get(&(dept.id.clone(), *period))
                .into_iter()
                .flatten()
                .map(|(c, n)| context! { cause => c.clone(), count => n })
                .collect()
        } else {
            Vec::new()
        };
        let mut flags: Vec<Value> = self
            .d
            .flagged_trends
            .get(&(dept.id.clone(), period.grain))
            .into_iter()
            .flatten()
            .filter_map(|ind| Some((ind, self.d.trends.get(&(dept.id.clone(), ind.clone(), period.grain))?)))
            .filter(|(_, t)| t.latest.as_deref() == Some(&period.label()))
            .map(|(ind, t)| context! { indicator => self.indicator_name(ind), flags => t.flags.iter().map(|f| self.t.get(f).cloned().unwrap_or(f.clone())).collect::<Vec<_>>().join(", "), sort => ind.clone() })
            .collect();
        flags.sort_by_key(|v| {
            v.get_attr("sort")
                .map(|s| s.to_string())
                .unwrap_or_default()
        });
        let findings: Vec<Value> = self
            .d
            .findings
            .iter()
            .filter(|f| f.dept_id == dept.id && f.grain == period.grain.as_str() && f.period == period.label())
            .map(|f| context! { check => self.t.get(&f.check_id).cloned().unwrap_or(f.check_id.clone()), detail => f.detail.clone() })
            .collect();
        let dir = lake::file_name(&dept.id);
        let title = format!("{} · {}", dept.name, period.label());
        context! {
            ..self.base(root, title),
            ..context! {
                name => dept.name.clone(),
                dept_id => dept.id.clone(),
                dept_type => type_name(self.p, &dept.type_id, self.english),
                parent => dept.parent.as_deref().map(|x| self.dept_name(x)),
                period => period.label(),
                grain => self.t[&format!("grain_{}", period.grain.as_str())].clone(),
                overview_href => format!("{root}periods/{}.html", period.label()),
                partial => self.as_of.is_some_and(|a| period.is_partial(a)),
                total => f2(s.and_then(|s| s.total)),
                result_points => f1(s.and_then(|s| s.result)),
                process_points => f1(s.and_then(|s| s.process)),
                development_points => f1(s.and_then(|s| s.development)),
                grade => self.grade_name(s.and_then(|s| s.grade.as_deref())),
                rank => s.and_then(|s| s.rank),
                bonus => s.and_then(|s| s.bonus).map(|b| format!("{b:.3}")),
                veto => s.is_some_and(|s| s.veto),
                veto_reasons => s.and_then(|s| s.veto_reasons.clone()),
                coverage => s.and_then(|s| s.coverage).map(|c| format!("{:.0}%", c * 100.0)),
                version => s.map(|s| s.version.clone()),
                categories => categories,
                groups => groups,
                reliability => reliability,
                charts => charts,
                case_time => case_time,
                causes => causes,
                flags => flags,
                findings => findings,
                switcher => self.switcher(root, &|p| format!("departments/{dir}/{}.html", p.label())),
            }
        }
    }

    fn raters_page(&self) -> Page {
        let flagged: Vec<Value> = self
            .d
            .flagged
            .iter()
            .map(|e| context! {
                rater => e.rater_id.clone(),
                period => e.period.clone(),
                n => e.n_ratings,
                depts => e.n_depts,
                severity => format!("{:+.1}", e.severity),
                se => format!("{:.1}", e.se),
                flags => e.flags.split(',').map(|f| self.t.get(f).cloned().unwrap_or(f.to_string())).collect::<Vec<_>>().join(", "),
            })
            .collect();
        let counts: Vec<Value> = self
            .d
            .flag_counts
            .iter()
            .map(|(f, n)| context! { flag => self.t.get(f).cloned().unwrap_or(f.clone()), count => n })
            .collect();
        Page {
            path: "raters.html".into(),
            template: "raters.html",
            ctx: context! {
                ..self.base("", self.t["rater_audit"].clone()),
                ..context! {
                    flagged => flagged,
                    counts => counts,
                    histogram => Value::from_safe_string(svg::histogram(&self.t["severity_distribution"], &self.d.severities, 2.0)),
                    n_raters => self.d.severities.len(),
                }
            },
        }
    }

    fn data_quality_page(&self, out: &OutDir) -> Result<Page> {
        let (tables, rejects) = data_summary(out)?;
        let log = crate::ingest::read_log(out)?;
        let files: Vec<Value> = log
            .iter()
            .map(|f| context! { table => f.table.clone(), file => f.file.clone(), encoding => f.encoding.clone(), records => f.records, rejected => f.rejected, sha => f.sha256[..12].to_string() })
            .collect();
        let marts: Vec<Value> = mart_schemas(out)?
            .into_iter()
            .map(|(name, schema)| {
                let cols: Vec<Value> = schema
                    .into_iter()
                    .map(|(c, ty)| context! { name => c.clone(), dtype => ty, description => dictionary::describe(&name, &c).unwrap_or("") })
                    .collect();
                context! { name => name, columns => cols }
            })
            .collect();
        Ok(Page {
            path: "data-quality.html".into(),
            template: "data_quality.html",
            ctx: context! {
                ..self.base("", self.t["data_quality"].clone()),
                ..context! {
                    tables => tables,
                    rejects => rejects,
                    files => files,
                    marts => marts,
                    restatements => self.d.restated.iter().map(|r| context! { name => self.dept_name(&r.dept_id), period => r.period.clone(), item => r.item.clone(), published => r.published.clone(), recomputed => r.recomputed.clone() }).collect::<Vec<_>>(),
                }
            },
        })
    }

    /// The year's results for HR, as CSV (UTF-8 with BOM, as Excel expects)
    /// and XLSX, one pair per year.
    fn downloads(&self, out: &OutDir) -> Result<Vec<(String, Vec<u8>)>> {
        let header = [
            "dept_id",
            "name",
            "dept_type",
            "total_score",
            "grade",
            "rank_in_type",
            "bonus_coefficient",
            "veto",
            "veto_reasons",
            "is_partial",
        ];
        let mut out = vec![("data-dictionary.csv".to_string(), dictionary_csv(out)?)];
        for year in self
            .d
            .periods
            .get(&Grain::Year)
            .cloned()
            .unwrap_or_default()
        {
            let rows: Vec<(&data::Dept, &data::DeptScore)> = self
                .d
                .depts
                .iter()
                .filter_map(|d| Some((d, self.d.scores.get(&(d.id.clone(), Grain::Year, year))?)))
                .collect();
            let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
            w.write_record(header)?;
            for (dept, s) in &rows {
                w.write_record([
                    dept.id.clone(),
                    dept.name.clone(),
                    dept.type_id.clone(),
                    s.total.map_or(String::new(), |v| format!("{v:.2}")),
                    s.grade.clone().unwrap_or_default(),
                    s.rank.map_or(String::new(), |r| r.to_string()),
                    s.bonus.map_or(String::new(), |b| format!("{b:.4}")),
                    s.veto.to_string(),
                    s.veto_reasons.clone().unwrap_or_default(),
                    s.is_partial.to_string(),
                ])?;
            }
            out.push((
                format!("results-{}.csv", year.label()),
                w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?,
            ));
            out.push((
                format!("results-{}.xlsx", year.label()),
                xlsx(&header, &rows, year)?,
            ));
        }
        Ok(out)
    }
}

/// One year's results as an XLSX workbook. The document's creation date is
/// the period's first day, so the same results give the same bytes.
fn xlsx(
    header: &[&str],
    rows: &[(&data::Dept, &data::DeptScore)],
    year: Period,
) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook};
    let mut wb = Workbook::new();
    let created = ExcelDateTime::from_ymd(year.start.year() as u16, 1, 1)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    wb.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let ws = wb.add_worksheet();
    ws.set_name(year.label())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let x = |e: rust_xlsxwriter::XlsxError| anyhow::anyhow!("{e}");
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, *h).map_err(x)?;
    }
    for (r, (dept, s)) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        ws.write_string(r, 0, &dept.id).map_err(x)?;
        ws.write_string(r, 1, &dept.name).map_err(x)?;
        ws.write_string(r, 2, &dept.type_id).map_err(x)?;
        if let Some(t) = s.total {
            ws.write_number(r, 3, t).map_err(x)?;
        }
        ws.write_string(r, 4, s.grade.as_deref().unwrap_or(""))
            .map_err(x)?;
        if let Some(k) = s.rank {
            ws.write_number(r, 5, k as f64).map_err(x)?;
        }
        if let Some(b) = s.bonus {
            ws.write_number(r, 6, b).map_err(x)?;
        }
        ws.write_boolean(r, 7, s.veto).map_err(x)?;
        ws.write_string(r, 8, s.veto_reasons.as_deref().unwrap_or(""))
            .map_err(x)?;
        ws.write_boolean(r, 9, s.is_partial).map_err(x)?;
    }
    wb.save_to_buffer().map_err(x)
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

/// The data dictionary as CSV (`dataset,column,type,description`): every
/// column of the lake tables (with the `month` partition column readers
/// see), the rejects and the marts, with its type as polars names it, for
/// tools that check what they read against it.
fn dictionary_csv(out: &OutDir) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["dataset", "column", "type", "description"])?;
    for spec in crate::ingest::tables::ALL {
        let file = match spec.month_column {
            Some(_) => lake::last_partition(out, spec.name)?,
            None => Some(out.read(&out.table_path(spec.name, false))).filter(|p| p.is_file()),
        };
        let Some(file) = file else { continue };
        let dataset = format!("lake/{}", spec.name);
        for (c, ty) in lake::read_schema(&file)? {
            let d = match c.as_str() {
                "source_file" => "Input file the row came from (relative to the input folder).",
                "source_line" => "Line (CSV, JSON Lines) or row (Parquet) in that file, from 1.",
                _ => "As in the input contract (DESIGN.md section 5); times in UTC.",
            };
            w.write_record([dataset.as_str(), c.as_str(), ty.as_str(), d])?;
        }
        if let Some(mc) = spec.month_column {
            let d = format!(
                "Partition folder month=YYYY-MM: the month of {mc} in the policy's time zone."
            );
            w.write_record([dataset.as_str(), "month", "str", d.as_str()])?;
        }
    }
    let rejects = out.read(&out.rejects());
    if rejects.is_file() {
        for (c, ty) in lake::read_schema(&rejects)? {
            w.write_record([
                "rejects",
                c.as_str(),
                ty.as_str(),
                "See the data-quality page.",
            ])?;
        }
    }
    for (name, schema) in mart_schemas(out)? {
        let dataset = format!("marts/{name}");
        for (c, ty) in schema {
            let d = dictionary::describe(&name, &c).unwrap_or("");
            w.write_record([dataset.as_str(), c.as_str(), ty.as_str(), d])?;
        }
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
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
