//! Stage: carry plans. Improvement plans (《服务质量改进计划》) and their
//! events to each plan's status at as-of and at the end of every month it
//! was carried: the `plan_status`, `plan_periods` and `plan_event_rejects`
//! marts (docs/contract.md#improvement-plans).
//!
//! * **Due date**: `due_on`, moved by each `extended` event made on or
//!   before the due date then in force; a later extension is left out
//!   (`extension_after_due`), so a plan cannot be made on time after the
//!   fact.
//! * **Completion**: the first `done` (or `verified`) event's local day
//!   against the due date: `on_time`, `late`, `overdue` (due date passed,
//!   not done) or `open`.
//! * **Verification** falls in the first complete period of
//!   `plans.verify_grain` after the due date. A verdict the quality office
//!   recorded (`verified`, `failed`; the last one counts) is the
//!   verification, on its day. Without one, when that period is over, a
//!   plan naming an indicator is `met` or `not_met` by the indicator's
//!   value for its department in that period against the plan's target
//!   (else the policy's target for the department type); it is
//!   `not_measurable` when the plan names no indicator, the indicator has
//!   no value there or no target, or is one of the plan indicators (they
//!   are measured after verification). Until then it is `pending`.
//! * **Carried** on its department's monthly scorecards until a verdict
//!   is recorded, or until it is both verified and done.

use anyhow::Result;
use chrono::{Duration, NaiveDate};
use chrono_tz::Tz;
use polars::prelude::{DataFrame, PlHashMap};

use crate::frame::{self, Builder};
use crate::model::measure::Direction;
use crate::time::local_day;
use crate::time::periods::{Grain, Period};

/// What a plan's indicator gave for its department in a period (no value
/// below the indicator's minimum sample).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Measured {
    /// Not an indicator that can verify a plan.
    Unknown,
    Known {
        value: Option<f64>,
        direction: Direction,
        /// The policy's target for the department's type, if it has one.
        policy_target: Option<f64>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    // At one instant, in this order.
    Extended,
    Progress,
    Done,
    Verified,
    Failed,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "extended" => Kind::Extended,
            "progress" => Kind::Progress,
            "done" => Kind::Done,
            "verified" => Kind::Verified,
            "failed" => Kind::Failed,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Event {
    at: i64,
    kind: Kind,
    day: NaiveDate,
    new_due: Option<NaiveDate>,
}

struct Plan<'a> {
    row: usize,
    id: &'a str,
    dept: &'a str,
    opened: NaiveDate,
    due: NaiveDate,
    indicator: Option<&'a str>,
    target: Option<f64>,
    /// Its events kept, in order.
    events: Vec<Event>,
}

/// A plan as it stood at the end of a day.
#[derive(Debug, Clone, PartialEq)]
struct State {
    due: NaiveDate,
    extensions: i64,
    progress: i64,
    done: Option<NaiveDate>,
    completion: &'static str,
    days_late: Option<i64>,
    verify_period: Period,
    verification: &'static str,
    verified_by: Option<&'static str>,
    value: Option<f64>,
    target: Option<f64>,
    settled: Option<NaiveDate>,
    events: i64,
}

impl State {
    /// The day the plan left the scorecards: a recorded verdict's, else
    /// that of its verification or of its measures done, whichever came
    /// later; none while it is carried.
    fn closed(&self) -> Option<NaiveDate> {
        match (self.settled, self.verified_by, self.done) {
            (Some(on), Some("recorded"), _) => Some(on),
            (Some(on), _, Some(done)) => Some(on.max(done)),
            _ => None,
        }
    }
}

/// The first complete period of `grain` after `due`.
fn verify_period(grain: Grain, due: NaiveDate) -> Period {
    let after = due + Duration::days(1);
    let p = Period::containing(grain, after);
    if p.start < after {
        p.next()
    } else {
        p
    }
}

fn state_at(
    plan: &Plan,
    day: NaiveDate,
    grain: &dyn Fn(NaiveDate) -> Grain,
    measure: &dyn Fn(&str, &str, Period) -> Measured,
) -> State {
    let (mut due, mut extensions, mut progress, mut events) = (plan.due, 0, 0, 0);
    let (mut done, mut verdict) = (None, None);
    for e in plan.events.iter().take_while(|e| e.day <= day) {
        events += 1;
        match e.kind {
            Kind::Extended => {
                due = e.new_due.expect("kept extensions have a date");
                extensions += 1;
            }
            Kind::Progress => progress += 1,
            Kind::Done => done = done.or(Some(e.day)),
            Kind::Verified => {
                done = done.or(Some(e.day));
                verdict = Some((true, e.day));
            }
            Kind::Failed => verdict = Some((false, e.day)),
        }
    }
    let (completion, days_late) = match done {
        Some(d) if d <= due => ("on_time", None),
        Some(d) => ("late", Some((d - due).num_days())),
        None if day > due => ("overdue", Some((day - due).num_days())),
        None => ("open", None),
    };
    let period = verify_period(grain(due), due);
    let (mut value, mut target) = (None, None);
    let (verification, verified_by, settled) = match verdict {
        Some((met, on)) => (
            if met { "met" } else { "not_met" },
            Some("recorded"),
            Some(on),
        ),
        None if period.end > day => ("pending", None, None),
        None => {
            let over = Some(period.end);
            match plan.indicator.map(|ind| measure(ind, plan.dept, period)) {
                Some(Measured::Known {
                    value: v,
                    direction,
                    policy_target,
                }) => {
                    value = v;
                    target = plan.target.or(policy_target);
                    match (v, target) {
                        (Some(v), Some(t)) => {
                            let met = match direction {
                                Direction::Higher => v >= t,
                                Direction::Lower => v <= t,
                            };
                            (if met { "met" } else { "not_met" }, Some("indicator"), over)
                        }
                        _ => ("not_measurable", Some("indicator"), over),
                    }
                }
                Some(Measured::Unknown) => ("not_measurable", Some("indicator"), over),
                None => ("not_measurable", None, over),
            }
        }
    };
    State {
        due,
        extensions,
        progress,
        done,
        completion,
        days_late,
        verify_period: period,
        verification,
        verified_by,
        value,
        target,
        settled,
        events,
    }
}

/// What [`track`] gives.
pub struct Tracked {
    /// `plan_status`: each plan at as-of, by plan id.
    pub status: DataFrame,
    /// `plan_periods`: each plan at the end of every month from the one it
    /// was opened in to the one its verification fell in (or as-of's).
    pub periods: DataFrame,
    /// `plan_event_rejects`: the events left out, with why, where from.
    pub rejects: DataFrame,
}

/// The plans opened by `as_of` (`plans`: the `improvement_plans` table)
/// with their events up to the end of `as_of` (`events`: `plan_events`,
/// with `source_file` and `source_line`), verified with `measure` in
/// periods of the grain `grain` gives for the due date.
pub fn track(
    plans: &DataFrame,
    events: &DataFrame,
    grain: &dyn Fn(NaiveDate) -> Grain,
    measure: &dyn Fn(&str, &str, Period) -> Measured,
    tz: Tz,
    as_of: NaiveDate,
) -> Result<Tracked> {
    let ids = frame::str_refs(plans, "plan_id")?;
    let depts = frame::str_refs(plans, "dept_id")?;
    let opened = frame::dates(plans, "opened_on")?;
    let dues = frame::dates(plans, "due_on")?;
    let indicators = frame::str_refs(plans, "indicator")?;
    let targets = frame::f64s(plans, "target")?;
    let mut list: Vec<Plan> = (0..plans.height())
        .filter_map(|row| {
            Some(Plan {
                row,
                id: ids[row]?,
                dept: depts[row]?,
                opened: opened[row].filter(|d| *d <= as_of)?,
                due: dues[row]?,
                indicator: indicators[row],
                target: targets[row],
                events: Vec::new(),
            })
        })
        .collect();
    list.sort_by(|a, b| a.id.cmp(b.id));
    let index: PlHashMap<&str, usize> = list.iter().enumerate().map(|(i, p)| (p.id, i)).collect();

    let of_plan = frame::str_refs(events, "plan_id")?;
    let kinds = frame::str_refs(events, "kind")?;
    let ats = frame::micros(events, "at")?;
    let new_dues = frame::dates(events, "new_due_on")?;
    let mut by_plan: Vec<Vec<(i64, Kind, usize)>> = vec![Vec::new(); list.len()];
    let mut left_out: Vec<(usize, &'static str)> = Vec::new();
    for row in 0..events.height() {
        let (Some(pid), Some(kind), Some(at)) =
            (of_plan[row], kinds[row].and_then(Kind::parse), ats[row])
        else {
            continue;
        };
        if local_day(at, tz) > as_of {
            continue;
        }
        match index.get(pid) {
            Some(&i) => by_plan[i].push((at, kind, row)),
            None => left_out.push((row, "unknown_plan")),
        }
    }
    for (plan, mut evs) in list.iter_mut().zip(by_plan) {
        evs.sort_unstable();
        let mut due = plan.due;
        for (at, kind, row) in evs {
            let day = local_day(at, tz);
            let new_due = new_dues[row];
            let why = if day < plan.opened {
                Some("before_plan")
            } else if kind == Kind::Extended && day > due {
                Some("extension_after_due")
            } else if kind == Kind::Extended && new_due.is_some_and(|d| d < plan.opened) {
                Some("due_before_opened")
            } else {
                None
            };
            match why {
                Some(why) => left_out.push((row, why)),
                None => {
                    if kind == Kind::Extended {
                        due = new_due.expect("ingest rejects an extension without a date");
                    }
                    plan.events.push(Event {
                        at,
                        kind,
                        day,
                        new_due,
                    });
                }
            }
        }
        debug_assert!(plan.events.windows(2).all(|w| w[0].at <= w[1].at));
    }

    // Each plan at as-of, and at the end of every month it is carried in.
    let mut now: Vec<State> = Vec::with_capacity(list.len());
    let mut carried: Vec<(usize, Period, State)> = Vec::new();
    for (i, plan) in list.iter().enumerate() {
        let at_as_of = state_at(plan, as_of, grain, measure);
        let last = at_as_of.closed().unwrap_or(as_of).min(as_of);
        for month in Period::range(Grain::Month, plan.opened, last) {
            carried.push((
                i,
                month,
                state_at(plan, month.end.min(as_of), grain, measure),
            ));
        }
        now.push(at_as_of);
    }
    let strs = |c: &str| frame::str_refs(plans, c);
    let (reason, reason_ref, measures, owner) = (
        strs("reason")?,
        strs("reason_ref")?,
        strs("measures")?,
        strs("owner")?,
    );
    let rows: Vec<usize> = list.iter().map(|p| p.row).collect();
    fn pick<'a>(v: &[Option<&'a str>], rows: &[usize]) -> Vec<Option<&'a str>> {
        rows.iter().map(|&r| v[r]).collect()
    }
    let status = Builder::new()
        .str("plan_id", list.iter().map(|p| Some(p.id)))
        .str("dept_id", list.iter().map(|p| Some(p.dept)))
        .date("opened_on", list.iter().map(|p| Some(p.opened)))
        .str("reason", pick(&reason, &rows))
        .str("reason_ref", pick(&reason_ref, &rows))
        .str("indicator", list.iter().map(|p| p.indicator))
        .f64("target", list.iter().map(|p| p.target))
        .str("measures", pick(&measures, &rows))
        .str("owner", pick(&owner, &rows))
        .date("original_due_on", list.iter().map(|p| Some(p.due)))
        .date("due_on", now.iter().map(|s| Some(s.due)))
        .i64("extensions", now.iter().map(|s| Some(s.extensions)))
        .i64("progress_reports", now.iter().map(|s| Some(s.progress)))
        .date("done_on", now.iter().map(|s| s.done))
        .str("completion", now.iter().map(|s| Some(s.completion)))
        .i64("days_late", now.iter().map(|s| s.days_late))
        .str(
            "verify_grain",
            now.iter().map(|s| Some(s.verify_period.grain.as_str())),
        )
        .str(
            "verify_period",
            now.iter().map(|s| Some(s.verify_period.label())),
        )
        .str("verification", now.iter().map(|s| Some(s.verification)))
        .str("verified_by", now.iter().map(|s| s.verified_by))
        .f64("verify_value", now.iter().map(|s| s.value))
        .f64("verify_target", now.iter().map(|s| s.target))
        .date("settled_on", now.iter().map(|s| s.settled))
        .bool("carried", now.iter().map(|s| Some(s.closed().is_none())))
        .i64("events", now.iter().map(|s| Some(s.events)))
        .build()?;
    let months: Vec<Period> = carried.iter().map(|c| c.1).collect();
    let periods = Builder::new()
        .str("plan_id", carried.iter().map(|c| Some(list[c.0].id)))
        .str("dept_id", carried.iter().map(|c| Some(list[c.0].dept)))
        .periods(&months, as_of)
        .date("due_on", carried.iter().map(|c| Some(c.2.due)))
        .str("completion", carried.iter().map(|c| Some(c.2.completion)))
        .i64("days_late", carried.iter().map(|c| c.2.days_late))
        .str(
            "verification",
            carried.iter().map(|c| Some(c.2.verification)),
        )
        .build()?;

    left_out.sort_unstable();
    let ev_ids = frame::str_refs(events, "event_id")?;
    let files = frame::str_refs(events, "source_file")?;
    let lines = frame::i64s(events, "source_line")?;
    let rejects = Builder::new()
        .str("event_id", left_out.iter().map(|&(r, _)| ev_ids[r]))
        .str("plan_id", left_out.iter().map(|&(r, _)| of_plan[r]))
        .str("kind", left_out.iter().map(|&(r, _)| kinds[r]))
        .ts("at", left_out.iter().map(|&(r, _)| ats[r]))
        .str("reason", left_out.iter().map(|&(_, why)| Some(why)))
        .str("source_file", left_out.iter().map(|&(r, _)| files[r]))
        .i64("source_line", left_out.iter().map(|&(r, _)| lines[r]))
        .build()?;
    Ok(Tracked {
        status,
        periods,
        rejects,
    })
}

/// The marts of no plans, for checking definitions against the views.
pub fn empty(tz: Tz) -> Result<Tracked> {
    let plans = crate::ingest::empty_frame(&crate::ingest::tables::IMPROVEMENT_PLANS)?;
    let events = crate::ingest::empty_frame(&crate::ingest::tables::PLAN_EVENTS)?;
    let date = NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");
    track(
        &plans,
        &events,
        &|_| Grain::Month,
        &|_, _, _| Measured::Unknown,
        tz,
        date,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_verification_period_is_the_first_whole_one_after_the_due_date() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // Due on the last day of March: April. Due mid-March: April too
        // (March is not wholly after it). Due on 1 April: May.
        assert_eq!(
            verify_period(Grain::Month, d("2026-03-31")).label(),
            "2026-04"
        );
        assert_eq!(
            verify_period(Grain::Month, d("2026-03-15")).label(),
            "2026-04"
        );
        assert_eq!(
            verify_period(Grain::Month, d("2026-04-01")).label(),
            "2026-05"
        );
        assert_eq!(
            verify_period(Grain::Quarter, d("2026-03-31")).label(),
            "2026-Q2"
        );
        assert_eq!(
            verify_period(Grain::Quarter, d("2026-04-01")).label(),
            "2026-Q3"
        );
    }
}
