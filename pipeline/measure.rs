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

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anyhow::{Context, Result};
use chrono::{Datelike, NaiveDate};
use chrono_tz::Tz;
use polars::prelude::{DataFrame, DataType, Engine, Float64Chunked, LazyFrame, PlHashMap};
use polars::sql::SQLContext;

use crate::calendar::LocalDays;
use crate::frame::{self, Builder};
use crate::periods::{Grain, Period};
use crate::policy::{LoadedPolicy, PolicyError, CATEGORIES};

macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../queries/indicators/", $name, ".sql")))),*]
    };
}

const BUILTIN: [(&str, &str); 17] = builtin!(
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
    let direction = match direction.as_str() {
        "higher" => Direction::Higher,
        "lower" => Direction::Lower,
        other => {
            if !other.is_empty() {
                p.push(format!(
                    "{source}: direction `{other}` is not `higher` or `lower`"
                ));
            }
            Direction::Higher
        }
    };
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

/// One value of one indicator for one department and period.
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    pub indicator_id: String,
    pub dept_id: String,
    pub period: Period,
    pub value: Option<f64>,
    pub numerator: Option<f64>,
    pub denominator: Option<f64>,
    pub n: f64,
}

#[derive(Default)]
struct Acc {
    num: f64,
    den: f64,
    count: f64,
    /// Every value, for a quantile only.
    values: Vec<f64>,
}

/// Runs every definition and aggregates it to every grain.
///
/// Definitions whose queries share work (see [`sharing`]) are collected
/// together, so polars runs what they share once, and their rows are added
/// up one after another. Queries run one at a time (a query uses every
/// core) and each one's rows are added up on a core of its own while the
/// next query runs (adding up is a walk over the rows in order, on one
/// core).
pub fn compute(catalog: &[Indicator], views: &[(&str, LazyFrame)], tz: Tz) -> Result<Vec<Value>> {
    let failed = |ind: &Indicator| format!("indicator {} ({}) failed", ind.id, ind.source);
    let plan = |ind: &Indicator| context(views).execute(&ind.sql);
    let query = |i: usize| -> Result<DataFrame> {
        let ind = &catalog[i];
        plan(ind)
            .and_then(|lf| lf.collect())
            .with_context(|| failed(ind))
    };
    let add_up = |ind: &Indicator, df: &DataFrame| -> Result<Vec<Value>> {
        aggregate(ind, df, tz).with_context(|| {
            format!(
                "indicator {} ({}) returned unusable rows",
                ind.id, ind.source
            )
        })
    };
    // The definitions in the order they run: a group where its first
    // member is.
    let groups = sharing(catalog, views);
    let mut order = Vec::with_capacity(catalog.len());
    for i in 0..catalog.len() {
        match groups.iter().find(|g| g.contains(&i)) {
            Some(g) if g[0] == i => order.extend(g),
            Some(_) => {}
            None => order.push(i),
        }
    }
    // A group's rows, collected when its first member is due; the others'
    // wait here for their turn, which comes next.
    let mut waiting: HashMap<usize, DataFrame> = HashMap::new();
    let mut make = |k: usize| -> Result<DataFrame> {
        let i = order[k];
        if let Some(df) = waiting.remove(&i) {
            return Ok(df);
        }
        let Some(group) = groups.iter().find(|g| g[0] == i) else {
            return query(i);
        };
        let plans = group
            .iter()
            .map(|&j| plan(&catalog[j]).with_context(|| failed(&catalog[j])))
            .collect::<Result<Vec<_>>>()?;
        let opt = plans[0].get_current_optimizations();
        let plans = plans.into_iter().map(|lf| lf.logical_plan).collect();
        match LazyFrame::collect_all_with_engine(plans, Engine::Auto, opt) {
            Ok(frames) => {
                let mut frames = group.iter().copied().zip(frames);
                let (_, first) = frames.next().expect("a group has members");
                waiting.extend(frames);
                Ok(first)
            }
            // Run alone, a failing definition names itself.
            Err(_) => query(i),
        }
    };
    let values = crate::on_every_core_as_made(order.len(), &mut make, |k, df| {
        add_up(&catalog[order[k]], &df)
    })?;
    // Back in catalog order.
    let mut by_definition: Vec<Vec<Value>> = vec![Vec::new(); catalog.len()];
    for (k, v) in values.into_iter().enumerate() {
        by_definition[order[k]] = v;
    }
    Ok(by_definition.into_iter().flatten().collect())
}

/// Groups of two or more definitions whose queries share work, each in
/// catalog order: the same scan of the same rows and columns, say, as the
/// good- and bad-review rates both read the clients' overall ratings.
/// Collected together, polars runs a shared part once (common-subplan
/// elimination). Polars' optimizer is asked once, for all queries
/// together: its plan shows each shared part as a cache that the queries
/// reading it (`PLAN i`) name. A definition joins at most one group, and a
/// group holds at most [`GROUP_AT_MOST`] (their rows are in memory at
/// once). If the queries cannot be planned together, nothing is grouped;
/// the results are the same either way.
pub(crate) fn sharing(catalog: &[Indicator], views: &[(&str, LazyFrame)]) -> Vec<Vec<usize>> {
    let plans: Option<Vec<LazyFrame>> = catalog
        .iter()
        .map(|ind| context(views).execute(&ind.sql).ok())
        .collect();
    let Some(plans) = plans.filter(|p| p.len() > 1) else {
        return Vec::new();
    };
    let opt = plans[0].get_current_optimizations();
    let plans = plans.into_iter().map(|lf| lf.logical_plan).collect();
    let Ok(text) = LazyFrame::explain_all(plans, opt) else {
        return Vec::new();
    };
    // Cache id -> the plans that read it, in order. A query's own unions
    // number their inputs `PLAN 0`, `PLAN 1`.. too, indented further: the
    // queries are the `PLAN` lines indented as the first one is.
    let mut readers: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let (mut plan, mut plan_indent) = (None, None);
    for line in text.lines() {
        let (indent, item) = (line.len() - line.trim_start().len(), line.trim());
        if let Some(i) = item.strip_prefix("PLAN ").and_then(|l| l.strip_suffix(':')) {
            if *plan_indent.get_or_insert(indent) == indent {
                plan = i.parse::<usize>().ok();
            }
        } else if let (Some(id), Some(p)) = (
            item.strip_prefix("CACHE[id: ")
                .and_then(|l| l.strip_suffix(']')),
            plan,
        ) {
            let r = readers.entry(id).or_default();
            if r.last() != Some(&p) {
                r.push(p);
            }
        }
    }
    let mut grouped = vec![false; catalog.len()];
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut shared: Vec<&Vec<usize>> = readers.values().filter(|r| r.len() > 1).collect();
    shared.sort();
    for r in shared {
        let free: Vec<usize> = r
            .iter()
            .copied()
            .filter(|&p| p < catalog.len() && !grouped[p])
            .take(GROUP_AT_MOST)
            .collect();
        if free.len() > 1 {
            for &p in &free {
                grouped[p] = true;
            }
            groups.push(free);
        }
    }
    groups.sort();
    groups
}

/// The most definitions collected together.
const GROUP_AT_MOST: usize = 4;

fn aggregate(ind: &Indicator, df: &DataFrame, tz: Tz) -> Result<Vec<Value>> {
    let num_column = |name: &str| -> Result<Float64Chunked> {
        Ok(df.column(name)?.cast(&DataType::Float64)?.f64()?.clone())
    };
    if ind.aggregate == Aggregate::PerPeriod {
        let depts = frame::str_refs(df, "dept_id")?;
        let grains = frame::strs(df, "grain")?;
        let starts = frame::dates(df, "period_start")?;
        let values: Vec<Option<f64>> = num_column("value")?.iter().collect();
        let ns: Vec<Option<f64>> = num_column("n")?.iter().collect();
        let mut out = Vec::new();
        for i in 0..df.height() {
            let (Some(d), Some(g), Some(s)) = (
                depts[i],
                grains[i].as_deref().and_then(Grain::parse),
                starts[i],
            ) else {
                continue;
            };
            out.push(Value {
                indicator_id: ind.id.clone(),
                dept_id: d.to_string(),
                period: Period::containing(g, s),
                value: values[i],
                numerator: None,
                denominator: None,
                n: ns[i].unwrap_or(0.0),
            });
        }
        return Ok(out);
    }
    // Where each row falls: an instant's local day, or a covered date
    // range; as day numbers, made into dates once per place.
    let places: Box<dyn Iterator<Item = Option<(i32, i32)>> + '_> = if df.column("at").is_ok() {
        let mut days = LocalDays::new(tz);
        Box::new(frame::micros_iter(df, "at")?.map(move |v| {
            v.map(|us| {
                let d = days.day_number(us);
                (d, d)
            })
        }))
    } else {
        let s = frame::dates(df, "period_start")?;
        let e = frame::dates(df, "period_end")?;
        Box::new(
            s.into_iter()
                .zip(e)
                .map(|(s, e)| Some((s?.num_days_from_ce(), e?.num_days_from_ce()))),
        )
    };
    // Each row's department and place, numbered as met; the periods that
    // cover a place are worked out once per place. Rows often have the
    // department or place of the row before (cases by id come by
    // department, ratings by time), which is then not looked up again.
    let mut dept_no: PlHashMap<&str, u32> = PlHashMap::default();
    let mut period_no: PlHashMap<Period, u32> = PlHashMap::default();
    let mut place_no: PlHashMap<(i32, i32), u32> = PlHashMap::default();
    let mut covers: Vec<Vec<u32>> = Vec::new();
    let mut dept_before: Option<(&str, u32)> = None;
    let mut place_before: Option<((i32, i32), u32)> = None;
    let rows: Vec<Option<(u32, u32)>> = df
        .column("dept_id")?
        .str()?
        .iter()
        .zip(places)
        .map(|(dept, place)| {
            let (dept, place) = (dept?, place?);
            let d = match dept_before {
                Some((name, d)) if name == dept => d,
                _ => {
                    let next = dept_no.len() as u32;
                    let d = *dept_no.entry(dept).or_insert(next);
                    dept_before = Some((dept, d));
                    d
                }
            };
            if let Some((_, c)) = place_before.filter(|(p, _)| *p == place) {
                return Some((d, c));
            }
            let c = *place_no.entry(place).or_insert_with(|| {
                let day = |n: i32| NaiveDate::from_num_days_from_ce_opt(n).expect("a valid day");
                let (start, end) = (day(place.0), day(place.1));
                covers.push(
                    Grain::ALL
                        .iter()
                        .map(|&g| Period::containing(g, start))
                        .filter(|p| p.covers(start, end))
                        .map(|p| {
                            let next = period_no.len() as u32;
                            *period_no.entry(p).or_insert(next)
                        })
                        .collect(),
                );
                covers.len() as u32 - 1
            });
            place_before = Some((place, c));
            Some((d, c))
        })
        .collect();
    // Cells in a table of departments x periods, added up in row order.
    // The table is no larger than the values an indicator gives when every
    // department has rows in every period.
    let width = period_no.len();
    let mut cells: Vec<Option<Acc>> = (0..dept_no.len() * width).map(|_| None).collect();
    fn cell(cells: &mut [Option<Acc>], width: usize, d: u32, p: u32) -> &mut Acc {
        cells[d as usize * width + p as usize].get_or_insert_with(Acc::default)
    }
    if ind.aggregate == Aggregate::Ratio {
        let (nums, dens) = (num_column("numerator")?, num_column("denominator")?);
        for ((row, num), den) in rows.iter().zip(nums.iter()).zip(dens.iter()) {
            let Some((d, c)) = *row else { continue };
            for &p in &covers[c as usize] {
                let acc = cell(&mut cells, width, d, p);
                acc.num += num.unwrap_or(0.0);
                acc.den += den.unwrap_or(0.0);
            }
        }
    } else {
        // Only a quantile needs the values themselves; a mean needs their
        // sum and count.
        let keep_values = matches!(ind.aggregate, Aggregate::Quantile(_));
        for (row, v) in rows.iter().zip(num_column("value")?.iter()) {
            let (Some((d, c)), Some(v)) = (*row, v) else {
                continue;
            };
            for &p in &covers[c as usize] {
                let acc = cell(&mut cells, width, d, p);
                acc.num += v;
                acc.count += 1.0;
                if keep_values {
                    acc.values.push(v);
                }
            }
        }
    }
    let mut names = vec![""; dept_no.len()];
    for (name, d) in dept_no {
        names[d as usize] = name;
    }
    let mut periods: Vec<(u32, Period)> = period_no.into_iter().map(|(p, n)| (n, p)).collect();
    periods.sort_unstable_by_key(|&(n, _)| n);
    let cells = cells
        .into_iter()
        .enumerate()
        .filter_map(|(k, acc)| Some(((names[k / width], periods[k % width].1), acc?)));
    let mut cells: Vec<((&str, Period), Acc)> = cells.collect();
    cells.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    Ok(cells
        .into_iter()
        .map(|((dept, period), mut acc)| {
            let (value, numerator, denominator, n) = match ind.aggregate {
                Aggregate::Ratio => (
                    (acc.den > 0.0).then(|| acc.num / acc.den * ind.scale),
                    Some(acc.num),
                    Some(acc.den),
                    acc.den,
                ),
                Aggregate::Mean => (
                    (acc.count > 0.0).then(|| acc.num / acc.count),
                    Some(acc.num),
                    Some(acc.count),
                    acc.count,
                ),
                Aggregate::Quantile(q) => (quantile(&mut acc.values, q), None, None, acc.count),
                Aggregate::PerPeriod => unreachable!("handled above"),
            };
            Value {
                indicator_id: ind.id.clone(),
                dept_id: dept.to_string(),
                period,
                value,
                numerator,
                denominator,
                n,
            }
        })
        .collect())
}

/// Quantile with linear interpolation between closest ranks (numpy's and
/// polars' default, "type 7").
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let h = (values.len() - 1) as f64 * q;
    let lo = h.floor() as usize;
    // The lo-th smallest value, and the next one up: the smallest of the
    // values after it (selection, not a full sort).
    let (_, &mut at_lo, above) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let at_hi = above
        .iter()
        .copied()
        .min_by(f64::total_cmp)
        .unwrap_or(at_lo);
    Some(at_lo + (h - lo as f64) * (at_hi - at_lo))
}

/// `indicator_values` as a frame.
pub fn values_frame(values: &[Value], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", values.iter().map(|v| Some(v.dept_id.as_str())))
        .periods(&values.iter().map(|r| r.period).collect::<Vec<_>>(), as_of)
        .str(
            "indicator_id",
            values.iter().map(|v| Some(v.indicator_id.as_str())),
        )
        .f64("value", values.iter().map(|v| v.value))
        .f64("numerator", values.iter().map(|v| v.numerator))
        .f64("denominator", values.iter().map(|v| v.denominator))
        .f64("n", values.iter().map(|v| Some(v.n)))
        .build()
}

/// The catalog as a frame (`indicator_catalog` mart), for the site and for
/// data teams.
pub fn catalog_frame(catalog: &[Indicator]) -> Result<DataFrame> {
    let agg = |a: Aggregate| match a {
        Aggregate::Ratio => "ratio".to_string(),
        Aggregate::Mean => "mean".to_string(),
        Aggregate::Quantile(q) => format!("quantile {q}"),
        Aggregate::PerPeriod => "per_period".to_string(),
    };
    Builder::new()
        .str("indicator_id", catalog.iter().map(|i| Some(i.id.as_str())))
        .str("name_zh", catalog.iter().map(|i| Some(i.name_zh.as_str())))
        .str("name_en", catalog.iter().map(|i| Some(i.name_en.as_str())))
        .str("unit", catalog.iter().map(|i| Some(i.unit.as_str())))
        .str(
            "category",
            catalog.iter().map(|i| Some(i.category.as_str())),
        )
        .str(
            "direction",
            catalog.iter().map(|i| {
                Some(if i.direction == Direction::Higher {
                    "higher"
                } else {
                    "lower"
                })
            }),
        )
        .str("aggregate", catalog.iter().map(|i| Some(agg(i.aggregate))))
        .f64("scale", catalog.iter().map(|i| Some(i.scale)))
        .f64("min_n", catalog.iter().map(|i| Some(i.min_n)))
        .str(
            "description",
            catalog.iter().map(|i| Some(i.description.as_str())),
        )
        .build()
}

/// Index of values by (indicator, dept, period).
pub fn index(values: &[Value]) -> PlHashMap<(&str, &str, Period), &Value> {
    values
        .iter()
        .map(|v| ((v.indicator_id.as_str(), v.dept_id.as_str(), v.period), v))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantile_interpolates_linearly() {
        // numpy.quantile([1, 2, 3, 4, 10], 0.9) = 4 + 0.6 * (10 - 4) = 7.6
        let mut v = vec![10.0, 1.0, 3.0, 2.0, 4.0];
        assert!((quantile(&mut v, 0.9).unwrap() - 7.6).abs() < 1e-12);
        assert_eq!(quantile(&mut [5.0], 0.9), Some(5.0));
        assert_eq!(quantile(&mut [], 0.9), None);
        // Ties, unsorted: numpy.quantile([1, 2, 2, 3], q) for q = 0, 0.5,
        // 0.9 and 1 is 1, 2, 2 + 0.7 * (3 - 2) = 2.7, and 3.
        for (q, expected) in [(0.0, 1.0), (0.5, 2.0), (0.9, 2.7), (1.0, 3.0)] {
            let got = quantile(&mut [3.0, 2.0, 1.0, 2.0], q).unwrap();
            assert!((got - expected).abs() < 1e-12, "q = {q}: {got}");
        }
    }

    #[test]
    fn every_builtin_definition_parses() {
        for (stem, text) in BUILTIN {
            let i = parse(stem, text, stem).unwrap_or_else(|e| panic!("{stem}: {e:?}"));
            assert_eq!(i.id, stem);
        }
    }

    #[test]
    fn header_problems_are_all_reported() {
        let text = "-- id: other\n-- name_zh: x\n-- unit: %\n-- category: outcome\n-- direction: up\n-- aggregate: ratio\nSELECT 1";
        let p = parse("mine", text, "mine.sql").unwrap_err();
        let all = p.join("\n");
        assert!(all.contains("missing `-- name_en: ...`"), "{all}");
        assert!(
            all.contains("id `other` must match the file name `mine.sql`"),
            "{all}"
        );
        assert!(all.contains("category `outcome`"), "{all}");
        assert!(all.contains("direction `up`"), "{all}");
    }
}
