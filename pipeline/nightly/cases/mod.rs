//! Stage: derive, for the nightly run (compute step 3). Derives again only
//! the cases whose events may have changed since the last run, and takes
//! every other case's rows from the marts the last run published.
//!
//! A case's facts depend only on its events up to the end of as-of, on
//! the policy and on the program; its rows in the marts also on as-of
//! while it is open or awaits a response ([`cases::at_as_of`]). The last
//! run's cases are kept in `OUT/cache/cases/` (see [`CaseStore`]) with the
//! months (`process_events` month files) each case's events lie in, and
//! the facts of the cases whose rows depend on as-of. A month file is
//! *touched* when its bytes changed since the last run, or it was added or
//! removed, or (when as-of moved) it may hold events between the two
//! as-ofs. The cases derived again are:
//!
//! * those with an event in a touched month, as the files are now;
//! * those whose events lay in a touched month at the last run.
//!
//! Their events in untouched months are unchanged: they are read from the
//! lake (the months each case spans), or for cases open at the last run
//! from the events kept with them, so that a case open for years does not
//! make every month be read. The other cases whose rows depend on as-of
//! take them from their kept facts at this as-of; every other case keeps
//! its rows. When more than half the months are touched, every case is
//! derived. The result equals deriving every case from all events (the
//! nightly tests compare the two), and a store that does not match
//! (another program or policy, an unreadable or altered file) means every
//! case is derived.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::NaiveDate;
use chrono_tz::Tz;
use polars::prelude::*;
use sha2::Digest;

use super::CacheFolder;
use crate::lake::Spill;
use crate::lake::{self, OutDir, Staging};
use crate::model::cases::{self, Case};
use crate::policy::{hex, LoadedPolicy, Policy};
use crate::progress::Progress;
use crate::time::calendar::WorkCalendar;
use crate::time::local_day;

/// Changes whenever what the cases folder holds, or how cases are derived,
/// changes in a way the program version would not show.
const CASES_FORMAT: &str = "cases/3";

/// Derived cases kept for the next run in `OUT/cache/cases/`, so that it
/// derives again only the cases whose events may have changed:
///
/// * `cases.parquet`, `case_time.parquet`: the marts as published (linked);
/// * `spans.parquet`: for every case id, the first and last month
///   (`yyyymm`) of the `process_events` files its events are in;
/// * `open_cases.parquet`, `open_case_time.parquet`: the facts
///   ([`cases::cases_frame`], [`cases::case_time_frame`]) of the cases
///   whose rows depend on as-of (open, or awaiting a response that has a
///   deadline), which give their rows at a later as-of;
/// * `open_events.parquet`: every event of those cases, so that a new
///   event of one derives it again without reading the months it started
///   in;
/// * `state.json`: the end of as-of they were derived at, and the digest of
///   every `process_events` month file and of the two marts;
/// * `fingerprint`: the program and the policy (written last).
pub struct CaseStore {
    enabled: bool,
    /// Cases derived by this run, and kept from the last one.
    pub derived: usize,
    pub kept: usize,
    old: PathBuf,
    new: PathBuf,
    /// This run's staged marts folder, where the case marts are written.
    marts: PathBuf,
    fingerprint: String,
    /// `process_events` month files as this run sees them, and digests.
    months: BTreeMap<String, (PathBuf, String)>,
}

/// What the previous run derived, as kept.
struct KeptCases {
    /// The end of as-of (UTC microseconds) the cases were derived at.
    end: i64,
    /// Digests of the `process_events` month files they were derived from.
    digests: BTreeMap<String, String>,
    cases: DataFrame,
    case_time: DataFrame,
    spans: DataFrame,
    open_cases: DataFrame,
    open_case_time: DataFrame,
    open_events: DataFrame,
}

impl CaseStore {
    /// Opens the previous run's folder and stages this run's; reads every
    /// `process_events` month file once for its digest.
    pub fn open(
        out: &OutDir,
        staging: &mut Staging,
        marts: &Path,
        policy: &LoadedPolicy,
    ) -> Result<CaseStore> {
        let folder = CacheFolder::stage(out.cases_cache(), staging, CASES_FORMAT, policy)?;
        let mut months = BTreeMap::new();
        for (month, path) in lake::partition_files(out, "process_events")? {
            let digest = lake::file_checksum(&path)?;
            months.insert(month, (path, digest));
        }
        Ok(CaseStore {
            enabled: folder.enabled,
            derived: 0,
            kept: 0,
            old: folder.old,
            new: folder.new,
            marts: marts.to_path_buf(),
            fingerprint: hex(&folder.base.finalize()),
            months,
        })
    }

    /// The previous run's cases, if derived by this program under this
    /// policy and readable; `None` means every case is derived.
    fn previous(&self) -> Option<KeptCases> {
        let kept = fs::read_to_string(self.old.join("fingerprint")).ok()?;
        if !self.enabled || kept.trim() != self.fingerprint {
            return None;
        }
        let state: serde_json::Value =
            serde_json::from_slice(&fs::read(self.old.join("state.json")).ok()?).ok()?;
        // The marts are links to files users can reach: used only if they
        // are still the bytes kept.
        for name in ["cases", "case_time"] {
            let digest = lake::file_checksum(&self.old.join(format!("{name}.parquet"))).ok()?;
            if state[name].as_str()? != digest {
                return None;
            }
        }
        let read = |name: &str| lake::read_parquet(&self.old.join(format!("{name}.parquet"))).ok();
        Some(KeptCases {
            end: state["end"].as_i64()?,
            digests: state["months"]
                .as_object()?
                .iter()
                .map(|(m, d)| Some((m.clone(), d.as_str()?.to_string())))
                .collect::<Option<_>>()?,
            cases: read("cases")?,
            case_time: read("case_time")?,
            spans: read("spans")?,
            open_cases: read("open_cases")?,
            open_case_time: read("open_case_time")?,
            open_events: read("open_events")?,
        })
    }

    /// Writes one frame kept with this run's cases (`spans`, `open_*`), so that memory need not hold it; `kept` is the last
    /// run's frame, if any, whose unchanged row groups are copied.
    fn put(&self, name: &str, mut df: DataFrame, kept: Option<&DataFrame>) -> Result<()> {
        let file = format!("{name}.parquet");
        let old = self.old.join(&file);
        let previous = kept.map(|rows| lake::Previous { path: &old, rows });
        lake::write_parquet_reusing(&mut df, &self.new.join(&file), previous)?;
        Ok(())
    }

    /// Completes this run's folder once the case marts are written and
    /// the frames put: links the marts, writes the state, and last the
    /// fingerprint.
    fn seal(&self, end: i64) -> Result<()> {
        let mut state = serde_json::Map::new();
        state.insert("end".into(), end.into());
        state.insert(
            "months".into(),
            self.months
                .iter()
                .map(|(m, (_, d))| (m.clone(), serde_json::Value::from(d.as_str())))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        );
        for name in ["cases", "case_time"] {
            let (src, dst) = (
                self.marts.join(format!("{name}.parquet")),
                self.new.join(format!("{name}.parquet")),
            );
            if fs::hard_link(&src, &dst).is_err() {
                fs::copy(&src, &dst).with_context(|| {
                    format!("cannot copy {} to {}", src.display(), dst.display())
                })?;
            }
            state.insert(name.into(), lake::file_checksum(&dst)?.into());
        }
        fs::write(
            self.new.join("state.json"),
            serde_json::to_vec_pretty(&serde_json::Value::Object(state))?,
        )?;
        fs::write(
            self.new.join("fingerprint"),
            format!("{}\n", self.fingerprint),
        )?;
        Ok(())
    }
}

/// The case marts of this run, as written, and the first local day with
/// a case.
pub struct CaseMarts {
    pub cases: LazyFrame,
    pub case_time: LazyFrame,
    pub first_day: Option<NaiveDate>,
}

/// Derives the cases as of `end` (UTC microseconds): those whose events may
/// have changed since the last run, with the others' rows taken from it,
/// or all of them when the last run's cannot be used. Writes the case
/// marts with `spill` as soon as each is made, and keeps what the next run
/// needs in the store.
pub fn derive(
    store: &mut CaseStore,
    spill: &mut Spill,
    policy: &Policy,
    cal: &WorkCalendar,
    tz: Tz,
    end: i64,
    progress: &Progress,
) -> Result<CaseMarts> {
    let first_day = |cases: &DataFrame| -> Result<Option<NaiveDate>> {
        let first = cases.column("received_at")?.datetime()?.physical().min();
        Ok(first.map(|us| local_day(us, tz)))
    };
    // With most months touched, deriving everything costs no more, and
    // memory need not hold the kept rows as well.
    let kept = match store.previous() {
        Some(k) if 2 * touched_months(&store.months, &k, end).len() <= store.months.len() => {
            Some(k)
        }
        _ => None,
    };
    let Some(kept) = kept else {
        let months: Vec<&String> = store.months.keys().collect();
        let events = read_events(store, &months, end, None)?;
        let mut derived = cases::derive(&events, policy, cal, tz)?;
        (store.derived, store.kept) = (derived.cases.len(), 0);
        progress.step(&format!(
            "cases: {} from {} process events",
            derived.cases.len(),
            events.height()
        ));
        // Each frame is written and freed before the next is made.
        store.put(
            "spans",
            spans_frame(&std::mem::take(&mut derived.spans))?,
            None,
        )?;
        // One mart at a time, written as soon as made.
        let facts = cases::cases_frame(&derived.cases)?;
        let first_day = first_day(&facts)?;
        let open = open_cases(&facts)?;
        store.put("open_events", open_events(&events, &open)?, None)?;
        let cases_mart = spill("cases", cases::cases_at(facts.lazy(), end).collect()?, None)?;
        let facts_time = cases::case_time_frame(&derived.cases)?;
        drop(derived);
        drop(events);
        store.put("open_case_time", of_cases(&facts_time, &open)?, None)?;
        store.put("open_cases", open, None)?;
        let marts = CaseMarts {
            cases: cases_mart,
            case_time: spill("case_time", cases::case_time_at(facts_time, end)?, None)?,
            first_day,
        };
        store.seal(end)?;
        return Ok(marts);
    };

    let touched = touched_months(&store.months, &kept, end);
    let touched_numbers: Vec<i32> = touched.iter().filter_map(|m| month_number(m)).collect();

    // The cases to derive again: events in touched months now and events
    // in touched months at the last run.
    let fresh_months: Vec<&String> = touched
        .iter()
        .copied()
        .filter(|m| store.months.contains_key(*m))
        .collect();
    let fresh = read_events(store, &fresh_months, end, None)?;
    let spanning = touched_numbers.iter().fold(lit(false), |acc, &t| {
        acc.or(col("first").lt_eq(lit(t)).and(col("last").gt_eq(lit(t))))
    });
    let old_spans = kept.spans.clone().lazy().filter(spanning).collect()?;
    let mut again: BTreeSet<&str> = BTreeSet::new();
    again.extend(fresh.column("case_id")?.str()?.iter().flatten());
    again.extend(old_spans.column("case_id")?.str()?.iter().flatten());
    let open_ids: BTreeSet<&str> = kept
        .open_events
        .column("case_id")?
        .str()?
        .iter()
        .flatten()
        .collect();
    let again_ids: Series = again.iter().copied().collect();

    // Their events in untouched months: kept with the open cases, read
    // from the lake for the others (the months each one spans).
    let untouched = col("month")
        .is_in(
            lit(Series::new("t".into(), &touched_numbers)).implode(false),
            false,
        )
        .not();
    let cached = kept
        .open_events
        .clone()
        .lazy()
        .filter(is_in_ids(&again_ids).and(untouched))
        .collect()?;
    let to_read: Series = again
        .iter()
        .copied()
        .filter(|id| !open_ids.contains(id))
        .collect();
    let spans_to_read = kept
        .spans
        .clone()
        .lazy()
        .filter(is_in_ids(&to_read))
        .collect()?;
    let mut read_numbers: BTreeSet<i32> = BTreeSet::new();
    let (firsts, lasts) = (
        spans_to_read.column("first")?.i32()?,
        spans_to_read.column("last")?.i32()?,
    );
    let month_numbers: BTreeMap<i32, &String> = store
        .months
        .keys()
        .filter_map(|m| Some((month_number(m)?, m)))
        .collect();
    for (first, last) in firsts.iter().zip(lasts.iter()) {
        if let (Some(first), Some(last)) = (first, last) {
            read_numbers.extend(month_numbers.range(first..=last).map(|(n, _)| *n));
        }
    }
    let read_months: Vec<&String> = read_numbers
        .iter()
        .filter(|n| !touched_numbers.contains(n))
        .map(|n| month_numbers[n])
        .collect();
    let read = read_events(store, &read_months, end, Some(&to_read))?;
    let events = fresh.vstack(&cached)?.vstack(&read)?;
    let derived = cases::derive(&events, policy, cal, tz)?;

    // The facts to put at this as-of: those derived, and those kept of the
    // other cases whose rows depend on as-of; in case id order.
    let still_open = kept
        .open_cases
        .clone()
        .lazy()
        .filter(is_in_ids(&again_ids).not())
        .collect()?;
    let still_open_time = of_cases(&kept.open_case_time, &still_open)?;
    let by_case = |df: DataFrame| -> Result<DataFrame> {
        Ok(df.sort(
            ["case_id"],
            SortMultipleOptions::default().with_maintain_order(true),
        )?)
    };
    let facts = by_case(cases::cases_frame(&derived.cases)?.vstack(&still_open)?)?;
    let facts_time = by_case(cases::case_time_frame(&derived.cases)?.vstack(&still_open_time)?)?;
    let open = open_cases(&facts)?;
    let open_time = of_cases(&facts_time, &open)?;
    let mut replaced = again.clone();
    replaced.extend(still_open.column("case_id")?.str()?.iter().flatten());
    let new_cases = cases::cases_at(facts.lazy(), end).collect()?;
    let new_case_time = cases::case_time_at(facts_time, end)?;

    // This run's rows: the others' kept, these made now, in case id order.
    let cases_frame = merge_in_order(&kept.cases, &replaced, &new_cases, &["case_id"])?;
    (store.derived, store.kept) = (
        derived.cases.len(),
        cases_frame.height() - derived.cases.len(),
    );
    progress.step(&match derived.cases.len() {
        0 => format!(
            "cases: {}, all kept from the last run (no events changed; {} open put at this as-of)",
            cases_frame.height(),
            still_open.height(),
        ),
        n => format!(
            "cases: {} ({n} derived again from {} process events, as {} month(s) changed since the last run; {} open put at this as-of; the others kept)",
            cases_frame.height(),
            events.height(),
            touched.len(),
            still_open.height(),
        ),
    });
    let first_day = first_day(&cases_frame)?;
    let case_time = merge_in_order(&kept.case_time, &replaced, &new_case_time, &["case_id"])?;
    let merge =
        |old: &DataFrame, new: DataFrame, by: &[&str]| merge_in_order(old, &again, &new, by);
    store.put(
        "spans",
        merge(&kept.spans, spans_frame(&derived.spans)?, &["case_id"])?,
        Some(&kept.spans),
    )?;
    store.put(
        "open_events",
        merge(
            &kept.open_events,
            open_events(&events, &open)?,
            &["case_id", "month"],
        )?,
        Some(&kept.open_events),
    )?;
    store.put("open_cases", open, Some(&kept.open_cases))?;
    store.put("open_case_time", open_time, Some(&kept.open_case_time))?;
    // Most rows are the kept ones, where they were: the marts' row groups
    // that hold no changed row are copied from the last run's files.
    let (old_cases, old_case_time) = (
        store.old.join("cases.parquet"),
        store.old.join("case_time.parquet"),
    );
    let previous = |path, rows| Some(lake::Previous { path, rows });
    let marts = CaseMarts {
        cases: spill("cases", cases_frame, previous(&old_cases, &kept.cases))?,
        case_time: spill(
            "case_time",
            case_time,
            previous(&old_case_time, &kept.case_time),
        )?,
        first_day,
    };
    store.seal(end)?;
    Ok(marts)
}

/// The rows of `old` but those of the cases in `again`, and the rows of
/// `new`, in the order of the key columns `by` (`case_id`, then an `i32`
/// column), as a stable sort of the two one after the other gives: one
/// walk over both and one gather, not a sort of millions of text keys.
/// Both must be in that order already: the kept frames were written in
/// it by this program (the store's fingerprint covers the program), and
/// derivation makes its rows in it.
fn merge_in_order(
    old: &DataFrame,
    again: &BTreeSet<&str>,
    new: &DataFrame,
    by: &[&str],
) -> Result<DataFrame> {
    type Key<'a> = (Option<&'a str>, Option<i32>);
    fn keys<'a>(df: &'a DataFrame, by: &[&str]) -> Result<Vec<Key<'a>>> {
        let ids = df.column(by[0])?.str()?.iter();
        Ok(match by.get(1) {
            Some(c) => ids.zip(df.column(c)?.i32()?.iter()).collect(),
            None => ids.map(|id| (id, None)).collect(),
        })
    }
    anyhow::ensure!(by.len() <= 2, "cases are merged by at most two keys");
    anyhow::ensure!(
        old.schema() == new.schema(),
        "the kept case rows have other columns than the rows derived now"
    );
    let (old_keys, new_keys) = (keys(old, by)?, keys(new, by)?);
    let in_order = |k: &[Key]| k.windows(2).all(|w| w[0] <= w[1]);
    anyhow::ensure!(
        in_order(&old_keys) && in_order(&new_keys),
        "the kept case rows or the rows derived now are not in case order"
    );
    // `again` is in the same order (text by its bytes): one walk beside
    // the kept rows finds those derived again.
    let mut again = again.iter().peekable();
    let kept = old_keys.iter().enumerate().filter(|(_, (id, _))| {
        let Some(id) = id else { return true };
        while again.next_if(|a| **a < *id).is_some() {}
        again.peek().is_none_or(|a| **a != *id)
    });
    // Row numbers in `old` then `new` stacked; a new row goes before a
    // kept row only when its key is smaller.
    let n_old = old.height() as IdxSize;
    let mut order: Vec<IdxSize> = Vec::with_capacity(old.height() + new.height());
    let mut fresh = new_keys.iter().enumerate().peekable();
    for (i, key) in kept {
        while let Some((j, _)) = fresh.next_if(|(_, k)| *k < key) {
            order.push(n_old + j as IdxSize);
        }
        order.push(i as IdxSize);
    }
    order.extend(fresh.map(|(j, _)| n_old + j as IdxSize));
    let mut df = old
        .vstack(new)?
        .take(&IdxCa::from_vec("row".into(), order))?;
    df.rechunk_mut_par();
    Ok(df)
}

/// Writes the case marts of `rows` at the end of as-of `end`, every case
/// derived now from `events_read` events, one mart at a time.
pub fn write_derived(
    rows: &[Case],
    events_read: usize,
    spill: &mut Spill,
    tz: Tz,
    end: i64,
    progress: &Progress,
) -> Result<CaseMarts> {
    progress.step(&format!(
        "cases: {} from {events_read} process events",
        rows.len()
    ));
    let first_day = rows
        .iter()
        .map(|c| c.received_at)
        .min()
        .map(|us| local_day(us, tz));
    let cases = spill(
        "cases",
        cases::cases_at(cases::cases_frame(rows)?.lazy(), end).collect()?,
        None,
    )?;
    let case_time = cases::case_time_at(cases::case_time_frame(rows)?, end)?;
    Ok(CaseMarts {
        cases,
        case_time: spill("case_time", case_time, None)?,
        first_day,
    })
}

/// The facts of the cases whose rows depend on as-of.
fn open_cases(facts: &DataFrame) -> Result<DataFrame> {
    Ok(facts
        .clone()
        .lazy()
        .filter(cases::depends_on_as_of())
        .collect()?)
}

/// The rows of `df` of the cases in `cases`.
fn of_cases(df: &DataFrame, cases: &DataFrame) -> Result<DataFrame> {
    let ids = cases.column("case_id")?.as_materialized_series().clone();
    Ok(df.clone().lazy().filter(is_in_ids(&ids)).collect()?)
}

/// The months touched since the last run: a month file whose bytes
/// changed, or that was added or removed, and (as-of moved) every month
/// that may hold events between the two as-ofs.
fn touched_months<'a>(
    months: &'a BTreeMap<String, (PathBuf, String)>,
    kept: &'a KeptCases,
    end: i64,
) -> BTreeSet<&'a String> {
    let (lo, hi) = (kept.end.min(end), kept.end.max(end));
    months
        .keys()
        .chain(kept.digests.keys())
        .filter(|m| {
            kept.digests.get(*m) != months.get(*m).map(|(_, d)| d)
                || (kept.end != end && month_may_hold(m, lo, hi))
        })
        .collect()
}

/// `case_id` is one of `ids`.
fn is_in_ids(ids: &Series) -> Expr {
    col("case_id")
        .is_in(lit(ids.clone()).implode(false), false)
        .fill_null(lit(false))
}

/// `yyyymm` of a month label `YYYY-MM`.
fn month_number(label: &str) -> Option<i32> {
    let (y, m) = label.split_once('-')?;
    Some(y.parse::<i32>().ok()? * 100 + m.parse::<i32>().ok()?)
}

/// Whether the local month `label` may hold instants in `lo..=hi` (UTC
/// microseconds): its bounds widened by a day either side, more than any
/// time zone's offset. A label that is not a month may hold anything.
fn month_may_hold(label: &str, lo: i64, hi: i64) -> bool {
    let Some(first) =
        month_number(label).and_then(|n| NaiveDate::from_ymd_opt(n / 100, (n % 100) as u32, 1))
    else {
        return true;
    };
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .expect("a month after a valid one");
    let us = |d: NaiveDate| {
        d.and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_micros()
    };
    const DAY: i64 = 86_400_000_000;
    us(first) - DAY <= hi && lo <= us(next) + DAY
}

/// The events up to `end` (the columns [`cases::derive`] reads, and
/// `month`: `yyyymm` of the file) of the month files `months`, in month
/// and file order; only the events of `ids` when given.
fn read_events(
    store: &CaseStore,
    months: &[&String],
    end: i64,
    ids: Option<&Series>,
) -> Result<DataFrame> {
    let columns: Vec<Expr> = cases::EVENT_COLUMNS.iter().map(|c| col(*c)).collect();
    let read = |lf: LazyFrame, n: i32| -> Result<DataFrame> {
        let mut lf = lf.filter(col("at").lt_eq(crate::frame::instant(end)));
        if let Some(ids) = ids {
            lf = lf.filter(is_in_ids(ids));
        }
        let mut df = lf
            .select(columns.clone())
            .collect()
            .map_err(|e| anyhow::anyhow!("cannot read the lake's process events: {e}"))?;
        let month = Column::new_scalar("month".into(), Scalar::from(n), df.height());
        df.with_column(month)?;
        Ok(df)
    };
    let spec = crate::ingest::tables::ALL
        .iter()
        .find(|s| s.name == "process_events")
        .expect("process_events is a lake table");
    // Month by month, so that memory holds the events once.
    let mut events = read(crate::ingest::empty_frame(spec)?.lazy(), 0)?;
    for m in months {
        let n = month_number(m).with_context(|| format!("a lake month named {m}"))?;
        let (path, _) = &store.months[*m];
        events.vstack_mut_owned(read(lake::scan_file(path)?, n)?)?;
    }
    Ok(events)
}

/// The events of the cases of `open` (facts), by case and month.
fn open_events(events: &DataFrame, open: &DataFrame) -> Result<DataFrame> {
    let open: PlHashSet<&str> = open.column("case_id")?.str()?.iter().flatten().collect();
    // A mask over the events in place: a lazy filter would copy them first.
    let mask: BooleanChunked = events
        .column("case_id")?
        .str()?
        .iter()
        .map(|id| Some(id.is_some_and(|id| open.contains(id))))
        .collect();
    Ok(events.filter(&mask)?.sort(
        ["case_id", "month"],
        SortMultipleOptions::default().with_maintain_order(true),
    )?)
}

fn spans_frame(spans: &[(&str, i32, i32)]) -> Result<DataFrame> {
    Ok(DataFrame::new(
        spans.len(),
        vec![
            Column::new(
                "case_id".into(),
                spans.iter().map(|s| s.0).collect::<Vec<_>>(),
            ),
            Column::new(
                "first".into(),
                spans.iter().map(|s| s.1).collect::<Vec<_>>(),
            ),
            Column::new("last".into(), spans.iter().map(|s| s.2).collect::<Vec<_>>()),
        ],
    )?)
}

#[cfg(test)]
mod tests;
