//! Stage 9, people: the facts that carry a `staff_id` (service objects'
//! ratings, resolved cases, complaints, incidents) laid at each person's
//! door through the staff table, then the staff measures and the monthly
//! 服务之星 (`model::staff`). A staff id the staff table does not know on
//! the fact's day, or one that places its person in another department
//! than the fact's, is kept where it is and listed in `staff_exceptions`.

use std::collections::BTreeMap;

use super::*;
use crate::model::staff::{self, Fact, FeedbackRating, Key, Member, Names, Roster, StaffFact};
use crate::time::calendar::LocalDays;

/// The rater groups whose ratings of a person count: service objects.
const CLIENT_GROUPS: [&str; 2] = ["client_internal", "client_external"];

/// The staff marts: `staff_measures`, `service_stars`, `staff_exceptions`.
pub fn people(
    views: &Views,
    policy: &LoadedPolicy,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<Vec<Mart>> {
    let roster = roster(views.get("staff"))?;
    let mut facts = Facts::new(&roster, policy.tz);
    if !roster.is_empty() {
        ratings(views, policy, &mut facts)?;
        cases(views, &mut facts)?;
        complaints_and_incidents(views, &mut facts)?;
    }
    if !roster.is_empty() {
        feedback_ratings(views, &mut facts)?;
    }
    let Facts {
        facts,
        names,
        feedback,
        exceptions,
        ..
    } = facts;
    let p = &policy.policy.staff;
    let mut measures = staff::measures(&facts, &names, p);
    let stars = staff::stars(&mut measures, p);
    // A period is published once it has closed.
    let closed_by = as_of - Duration::days(policy.policy.scoring.close_after_days as i64);
    let review = staff::feedback(
        &feedback,
        &staff::FeedbackRules {
            weights: &p.review360.weights,
            min_raters: &|g| policy.policy.raters.min_raters(g),
            closed_by,
        },
    );
    let hr = staff::hr_lists(
        &measures,
        &staff::HrRules {
            policy: &policy.policy,
            closed_by,
        },
    );
    if !roster.is_empty() {
        progress.step(&format!(
            "staff: {} people, {} facts, {} stars, {} 360 ratings of managers, {} on HR lists{}",
            roster.members.len(),
            facts.len(),
            stars.len(),
            feedback.len(),
            hr.len(),
            match exceptions.values().map(|e| e.0).sum::<usize>() {
                0 => String::new(),
                n => format!(" ({n} facts with a staff id the staff table does not place: see staff_exceptions)"),
            }
        ));
    }
    Ok(vec![
        ("staff_measures", measures_frame(&measures, as_of)?),
        (
            "service_stars",
            stars_frame(&stars, &roster, policy, as_of)?,
        ),
        ("staff_exceptions", exceptions_frame(&exceptions)?),
        ("manager_feedback", feedback_frame(&review, as_of)?),
        ("hr_lists", hr_frame(&hr, &roster, as_of)?),
    ])
}

fn roster(df: &DataFrame) -> Result<Roster> {
    let ids = frame::strs(df, "staff_id")?;
    let names = frame::strs(df, "name")?;
    let en = frame::strs(df, "name_en")?;
    let depts = frame::strs(df, "dept_id")?;
    let roles = frame::strs(df, "role")?;
    let from = frame::dates(df, "valid_from")?;
    let to = frame::dates(df, "valid_to")?;
    let mut members = Vec::with_capacity(df.height());
    for i in 0..df.height() {
        members.push(Member {
            staff_id: ids[i].clone().unwrap_or_default(),
            name: names[i].clone().unwrap_or_default(),
            name_en: en[i].clone(),
            dept_id: depts[i].clone(),
            role: roles[i].clone().unwrap_or_default(),
            from: from[i],
            to: to[i],
        });
    }
    Ok(Roster::new(members))
}

/// Where a staff id the roster does not place came from.
type ExceptionKey = (&'static str, String, &'static str, String, String);

/// The facts laid at staff members' doors, and the ones that could not be.
struct Facts<'a> {
    roster: &'a Roster,
    days: LocalDays,
    facts: Vec<StaffFact>,
    /// The staff and department ids of `facts`.
    names: Names,
    /// Responses about managers, for their 360.
    feedback: Vec<FeedbackRating>,
    /// (table, month, issue, staff id, fact's department) -> (count, first id).
    exceptions: BTreeMap<ExceptionKey, (usize, String)>,
}

impl<'a> Facts<'a> {
    fn new(roster: &'a Roster, tz: Tz) -> Facts<'a> {
        Facts {
            roster,
            days: LocalDays::new(tz),
            facts: Vec::new(),
            names: Names::default(),
            feedback: Vec::new(),
            exceptions: BTreeMap::new(),
        }
    }

    /// The local day of instant `at` (UTC micros).
    fn day(&mut self, at: i64) -> NaiveDate {
        self.days.day(at)
    }

    /// The department the roster puts `staff_id` in on `day` (`None`: no
    /// one's) and whether they are a manager then, listing what is amiss
    /// as an exception.
    fn place(
        &mut self,
        table: &'static str,
        id: &str,
        staff_id: &str,
        dept: &str,
        day: NaiveDate,
    ) -> Option<(Key, bool)> {
        let roster = self.roster;
        let member = roster.at(staff_id, day);
        let (placed, issue) = roster.placement(member, staff_id, dept);
        if let Some(issue) = issue {
            self.exception(table, id, staff_id, dept, day, issue);
        }
        let manager = member.is_some_and(|m| m.is_manager());
        placed.map(|d| (self.names.key(d), manager))
    }

    /// `fact`, of `staff_id` in department `dept` (a key) on `day`.
    fn push(&mut self, staff_id: &str, dept: Key, day: NaiveDate, fact: Fact) {
        let staff = self.names.key(staff_id);
        self.facts.push(StaffFact {
            staff,
            dept,
            day,
            fact,
        });
    }

    fn exception(
        &mut self,
        table: &'static str,
        id: &str,
        staff_id: &str,
        dept: &str,
        day: NaiveDate,
        issue: &'static str,
    ) {
        let e = self
            .exceptions
            .entry((
                table,
                day.format("%Y-%m").to_string(),
                issue,
                staff_id.to_string(),
                dept.to_string(),
            ))
            .or_insert_with(|| (0, id.to_string()));
        e.0 += 1;
    }

    /// Lays `fact` at `staff_id`'s door on `day`, in the department the
    /// roster puts them in then.
    fn add(
        &mut self,
        table: &'static str,
        id: &str,
        staff_id: &str,
        dept: &str,
        day: NaiveDate,
        fact: Fact,
    ) {
        if let Some((dept, _)) = self.place(table, id, staff_id, dept, day) {
            self.push(staff_id, dept, day, fact);
        }
    }
}

/// Service objects' responses about a person: the mean of each
/// response's items, with its rater's effect from the rater model removed.
fn ratings(views: &Views, policy: &LoadedPolicy, facts: &mut Facts) -> Result<()> {
    let groups: Series = CLIENT_GROUPS.iter().copied().collect();
    let scored = views.scored_ratings();
    let overall = || col("item").eq(lit("overall"));
    let clients = scored.filter(
        col("staff_id").is_not_null().and(
            col("rater_group")
                .is_in(lit(groups).implode(false), false)
                .fill_null(lit(false)),
        ),
    );
    let df = responses(
        clients,
        [
            col("score_100").filter(overall()).first().alias("overall"),
            col("bad_review").filter(overall()).first(),
        ],
    )?;
    // Rater effects by rater and estimation period, for raters on the
    // common scale.
    let effects = views.get("rater_effects");
    let grain = raters::estimation_grain(&policy.policy.raters);
    let severity: PlHashMap<(&str, NaiveDate), f64> = {
        let ids = frame::str_refs(effects, "rater_id")?;
        let starts = frame::dates(effects, "period_start")?;
        let sev = frame::f64s(effects, "severity")?;
        let separate = frame::bools(effects, "separate_group")?;
        (0..effects.height())
            .filter(|&i| separate[i] != Some(true))
            .filter_map(|i| Some(((ids[i]?, starts[i]?), sev[i]?)))
            .collect()
    };
    // Bad reviews not rectified (or explained) on time, as of as-of.
    let status = views.get("followup_status");
    let unrectified: PlHashSet<&str> = {
        let kind = frame::str_refs(status, "subject_kind")?;
        let id = frame::str_refs(status, "subject_id")?;
        let st = frame::str_refs(status, "rectify_status")?;
        (0..status.height())
            .filter(|&i| kind[i] == Some("rating") && st[i] != Some("on_time"))
            .filter_map(|i| id[i])
            .collect()
    };
    let (ids, at, depts, staff_ids) = located(&df, "rating_id", "rated_at")?;
    let rater = frame::str_refs(&df, "rater_id")?;
    let score = frame::f64s(&df, "score_100")?;
    let bad = frame::bools(&df, "bad_review")?;
    let overall = frame::f64s(&df, "overall")?;
    for i in 0..df.height() {
        let (Some(id), Some(at), Some(dept), Some(staff), Some(score)) =
            (ids[i], at[i], depts[i], staff_ids[i], score[i])
        else {
            continue;
        };
        let day = facts.day(at);
        let fair = rater[i]
            .and_then(|r| severity.get(&(r, Period::containing(grain, day).start)))
            .map(|s| score - s);
        let is_bad = bad[i] == Some(true);
        let fact = Fact::Rating {
            score,
            fair,
            // The top two of five levels, as good_review_rate counts them.
            good: overall[i].map(|o| o >= 75.0),
            bad: is_bad,
            unrectified: is_bad && unrectified.contains(id),
        };
        let Some((dept_key, manager)) = facts.place("ratings", id, staff, dept, day) else {
            continue;
        };
        if manager {
            facts.feedback.push(FeedbackRating {
                staff_id: staff.to_string(),
                dept_id: facts.names.name(dept_key).to_string(),
                day,
                group: "client",
                // A response without a rater is a rater of its own.
                rater_id: rater[i].unwrap_or(id).to_string(),
                score,
            });
        }
        facts.push(staff, dept_key, day, fact);
    }
    Ok(())
}

/// Superiors', peers', subordinates' and the managers' own responses about
/// managers (the mean of each response's items). One about a person who
/// is not a manager that day is listed as `not_a_manager`.
fn feedback_ratings(views: &Views, facts: &mut Facts) -> Result<()> {
    let df = responses(views.scored_feedback(), [col("rater_group").first()])?;
    let (ids, at, depts, staff_ids) = located(&df, "rating_id", "rated_at")?;
    let rater = frame::str_refs(&df, "rater_id")?;
    let groups = frame::str_refs(&df, "rater_group")?;
    let score = frame::f64s(&df, "score_100")?;
    for i in 0..df.height() {
        let (Some(id), Some(at), Some(dept), Some(staff), Some(group), Some(score)) =
            (ids[i], at[i], depts[i], staff_ids[i], groups[i], score[i])
        else {
            continue;
        };
        let Some(&group) = staff::ANONYMOUS
            .iter()
            .chain(&staff::OPEN)
            .find(|g| **g == group)
        else {
            continue;
        };
        let day = facts.day(at);
        let Some((dept_key, manager)) = facts.place("ratings", id, staff, dept, day) else {
            continue;
        };
        if !manager {
            facts.exception("ratings", id, staff, dept, day, "not_a_manager");
            continue;
        }
        facts.feedback.push(FeedbackRating {
            staff_id: staff.to_string(),
            dept_id: facts.names.name(dept_key).to_string(),
            day,
            group,
            rater_id: rater[i].unwrap_or(id).to_string(),
            score,
        });
    }
    Ok(())
}

/// Cases a person resolved: the staff id on the case's last `resolved`
/// event, with the case's facts (on time, reopened) as derived.
fn cases(views: &Views, facts: &mut Facts) -> Result<()> {
    let scan = |name: &str| {
        views
            .scans
            .iter()
            .find(|(n, _)| *n == name)
            .expect("a scanned view")
            .1
            .clone()
    };
    let resolvers = scan("process_events")
        .filter(
            col("event")
                .eq(lit("resolved"))
                .and(col("staff_id").is_not_null()),
        )
        .select([col("case_id"), col("at"), col("dept_id"), col("staff_id")])
        .sort(
            ["case_id", "at"],
            SortMultipleOptions::default().with_maintain_order(true),
        )
        .group_by([col("case_id")])
        .agg([
            col("at").last(),
            col("dept_id").last(),
            col("staff_id").last(),
        ]);
    let df = scan("cases")
        .filter(col("status").eq(lit("resolved")))
        .select([col("case_id"), col("on_time"), col("reopen_count")])
        .join(
            resolvers,
            [col("case_id")],
            [col("case_id")],
            JoinArgs::new(JoinType::Inner),
        )
        .sort(["case_id"], SortMultipleOptions::default())
        .collect()
        .map_err(|e| anyhow::anyhow!("cannot read the cases and their events: {e}"))?;
    let (ids, at, depts, staff_ids) = located(&df, "case_id", "at")?;
    let on_time = frame::bools(&df, "on_time")?;
    let reopened = frame::i64s(&df, "reopen_count")?;
    for i in 0..df.height() {
        let (Some(id), Some(at), Some(dept), Some(staff)) = (ids[i], at[i], depts[i], staff_ids[i])
        else {
            continue;
        };
        let fact = Fact::Case {
            on_time: on_time[i],
            first_time: reopened[i].unwrap_or(0) == 0,
        };
        let day = facts.day(at);
        facts.add("process_events", id, staff, dept, day, fact);
    }
    Ok(())
}

/// Valid complaints and confirmed incidents that name a person.
fn complaints_and_incidents(views: &Views, facts: &mut Facts) -> Result<()> {
    for (table, id_col, at_col, flag, fact) in [
        (
            "complaints",
            "complaint_id",
            "received_at",
            "valid",
            Fact::ValidComplaint,
        ),
        (
            "incidents",
            "incident_id",
            "occurred_at",
            "confirmed",
            Fact::ConfirmedIncident,
        ),
    ] {
        let df = views.get(table);
        let (ids, at, depts, staff_ids) = located(df, id_col, at_col)?;
        let yes = frame::bools(df, flag)?;
        for i in 0..df.height() {
            let (Some(id), Some(at), Some(dept), Some(staff), Some(true)) =
                (ids[i], at[i], depts[i], staff_ids[i], yes[i])
            else {
                continue;
            };
            let day = facts.day(at);
            facts.add(table, id, staff, dept, day, fact);
        }
    }
    Ok(())
}

/// Scored item ratings as responses: per `rating_id`, its time,
/// department, staff id and rater, the mean of its items' `score_100`,
/// and `more`. Groups in order of first appearance, each one's items in
/// file order: the same sums on every run.
fn responses<const N: usize>(items: LazyFrame, more: [Expr; N]) -> Result<DataFrame> {
    let mut agg = vec![
        col("rated_at").first(),
        col("dept_id").first(),
        col("staff_id").first(),
        col("rater_id").first(),
        col("score_100").mean(),
    ];
    agg.extend(more);
    items
        .group_by_stable([col("rating_id")])
        .agg(agg)
        .collect()
        .map_err(|e| anyhow::anyhow!("cannot read the lake's ratings: {e}"))
}

/// A fact table's id, instant (UTC micros), department and staff id
/// columns.
#[allow(clippy::type_complexity)]
fn located<'a>(
    df: &'a DataFrame,
    id: &str,
    at: &str,
) -> Result<(
    Vec<Option<&'a str>>,
    Vec<Option<i64>>,
    Vec<Option<&'a str>>,
    Vec<Option<&'a str>>,
)> {
    Ok((
        frame::str_refs(df, id)?,
        frame::micros(df, at)?,
        frame::str_refs(df, "dept_id")?,
        frame::str_refs(df, "staff_id")?,
    ))
}

fn measures_frame(m: &[staff::StaffMeasure], as_of: NaiveDate) -> Result<DataFrame> {
    let periods: Vec<Period> = m.iter().map(|r| r.period).collect();
    let count = |f: fn(&staff::StaffMeasure) -> usize| m.iter().map(move |r| Some(f(r) as i64));
    let mut b = Builder::new()
        .periods(&periods, as_of)
        .str("dept_id", m.iter().map(|r| Some(r.dept_id.as_str())))
        .str("staff_id", m.iter().map(|r| Some(r.staff_id.as_str())))
        .i64("ratings", count(|r| r.ratings))
        .f64("observed_mean", m.iter().map(|r| r.observed_mean))
        .f64("fair_mean", m.iter().map(|r| r.fair_mean))
        .i64("good_reviews", count(|r| r.good_reviews))
        .i64("bad_reviews", count(|r| r.bad_reviews))
        .i64(
            "unrectified_bad_reviews",
            count(|r| r.unrectified_bad_reviews),
        )
        .i64("cases", count(|r| r.cases))
        .f64("on_time_rate", m.iter().map(|r| r.on_time_rate))
        .f64("first_time_rate", m.iter().map(|r| r.first_time_rate))
        .i64("valid_complaints", count(|r| r.valid_complaints))
        .i64("confirmed_incidents", count(|r| r.confirmed_incidents));
    for (k, part) in staff::PARTS.iter().enumerate() {
        b = b.f64(
            &format!("points_{part}"),
            m.iter().map(move |r| r.points[k]),
        );
    }
    b.f64("composite_observed", m.iter().map(|r| r.composite_observed))
        .f64("composite", m.iter().map(|r| r.composite))
        .i64(
            "rank_in_dept",
            m.iter().map(|r| r.rank_in_dept.map(|n| n as i64)),
        )
        .bool("star_eligible", m.iter().map(|r| r.star_eligible))
        .str(
            "not_eligible_because",
            m.iter().map(|r| r.not_eligible_because.as_deref()),
        )
        .build()
}

fn stars_frame(
    s: &[staff::Star],
    roster: &Roster,
    policy: &LoadedPolicy,
    as_of: NaiveDate,
) -> Result<DataFrame> {
    let periods: Vec<Period> = s.iter().map(|r| r.period).collect();
    let close = policy.policy.scoring.close_after_days as i64;
    let member = |r: &staff::Star| roster.as_of(&r.staff_id, r.period.end);
    Builder::new()
        .periods(&periods, as_of)
        .str("scope", s.iter().map(|r| Some(r.scope)))
        .str("dept_id", s.iter().map(|r| Some(r.dept_id.as_str())))
        .i64("rank", s.iter().map(|r| Some(r.rank as i64)))
        .str("staff_id", s.iter().map(|r| Some(r.staff_id.as_str())))
        .str("name", s.iter().map(|r| member(r).map(|m| m.name.as_str())))
        .str(
            "name_en",
            s.iter()
                .map(|r| member(r).and_then(|m| m.name_en.as_deref())),
        )
        .f64("composite", s.iter().map(|r| Some(r.composite)))
        .i64("ratings", s.iter().map(|r| Some(r.ratings as i64)))
        .f64("fair_mean", s.iter().map(|r| r.fair_mean))
        .i64(
            "good_reviews",
            s.iter().map(|r| Some(r.good_reviews as i64)),
        )
        .i64("bad_reviews", s.iter().map(|r| Some(r.bad_reviews as i64)))
        .i64("cases", s.iter().map(|r| Some(r.cases as i64)))
        .i64("run_months", s.iter().map(|r| Some(r.run_months as i64)))
        .bool(
            "final",
            s.iter()
                .map(|r| Some(r.period.end + Duration::days(close) <= as_of)),
        )
        .str("reason_zh", s.iter().map(|r| Some(r.reason_zh.as_str())))
        .str("reason_en", s.iter().map(|r| Some(r.reason_en.as_str())))
        .build()
}

fn exceptions_frame(e: &BTreeMap<ExceptionKey, (usize, String)>) -> Result<DataFrame> {
    Builder::new()
        .str("table", e.keys().map(|k| Some(k.0)))
        .str("month", e.keys().map(|k| Some(k.1.as_str())))
        .str("issue", e.keys().map(|k| Some(k.2)))
        .str("staff_id", e.keys().map(|k| Some(k.3.as_str())))
        .str("dept_id", e.keys().map(|k| Some(k.4.as_str())))
        .i64("records", e.values().map(|v| Some(v.0 as i64)))
        .str("example_id", e.values().map(|v| Some(v.1.as_str())))
        .build()
}

fn feedback_frame(r: &[staff::FeedbackRow], as_of: NaiveDate) -> Result<DataFrame> {
    let periods: Vec<Period> = r.iter().map(|r| r.period).collect();
    Builder::new()
        .periods(&periods, as_of)
        .str("dept_id", r.iter().map(|r| Some(r.dept_id.as_str())))
        .str("staff_id", r.iter().map(|r| Some(r.staff_id.as_str())))
        .str("rater_group", r.iter().map(|r| Some(r.rater_group)))
        .str("groups", r.iter().map(|r| Some(r.groups.as_str())))
        .i64("raters", r.iter().map(|r| Some(r.raters as i64)))
        .i64("ratings", r.iter().map(|r| Some(r.ratings as i64)))
        .f64("mean", r.iter().map(|r| r.mean))
        .str("withheld", r.iter().map(|r| r.withheld))
        .build()
}

fn hr_frame(r: &[staff::HrRow], roster: &Roster, as_of: NaiveDate) -> Result<DataFrame> {
    let periods: Vec<Period> = r.iter().map(|r| r.year).collect();
    let member = |r: &staff::HrRow| roster.as_of(&r.staff_id, r.year.end);
    let count = |v: Option<usize>| v.map(|n| n as i64);
    Builder::new()
        .periods(&periods, as_of)
        .str("dept_id", r.iter().map(|r| Some(r.dept_id.as_str())))
        .str("list", r.iter().map(|r| Some(r.list)))
        .str("staff_id", r.iter().map(|r| Some(r.staff_id.as_str())))
        .str("name", r.iter().map(|r| member(r).map(|m| m.name.as_str())))
        .str(
            "name_en",
            r.iter()
                .map(|r| member(r).and_then(|m| m.name_en.as_deref())),
        )
        .f64("composite", r.iter().map(|r| r.composite))
        .str("grade", r.iter().map(|r| r.grade.as_deref()))
        .i64("rank_in_dept", r.iter().map(|r| count(r.rank_in_dept)))
        .i64("ranked", r.iter().map(|r| Some(r.ranked as i64)))
        .str(
            "previous_grade",
            r.iter().map(|r| r.previous_grade.as_deref()),
        )
        .i64("months", r.iter().map(|r| count(r.months)))
        .f64("trend_tau", r.iter().map(|r| r.trend_tau))
        .f64("trend_p", r.iter().map(|r| r.trend_p))
        .build()
}
