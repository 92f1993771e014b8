//! Stage: derive. Process events -> one row per case (docs/contract.md#cases-derived-from-process-events).
//!
//! Consumes `process_events` up to `--as-of`; produces the `cases` mart and
//! `case_time` (hours each department held each case, so a report can show
//! where the time of transferred cases went). A case belongs to the
//! department and period of its `received` event (intake cohort).
//!
//! Derivation gives *facts* that do not depend on as-of: a case not yet
//! resolved or cancelled has status `open`, the lateness that as-of
//! decides is left null, and the hours of the department holding it grow
//! from an instant (`grows_from`). [`cases_at`] and [`case_time_at`] turn facts into
//! the marts' rows at an as-of, so that moving as-of derives nothing again.

use anyhow::Result;
use chrono_tz::Tz;
use polars::prelude::*;
use rayon::prelude::*;

use crate::time::calendar::WorkCalendar;

use crate::frame::{self, At, Builder};
use crate::policy::Policy;

const HOUR_US: f64 = 3_600_000_000.0;

/// Events at the same instant are taken in this order.
fn event_rank(e: &str) -> u8 {
    match e {
        "received" => 0,
        "visit" => 1,
        "responded" => 2,
        "transferred" => 3,
        "suspended" => 4,
        "resumed" => 5,
        "resolved" => 6,
        "reopened" => 7,
        "notified" => 8,
        "cancelled" => 9,
        _ => 10,
    }
}

#[derive(Debug, Clone)]
struct Event<'a> {
    at: i64,
    event: &'a str,
    dept: &'a str,
    service_type: Option<&'a str>,
    due_at: Option<i64>,
    response_due_at: Option<i64>,
    instant: Option<bool>,
}

/// One derived case.
#[derive(Debug, Clone, PartialEq)]
pub struct Case<'a> {
    pub case_id: &'a str,
    pub dept_id: &'a str,
    pub service_type: Option<&'a str>,
    pub received_at: i64,
    pub instant: Option<bool>,
    pub first_response_at: Option<i64>,
    pub response_due_at: Option<i64>,
    pub response_hours: Option<f64>,
    pub response_on_time: Option<bool>,
    pub resolved_at: Option<i64>,
    pub due_at: Option<i64>,
    pub resolution_hours: Option<f64>,
    pub on_time: Option<bool>,
    pub status: &'static str,
    pub reopen_count: i64,
    pub visit_count: i64,
    pub transfer_count: i64,
    pub notified: bool,
    /// (department, hours held), in the order held. An open case's
    /// holder has its hours up to the last event that stopped them.
    pub held: Vec<(&'a str, f64)>,
    /// An open case that is not suspended: its holder, whose hours grow by
    /// the time from this instant (UTC micros) to as-of.
    pub grows_from: Option<(&'a str, i64)>,
}

/// The status of a case derived but not yet resolved or cancelled;
/// [`cases_at`] makes it `pending` or `overdue`.
pub const OPEN: &str = "open";

/// The columns of `process_events` that [`derive`] reads.
pub const EVENT_COLUMNS: [&str; 8] = [
    "case_id",
    "event",
    "at",
    "dept_id",
    "service_type",
    "due_at",
    "response_due_at",
    "instant",
];

/// What [`derive`] gives. Cases borrow their text from the events.
pub struct Derived<'a> {
    /// The cases, sorted by case id (case ids without a `received` event
    /// give none).
    pub cases: Vec<Case<'a>>,
    /// When the events have a `month` column (`yyyymm` of the lake file
    /// they come from): every case id's first and last month, orphans
    /// included, sorted by case id.
    pub spans: Vec<(&'a str, i32, i32)>,
}

/// Derives the facts of the cases of `events` (those after as-of must
/// already be filtered out), the cases shared out across cores.
pub fn derive<'a>(
    events: &'a DataFrame,
    policy: &Policy,
    cal: &WorkCalendar,
    tz: Tz,
) -> Result<Derived<'a>> {
    // Columns are read in place; per event only a sort key is held.
    let ids = At::strs(events, "case_id")?;
    let kinds = At::strs(events, "event")?;
    let depts = At::strs(events, "dept_id")?;
    let services = At::strs(events, "service_type")?;
    let dues = At::micros(events, "due_at")?;
    let rdues = At::micros(events, "response_due_at")?;
    let instants = At::bools(events, "instant")?;

    // Case ids numbered in text order, so that sorting plain numbers
    // groups each case's events and orders the cases by id.
    // (Rows in order are read with column iterators; `At` serves the rows
    // picked by number below.)
    let id_column = frame::column(events, "case_id")?.str()?;
    let mut number: PlHashMap<&str, u32> = PlHashMap::default();
    for id in id_column.iter().flatten() {
        let next = number.len() as u32;
        number.entry(id).or_insert(next);
    }
    let mut by_text: Vec<(&str, u32)> = number.iter().map(|(id, n)| (*id, *n)).collect();
    by_text.sort_unstable();
    let mut rank = vec![0u32; by_text.len()];
    for (r, (_, n)) in by_text.iter().enumerate() {
        rank[*n as usize] = r as u32;
    }
    drop(by_text);

    // (case, time, event order, row, month): the row keeps ties in input
    // order (the month, which follows it, never decides).
    let month_column = match events.column("month") {
        Ok(c) => Some(c.i32()?.clone()),
        Err(_) => None,
    };
    let mut month_of_row: Box<dyn Iterator<Item = i32>> = match &month_column {
        Some(ca) => Box::new(ca.iter().map(|m| m.unwrap_or(0))),
        None => Box::new(std::iter::repeat(0)),
    };
    let mut keys: Vec<(u32, i64, u8, u32, i32)> = Vec::with_capacity(events.height());
    let rows = id_column
        .iter()
        .zip(frame::column(events, "event")?.str()?.iter())
        .zip(frame::micros_in_place(events, "at")?.iter())
        .zip(frame::column(events, "dept_id")?.str()?.iter());
    for (i, (((id, kind), at), dept)) in rows.enumerate() {
        let month = month_of_row.next().unwrap_or(0);
        let (Some(id), Some(kind), Some(at), Some(_)) = (id, kind, at, dept) else {
            continue;
        };
        keys.push((
            rank[number[id] as usize],
            at,
            event_rank(kind),
            i as u32,
            month,
        ));
    }
    let n_ids = rank.len();
    drop((number, rank));
    keys.par_sort_unstable();

    // Each case's events are one run of `keys`, and its rank is its slot in
    // the result. Shares of about equal size that end at a case's end are
    // derived at once, each into its own slots.
    let shares = (rayon::current_num_threads() * 8).max(1);
    let mut bounds = vec![0];
    for k in 1..shares {
        let mut at = keys.len() * k / shares;
        while at > *bounds.last().expect("starts at 0")
            && at < keys.len()
            && keys[at].0 == keys[at - 1].0
        {
            at += 1;
        }
        if at > *bounds.last().expect("starts at 0") && at < keys.len() {
            bounds.push(at);
        }
    }
    bounds.push(keys.len());
    let with_spans = month_column.is_some();
    let mut case_slots: Vec<Option<Case>> = (0..n_ids).map(|_| None).collect();
    let mut span_slots: Vec<Option<(&str, i32, i32)>> =
        vec![None; if with_spans { n_ids } else { 0 }];
    let mut work = Vec::with_capacity(bounds.len());
    let (mut cases_left, mut spans_left) = (&mut case_slots[..], &mut span_slots[..]);
    let mut base = 0;
    for w in bounds.windows(2) {
        let end = keys.get(w[1]).map_or(n_ids, |k| k.0 as usize);
        let (mine, rest) = std::mem::take(&mut cases_left).split_at_mut(end - base);
        cases_left = rest;
        let spans_mine = if with_spans {
            let (mine, rest) = std::mem::take(&mut spans_left).split_at_mut(end - base);
            spans_left = rest;
            mine
        } else {
            &mut []
        };
        work.push((&keys[w[0]..w[1]], base, mine, spans_mine));
        base = end;
    }
    work.into_par_iter()
        .for_each(|(share, base, cases, spans)| {
            let mut evs: Vec<Event> = Vec::new();
            for run in share.chunk_by(|a, b| a.0 == b.0) {
                let slot = run[0].0 as usize - base;
                evs.clear();
                evs.extend(run.iter().map(|&(_, at, _, row, _)| {
                    let i = row as usize;
                    Event {
                        at,
                        event: kinds.get(i).expect("kept rows have an event"),
                        dept: depts.get(i).expect("kept rows have a department"),
                        service_type: services.get(i),
                        due_at: dues.get(i),
                        response_due_at: rdues.get(i),
                        instant: instants.get(i),
                    }
                }));
                let id = ids
                    .get(run[0].3 as usize)
                    .expect("kept rows have a case id");
                if with_spans {
                    let of_run = run.iter().map(|k| k.4);
                    let first = of_run.clone().min().expect("a run has rows");
                    spans[slot] = Some((id, first, of_run.max().expect("a run has rows")));
                }
                cases[slot] = one_case(id, &evs, policy, cal, tz);
            }
        });
    // In place: an `Option<Case>` takes the room of a `Case`, and
    // `filter_map` (unlike `flatten`) collects into the same allocation.
    const _: () = assert!(size_of::<Option<Case>>() == size_of::<Case>());
    #[allow(clippy::filter_map_identity)]
    let cases: Vec<Case> = case_slots.into_iter().filter_map(|c| c).collect();
    let spans: Vec<(&str, i32, i32)> = span_slots.into_iter().flatten().collect();
    Ok(Derived { cases, spans })
}

/// Whether a case of this status in the `cases` mart is still open at
/// as-of (not resolved, not cancelled).
pub fn is_open(status: &str) -> bool {
    matches!(status, "pending" | "overdue")
}

/// Over the facts frame of cases ([`cases_frame`]): whether a case's row
/// in the mart depends on as-of, not only on its events. It is open (its
/// status and its holder's hours move with as-of), or it has a response
/// deadline and no response (whether the response is late does).
pub fn depends_on_as_of() -> Expr {
    col("status").eq(lit(OPEN)).or(awaiting_response())
}

fn awaiting_response() -> Expr {
    col("first_response_at")
        .is_null()
        .and(col("response_due_at").is_not_null())
        .and(col("status").neq(lit("cancelled")))
}

/// The `cases` mart at the end of as-of `end` (UTC micros, inclusive)
/// from the facts of [`cases_frame`]: an open case is overdue (and late)
/// once its deadline is before `end`, else pending; a response not given
/// is late once its deadline is.
pub fn cases_at(cases: LazyFrame, end: i64) -> LazyFrame {
    let end_at = crate::frame::instant(end);
    let overdue = col("status")
        .eq(lit(OPEN))
        .and(col("due_at").lt(end_at.clone()));
    cases.with_columns([
        when(col("status").eq(lit(OPEN)))
            .then(
                when(overdue.clone())
                    .then(lit("overdue"))
                    .otherwise(lit("pending")),
            )
            .otherwise(col("status"))
            .alias("status"),
        when(overdue)
            .then(lit(false))
            .otherwise(col("on_time"))
            .alias("on_time"),
        when(awaiting_response().and(col("response_due_at").lt(end_at)))
            .then(lit(false))
            .otherwise(col("response_on_time"))
            .alias("response_on_time"),
    ])
}

/// The `case_time` mart at the end of as-of `end` from the facts of
/// [`case_time_frame`]: the holder of an open case that is not suspended
/// has held it, besides its hours so far, from `grows_from` to `end`.
/// (In Rust: polars divides by a constant as a product with its inverse,
/// which is not the quotient derivation takes for the other hours.)
pub fn case_time_at(mut case_time: DataFrame, end: i64) -> Result<DataFrame> {
    let hours: Float64Chunked = {
        let held = frame::column(&case_time, "hours")?.f64()?;
        let from = frame::column(&case_time, "grows_from")?.i64()?;
        held.iter()
            .zip(from.iter())
            .map(|(h, from)| match from {
                Some(from) => h.map(|h| h + (end - from).max(0) as f64 / HOUR_US),
                None => h,
            })
            .collect()
    };
    case_time.with_column(hours.with_name("hours".into()).into_column())?;
    case_time.drop_in_place("grows_from")?;
    Ok(case_time)
}

fn one_case<'a>(
    case_id: &'a str,
    evs: &[Event<'a>],
    policy: &Policy,
    cal: &WorkCalendar,
    tz: Tz,
) -> Option<Case<'a>> {
    let recv = evs.iter().find(|e| e.event == "received")?;
    let received_at = recv.at;
    let first = |f: &dyn Fn(&Event) -> bool| evs.iter().find(|e| f(e));
    let service_type = first(&|e| e.service_type.is_some()).and_then(|e| e.service_type);
    let instant = first(&|e| e.instant.is_some()).and_then(|e| e.instant);
    let limit = service_type
        .and_then(|s| policy.service_limits.get(s))
        .or_else(|| policy.service_limits.get("default"));
    let due_at = first(&|e| e.due_at.is_some())
        .and_then(|e| e.due_at)
        .or_else(|| {
            let l = limit?;
            match (l.hours, l.working_days) {
                (Some(h), _) => Some(received_at + (h * HOUR_US) as i64),
                (None, Some(n)) => Some(cal.deadline(received_at, n, tz)),
                _ => None,
            }
        });
    let response_due_at = first(&|e| e.response_due_at.is_some())
        .and_then(|e| e.response_due_at)
        .or_else(|| {
            limit?
                .response_hours
                .map(|h| received_at + (h * HOUR_US) as i64)
        });

    let mut first_response_at = None;
    let mut resolved_at: Option<i64> = None;
    let mut cancelled_at: Option<i64> = None;
    let (mut reopens, mut visits, mut transfers) = (0, 0, 0);
    let mut notified_at: Option<i64> = None;
    let mut suspended: Vec<(i64, i64)> = Vec::new();
    let mut suspend_start: Option<i64> = None;
    let mut holder = recv.dept;
    let mut hold_start = received_at;
    let mut segments: Vec<(&str, i64, i64)> = Vec::new();
    for e in evs.iter().filter(|e| e.at >= received_at) {
        match e.event {
            "responded" if first_response_at.is_none() => first_response_at = Some(e.at),
            "visit" => visits += 1,
            "transferred" => {
                transfers += 1;
                segments.push((holder, hold_start, e.at));
                holder = e.dept;
                hold_start = e.at;
            }
            "suspended" if suspend_start.is_none() => suspend_start = Some(e.at),
            "resumed" => {
                if let Some(s) = suspend_start.take() {
                    suspended.push((s, e.at));
                }
            }
            "resolved" => resolved_at = Some(e.at),
            "reopened" => {
                reopens += 1;
                resolved_at = None;
                notified_at = None;
            }
            "notified" => notified_at = Some(e.at),
            "cancelled" => cancelled_at = Some(e.at),
            _ => {}
        }
    }
    // An open case's last suspension runs on (to any as-of), and so does
    // its holder's time unless suspended: up to as-of the holder has
    // `held` hours from `hold_start` to `grows_from` (suspensions so far
    // left out), and the time since.
    let closed_at = resolved_at.or(cancelled_at);
    let open_suspension = suspend_start.filter(|_| closed_at.is_none());
    if let Some(s) = suspend_start {
        suspended.push((s, closed_at.map_or(i64::MAX, |end| end.max(s))));
    }
    let active_us = |from: i64, to: i64| -> i64 {
        let paused: i64 = suspended
            .iter()
            .map(|&(s, e)| (e.min(to) - s.max(from)).max(0))
            .sum();
        ((to - from) - paused).max(0)
    };
    let active_hours = |from: i64, to: i64| active_us(from, to) as f64 / HOUR_US;
    let grows_from = match (closed_at, open_suspension) {
        (Some(end), _) => {
            segments.push((holder, hold_start, end.max(hold_start)));
            None
        }
        // Suspended: the holder's time stopped at the suspension.
        (None, Some(s)) => {
            segments.push((holder, hold_start, s.max(hold_start)));
            None
        }
        // Every suspension ended before as-of: the holder's time to an
        // instant t is t - hold_start less them.
        (None, None) => {
            segments.push((holder, hold_start, hold_start));
            let paused: i64 = suspended
                .iter()
                .map(|&(s, e)| (e - s.max(hold_start)).max(0))
                .sum();
            Some((holder, hold_start + paused))
        }
    };
    let mut held: Vec<(&str, f64)> = Vec::new();
    let last = segments.len() - 1;
    for (k, &(dept, s, e)) in segments.iter().enumerate() {
        // The growing holder's time is added by `case_time_at`, last.
        let h = if k == last && grows_from.is_some() {
            None
        } else {
            Some(active_hours(s, e))
        };
        match held.iter_mut().find(|(d, _)| *d == dept) {
            Some(x) => x.1 += h.unwrap_or(0.0),
            None => held.push((dept, h.unwrap_or(0.0))),
        }
    }

    let cancelled = cancelled_at.is_some() && resolved_at.is_none();
    let status = if cancelled {
        "cancelled"
    } else if resolved_at.is_some() {
        "resolved"
    } else {
        OPEN
    };
    let on_time = match status {
        "resolved" => due_at.map(|d| resolved_at.expect("resolved") <= d),
        _ => None,
    };
    let response_on_time = if cancelled {
        None
    } else {
        match (response_due_at, first_response_at) {
            (Some(due), Some(r)) => Some(r <= due),
            _ => None,
        }
    };
    Some(Case {
        case_id,
        dept_id: recv.dept,
        service_type,
        received_at,
        instant,
        first_response_at,
        response_due_at,
        response_hours: first_response_at.map(|r| active_hours(received_at, r)),
        response_on_time,
        resolved_at: if cancelled { None } else { resolved_at },
        due_at,
        resolution_hours: if status == "resolved" {
            resolved_at.map(|r| active_hours(received_at, r))
        } else {
            None
        },
        on_time,
        status,
        reopen_count: reopens,
        visit_count: visits,
        transfer_count: transfers,
        notified: status == "resolved" && notified_at.is_some(),
        held,
        grows_from,
    })
}

/// The facts of `cases` in the columns of the `cases` mart, in their
/// order: [`cases_at`] makes the mart's rows.
pub fn cases_frame(cases: &[Case]) -> Result<DataFrame> {
    Builder::new()
        .str("case_id", cases.iter().map(|c| Some(c.case_id)))
        .str("dept_id", cases.iter().map(|c| Some(c.dept_id)))
        .str("service_type", cases.iter().map(|c| c.service_type))
        .ts("received_at", cases.iter().map(|c| Some(c.received_at)))
        .bool("instant", cases.iter().map(|c| c.instant))
        .ts(
            "first_response_at",
            cases.iter().map(|c| c.first_response_at),
        )
        .ts("response_due_at", cases.iter().map(|c| c.response_due_at))
        .f64("response_hours", cases.iter().map(|c| c.response_hours))
        .bool("response_on_time", cases.iter().map(|c| c.response_on_time))
        .ts("resolved_at", cases.iter().map(|c| c.resolved_at))
        .ts("due_at", cases.iter().map(|c| c.due_at))
        .f64("resolution_hours", cases.iter().map(|c| c.resolution_hours))
        .bool("on_time", cases.iter().map(|c| c.on_time))
        .str("status", cases.iter().map(|c| Some(c.status)))
        .i64("reopen_count", cases.iter().map(|c| Some(c.reopen_count)))
        .i64("visit_count", cases.iter().map(|c| Some(c.visit_count)))
        .i64(
            "transfer_count",
            cases.iter().map(|c| Some(c.transfer_count)),
        )
        .bool("notified", cases.iter().map(|c| Some(c.notified)))
        .build()
}

/// The facts of `case_time`: hours each department held each case
/// (suspended time excluded), in the order held, and `grows_from` (UTC
/// micros) on the row of an open case's holder whose hours grow with
/// as-of ([`case_time_at`]).
pub fn case_time_frame(cases: &[Case]) -> Result<DataFrame> {
    let rows: Vec<(&str, &str, f64, Option<i64>)> = cases
        .iter()
        .flat_map(|c| {
            c.held.iter().map(move |&(d, h)| {
                let grows = c.grows_from.filter(|(holder, _)| *holder == d);
                (c.case_id, d, h, grows.map(|(_, from)| from))
            })
        })
        .collect();
    Builder::new()
        .str("case_id", rows.iter().map(|r| Some(r.0)))
        .str("dept_id", rows.iter().map(|r| Some(r.1)))
        .f64("hours", rows.iter().map(|r| Some(r.2)))
        .i64("grows_from", rows.iter().map(|r| r.3))
        .build()
}
