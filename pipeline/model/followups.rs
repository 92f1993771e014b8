//! Stage: follow up. Bad reviews and complaints, with their follow-ups
//! (call-backs, rectifications, explanations, reopenings), to the status of
//! each at as-of: the `followup_status` mart
//! (docs/contract.md#follow-ups-of-bad-reviews-and-complaints).
//!
//! A bad review is owed, under the rules in force on its day, a
//! rectification or an explanation within
//! `followups.rectify_working_days` working days of the rating, and its
//! rater (only a rater who gave their name, by default) a call-back
//! within `followups.call_back_working_days`. A complaint is owed its
//! rectification by its `due_at` (the complaints view fills a missing one
//! from `complaints.rectify_working_days`); its own `rectified_at` counts
//! as a rectification. The rectification that counts is the first after
//! the last reopening; the call-back that counts for timeliness is the
//! first, and its outcome is that of the last call-back that gave one.

use anyhow::Result;
use chrono::NaiveDate;
use chrono_tz::Tz;
use polars::prelude::{DataFrame, PlHashMap};

use crate::frame::{self, Builder};
use crate::policy::FollowupPolicy;
use crate::time::calendar::WorkCalendar;
use crate::time::local_day;

/// The columns of the bad reviews [`follow_up`] reads (from
/// `scored_ratings`, one row per bad review).
pub const BAD_REVIEW_COLUMNS: [&str; 4] = ["rating_id", "dept_id", "rated_at", "real_name"];

/// Follow-ups taken in this order at the same instant.
fn kind_rank(kind: &str) -> u8 {
    match kind {
        "call_back" => 0,
        "rectified" => 1,
        "explained" => 2,
        "reopened" => 3,
        _ => 4,
    }
}

struct Subject<'a> {
    kind: &'static str,
    id: &'a str,
    dept: &'a str,
    received_at: i64,
    real_name: Option<bool>,
    call_back_due: Option<i64>,
    rectify_due: i64,
    /// (time, kind rank, row) of its follow-ups; no row: a complaint's own
    /// `rectified_at`, taken as a rectification.
    followups: Vec<(i64, u8, Option<usize>)>,
}

/// What [`follow_up`] gives.
pub struct FollowedUp {
    /// The `followup_status` mart, by subject kind and id.
    pub status: DataFrame,
    /// The `followup_rejects` mart: the follow-ups left out, with why
    /// (`unknown_subject`: no bad review or complaint known at as-of has
    /// that id; `before_subject`: dated before it), where they came from.
    pub rejects: DataFrame,
}

/// The status at the end of as-of `end` (UTC micros) of every bad review
/// (`bad_reviews`: [`BAD_REVIEW_COLUMNS`]) and complaint (the complaints
/// view), from the follow-ups up to `end`; a bad review is owed what the
/// rules `rules_on` gives for its local day say.
pub fn follow_up<'p>(
    bad_reviews: &DataFrame,
    complaints: &DataFrame,
    followups: &DataFrame,
    rules_on: &dyn Fn(NaiveDate) -> &'p FollowupPolicy,
    cal: &WorkCalendar,
    tz: Tz,
    end: i64,
) -> Result<FollowedUp> {
    let mut subjects: Vec<Subject> = Vec::new();
    {
        let ids = frame::str_refs(bad_reviews, "rating_id")?;
        let depts = frame::str_refs(bad_reviews, "dept_id")?;
        let at = frame::micros(bad_reviews, "rated_at")?;
        let real = frame::bools(bad_reviews, "real_name")?;
        for i in 0..bad_reviews.height() {
            let (Some(id), Some(dept), Some(at)) = (ids[i], depts[i], at[i]) else {
                continue;
            };
            let policy = rules_on(local_day(at, tz));
            let owed = real[i] == Some(true) || !policy.call_back_real_name_only;
            subjects.push(Subject {
                kind: "rating",
                id,
                dept,
                received_at: at,
                real_name: real[i],
                call_back_due: owed.then(|| cal.deadline(at, policy.call_back_working_days, tz)),
                rectify_due: cal.deadline(at, policy.rectify_working_days, tz),
                followups: Vec::new(),
            });
        }
    }
    {
        let ids = frame::str_refs(complaints, "complaint_id")?;
        let depts = frame::str_refs(complaints, "dept_id")?;
        let at = frame::micros(complaints, "received_at")?;
        let due = frame::micros(complaints, "due_at")?;
        let rectified = frame::micros(complaints, "rectified_at")?;
        for i in 0..complaints.height() {
            let (Some(id), Some(dept), Some(at), Some(due)) = (ids[i], depts[i], at[i], due[i])
            else {
                continue;
            };
            subjects.push(Subject {
                kind: "complaint",
                id,
                dept,
                received_at: at,
                real_name: None,
                call_back_due: None,
                rectify_due: due,
                followups: rectified[i]
                    .filter(|r| *r <= end)
                    .map(|r| (r, kind_rank("rectified"), None))
                    .into_iter()
                    .collect(),
            });
        }
    }
    subjects.sort_by(|a, b| (a.kind, a.id).cmp(&(b.kind, b.id)));
    subjects.dedup_by(|a, b| (a.kind, a.id) == (b.kind, b.id));

    let index: PlHashMap<(&str, &str), usize> = subjects
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.kind, s.id), i))
        .collect();
    let fu_kinds = frame::str_refs(followups, "subject_kind")?;
    let fu_ids = frame::str_refs(followups, "subject_id")?;
    let kinds = frame::str_refs(followups, "kind")?;
    let ats = frame::micros(followups, "at")?;
    let outcomes = frame::str_refs(followups, "outcome")?;
    let mut left_out: Vec<(usize, &'static str)> = Vec::new();
    for row in 0..followups.height() {
        let (Some(sk), Some(sid), Some(kind), Some(at)) =
            (fu_kinds[row], fu_ids[row], kinds[row], ats[row])
        else {
            continue;
        };
        if at > end {
            continue;
        }
        let Some(&i) = index.get(&(sk, sid)) else {
            left_out.push((row, "unknown_subject"));
            continue;
        };
        let s = &mut subjects[i];
        if at < s.received_at {
            left_out.push((row, "before_subject"));
            continue;
        }
        s.followups.push((at, kind_rank(kind), Some(row)));
    }

    let mut b = Rows::default();
    for s in &mut subjects {
        s.followups.sort_unstable();
        let (mut rectified, mut called, mut outcome) = (None, None, None);
        let mut reopens = 0i64;
        for &(at, _, row) in &s.followups {
            let kind = row.map_or(Some("rectified"), |r| kinds[r]);
            match kind {
                Some("call_back") => {
                    called = called.or(Some(at));
                    outcome = row.and_then(|r| outcomes[r]).or(outcome);
                }
                Some(how @ ("rectified" | "explained")) => {
                    let how = if how == "explained" {
                        "explained"
                    } else {
                        "rectified"
                    };
                    rectified = rectified.or(Some((at, how)));
                }
                Some("reopened") => {
                    reopens += 1;
                    rectified = None;
                }
                _ => {}
            }
        }
        let status = |done: Option<i64>, due: i64| match done {
            Some(t) if t <= due => "on_time",
            Some(_) => "late",
            None if due < end => "overdue",
            None => "open",
        };
        b.subject_kind.push(s.kind);
        b.subject_id.push(s.id);
        b.dept_id.push(s.dept);
        b.received_at.push(s.received_at);
        b.real_name.push(s.real_name);
        b.call_back_required.push(s.call_back_due.is_some());
        b.call_back_due_at.push(s.call_back_due);
        b.called_back_at.push(called);
        b.call_back_outcome.push(outcome);
        b.call_back_status.push(match s.call_back_due {
            Some(due) => status(called, due),
            None => "not_required",
        });
        b.rectify_due_at.push(s.rectify_due);
        b.rectified_at.push(rectified.map(|r| r.0));
        b.rectified_how.push(rectified.map(|r| r.1));
        b.rectify_status
            .push(status(rectified.map(|r| r.0), s.rectify_due));
        b.reopen_count.push(reopens);
        b.followups
            .push(s.followups.iter().filter(|f| f.2.is_some()).count() as i64);
    }
    let ids = frame::str_refs(followups, "followup_id")?;
    let files = frame::str_refs(followups, "source_file")?;
    let lines = frame::i64s(followups, "source_line")?;
    let rejects = Builder::new()
        .str("followup_id", left_out.iter().map(|&(r, _)| ids[r]))
        .str("subject_kind", left_out.iter().map(|&(r, _)| fu_kinds[r]))
        .str("subject_id", left_out.iter().map(|&(r, _)| fu_ids[r]))
        .ts("at", left_out.iter().map(|&(r, _)| ats[r]))
        .str("reason", left_out.iter().map(|&(_, why)| Some(why)))
        .str("source_file", left_out.iter().map(|&(r, _)| files[r]))
        .i64("source_line", left_out.iter().map(|&(r, _)| lines[r]))
        .build()?;
    Ok(FollowedUp {
        status: b.build()?,
        rejects,
    })
}

/// The mart's columns as they are made.
#[derive(Default)]
struct Rows<'a> {
    subject_kind: Vec<&'static str>,
    subject_id: Vec<&'a str>,
    dept_id: Vec<&'a str>,
    received_at: Vec<i64>,
    real_name: Vec<Option<bool>>,
    call_back_required: Vec<bool>,
    call_back_due_at: Vec<Option<i64>>,
    called_back_at: Vec<Option<i64>>,
    call_back_outcome: Vec<Option<&'a str>>,
    call_back_status: Vec<&'static str>,
    rectify_due_at: Vec<i64>,
    rectified_at: Vec<Option<i64>>,
    rectified_how: Vec<Option<&'static str>>,
    rectify_status: Vec<&'static str>,
    reopen_count: Vec<i64>,
    followups: Vec<i64>,
}

impl Rows<'_> {
    fn build(self) -> Result<DataFrame> {
        fn some(v: Vec<&str>) -> Vec<Option<&str>> {
            v.into_iter().map(Some).collect()
        }
        Builder::new()
            .str("subject_kind", some(self.subject_kind))
            .str("subject_id", some(self.subject_id))
            .str("dept_id", some(self.dept_id))
            .ts("received_at", self.received_at.into_iter().map(Some))
            .bool("real_name", self.real_name)
            .bool(
                "call_back_required",
                self.call_back_required.into_iter().map(Some),
            )
            .ts("call_back_due_at", self.call_back_due_at)
            .ts("called_back_at", self.called_back_at)
            .str("call_back_outcome", self.call_back_outcome)
            .str("call_back_status", some(self.call_back_status))
            .ts("rectify_due_at", self.rectify_due_at.into_iter().map(Some))
            .ts("rectified_at", self.rectified_at)
            .str("rectified_how", self.rectified_how)
            .str("rectify_status", some(self.rectify_status))
            .i64("reopen_count", self.reopen_count.into_iter().map(Some))
            .i64("followups", self.followups.into_iter().map(Some))
            .build()
    }
}
