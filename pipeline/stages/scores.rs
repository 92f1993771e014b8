//! Stages 4 to 6: indicator values, indicator and department scores,
//! closed periods kept as published, trends and cross-checks.

use super::*;

/// Stage 4: every indicator definition over the views ->
/// `indicator_values`, and the improvement plans verified against them ->
/// `plan_status`, `plan_periods`, `plan_event_rejects` (added to the views).
/// The definitions that read those are measured after they are made.
/// The lake views that scoring and trends do not read are freed after.
pub fn indicator_values(
    views: &mut Views,
    catalog: &[Indicator],
    policy: &LoadedPolicy,
    as_of: NaiveDate,
    out: &OutDir,
    progress: &Progress,
) -> Result<Vec<measure::Value>> {
    let (before, after): (Vec<Indicator>, Vec<Indicator>) =
        catalog.iter().cloned().partition(|i| !i.reads_plans());
    let mut values = measure::compute(&before, &views.sql(), policy.tz)
        .map_err(|e| name_damaged_file(out, e))?;

    let tracked = {
        let index = measure::index(&values);
        let verifiable: HashMap<&str, &Indicator> =
            before.iter().map(|i| (i.id.as_str(), i)).collect();
        let d = views.get("departments");
        let dept_types: HashMap<&str, &str> = frame::str_refs(d, "dept_id")?
            .into_iter()
            .zip(frame::str_refs(d, "dept_type")?)
            .filter_map(|(a, b)| Some((a?, b?)))
            .collect();
        let p = &policy.policy;
        let measured = |ind: &str, dept: &str, period: Period| -> plans::Measured {
            let Some(i) = verifiable.get(ind) else {
                return plans::Measured::Unknown;
            };
            let policy_target = dept_types
                .get(dept)
                .and_then(|t| p.version_for(period.start).indicators.get(*t))
                .and_then(|targets| targets.get(ind))
                .map(|t| t.target);
            plans::Measured::Known {
                // Below the indicator's minimum sample, as scoring has it:
                // no value.
                value: index
                    .get(&(ind, dept, period))
                    .filter(|v| v.n >= i.min_n)
                    .and_then(|v| v.value),
                direction: i.direction,
                policy_target,
            }
        };
        let grain = |due: NaiveDate| {
            Grain::parse(&p.rules_on(due).plans.verify_grain).expect("the policy checks the grain")
        };
        plans::track(
            views.get("improvement_plans"),
            views.get("plan_events"),
            &grain,
            &measured,
            policy.tz,
            as_of,
        )?
    };
    let left_out = tracked.rejects.height();
    progress.step(&format!(
        "plans: {} improvement plans, from {} events{}",
        tracked.status.height(),
        views.get("plan_events").height(),
        match left_out {
            0 => String::new(),
            n => format!(" ({n} left out: see the plan_event_rejects mart)"),
        }
    ));
    views.tables.extend([
        ("plan_status", tracked.status),
        ("plan_periods", tracked.periods),
        ("plan_event_rejects", tracked.rejects),
    ]);
    if !after.is_empty() {
        values.extend(
            measure::compute(&after, &views.sql(), policy.tz)
                .map_err(|e| name_damaged_file(out, e))?,
        );
        // In catalog order, as one pass would give them.
        let position: HashMap<&str, usize> = catalog
            .iter()
            .enumerate()
            .map(|(n, i)| (i.id.as_str(), n))
            .collect();
        values.sort_by_key(|v| position[v.indicator_id.as_str()]);
    }
    views
        .tables
        .retain(|(name, _)| !matches!(*name, "rating_appeals" | "measurements"));
    progress.step(&format!("measure: {} indicator values", values.len()));
    Ok(values)
}

/// Scores, closed periods kept as published, trends and cross-checks: the
/// marts that depend on the scores.
pub fn scores_and_trends(
    views: &Views,
    values: &[measure::Value],
    catalog: &[Indicator],
    policy: &LoadedPolicy,
    as_of: NaiveDate,
    out: &OutDir,
    progress: &Progress,
) -> Result<Vec<(&'static str, DataFrame)>> {
    let departments: Vec<(String, String)> = {
        let d = views.get("departments");
        let mut v: Vec<(String, String)> = frame::strs(d, "dept_id")?
            .into_iter()
            .zip(frame::strs(d, "dept_type")?)
            .filter_map(|(a, b)| Some((a?, b?)))
            .collect();
        v.sort();
        v
    };
    let vetoes = veto_incidents(views.get("incidents"), policy, policy.tz)?;
    let (ind_scores, dept_scores) = match views.first_day {
        Some(first) => score::score(
            &departments,
            values,
            catalog,
            &policy.policy,
            &vetoes,
            first,
            as_of,
        )?,
        None => (Vec::new(), Vec::new()),
    };
    progress.step(&format!("score: {} department-periods", dept_scores.len()));

    // Closed periods keep their published scores (see `model::closed_periods`).
    let close_days = policy.policy.scoring.close_after_days;
    let mut ind_df = score::indicator_scores_frame(&ind_scores, as_of)?;
    let mut dept_df = score::department_scores_frame(&dept_scores, as_of)?;
    closed_periods::add_closed(&mut ind_df, as_of, close_days)?;
    closed_periods::add_closed(&mut dept_df, as_of, close_days)?;
    let previous = |name: &str| -> Result<Option<DataFrame>> {
        // The previous run's published marts, never this run's.
        let p = out.marts().join(format!("{name}.parquet"));
        Ok(if p.is_file() {
            Some(lake::read_parquet(&p)?)
        } else {
            None
        })
    };
    let (dept_df, ind_df, restatements) = closed_periods::keep_closed(
        previous("department_scores")?,
        previous("indicator_scores")?,
        dept_df,
        ind_df,
    )?;
    if restatements.height() > 0 {
        progress.warn(&format!(
            "{} figure(s) of closed periods differ from a recomputation; the published figures are kept and the differences listed in marts/restatements.parquet",
            restatements.height()
        ));
    }

    // Trends and cross-checks read the published scores (closed periods
    // as published).
    let n_raters: HashMap<(String, crate::time::periods::Period), usize> = views
        .satisfaction
        .iter()
        .filter(|r| r.rater_group == "all")
        .map(|r| ((r.dept_id.clone(), r.period), r.n_raters))
        .collect();
    let series = trends::series(&ind_df, &dept_df, catalog, &n_raters)?;
    let (trend_rows, series_rows) = trends::compute(&series, &policy.policy);
    let findings = trends::cross_checks(&trend_rows, &policy.policy);
    progress.step(&format!(
        "trends: {} series, {} cross-check findings",
        trend_rows.len(),
        findings.len()
    ));

    let trends_df = trends::trends_frame(&trend_rows)?;
    let lowest = policy.policy.grades.last().map_or("", |g| g.id.as_str());
    let called_in = escalation::escalations(
        &dept_df,
        &trends_df,
        views.get("followup_status"),
        views.get("plan_status"),
        &|day| &policy.policy.rules_on(day).escalation,
        lowest,
        as_of,
    )?;
    progress.step(&format!("escalation: {} to call in", called_in.len()));

    Ok(vec![
        ("indicator_scores", ind_df),
        ("department_scores", dept_df),
        ("restatements", restatements),
        ("escalations", escalation::frame(&called_in)?),
        ("trends", trends_df),
        ("trend_series", trends::series_frame(&series_rows)?),
        ("cross_checks", trends::findings_frame(&findings)?),
    ])
}

pub(super) fn veto_incidents(
    df: &DataFrame,
    policy: &LoadedPolicy,
    tz: Tz,
) -> Result<Vec<score::VetoIncident>> {
    let kinds = &policy.policy.veto.incident_kinds;
    let ids = frame::strs(df, "incident_id")?;
    let depts = frame::strs(df, "dept_id")?;
    let k = frame::strs(df, "kind")?;
    let confirmed = frame::bools(df, "confirmed")?;
    let at = frame::micros(df, "occurred_at")?;
    Ok((0..df.height())
        .filter(|&i| confirmed[i] == Some(true) && k[i].as_ref().is_some_and(|k| kinds.contains(k)))
        .filter_map(|i| {
            Some(score::VetoIncident {
                dept_id: depts[i].clone()?,
                incident_id: ids[i].clone()?,
                kind: k[i].clone()?,
                day: local_day(at[i]?, tz),
            })
        })
        .collect())
}
