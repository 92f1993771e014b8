//! A kept entry's files: each part of a year's or a period's results (rater
//! model, exclusions, satisfaction, reliability, the open sums carried to
//! the next period) as a Parquet frame, and read back.

use super::*;

/// Whether a ratings month file holds a rating in `(from, to]` (UTC
/// microseconds), as a pass's scan cuts it.
pub(super) fn has_rows_in(path: &Path, (from, to): (i64, i64)) -> Result<bool> {
    let df = lake::read_parquet_columns(path, &["rated_at"])?;
    Ok(frame::micros(&df, "rated_at")?
        .into_iter()
        .flatten()
        .any(|t| from < t && t <= to))
}

/// Puts an old entry's files into this run's folder: hard links where the
/// file system allows, copies otherwise.
pub(super) fn link_entry(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for e in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let src = e?.path();
        let dst = to.join(src.file_name().expect("entries have names"));
        if fs::hard_link(&src, &dst).is_err() {
            fs::copy(&src, &dst)
                .with_context(|| format!("cannot copy {} to {}", src.display(), dst.display()))?;
        }
    }
    Ok(())
}

/// An entry's `entry.json`: the first day with a scored response, and the
/// number of item ratings.
pub(super) fn read_meta(dir: &Path) -> Result<(Option<NaiveDate>, usize)> {
    let meta: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("entry.json"))?)?;
    let first_day = match meta["first_day"].as_str() {
        Some(s) => Some(NaiveDate::parse_from_str(s, "%Y-%m-%d")?),
        None => None,
    };
    let n_items = meta["n_items"].as_u64().context("entry.json: n_items")? as usize;
    Ok((first_day, n_items))
}

pub(super) fn read_entry(dir: &Path) -> Result<YearResults> {
    let read = |name: &str| lake::read_parquet(&dir.join(format!("{name}.parquet")));
    let (first_day, n_items) = read_meta(dir)?;
    Ok(YearResults {
        effects: read("effects")?,
        flags: read("flags")?,
        satisfaction: satisfaction_rows(&read("satisfaction")?)?,
        reliability: reliability_rows(&read("reliability")?)?,
        carry_items: carried_rows(&read("carry_items")?)?,
        carry_excluded: excluded_rows(&read("carry_excluded")?)?,
        first_day,
        n_items,
    })
}

pub(super) fn read_period_entry(dir: &Path) -> Result<PeriodResults> {
    let read = |name: &str| lake::read_parquet(&dir.join(format!("{name}.parquet")));
    let (first_day, n_items) = read_meta(dir)?;
    Ok(PeriodResults {
        effects: read("effects")?,
        flags: read("flags")?,
        excluded: excluded_rows(&read("excluded")?)?,
        carry_items: carried_rows(&read("carry_items")?)?,
        satisfaction: satisfaction_rows(&read("satisfaction")?)?,
        reliability: reliability_rows(&read("reliability")?)?,
        open: OpenSums::InEntry(dir.to_path_buf()),
        first_day,
        n_items,
    })
}

/// The sums of the quarter and year open at the end of a kept period.
pub(super) fn read_open(dir: &Path) -> Result<(Vec<OpenGroup>, Vec<ReliabilityPart>)> {
    let read = |name: &str| lake::read_parquet(&dir.join(format!("{name}.parquet")));
    let groups = read("open_satisfaction")?;
    let mut group_raters = members(&read("open_satisfaction_raters")?, groups.height())?;
    let (depts, names) = (text(&groups, "dept_id")?, text(&groups, "rater_group")?);
    let (n, excluded) = (
        frame::i64s(&groups, "n")?,
        frame::i64s(&groups, "excluded")?,
    );
    let (sum, fair) = (frame::f64s(&groups, "sum")?, frame::f64s(&groups, "fair")?);
    let sat = periods(&groups)?
        .into_iter()
        .enumerate()
        .map(|(i, period)| {
            Ok(OpenGroup {
                dept_id: depts[i].clone(),
                period,
                rater_group: names[i].clone(),
                n: count(n[i])?,
                sum: sum[i].context("a missing sum")?,
                fair: fair[i],
                excluded: count(excluded[i])?,
                raters: std::mem::take(&mut group_raters[i]),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let parts = read("open_reliability")?;
    let mut part_raters = members(&read("open_reliability_raters")?, parts.height())?;
    let mut part_items: Vec<Vec<(String, Spread, f64)>> = vec![Vec::new(); parts.height()];
    let items = read("open_reliability_items")?;
    let (of, item) = (frame::i64s(&items, "of")?, text(&items, "item")?);
    let item_spreads = spreads(&items)?;
    let levels = frame::f64s(&items, "levels")?;
    for (k, item) in item.into_iter().enumerate() {
        let of = count(of[k])?;
        part_items
            .get_mut(of)
            .context("an item of no kept part")?
            .push((item, item_spreads[k], levels[k].context("missing levels")?));
    }
    let depts = text(&parts, "dept_id")?;
    let responses = spreads(&parts)?;
    let rel = periods(&parts)?
        .into_iter()
        .enumerate()
        .map(|(i, period)| ReliabilityPart {
            dept_id: depts[i].clone(),
            period,
            items: std::mem::take(&mut part_items[i]),
            raters: std::mem::take(&mut part_raters[i]),
            responses: responses[i],
        })
        .collect();
    Ok((sat, rel))
}

/// Item ratings handed to the next pass, as kept, and back.
pub(super) fn carried_frame(rows: &[(String, String, Option<f64>)]) -> Result<DataFrame> {
    Builder::new()
        .str("rating_id", rows.iter().map(|c| Some(&c.0)))
        .str("item", rows.iter().map(|c| Some(&c.1)))
        .f64("adjusted", rows.iter().map(|c| c.2))
        .build()
}

pub(super) fn carried_rows(df: &DataFrame) -> Result<Vec<(String, String, Option<f64>)>> {
    let (ids, items) = (text(df, "rating_id")?, text(df, "item")?);
    let adjusted = frame::f64s(df, "adjusted")?;
    Ok(ids
        .into_iter()
        .zip(items)
        .zip(adjusted)
        .map(|((a, b), c)| (a, b, c))
        .collect())
}

/// Open rater groups' sums (their raters apart, see [`members_frame`]).
pub(super) fn open_groups_frame(groups: &[OpenGroup], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", groups.iter().map(|g| Some(&g.dept_id)))
        .periods(&groups.iter().map(|g| g.period).collect::<Vec<_>>(), as_of)
        .str("rater_group", groups.iter().map(|g| Some(&g.rater_group)))
        .i64("n", groups.iter().map(|g| Some(g.n as i64)))
        .f64("sum", groups.iter().map(|g| Some(g.sum)))
        .f64("fair", groups.iter().map(|g| g.fair))
        .i64("excluded", groups.iter().map(|g| Some(g.excluded as i64)))
        .build()
}

/// Open reliability parts: the spread of their response means (their
/// items and raters apart).
pub(super) fn open_parts_frame(parts: &[ReliabilityPart], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", parts.iter().map(|p| Some(&p.dept_id)))
        .periods(&parts.iter().map(|p| p.period).collect::<Vec<_>>(), as_of)
        .i64("n", parts.iter().map(|p| Some(p.responses.n as i64)))
        .f64("mean", parts.iter().map(|p| Some(p.responses.mean)))
        .f64("m2", parts.iter().map(|p| Some(p.responses.m2)))
        .build()
}

/// Each open part's items: `of` its row in `open_reliability`.
pub(super) fn part_items_frame(parts: &[ReliabilityPart]) -> Result<DataFrame> {
    let rows: Vec<(usize, &(String, Spread, f64))> = parts
        .iter()
        .enumerate()
        .flat_map(|(k, p)| p.items.iter().map(move |item| (k, item)))
        .collect();
    Builder::new()
        .i64("of", rows.iter().map(|r| Some(r.0 as i64)))
        .str("item", rows.iter().map(|r| Some(&r.1 .0)))
        .i64("n", rows.iter().map(|r| Some(r.1 .1.n as i64)))
        .f64("mean", rows.iter().map(|r| Some(r.1 .1.mean)))
        .f64("m2", rows.iter().map(|r| Some(r.1 .1.m2)))
        .f64("levels", rows.iter().map(|r| Some(r.1 .2)))
        .build()
}

/// Each row's raters, one per row of the result: `of` the row's number.
pub(super) fn members_frame<'a>(lists: impl Iterator<Item = &'a Vec<String>>) -> Result<DataFrame> {
    let rows: Vec<(usize, &String)> = lists
        .enumerate()
        .flat_map(|(k, list)| list.iter().map(move |r| (k, r)))
        .collect();
    Builder::new()
        .i64("of", rows.iter().map(|r| Some(r.0 as i64)))
        .str("rater_id", rows.iter().map(|r| Some(r.1)))
        .build()
}

/// [`members_frame`] back, for `n` rows.
pub(super) fn members(df: &DataFrame, n: usize) -> Result<Vec<Vec<String>>> {
    let mut lists = vec![Vec::new(); n];
    let of = frame::i64s(df, "of")?;
    for (k, rater) in text(df, "rater_id")?.into_iter().enumerate() {
        lists
            .get_mut(count(of[k])?)
            .context("a rater of no kept row")?
            .push(rater);
    }
    Ok(lists)
}

/// The spreads in a kept frame's `n`, `mean` and `m2` columns.
pub(super) fn spreads(df: &DataFrame) -> Result<Vec<Spread>> {
    let (n, mean, m2) = (
        frame::i64s(df, "n")?,
        frame::f64s(df, "mean")?,
        frame::f64s(df, "m2")?,
    );
    (0..df.height())
        .map(|i| {
            Ok(Spread {
                n: count(n[i])?,
                mean: mean[i].context("a missing mean")?,
                m2: m2[i].context("a missing m2")?,
            })
        })
        .collect()
}

/// A text column of a kept frame, which has no missing values.
pub(super) fn text(df: &DataFrame, column: &str) -> Result<Vec<String>> {
    frame::strs(df, column)?
        .into_iter()
        .map(|s| s.context("a missing value in a kept entry"))
        .collect()
}

/// Excluded responses (rating id, why) as kept, and back.
pub(super) fn excluded_frame(rows: &[(String, String)]) -> Result<DataFrame> {
    Builder::new()
        .str("rating_id", rows.iter().map(|c| Some(&c.0)))
        .str("reason", rows.iter().map(|c| Some(&c.1)))
        .build()
}

pub(super) fn excluded_rows(df: &DataFrame) -> Result<Vec<(String, String)>> {
    Ok(text(df, "rating_id")?
        .into_iter()
        .zip(text(df, "reason")?)
        .collect())
}

/// The periods of a mart frame's rows, from `grain` and `period_start`.
pub(super) fn periods(df: &DataFrame) -> Result<Vec<Period>> {
    frame::strs(df, "grain")?
        .into_iter()
        .zip(frame::dates(df, "period_start")?)
        .map(|(g, start)| {
            let grain = g.as_deref().and_then(Grain::parse).context("grain")?;
            Ok(Period::containing(grain, start.context("period_start")?))
        })
        .collect()
}

pub(super) fn count(v: Option<i64>) -> Result<usize> {
    usize::try_from(v.context("a missing count")?).context("a negative count")
}

pub(super) fn satisfaction_rows(df: &DataFrame) -> Result<Vec<satisfaction::Row>> {
    let (depts, groups) = (frame::strs(df, "dept_id")?, frame::strs(df, "rater_group")?);
    let (n_ratings, n_raters, excluded) = (
        frame::i64s(df, "n_ratings")?,
        frame::i64s(df, "n_raters")?,
        frame::i64s(df, "excluded_ratings")?,
    );
    let (observed, weighted, fair, value) = (
        frame::f64s(df, "observed_mean")?,
        frame::f64s(df, "weighted_mean")?,
        frame::f64s(df, "fair_mean")?,
        frame::f64s(df, "value")?,
    );
    periods(df)?
        .into_iter()
        .enumerate()
        .map(|(i, period)| {
            Ok(satisfaction::Row {
                dept_id: depts[i].clone().context("dept_id")?,
                period,
                rater_group: groups[i].clone().context("rater_group")?,
                n_ratings: count(n_ratings[i])?,
                n_raters: count(n_raters[i])?,
                observed_mean: observed[i],
                weighted_mean: weighted[i],
                fair_mean: fair[i],
                value: value[i],
                excluded_ratings: count(excluded[i])?,
            })
        })
        .collect()
}

pub(super) fn reliability_rows(df: &DataFrame) -> Result<Vec<Reliability>> {
    let depts = frame::strs(df, "dept_id")?;
    let n_raters = frame::i64s(df, "n_raters")?;
    let (rwg, icc1, icc2) = (
        frame::f64s(df, "rwg")?,
        frame::f64s(df, "icc1")?,
        frame::f64s(df, "icc2")?,
    );
    periods(df)?
        .into_iter()
        .enumerate()
        .map(|(i, period)| {
            Ok(Reliability {
                dept_id: depts[i].clone().context("dept_id")?,
                period,
                n_raters: count(n_raters[i])?,
                rwg: rwg[i],
                icc1: icc1[i],
                icc2: icc2[i],
            })
        })
        .collect()
}
