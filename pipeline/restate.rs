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

/// A column as text, for comparison (numbers as polars prints them).
fn as_text(df: &DataFrame, col: &str) -> Result<StringChunked> {
    Ok(df.column(col)?.cast(&DataType::String)?.str()?.clone())
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
    let starts = frame::dates(&prev_dept, "period_start")?;
    let ends = frame::dates(&prev_dept, "period_end")?;
    for col in [
        "total_score",
        "grade",
        "rank_in_type",
        "bonus_coefficient",
        "veto",
    ] {
        let (old_text, new_text) = (as_text(&prev_dept, col)?, as_text(&new_dept, col)?);
        let old: Vec<Option<&str>> = old_text.iter().collect();
        let new: Vec<Option<&str>> = new_text.iter().collect();
        for (i, k) in prev_keys.iter().enumerate() {
            if !closed.contains(k) {
                continue;
            }
            let recomputed = new_at.get(k).and_then(|&j| new[j]);
            if old[i] != recomputed {
                restated.push(Restatement {
                    key: owned(k),
                    start: starts[i],
                    end: ends[i],
                    item: col.to_string(),
                    published: old[i].map(String::from),
                    recomputed: recomputed.map(String::from),
                });
            }
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
    let istarts = frame::dates(&prev_ind, "period_start")?;
    let iends = frame::dates(&prev_ind, "period_end")?;
    for col in ["value", "points"] {
        let (old_text, new_text) = (as_text(&prev_ind, col)?, as_text(&new_ind, col)?);
        let old: Vec<Option<&str>> = old_text.iter().collect();
        let new: Vec<Option<&str>> = new_text.iter().collect();
        for i in 0..prev_ind.height() {
            if !closed.contains(&pk[i]) {
                continue;
            }
            let recomputed = new_ind_at.get(&(pk[i], pid[i])).and_then(|&j| new[j]);
            if old[i] != recomputed {
                restated.push(Restatement {
                    key: owned(&pk[i]),
                    start: istarts[i],
                    end: iends[i],
                    item: format!("{}.{col}", pid[i]),
                    published: old[i].map(String::from),
                    recomputed: recomputed.map(String::from),
                });
            }
        }
    }

    let keep_prev = |df: &DataFrame, keys: &[KeyRef]| -> Result<DataFrame> {
        let mask: BooleanChunked = keys.iter().map(|k| Some(closed.contains(k))).collect();
        Ok(df.filter(&mask)?)
    };
    let drop_new = |df: &DataFrame, keys: &[KeyRef]| -> Result<DataFrame> {
        let mask: BooleanChunked = keys.iter().map(|k| Some(!closed.contains(k))).collect();
        Ok(df.filter(&mask)?)
    };
    let dept = keep_prev(&prev_dept, &prev_keys)?.vstack(&drop_new(&new_dept, &new_keys)?)?;
    let ind = keep_prev(&prev_ind, &pk)?.vstack(&drop_new(&new_ind, &nk)?)?;
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
