//! The rater checks, reliability and satisfaction, one calendar year of
//! ratings at a time, reusing what complete years and quarters gave in the
//! last run when their inputs are unchanged.

use super::*;

/// What the passes over the ratings give: the rater model's estimates and
/// flags (as frames, which hold them far more compactly than the rows), and
/// the satisfaction and reliability rows.
pub(super) struct Rated {
    pub(super) effects: DataFrame,
    pub(super) flags: DataFrame,
    pub(super) satisfaction: Vec<satisfaction::Row>,
    pub(super) reliability: Vec<raters::Reliability>,
    /// First local day with a scored response.
    pub(super) first_day: Option<NaiveDate>,
}

/// The lake's ratings up to the end of as-of (`end`, UTC microseconds):
/// all of them, or the files of the months `first..=last` (not yet cut).
pub(super) struct Ratings<'a> {
    pub(super) all: LazyFrame,
    pub(super) by_months: &'a RatingMonths<'a>,
    pub(super) end: i64,
}

/// The lake's ratings files: their months (`YYYY-MM`, in order) and a scan
/// of a range of them.
pub struct RatingMonths<'a> {
    pub months: Vec<String>,
    pub scan: &'a MonthScan<'a>,
}

impl RatingMonths<'_> {
    /// The first and the last rating up to `end` (UTC microseconds), read
    /// from the files at either end instead of all of them. A file holds
    /// the ratings of its month in the time zone they were loaded in,
    /// which need not be the policy's now: the file next to it may hold
    /// one a few hours earlier (or later). So each end reads the first
    /// file with a rating up to `end`, and the one next to it.
    pub(super) fn bounds(&self, end: i64) -> Result<Option<(i64, i64)>> {
        let bound = |month: &String, first: bool| -> Result<Option<i64>> {
            let Some(lf) = (self.scan)(month, month)? else {
                return Ok(None);
            };
            let at = col("rated_at");
            let df = lf
                .filter(at.clone().lt_eq(instant(end)))
                .select([if first { at.min() } else { at.max() }])
                .collect()
                .map_err(|e| anyhow::anyhow!("cannot read the lake's ratings of {month}: {e}"))?;
            Ok(frame::micros(&df, "rated_at")?[0])
        };
        let edge = |mut months: Box<dyn Iterator<Item = &String> + '_>, first: bool| {
            let pick = |a: i64, b: i64| if first { a.min(b) } else { a.max(b) };
            while let Some(month) = months.next() {
                if let Some(at) = bound(month, first)? {
                    let next = match months.next() {
                        Some(m) => bound(m, first)?,
                        None => None,
                    };
                    return Ok(Some(next.map_or(at, |n| pick(at, n))));
                }
            }
            anyhow::Ok(None)
        };
        let first = edge(Box::new(self.months.iter()), true)?;
        let last = edge(Box::new(self.months.iter().rev()), false)?;
        Ok(first.zip(last))
    }
}

/// How many days before a year its first ISO week can start.
pub(super) const WEEK_REACH: i64 = 6;

/// The item ratings of the days just before a year, with what the rater
/// model made of them in that year's pass: the next year's first ISO week
/// reaches back into them.
#[derive(Default)]
pub(super) struct Carry {
    pub(super) items: Vec<CarriedItem>,
    pub(super) excluded: Vec<(String, String)>,
}

/// The rows that `keep` keeps, copied.
pub(super) fn rows_of<T: Clone>(rows: &[T], keep: impl Fn(&T) -> bool) -> Vec<T> {
    rows.iter().filter(|r| keep(r)).cloned().collect()
}

/// The rater model, reliability and satisfaction, one calendar year of
/// ratings at a time, so that memory holds one year's item ratings.
///
/// Every estimation period (month, quarter or year) lies within a year, and
/// each year's pass reports the reporting periods that end in that year. A
/// week that starts in December and ends in January belongs to January's
/// year, which therefore also reads the last six days of December, with the
/// rater model's results for them carried over from December's pass. A
/// weekly estimation grain does not nest in years: then all ratings are one
/// pass. Item ratings keep the lake's order within every pass, so every sum
/// adds up in the same order as one pass over everything would.
///
/// With a `store`, the results of each year complete at as-of are kept for
/// the next run, and a year whose inputs are unchanged since the last run
/// is read from it instead of passing over its ratings; in the year not
/// complete, the same holds for the rater model of each complete
/// estimation period (see `nightly::raters`).
pub(super) fn rate(
    ratings: &Ratings,
    removed: &PlHashSet<String>,
    dept_types: &HashMap<String, String>,
    mut store: Option<&mut RaterStore>,
    policy: &LoadedPolicy,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<Rated> {
    let (p, tz) = (&policy.policy, policy.tz);
    let mut rated = Rated {
        effects: raters::effects_frame(&[], as_of)?,
        flags: raters::flags_frame(&[], as_of)?,
        satisfaction: Vec::new(),
        reliability: Vec::new(),
        first_day: None,
    };
    let Some((first, last)) = ratings.by_months.bounds(ratings.end)? else {
        return Ok(rated);
    };
    let (by_months, ratings_end) = (ratings.by_months.scan, ratings.end);
    let ratings = &ratings.all;
    let years: Vec<Option<Period>> = if raters::estimation_grain(&p.raters) == Grain::Week {
        vec![None]
    } else {
        Period::range(Grain::Year, local_day(first, tz), local_day(last, tz))
            .into_iter()
            .map(Some)
            .collect()
    };
    let mut carry = Carry::default();
    let (mut n_items, mut n_effects, mut n_flags) = (0, 0, 0);
    for year in years {
        let (start, end) = year.map_or((NaiveDate::MIN, NaiveDate::MAX), |y| (y.start, y.end));
        // The year's ratings, from the days its first week reaches back to.
        let (scan, kept) = match year {
            Some(y) => {
                let pass = Pass::over(y, WEEK_REACH, tz, ratings_end);
                let scan = pass.scan(by_months)?;
                // A complete year's results are kept for the next run.
                let kept = match store.as_deref_mut() {
                    Some(store) if y.end <= as_of && scan.is_some() => Some(store.fingerprint(
                        y,
                        (&pass.months.0, &pass.months.1),
                        pass.range,
                        (&carry.items, &carry.excluded),
                    )?),
                    _ => None,
                };
                (scan, kept.map(|fingerprint| (y, fingerprint)))
            }
            None => (Some(ratings.clone()), None),
        };
        let Some(scan) = scan else { continue };
        let label = year.map_or("all".to_string(), |y| y.label());

        let reused = match (&kept, store.as_deref_mut()) {
            (Some((y, fingerprint)), Some(store)) => {
                store.reuse(*y, fingerprint, || rating_ids(Some(scan.clone())))?
            }
            _ => None,
        };
        let results = match reused {
            Some(r) => {
                progress.step(&format!(
                    "rater model, {label}: {} item ratings, {} rater estimates, {} flags (kept from the last run: its inputs are unchanged)",
                    r.n_items,
                    r.effects.height(),
                    r.flags.height()
                ));
                r
            }
            None => {
                // In a year not complete, the rater model of complete
                // estimation periods is reused or kept the same way.
                let (reused, to_keep) = match (year, store.as_deref_mut()) {
                    (Some(y), Some(store)) if kept.is_none() => complete_periods(
                        store,
                        y,
                        raters::estimation_grain(&p.raters),
                        local_day(first, tz)..=as_of,
                        by_months,
                        &carry,
                        tz,
                    )?,
                    _ => (Vec::new(), Vec::new()),
                };
                // After kept periods, the pass reads only the days after
                // them (and those the first week reaches back to).
                let scan = match reused.last() {
                    Some((q, _)) => Pass::days(
                        (q.end + Duration::days(1), end),
                        WEEK_REACH,
                        tz,
                        ratings_end,
                    )
                    .scan(by_months)?,
                    None => Some(scan.clone()),
                };
                let keep_periods: Vec<Period> = to_keep.iter().map(|(q, _)| *q).collect();
                let kept_from_last_run = match reused.as_slice() {
                    [] => String::new(),
                    [q] => format!(
                        " ({} kept from the last run; only the ratings after it read)",
                        q.0.label()
                    ),
                    [q, .., r] => format!(
                        " ({} to {} kept from the last run; only the ratings after them read)",
                        q.0.label(),
                        r.0.label()
                    ),
                };
                let (r, pieces) = rate_year(
                    scan.as_ref(),
                    (start, end),
                    &carry,
                    reused,
                    &keep_periods,
                    removed,
                    dept_types,
                    policy,
                    as_of,
                )?;
                if let Some(store) = store.as_deref_mut() {
                    for ((q, fingerprint), piece) in to_keep.iter().zip(&pieces) {
                        store.keep_period(*q, fingerprint, piece)?;
                    }
                }
                progress.step(&format!(
                    "rater model, {label}: {} item ratings, {} rater estimates, {} flags{kept_from_last_run}",
                    r.n_items,
                    r.effects.height(),
                    r.flags.height()
                ));
                if let (Some((y, fingerprint)), Some(store)) = (&kept, store.as_deref_mut()) {
                    store.keep(*y, fingerprint, &r)?;
                }
                r
            }
        };
        if year.is_some() {
            carry = Carry {
                items: results
                    .carry_items
                    .into_iter()
                    .map(|(id, item, adjusted)| (Arc::from(id), Arc::from(item), adjusted))
                    .collect(),
                excluded: results.carry_excluded,
            };
        }
        n_items += results.n_items;
        n_effects += results.effects.height();
        n_flags += results.flags.height();
        rated.reliability.extend(results.reliability);
        rated.satisfaction.extend(results.satisfaction);
        rated.first_day = rated.first_day.into_iter().chain(results.first_day).min();
        // Years come in order and each year's estimates and flags are in
        // (period, ...) order: the concatenation is in the order `check`
        // gives.
        rated.effects.vstack_mut_owned(results.effects)?;
        rated.flags.vstack_mut_owned(results.flags)?;
        crate::runtime::release_freed_memory();
    }
    rated.effects.rechunk_mut();
    rated.flags.rechunk_mut();
    // Each year's rows are in (department, period) order; the rows of one
    // department and period all come from one year.
    rated
        .satisfaction
        .sort_by(|a, b| (&a.dept_id, a.period).cmp(&(&b.dept_id, b.period)));
    rated
        .reliability
        .sort_by(|a, b| (&a.dept_id, a.period).cmp(&(&b.dept_id, b.period)));
    progress.step(&format!(
        "rater model: {n_items} item ratings, {n_effects} rater estimates, {n_flags} flags"
    ));
    Ok(rated)
}

/// What a pass over a period reads: the period's month files and the month
/// either side (a month file holds the month's rows however the time zone
/// places them), cut to the rows in `range` (UTC microseconds, `(from,
/// to]`): the period's days, and `reach` days before it.
pub(super) struct Pass {
    pub(super) months: (String, String),
    pub(super) range: (i64, i64),
}

impl Pass {
    pub(super) fn over(period: Period, reach: i64, tz: Tz, end: i64) -> Pass {
        Pass::days((period.start, period.end), reach, tz, end)
    }

    /// A pass over the days `first..=last`.
    pub(super) fn days(
        (first, last): (NaiveDate, NaiveDate),
        reach: i64,
        tz: Tz,
        end: i64,
    ) -> Pass {
        let month = |d: NaiveDate| d.format("%Y-%m").to_string();
        Pass {
            months: (
                month(first - Duration::days(1)),
                month(last + Duration::days(1)),
            ),
            range: (
                end_of_day(first - Duration::days(reach + 1), tz),
                end_of_day(last, tz).min(end),
            ),
        }
    }

    pub(super) fn scan(&self, by_months: &MonthScan) -> Result<Option<LazyFrame>> {
        let (from, to) = self.range;
        Ok(by_months(&self.months.0, &self.months.1)?.map(|lf| {
            lf.filter(
                col("rated_at")
                    .gt(instant(from))
                    .and(col("rated_at").lt_eq(instant(to))),
            )
        }))
    }
}

/// The rating ids a scan holds (none without a scan).
pub(super) fn rating_ids(scan: Option<LazyFrame>) -> Result<Vec<String>> {
    let Some(scan) = scan else {
        return Ok(Vec::new());
    };
    let df = collect_columns(&scan, &["rating_id"], "ratings")?;
    Ok(frame::strs(&df, "rating_id")?
        .into_iter()
        .flatten()
        .collect())
}

/// The complete estimation periods (month or quarter) of `year` with
/// ratings (`days`: from the first rating to as-of): the rater model of
/// the longest run of them from the year's start that the last run kept
/// with the same fingerprint, and the others with their fingerprints, to
/// be fitted and kept.
///
/// A period's results include its weeks, which reach back into the period
/// before (for the year's first period, into the days `carry` hands over
/// from the year before): its fingerprint covers those days too.
#[allow(clippy::type_complexity)]
pub(super) fn complete_periods(
    store: &mut RaterStore,
    year: Period,
    grain: Grain,
    days: std::ops::RangeInclusive<NaiveDate>,
    by_months: &MonthScan,
    carry: &Carry,
    tz: Tz,
) -> Result<(Vec<(Period, PeriodResults)>, Vec<(Period, String)>)> {
    let (mut reused, mut to_keep) = (Vec::new(), Vec::new());
    if !matches!(grain, Grain::Month | Grain::Quarter) {
        return Ok((reused, to_keep));
    }
    for q in Period::range(grain, year.start, year.end)
        .into_iter()
        .filter(|q| q.end <= *days.end() && q.end >= *days.start())
    {
        let pass = Pass::over(q, WEEK_REACH, tz, i64::MAX);
        let months = (pass.months.0.as_str(), pass.months.1.as_str());
        let carried: (&[CarriedItem], &[(String, String)]) = if q.start == year.start {
            (&carry.items, &carry.excluded)
        } else {
            (&[], &[])
        };
        let fingerprint = store.fingerprint(q, months, pass.range, carried)?;
        if to_keep.is_empty() {
            let own = Pass::over(q, 0, tz, i64::MAX);
            if let Some(r) =
                store.reuse_period(q, &fingerprint, || rating_ids(own.scan(by_months)?))?
            {
                reused.push((q, r));
                continue;
            }
        }
        to_keep.push((q, fingerprint));
    }
    Ok((reused, to_keep))
}

/// One pass of the rater model, reliability and satisfaction over `scan`:
/// the ratings of the days `start..=end` and of the days before `start`
/// that the first week reaches back to, which the previous pass checked
/// and whose results it handed over in `carry`. The first estimation
/// periods of the year may come from the last run (`reused`, in order):
/// then `scan` holds only the days after them (and those the first week
/// after them reaches back to), the rows of the periods that end in them
/// are theirs, and the quarter and year still open after them continue
/// from the sums they kept. The complete periods `keep` are returned apart
/// as well, in that order, to be kept for the next run (fewer if the
/// ratings do not come in time order across one's end).
#[allow(clippy::too_many_arguments)]
pub(super) fn rate_year(
    scan: Option<&LazyFrame>,
    (start, end): (NaiveDate, NaiveDate),
    carry: &Carry,
    reused: Vec<(Period, PeriodResults)>,
    keep: &[Period],
    removed: &PlHashSet<String>,
    dept_types: &HashMap<String, String>,
    policy: &LoadedPolicy,
    as_of: NaiveDate,
) -> Result<(YearResults, Vec<PeriodResults>)> {
    let (p, tz) = (&policy.policy, policy.tz);
    let items = match scan {
        Some(scan) => {
            let df = collect_columns(scan, &raters::RATING_COLUMNS, "ratings")?;
            raters::items_from_frame(&df, removed, tz)?
        }
        None => Vec::new(),
    };
    let fit_from = reused
        .last()
        .map_or(start, |(q, _)| q.end + Duration::days(1));
    // Responses are numbered on a second core while the rater model is
    // fitted (mostly on one).
    let (mut outcome, numbers) = std::thread::scope(|s| {
        let numbers = s.spawn(|| raters::ResponseNumbers::of(&items));
        let outcome = raters::check_from(&items, &p.raters, fit_from);
        let numbers = numbers
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (outcome, numbers)
    });
    let (mut effects, mut flags) = (
        raters::effects_frame(&[], as_of)?,
        raters::flags_frame(&[], as_of)?,
    );
    // What the kept periods give: their rows, and from the last of them
    // the quarter and year still open and its last days' adjusted scores.
    let (mut satisfaction, mut reliability) = (Vec::new(), Vec::new());
    let (mut first_day, mut n_items) = (None, 0);
    let mut open = (Vec::new(), Vec::new());
    let mut handed: Option<Vec<CarriedItem>> = None;
    let n_reused = reused.len();
    for (k, (_, r)) in reused.into_iter().enumerate() {
        if k + 1 == n_reused {
            open = r.open.take()?;
            handed = Some(
                r.carry_items
                    .into_iter()
                    .map(|(id, item, adjusted)| (Arc::from(id), Arc::from(item), adjusted))
                    .collect(),
            );
        }
        outcome.excluded.extend(r.excluded);
        effects.vstack_mut_owned(r.effects)?;
        flags.vstack_mut_owned(r.flags)?;
        satisfaction.extend(r.satisfaction);
        reliability.extend(r.reliability);
        first_day = first_day.into_iter().chain(r.first_day).min();
        n_items += r.n_items;
    }
    // The days before `fit_from` were checked in the pass before: the one
    // that kept the last reused period (whose exclusions are among those
    // reused), or the previous year's.
    let handed = match handed {
        Some(handed) => handed,
        None => {
            outcome.excluded.extend(carry.excluded.iter().cloned());
            carry.items.clone()
        }
    };
    let mut handed = handed.iter();
    for (i, r) in items.iter().enumerate().filter(|(_, r)| r.day < fit_from) {
        let (_, _, adjusted) = handed
            .next()
            .filter(|(id, item, _)| *id == r.rating_id && *item == r.item)
            .context("the ratings read for one period differ from those read for the period before: was the lake changed during the run?")?;
        outcome.adjusted[i] = *adjusted;
    }
    let counted: Vec<bool> = items
        .iter()
        .map(|r| !outcome.excluded.contains_key(&*r.rating_id))
        .collect();
    let window = Window {
        from: fit_from,
        to: end,
    };
    let stops: Vec<NaiveDate> = keep.iter().map(|q| q.end).collect();
    // Reliability and satisfaction read the same ratings and outcome: one
    // on each of two threads.
    let ((rel, rel_open), (sat, sat_open), pass_first_day) = std::thread::scope(|s| {
        let reliability = s.spawn(|| {
            raters::reliability_from(&items, &counted, &numbers, window, &open.1, &stops)
        });
        let responses = satisfaction::responses(&items, &numbers, &outcome);
        let first_day = responses.iter().map(|r| r.day).min();
        let satisfaction =
            satisfaction::compute_from(&responses, dept_types, p, window, &open.0, &stops);
        drop(responses);
        let reliability = reliability
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (reliability, satisfaction, first_day)
    });
    drop(numbers);
    // The item ratings of the days up to `last` that the next period's
    // first week reaches back to, and what they hand over.
    let last_days = |last: NaiveDate| -> Vec<usize> {
        let from = last + Duration::days(1) - Duration::days(WEEK_REACH);
        (0..items.len())
            .filter(|&i| from <= items[i].day && items[i].day <= last)
            .collect()
    };
    let handed_over = |rows: &[usize]| -> Vec<(String, String, Option<f64>)> {
        rows.iter()
            .map(|&i| {
                let r = &items[i];
                (
                    r.rating_id.to_string(),
                    r.item.to_string(),
                    outcome.adjusted[i],
                )
            })
            .collect()
    };
    // The complete periods fitted now, for the next run: up to the first
    // whose end the ratings do not come in time order across.
    let mut pieces = Vec::new();
    for (k, q) in keep.iter().enumerate() {
        let (Some(sat_open), rel_open) = (sat_open[k].clone(), rel_open[k].clone()) else {
            break;
        };
        let ends_in_q = |period: Period| q.start <= period.end && period.end <= q.end;
        let rows: Vec<usize> = (0..items.len())
            .filter(|&i| q.start <= items[i].day && items[i].day <= q.end)
            .collect();
        let mut seen: PlHashSet<&str> = PlHashSet::default();
        let excluded = rows
            .iter()
            .map(|&i| &*items[i].rating_id)
            .filter(|id| seen.insert(id))
            .filter_map(|id| Some((id.to_string(), outcome.excluded.get(id)?.clone())))
            .collect();
        pieces.push(PeriodResults {
            effects: raters::effects_frame(&rows_of(&outcome.effects, |e| e.period == *q), as_of)?,
            flags: raters::flags_frame(&rows_of(&outcome.flags, |f| f.period == *q), as_of)?,
            excluded,
            carry_items: handed_over(&last_days(q.end)),
            satisfaction: rows_of(&sat, |r| ends_in_q(r.period)),
            reliability: rows_of(&rel, |r| ends_in_q(r.period)),
            open: OpenSums::Held(sat_open, rel_open),
            // The pass's first day is the first up to the period's end if
            // it lies there at all.
            first_day: first_day
                .into_iter()
                .chain(pass_first_day.filter(|&d| d <= q.end))
                .min(),
            n_items: rows.len(),
        });
    }
    satisfaction.extend(sat);
    reliability.extend(rel);
    first_day = first_day.into_iter().chain(pass_first_day).min();
    n_items += items.iter().filter(|r| r.day >= fit_from).count();
    // What the next year's first week needs of this year's last days.
    let (mut carry_items, mut carry_excluded) = (Vec::new(), Vec::new());
    if end < NaiveDate::MAX {
        let rows = last_days(end);
        carry_items = handed_over(&rows);
        for &i in &rows {
            let id = &items[i].rating_id;
            if let Some(why) = outcome.excluded.get(&**id) {
                carry_excluded.push((id.to_string(), why.clone()));
            }
        }
    }
    effects.vstack_mut_owned(raters::effects_frame(&outcome.effects, as_of)?)?;
    flags.vstack_mut_owned(raters::flags_frame(&outcome.flags, as_of)?)?;
    let results = YearResults {
        effects,
        flags,
        satisfaction,
        reliability,
        carry_items,
        carry_excluded,
        first_day,
        n_items,
    };
    Ok((results, pieces))
}
