//! Closed periods. Bonuses are paid on closed results: a period closes
//! `scoring.close_after_days` after it ends. When compute runs again, the
//! scores of periods that were already closed in the previous marts are kept
//! as published, and any difference from a recomputation (a late appeal, a
//! re-exported record, a changed policy) is listed in the `restatements`
//! mart instead of silently rewriting what was paid.

use anyhow::Result;
use chrono::{Duration, NaiveDate};
use polars::prelude::*;

use crate::frame::{self, Builder};

type Key = (String, String, String);
type KeyRef<'a> = (&'a str, &'a str, &'a str);

/// Adds `closed`: the period ended at least `days` days before `as_of`.
pub fn add_closed(df: &mut DataFrame, as_of: NaiveDate, days: u32) -> Result<()> {
    let cutoff = as_of - Duration::days(days as i64);
    let closed: BooleanChunked = frame::dates(df, "period_end")?
        .into_iter()
        .map(|d| Some(d.is_some_and(|d| d <= cutoff)))
        .collect();
    df.with_column(closed.with_name("closed".into()).into_column())?;
    Ok(())
}

/// Each row's (department, grain, period), borrowed from the frame.
fn keys(df: &DataFrame) -> Result<Vec<KeyRef<'_>>> {
    let (d, g, p) = (
        text_or_empty(df, "dept_id")?,
        text_or_empty(df, "grain")?,
        text_or_empty(df, "period")?,
    );
    Ok((0..df.height()).map(|i| (d[i], g[i], p[i])).collect())
}

/// A text column's values, with "" for a missing one.
fn text_or_empty<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<&'a str>> {
    Ok(frame::str_refs(df, name)?
        .into_iter()
        .map(Option::unwrap_or_default)
        .collect())
}

/// A published row whose figure differs: its row number, the published
/// text and the recomputed text (none when not recomputed).
type Difference = (usize, Option<String>, Option<String>);

/// The pairs `(i, j)` (row `i` of `old`, its row `j` of `new` if any)
/// whose values of `col` differ as text (numbers as polars prints them),
/// with both texts. Floats are compared first by their bits: two floats
/// print the same exactly when they are the same number (or both not a
/// number), so only those that differ are made into text.
fn differing(
    old: &DataFrame,
    new: &DataFrame,
    col: &str,
    pairs: &[(usize, Option<usize>)],
) -> Result<Vec<Difference>> {
    let (o, n) = (old.column(col)?, new.column(col)?);
    let pairs: Vec<(usize, Option<usize>)> =
        if o.dtype() == &DataType::Float64 && n.dtype() == &DataType::Float64 {
            let (o, n) = (frame::f64s(old, col)?, frame::f64s(new, col)?);
            let same = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                (a, b) => a.is_none() && b.is_none(),
            };
            pairs
                .iter()
                .copied()
                .filter(|&(i, j)| !same(o[i], j.and_then(|j| n[j])))
                .collect()
        } else {
            pairs.to_vec()
        };
    let text = |c: &Column, rows: IdxCa| -> Result<Vec<Option<String>>> {
        let t = c.take(&rows)?.cast(&DataType::String)?;
        Ok(t.str()?.iter().map(|v| v.map(String::from)).collect())
    };
    let old_text = text(o, pairs.iter().map(|p| Some(p.0 as IdxSize)).collect())?;
    let new_text = text(n, pairs.iter().map(|p| p.1.map(|j| j as IdxSize)).collect())?;
    Ok(pairs
        .iter()
        .zip(old_text.into_iter().zip(new_text))
        .filter(|(_, (a, b))| a != b)
        .map(|((i, _), (a, b))| (*i, a, b))
        .collect())
}

/// A key as owned text, for a restatement.
fn owned(k: &KeyRef) -> Key {
    (k.0.to_string(), k.1.to_string(), k.2.to_string())
}

/// A difference between a published closed figure and its recomputation.
#[derive(Debug, Clone)]
struct Restatement {
    key: Key,
    start: Option<NaiveDate>,
    end: Option<NaiveDate>,
    item: String,
    published: Option<String>,
    recomputed: Option<String>,
}

/// Keeps the closed periods of the previous marts. Returns the department
/// scores, indicator scores and restatements to publish.
pub fn keep_closed(
    prev_dept: Option<DataFrame>,
    prev_ind: Option<DataFrame>,
    new_dept: DataFrame,
    new_ind: DataFrame,
) -> Result<(DataFrame, DataFrame, DataFrame)> {
    let (Some(prev_dept), Some(prev_ind)) = (prev_dept, prev_ind) else {
        return Ok((sort_dept(new_dept)?, sort_ind(new_ind)?, frame_of(&[])?));
    };
    let schema_hint = "the previous marts were written by another version; move OUT/marts aside to recompute every period";
    let hint = |e: PolarsError| anyhow::anyhow!("{schema_hint}: {e}");
    let prev_dept = prev_dept
        .select(new_dept.get_column_names_owned())
        .map_err(hint)?;
    let prev_ind = prev_ind
        .select(new_ind.get_column_names_owned())
        .map_err(hint)?;

    let prev_keys = keys(&prev_dept)?;
    let prev_closed = frame::bools(&prev_dept, "closed")?;
    let closed: PlHashSet<KeyRef> = prev_keys
        .iter()
        .zip(&prev_closed)
        .filter(|(_, c)| **c == Some(true))
        .map(|(k, _)| *k)
        .collect();
    if closed.is_empty() {
        return Ok((sort_dept(new_dept)?, sort_ind(new_ind)?, frame_of(&[])?));
    }

    let mut restated = Vec::new();
    // Department-level figures.
    let new_keys = keys(&new_dept)?;
    let new_at: PlHashMap<KeyRef, usize> =
        new_keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
    // Each row's key is looked up once: is it closed, and which new row
    // recomputes it.
    let is_closed =
        |keys: &[KeyRef]| -> Vec<bool> { keys.iter().map(|k| closed.contains(k)).collect() };
    let dept_closed = is_closed(&prev_keys);
    let pairs: Vec<(usize, Option<usize>)> = (0..prev_dept.height())
        .filter(|&i| dept_closed[i])
        .map(|i| (i, new_at.get(&prev_keys[i]).copied()))
        .collect();
    let starts = frame::dates(&prev_dept, "period_start")?;
    let ends = frame::dates(&prev_dept, "period_end")?;
    for col in [
        "total_score",
        "grade",
        "rank_in_type",
        "bonus_coefficient",
        "veto",
    ] {
        for (i, published, recomputed) in differing(&prev_dept, &new_dept, col, &pairs)? {
            restated.push(Restatement {
                key: owned(&prev_keys[i]),
                start: starts[i],
                end: ends[i],
                item: col.to_string(),
                published,
                recomputed,
            });
        }
    }
    // Indicator values and points.
    let (pk, pid) = (keys(&prev_ind)?, text_or_empty(&prev_ind, "indicator_id")?);
    let (nk, nid) = (keys(&new_ind)?, text_or_empty(&new_ind, "indicator_id")?);
    let new_ind_at: PlHashMap<(KeyRef, &str), usize> = nk
        .iter()
        .zip(&nid)
        .enumerate()
        .map(|(i, (k, id))| ((*k, *id), i))
        .collect();
    let prev_ind_closed = is_closed(&pk);
    let pairs: Vec<(usize, Option<usize>)> = (0..prev_ind.height())
        .filter(|&i| prev_ind_closed[i])
        .map(|i| (i, new_ind_at.get(&(pk[i], pid[i])).copied()))
        .collect();
    let istarts = frame::dates(&prev_ind, "period_start")?;
    let iends = frame::dates(&prev_ind, "period_end")?;
    for col in ["value", "points"] {
        for (i, published, recomputed) in differing(&prev_ind, &new_ind, col, &pairs)? {
            restated.push(Restatement {
                key: owned(&pk[i]),
                start: istarts[i],
                end: iends[i],
                item: format!("{}.{col}", pid[i]),
                published,
                recomputed,
            });
        }
    }

    // Closed rows as published, the others as recomputed.
    let rows = |df: &DataFrame, closed: &[bool], keep: bool| -> Result<DataFrame> {
        let mask: BooleanChunked = closed.iter().map(|c| Some(*c == keep)).collect();
        Ok(df.filter(&mask)?)
    };
    let dept = rows(&prev_dept, &dept_closed, true)?.vstack(&rows(
        &new_dept,
        &is_closed(&new_keys),
        false,
    )?)?;
    let ind = rows(&prev_ind, &prev_ind_closed, true)?.vstack(&rows(
        &new_ind,
        &is_closed(&nk),
        false,
    )?)?;
    restated.sort_by(|a, b| (&a.key, &a.item).cmp(&(&b.key, &b.item)));
    Ok((sort_dept(dept)?, sort_ind(ind)?, frame_of(&restated)?))
}

fn sort_dept(df: DataFrame) -> Result<DataFrame> {
    Ok(df.sort(
        ["dept_id", "grain", "period_start"],
        SortMultipleOptions::default().with_maintain_order(true),
    )?)
}

fn sort_ind(df: DataFrame) -> Result<DataFrame> {
    Ok(df.sort(
        ["dept_id", "grain", "period_start", "indicator_id"],
        SortMultipleOptions::default().with_maintain_order(true),
    )?)
}

fn frame_of(rows: &[Restatement]) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", rows.iter().map(|r| Some(r.key.0.as_str())))
        .str("grain", rows.iter().map(|r| Some(r.key.1.as_str())))
        .str("period", rows.iter().map(|r| Some(r.key.2.as_str())))
        .date("period_start", rows.iter().map(|r| r.start))
        .date("period_end", rows.iter().map(|r| r.end))
        .str("item", rows.iter().map(|r| Some(r.item.as_str())))
        .str("published", rows.iter().map(|r| r.published.as_deref()))
        .str("recomputed", rows.iter().map(|r| r.recomputed.as_deref()))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_differ_exactly_when_their_text_differs() {
        // Pairs by hand: a float equal to its recomputation, one a bit
        // apart (0.1 + 0.2 is 0.30000000000000004), 0 and -0 (which print
        // differently), two NaNs (which print the same), a value gone, and
        // a row with no recomputation.
        let old = df!(
            "v" => [Some(1.5), Some(0.3), Some(0.0), Some(f64::NAN), Some(2.0), Some(4.0)],
            "g" => ["A", "B", "C", "D", "E", "F"],
        )
        .unwrap();
        let new = df!(
            "v" => [Some(1.5), Some(0.1 + 0.2), Some(-0.0), Some(f64::NAN), None, Some(4.0)],
            "g" => ["A", "B", "C", "D", "E", "X"],
        )
        .unwrap();
        let pairs: Vec<(usize, Option<usize>)> = vec![
            (0, Some(0)),
            (1, Some(1)),
            (2, Some(2)),
            (3, Some(3)),
            (4, Some(4)),
            (5, None),
        ];
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            differing(&old, &new, "v", &pairs).unwrap(),
            vec![
                (1, s("0.3"), s("0.30000000000000004")),
                (2, s("0.0"), s("-0.0")),
                (4, s("2.0"), None),
                (5, s("4.0"), None),
            ]
        );
        // Text columns are compared as they are.
        assert_eq!(
            differing(&old, &new, "g", &pairs).unwrap(),
            vec![(5, s("F"), None)]
        );
    }
}
