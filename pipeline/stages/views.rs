//! Stage 2 and 3: the lake as of a day (later rows dropped, later
//! rectifications not yet known, ratings removed on appeal left out of
//! `scored_ratings`), with the cases derived and the ratings rated; the
//! tables indicator SQL reads.

use super::*;

/// Lake tables and derived frames that indicator SQL can read.
pub struct Views {
    /// Small lake tables and derived frames, in memory.
    pub tables: Vec<(&'static str, DataFrame)>,
    /// The large lake tables (`ratings`, `process_events`, as of as-of) and
    /// the case marts already written, as scans of their files: each query
    /// reads only the columns it needs, and nothing stays in memory.
    pub scans: Vec<(&'static str, LazyFrame)>,
    /// Managers' 360-degree feedback as of as-of ([`feedback_360`]): in
    /// none of the views above.
    pub feedback: LazyFrame,
    /// Ratings removed on appeal by as-of.
    pub(super) removed: PlHashSet<String>,
    /// Over `ratings`: whether a rating is a bad review (null for a rating
    /// that cannot be one: another item, group or channel).
    pub(super) bad_review: Expr,
    pub satisfaction: Vec<satisfaction::Row>,
    /// First local day with a rating or a case: where scoring starts.
    pub first_day: Option<NaiveDate>,
}

impl Views {
    /// The views as indicator SQL sees them; `scored_ratings` as
    /// [`scored_ratings`] makes it.
    pub fn sql(&self) -> Vec<(&'static str, LazyFrame)> {
        let mut out: Vec<(&'static str, LazyFrame)> = self
            .tables
            .iter()
            .map(|(name, df)| (*name, df.clone().lazy()))
            .collect();
        out.extend(self.scans.iter().cloned());
        out.push(("scored_ratings", self.scored_ratings()));
        out
    }

    /// The `scored_ratings` view: see [`scored_ratings`].
    pub fn scored_ratings(&self) -> LazyFrame {
        let ratings = self
            .scans
            .iter()
            .find(|(n, _)| *n == "ratings")
            .expect("ratings are scanned")
            .1
            .clone();
        scored_ratings(ratings, &self.removed, &self.bad_review)
    }

    /// [`Views::feedback`] scored as `scored_ratings` is.
    pub fn scored_feedback(&self) -> LazyFrame {
        scored_ratings(self.feedback.clone(), &self.removed, &self.bad_review)
    }

    pub fn get(&self, name: &str) -> &DataFrame {
        &self
            .tables
            .iter()
            .find(|(n, _)| *n == name)
            .expect("view exists")
            .1
    }
}

/// Over `ratings`: whether a rating is 360-degree feedback on a person, a
/// rating by a superior, peer, subordinate or the person themselves that
/// names a `staff_id` (`policy::FEEDBACK_GROUPS`).
pub fn feedback_360() -> Expr {
    let groups: Series = crate::policy::FEEDBACK_GROUPS.iter().copied().collect();
    col("staff_id").is_not_null().and(
        col("rater_group")
            .is_in(lit(groups).implode(false), false)
            .fill_null(lit(false)),
    )
}

/// `ratings` without the ratings removed on appeal, plus `score_100` (the
/// score on a 0-100 scale) and `bad_review` (`bad_review`, over
/// `score_100`).
fn scored_ratings(ratings: LazyFrame, removed: &PlHashSet<String>, bad_review: &Expr) -> LazyFrame {
    let scored = if removed.is_empty() {
        ratings
    } else {
        let removed: Series = removed.iter().map(String::as_str).collect();
        ratings.filter(
            col("rating_id")
                .is_in(lit(removed).implode(false), false)
                .fill_null(lit(false))
                .not(),
        )
    };
    let f = |c: &str| col(c).cast(DataType::Float64);
    let score_100 = ((f("score") - f("scale_min")) / (f("scale_max") - f("scale_min"))
        * lit(100.0))
    .alias("score_100");
    scored
        .with_column(score_100)
        .with_column(bad_review.clone().alias("bad_review"))
}

/// Whether a rating can be a bad review under the policy: its item, rater
/// group and channel.
fn can_be_bad_review(bad: &crate::policy::BadReview) -> Expr {
    let one_of = |column: &str, values: &[String]| {
        let values: Series = values.iter().map(String::as_str).collect();
        col(column)
            .is_in(lit(values).implode(false), false)
            .fill_null(lit(false))
    };
    let mut can_be = col("item")
        .eq(lit(bad.item.clone()))
        .and(one_of("rater_group", &bad.groups));
    if !bad.channels.is_empty() {
        can_be = can_be.and(one_of("channel", &bad.channels));
    }
    can_be
}

/// Whether a rating (with `score_100`) is a bad review under the policy;
/// null when it cannot be one.
fn bad_review_expr(bad: &crate::policy::BadReview) -> Expr {
    when(can_be_bad_review(bad))
        .then(col("score_100").lt_eq(lit(bad.max_score)))
        .otherwise(lit(Null {}).cast(DataType::Boolean))
}

/// Over `ratings`: `rule` of the bad-review definition in force on each
/// rating's local day (the policy's rules, as its versions change them).
fn dated_bad_review(
    policy: &crate::policy::Policy,
    tz: Tz,
    rule: fn(&crate::policy::BadReview) -> Expr,
) -> Expr {
    // Each definition from the first instant of the day it starts, a
    // definition the next one replaces on the same day left out.
    let mut dated: Vec<(NaiveDate, &crate::policy::BadReview)> = Vec::new();
    for r in &policy.rules {
        match dated.last_mut() {
            Some(last) if last.0 == r.from => last.1 = &r.followups.bad_review,
            Some(last) if *last.1 == r.followups.bad_review => {}
            _ => dated.push((r.from, &r.followups.bad_review)),
        }
    }
    let mut earlier = dated.iter().rev();
    let &(mut from, latest) = earlier.next().expect("the top-level rules");
    let mut expr = rule(latest);
    for &(since, bad) in earlier {
        let starts = end_of_day(from - Duration::days(1), tz) + 1;
        expr = when(col("rated_at").lt(instant(starts)))
            .then(rule(bad))
            .otherwise(expr);
        from = since;
    }
    expr
}

/// The last microsecond of `as_of` in the policy's time zone, as UTC.
pub fn end_of_day(as_of: NaiveDate, tz: Tz) -> i64 {
    let next = (as_of + Duration::days(1)).and_time(NaiveTime::MIN);
    local_to_utc(next, tz)
        .or_else(|| local_to_utc(next + Duration::hours(1), tz))
        .expect("a local time an hour after a gap exists")
        - 1
}

pub(super) fn empty_lake() -> Result<Vec<(&'static str, LazyFrame)>> {
    tables::ALL
        .iter()
        .map(|s| Ok((s.name, ingest::empty_frame(s)?.lazy())))
        .collect()
}

/// The lake as scans: partitioned tables over their month files in month
/// order (as this run sees them), the rest read whole (they are small).
pub(super) fn read_lake(out: &OutDir) -> Result<Vec<(&'static str, LazyFrame)>> {
    tables::ALL
        .iter()
        .map(|s| {
            let lf = if s.month_column.is_some() {
                lake::scan_table(out, s.name)?
            } else {
                lake::read_table(out, s.name, false)?.map(|df| df.lazy())
            };
            let lf = match lf {
                Some(lf) => with_every_column(lf, s)?,
                None => ingest::empty_frame(s)?.lazy(),
            };
            Ok((s.name, lf))
        })
        .collect()
}

/// `lf` with every column of table `spec`: a lake file older than a column
/// of its table has it null.
fn with_every_column(mut lf: LazyFrame, spec: &'static tables::TableSpec) -> Result<LazyFrame> {
    let have = lf.collect_schema()?;
    let missing: Vec<Expr> = ingest::empty_frame(spec)?
        .schema()
        .iter()
        .filter(|(name, _)| !have.contains(name))
        .map(|(name, dtype)| lit(Null {}).cast(dtype.clone()).alias(name.clone()))
        .collect();
    Ok(if missing.is_empty() {
        lf
    } else {
        lf.with_columns(missing)
    })
}

/// When a step over the lake fails, names the first partition file that
/// cannot be read (a scan's own error does not say which).
pub(super) fn name_damaged_file(out: &OutDir, e: anyhow::Error) -> anyhow::Error {
    let damaged = tables::ALL
        .iter()
        .filter(|s| s.month_column.is_some())
        .find_map(|s| lake::first_unreadable(out, s.name));
    match damaged {
        Some((f, bad)) => bad.context(format!(
            "the lake file {} is damaged: restore it, or delete it and ingest its month again",
            f.display()
        )),
        None => e,
    }
}

/// Reads `columns` of a scanned table, in file and row order.
pub(super) fn collect_columns(lf: &LazyFrame, columns: &[&str], what: &str) -> Result<DataFrame> {
    lf.clone()
        .select(columns.iter().map(|c| col(*c)).collect::<Vec<_>>())
        .collect()
        .map_err(|e| anyhow::anyhow!("cannot read the lake's {what}: {e}"))
}

/// Keeps rows whose timestamp column is at or before `limit` (UTC micros).
/// Shares the columns, without copying, when every row qualifies (the
/// usual case: as-of is the latest day).
pub(super) fn until(df: &DataFrame, col: &str, limit: i64) -> Result<DataFrame> {
    let mask: BooleanChunked = frame::micros(df, col)?
        .into_iter()
        .map(|v| Some(v.is_some_and(|v| v <= limit)))
        .collect();
    filter_shared(df, &mask)
}

/// `df.filter(mask)`, or a cheap clone of `df` when the mask keeps all.
pub(super) fn filter_shared(df: &DataFrame, mask: &BooleanChunked) -> Result<DataFrame> {
    if mask.all() {
        Ok(df.clone())
    } else {
        Ok(df.filter(mask)?)
    }
}

/// What the last run kept for this one to reuse: the bad reviews of each
/// ratings month (`nightly::bad_reviews`), the rater model's results
/// (`nightly::raters`) and the derived cases (`nightly::cases`).
pub struct Stores<'a> {
    pub bad_reviews: &'a mut BadReviewStore,
    pub raters: &'a mut RaterStore,
    pub cases: &'a mut CaseStore,
}

/// Builds the views as the data stood at the end of `as_of`.
pub fn build_views(
    lake: Vec<(&'static str, LazyFrame)>,
    ratings_months: &RatingMonths,
    spill: &mut Spill,
    stores: Option<Stores>,
    policy: &LoadedPolicy,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<Views> {
    let tz = policy.tz;
    let p = &policy.policy;
    let end = end_of_day(as_of, tz);
    let cal = WorkCalendar::from_policy(p);
    // Managers' 360-degree feedback is about a person, not the department's
    // service: no department result reads it.
    let department_scan = |first: &str, last: &str| -> Result<Option<LazyFrame>> {
        Ok((ratings_months.scan)(first, last)?.map(|lf| lf.filter(feedback_360().not())))
    };
    let ratings_months = &RatingMonths {
        months: ratings_months.months.clone(),
        scan: &department_scan,
    };
    let mut lake: HashMap<&str, LazyFrame> = lake.into_iter().collect();
    let mut take = |name: &str| lake.remove(name).expect("every lake table is present");
    let mut small = |name: &str| -> Result<DataFrame> {
        take(name)
            .collect()
            .map_err(|e| anyhow::anyhow!("cannot read the lake's {name}: {e}"))
    };

    let departments = small("departments")?;
    let staff = small("staff")?;
    let appeals = until(&small("rating_appeals")?, "decided_at", end)?;
    let complaints = until(&small("complaints")?, "received_at", end)?;
    let incidents = until(&small("incidents")?, "occurred_at", end)?;
    let followups = until(&small("followups")?, "at", end)?;
    let by_day = |df: DataFrame, column: &str| -> Result<DataFrame> {
        let mask: BooleanChunked = frame::dates(&df, column)?
            .into_iter()
            .map(|d| Some(d.is_some_and(|d| d <= as_of)))
            .collect();
        filter_shared(&df, &mask)
    };
    let measurements = by_day(small("measurements")?, "period_start")?;
    let plans = by_day(small("improvement_plans")?, "opened_on")?;
    let plan_events = until(&small("plan_events")?, "at", end)?;
    let (ratings, feedback) = {
        let all = take("ratings").filter(col("rated_at").lt_eq(instant(end)));
        (
            all.clone().filter(feedback_360().not()),
            all.filter(feedback_360()),
        )
    };
    let events = take("process_events").filter(col("at").lt_eq(instant(end)));

    // Ratings removed on appeal (decided by as-of) are never scored.
    let removed: PlHashSet<String> = {
        let ids = frame::strs(&appeals, "rating_id")?;
        let decisions = frame::strs(&appeals, "decision")?;
        ids.into_iter()
            .zip(decisions)
            .filter_map(|(id, d)| (d.as_deref() == Some("removed")).then_some(id).flatten())
            .collect()
    };

    let complaints = complaint_view(
        &complaints,
        &cal,
        p.complaints.rectify_working_days,
        tz,
        end,
    )?;
    let bad_review = dated_bad_review(p, tz, bad_review_expr);
    let (bad_review_store, mut store, case_store) = match stores {
        Some(s) => (Some(s.bad_reviews), Some(s.raters), Some(s.cases)),
        None => (None, None, None),
    };
    let (followup_status, followup_rejects, complaints) = {
        // The bad reviews of a set of ratings (before appeals), the
        // ratings that can be one first: a few of all.
        let no_appeals = PlHashSet::new();
        let pick =
            |ratings: LazyFrame| -> Result<DataFrame> {
                let can_be = with_every_column(ratings, &tables::RATINGS)?
                    .filter(dated_bad_review(p, tz, can_be_bad_review));
                scored_ratings(can_be, &no_appeals, &bad_review)
                    .filter(col("bad_review").eq(lit(true)))
                    .select(
                        followups::BAD_REVIEW_COLUMNS
                            .iter()
                            .map(|c| col(*c))
                            .collect::<Vec<_>>(),
                    )
                    .collect()
                    .map_err(|e| anyhow::anyhow!("cannot read the lake's ratings: {e}"))
            };
        // Month by month with what the last run kept, else all at once;
        // then as they stood at as-of.
        let bad_reviews = match bad_review_store {
            Some(kept) => kept
                .bad_reviews(&|month| (ratings_months.scan)(month, month)?.map(pick).transpose())?,
            None => Some(pick(ratings.clone())?),
        };
        let bad_reviews = match bad_reviews {
            Some(df) => {
                let ids = frame::str_refs(&df, "rating_id")?;
                let at = frame::micros(&df, "rated_at")?;
                let keep: BooleanChunked = (0..df.height())
                    .map(|i| {
                        Some(
                            at[i].is_some_and(|t| t <= end)
                                && ids[i].is_none_or(|id| !removed.contains(id)),
                        )
                    })
                    .collect();
                filter_shared(&df, &keep)?
            }
            None => pick(ingest::empty_frame(&tables::RATINGS)?.lazy())?,
        };
        let done = followups::follow_up(
            &bad_reviews,
            &complaints,
            &followups,
            &|day| &p.rules_on(day).followups,
            &cal,
            tz,
            end,
        )?;
        let left_out = done.rejects.height();
        progress.step(&format!(
            "follow-ups: {} bad reviews and complaints, from {} follow-ups{}",
            done.status.height(),
            followups.height(),
            match left_out {
                0 => String::new(),
                n => format!(" ({n} left out: see the followup_rejects mart)"),
            }
        ));
        let complaints = with_rectification(&complaints, &done.status)?;
        (done.status, done.rejects, complaints)
    };
    // Case rows borrow the events' text: made into frames right away, and
    // the events read for them freed; the frames are written out as marts
    // and read back by the queries that need them.
    let (cases_scan, case_time_scan, first_case_day) = match case_store {
        Some(store) => {
            let m = case_reuse::derive(store, spill, p, &cal, tz, end, progress)?;
            (m.cases, m.case_time, m.first_day)
        }
        None => {
            let events = collect_columns(&events, &cases::EVENT_COLUMNS, "process events")?;
            let rows = cases::derive(&events, p, &cal, tz)?.cases;
            let m = case_reuse::write_derived(&rows, events.height(), spill, tz, end, progress)?;
            (m.cases, m.case_time, m.first_day)
        }
    };

    crate::runtime::release_freed_memory();
    let dept_types: HashMap<String, String> = frame::strs(&departments, "dept_id")?
        .into_iter()
        .zip(frame::strs(&departments, "dept_type")?)
        .filter_map(|(d, t)| Some((d?, t?)))
        .collect();
    if let Some(store) = store.as_deref_mut() {
        store.depend_on(&dept_types, &removed)?;
    }
    let rated = rate(
        &Ratings {
            all: ratings.clone(),
            by_months: ratings_months,
            end,
        },
        &removed,
        &dept_types,
        store,
        policy,
        as_of,
        progress,
    )?;
    let first_day = rated.first_day.into_iter().chain(first_case_day).min();

    let tables = vec![
        ("departments", departments),
        ("staff", staff),
        ("rating_appeals", appeals),
        ("complaints", complaints),
        ("incidents", incidents),
        ("measurements", measurements),
        ("followups", followups),
        ("improvement_plans", plans),
        ("plan_events", plan_events),
        ("followup_status", followup_status),
        ("followup_rejects", followup_rejects),
        (
            "satisfaction",
            satisfaction::frame(&rated.satisfaction, as_of)?,
        ),
        ("rater_effects", rated.effects),
        ("rating_flags", rated.flags),
        (
            "reliability",
            raters::reliability_frame(&rated.reliability, as_of)?,
        ),
    ];
    Ok(Views {
        tables,
        scans: vec![
            ("ratings", ratings),
            ("process_events", events),
            ("cases", cases_scan),
            ("case_time", case_time_scan),
        ],
        feedback,
        removed,
        bad_review,
        satisfaction: rated.satisfaction,
        first_day,
    })
}

/// Stage 1: the lake as this run sees it (what ingest staged, else what is
/// published), one scan per table.
pub fn lake(out: &OutDir, progress: &Progress) -> Result<Vec<(&'static str, LazyFrame)>> {
    let lake = read_lake(out)?;
    let mut rows = 0;
    for s in tables::ALL {
        rows += lake::count_rows(out, s.name, s.month_column.is_some())?;
    }
    progress.step(&format!("compute: {rows} lake rows"));
    Ok(lake)
}

/// Stages 2 and 3 in a run: [`build_views`] over the lake's ratings
/// months, each derived mart written to `marts` as soon as it is made.
pub fn views(
    lake: Vec<(&'static str, LazyFrame)>,
    out: &OutDir,
    marts: &Marts,
    stores: Stores,
    policy: &LoadedPolicy,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<Views> {
    let views = build_views(
        lake,
        &RatingMonths {
            months: lake::partition_files(out, "ratings")?.into_keys().collect(),
            scan: &|first, last| lake::scan_months(out, "ratings", first, last),
        },
        &mut |name, mut df, previous| lake::scan_file(&marts.write(name, &mut df, previous)?),
        Some(stores),
        policy,
        as_of,
        progress,
    )
    .map_err(|e| name_damaged_file(out, e))?;
    progress.step(&format!("satisfaction: {} rows", views.satisfaction.len()));
    Ok(views)
}

/// Complaints with each one's rectification as it stood at as-of:
/// `rectified_at` and `rectification` (`on_time`, `late`, `overdue` or
/// `open`) as its follow-ups leave it (`status`: the `followup_status`
/// rows, which hold every complaint of the view).
fn with_rectification(complaints: &DataFrame, status: &DataFrame) -> Result<DataFrame> {
    let of_complaints = status
        .clone()
        .lazy()
        .filter(col("subject_kind").eq(lit("complaint")))
        .select([
            col("subject_id").alias("complaint_id"),
            col("rectified_at").alias("_rectified_at"),
            col("rectify_status").alias("rectification"),
        ]);
    Ok(complaints
        .clone()
        .lazy()
        .join(
            of_complaints,
            [col("complaint_id")],
            [col("complaint_id")],
            JoinArgs {
                maintain_order: MaintainOrderJoin::Left,
                ..JoinArgs::new(JoinType::Left)
            },
        )
        .with_column(col("_rectified_at").alias("rectified_at"))
        .drop(by_name(["_rectified_at"], true, false))
        .collect()?)
}

/// Complaints as they stood at as-of: `due_at` filled from the policy's
/// rectification deadline where missing, `rectified_at` after as-of not
/// yet known (their rectification comes from [`with_rectification`]).
pub(super) fn complaint_view(
    df: &DataFrame,
    cal: &WorkCalendar,
    days: u32,
    tz: Tz,
    end: i64,
) -> Result<DataFrame> {
    let received = frame::micros(df, "received_at")?;
    let due_given = frame::micros(df, "due_at")?;
    let rectified = frame::micros(df, "rectified_at")?;
    let due = (0..df.height())
        .map(|i| due_given[i].or_else(|| received[i].map(|r| cal.deadline(r, days, tz))));
    let rect = rectified.iter().map(|r| r.filter(|r| *r <= end));
    let mut out = df.clone();
    let extra = Builder::new()
        .ts("due_at", due)
        .ts("rectified_at", rect)
        .build()?;
    for c in extra.columns() {
        out.with_column(c.clone())?;
    }
    Ok(out)
}
