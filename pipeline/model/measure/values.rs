//! Indicator values: each definition's SQL run over the views, its rows
//! added up to every period of every grain (ratio, mean, quantile, per
//! period), and the `indicator_values` and `indicator_catalog` marts.

use super::*;

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
pub(super) struct Acc {
    pub(super) num: f64,
    pub(super) den: f64,
    pub(super) count: f64,
    /// Every value, for a quantile only.
    pub(super) values: Vec<f64>,
}

/// Runs every definition and aggregates it to every grain. Queries run
/// one at a time (a query uses every core) and each one's rows are added
/// up on a core of its own while the next query runs (adding up is a walk
/// over the rows in order, on one core).
pub fn compute(catalog: &[Indicator], views: &[(&str, LazyFrame)], tz: Tz) -> Result<Vec<Value>> {
    let mut query = |i: usize| -> Result<DataFrame> {
        let ind = &catalog[i];
        context(views)
            .execute(&ind.sql)
            .and_then(|lf| lf.collect())
            .with_context(|| format!("indicator {} ({}) failed", ind.id, ind.source))
    };
    let values = crate::runtime::on_every_core_as_made(catalog.len(), &mut query, |i, df| {
        let ind = &catalog[i];
        aggregate(ind, &df, tz).with_context(|| {
            format!(
                "indicator {} ({}) returned unusable rows",
                ind.id, ind.source
            )
        })
    })?;
    Ok(values.into_iter().flatten().collect())
}

pub(super) fn aggregate(ind: &Indicator, df: &DataFrame, tz: Tz) -> Result<Vec<Value>> {
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
            catalog.iter().map(|i| Some(i.direction.name())),
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
