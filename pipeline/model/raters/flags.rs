//! One estimation period's checks: the model fitted, raters flagged
//! (lenient, severe, favouritism, hostility, straight lines, outliers, self
//! inflation), responses excluded, scores adjusted; and the marts of effects
//! and flags.

use super::*;

/// The rater model, flags and exclusions of one estimation period, whose
/// item ratings are `rows`, into `out`, whose `adjusted` is by position in
/// `rows`.
pub(super) fn check_period(
    ratings: &[ItemRating],
    rows: &[usize],
    period: Period,
    policy: &RaterPolicy,
    out: &mut Outcome,
) {
    let th = &policy.flags;
    let (mut depts, mut raters, mut items) = (Ids::new(), Ids::new(), Ids::new());
    let obs: Vec<Obs> = rows
        .iter()
        .map(|&i| {
            let r = &ratings[i];
            Obs {
                dept: depts.id_by(r.keys.dept, &r.dept_id),
                rater: raters.id_by(r.keys.rater, &r.rater_id),
                item: items.id_by(r.keys.item, &r.item),
                y: r.y,
            }
        })
        .collect();
    let (n_dept, n_rater, n_item) = (depts.names.len(), raters.names.len(), items.names.len());
    // Per-group and per-rater observation lists: every step below walks
    // these, keeping the whole check linear in the number of ratings.
    let group_of = components(&obs, n_dept, n_rater);
    let mut members_of: Vec<Vec<usize>> = Vec::new();
    for (i, &g) in group_of.iter().enumerate() {
        if members_of.len() <= g {
            members_of.resize(g + 1, Vec::new());
        }
        members_of[g].push(i);
    }
    let mut by_rater: Vec<Vec<usize>> = vec![Vec::new(); n_rater];
    for (i, o) in obs.iter().enumerate() {
        by_rater[o.rater].push(i);
    }

    let mut residual = vec![0.0; obs.len()];
    let mut sigma_of = vec![0.0; obs.len()];
    // rater -> (effect, standard error, ratings, separate group)
    let mut stats: Vec<Option<(f64, f64, usize, bool)>> = vec![None; n_rater];
    for (g, members) in members_of.iter().enumerate() {
        let sub: Vec<Obs> = members.iter().map(|&i| obs[i]).collect();
        let f = fit(&sub, n_dept, n_rater, n_item, policy.shrinkage);
        for (local, &i) in members.iter().enumerate() {
            let k = obs[i].rater;
            residual[i] = f.residuals[local];
            sigma_of[i] = f.sigma;
            let se = f.sigma / (f.rater_n[k] as f64 + policy.shrinkage).sqrt();
            stats[k] = Some((f.rater[k], se, f.rater_n[k], g > 0));
            if g == 0 {
                out.adjusted[i] = Some(obs[i].y - f.rater[k]);
            }
        }
    }

    // Responses numbered in id order: every walk over responses below goes
    // in that order, and each response's items in input order.
    let (response_of, response_ids) = number_responses(ratings, rows);
    let mut responses: Vec<Vec<usize>> = vec![Vec::new(); response_ids.len()];
    for (i, &r) in response_of.iter().enumerate() {
        responses[r as usize].push(i);
    }

    // Spread of response-mean residuals, per connected group.
    let response_resid: Vec<(f64, usize, usize)> = responses
        .iter()
        .map(|idx| {
            let sum = idx.iter().fold(0.0, |acc, &i| acc + residual[i]);
            (sum, idx.len(), group_of[idx[0]])
        })
        .collect();
    let mut response_sigma = vec![0.0; members_of.len()];
    let mut response_n = vec![0usize; members_of.len()];
    for (sum, n, g) in &response_resid {
        response_sigma[*g] += (sum / *n as f64).powi(2);
        response_n[*g] += 1;
    }
    for (s, n) in response_sigma.iter_mut().zip(&response_n) {
        *s = (*s / (*n).max(2).saturating_sub(1) as f64).sqrt();
    }

    let mut flags: Vec<(usize, &'static str, String)> = Vec::new();
    let mut rater_flags: Vec<BTreeSet<String>> = vec![BTreeSet::new(); n_rater];
    for k in 0..n_rater {
        let Some((sev, _, _, separate)) = stats[k] else {
            continue;
        };
        if separate {
            rater_flags[k].insert("separate_group".into());
        }
        let sigma = sigma_of[by_rater[k][0]];
        let resp_sigma = response_sigma[group_of[by_rater[k][0]]];
        // What each of the rater's ratings says about the rater: the score
        // less the overall, department and item effects.
        let partial = |i: usize| residual[i] + sev;
        let n_k = by_rater[k].len() as f64;
        let total: f64 = by_rater[k].iter().map(|&i| partial(i)).sum();
        let mut per_dept: BTreeMap<usize, BTreeMap<u32, Vec<usize>>> = BTreeMap::new();
        for &i in &by_rater[k] {
            per_dept
                .entry(obs[i].dept)
                .or_default()
                .entry(response_of[i])
                .or_default()
                .push(i);
        }
        // Each department's response means, in response order.
        let resp_mean =
            |idx: &Vec<usize>| idx.iter().map(|&i| partial(i)).sum::<f64>() / idx.len() as f64;
        let means: BTreeMap<usize, Vec<f64>> = per_dept
            .iter()
            .map(|(j, r)| (*j, r.values().map(resp_mean).collect()))
            .collect();
        // Favouritism / hostility: the rater's ratings of one department
        // against its ratings of the other departments it rates (so
        // favouring one department is neither mistaken for leniency nor
        // hidden by it). Items of one response share the occasion, so the
        // test is on responses.
        // One department at a time, the most extreme first, each judged
        // against the departments not yet singled out.
        let (mut singled_sum, mut singled_n) = (0.0, 0.0);
        let mut singled: BTreeSet<usize> = BTreeSet::new();
        loop {
            let mut best: Option<(f64, usize, &'static str, f64, usize)> = None;
            for (j, responses) in &per_dept {
                let n = responses.len();
                if singled.contains(j) || n < th.favouritism_min_ratings as usize {
                    continue;
                }
                // Two-sample comparison of response means: this department
                // against the rater's other departments not singled out.
                let here = &means[j];
                let elsewhere: Vec<f64> = means
                    .iter()
                    .filter(|(d, _)| *d != j && !singled.contains(*d))
                    .flat_map(|(_, m)| m.iter().copied())
                    .collect();
                if elsewhere.is_empty() {
                    continue;
                }
                let mean = here.iter().sum::<f64>() / n as f64
                    - elsewhere.iter().sum::<f64>() / elsewhere.len() as f64;
                let se = resp_sigma * (1.0 / n as f64 + 1.0 / elsewhere.len() as f64).sqrt();
                let z = if se > 0.0 { mean / se } else { 0.0 };
                let flag = if mean >= th.favouritism_points && z >= th.favouritism_z {
                    "favouritism"
                } else if mean <= -th.favouritism_points && z <= -th.favouritism_z {
                    "hostility"
                } else {
                    continue;
                };
                if best.is_none_or(|b| z.abs() > b.0.abs()) {
                    best = Some((z, *j, flag, mean, n));
                }
            }
            let Some((z, j, flag, mean, n)) = best else {
                break;
            };
            let responses = &per_dept[&j];
            singled.insert(j);
            singled_sum += responses
                .values()
                .flatten()
                .map(|&i| partial(i))
                .sum::<f64>();
            singled_n += responses.values().map(|v| v.len() as f64).sum::<f64>();
            rater_flags[k].insert(flag.into());
            let detail = format!(
                "{mean:+.1} points against its ratings of other departments, for {} over {n} responses ({z:+.1} SE)",
                depts.names[j]
            );
            for &i in responses.values().flatten() {
                flags.push((i, flag, detail.clone()));
            }
        }
        // Lenient / severe: large in points and in standard errors, judged
        // on the departments the rater does not single out.
        let rest_n = n_k - singled_n;
        if rest_n > 0.0 {
            let lean = (total - singled_sum) / (rest_n + policy.shrinkage);
            let se = sigma / (rest_n + policy.shrinkage).sqrt();
            let z = if se > 0.0 { lean / se } else { 0.0 };
            if lean.abs() >= th.severity_points && z.abs() >= th.severity_z {
                let flag = if lean > 0.0 { "lenient" } else { "severe" };
                rater_flags[k].insert(flag.into());
                let detail = format!("rater effect {lean:+.1} points ({z:+.1} standard errors)");
                for &i in &by_rater[k] {
                    flags.push((i, flag, detail.clone()));
                }
            }
        }
    }
    // Straight-lining: one response, the same score on many items.
    for idx in &responses {
        let first = ratings[rows[idx[0]]].raw;
        if idx.len() >= th.straight_line_min_items as usize
            && idx.iter().all(|&i| ratings[rows[i]].raw == first)
        {
            rater_flags[obs[idx[0]].rater].insert("straight_line".into());
            let detail = format!("the same score ({first}) on all {} items", idx.len());
            for &i in idx {
                flags.push((i, "straight_line", detail.clone()));
            }
        }
    }
    // Outliers: single ratings far from the model.
    for (i, e) in residual.iter().enumerate() {
        if sigma_of[i] > 0.0 && (e / sigma_of[i]).abs() >= th.outlier_z {
            rater_flags[obs[i].rater].insert("outlier".into());
            let detail = format!(
                "residual {e:+.1} points ({:+.1} residual SD)",
                e / sigma_of[i]
            );
            flags.push((i, "outlier", detail));
        }
    }
    // Self inflation: a department's self ratings far above the others'.
    let mut self_rows: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    let mut others: PlHashMap<usize, (f64, usize)> = PlHashMap::default();
    for (i, &row) in rows.iter().enumerate() {
        if &*ratings[row].group == "self" {
            self_rows.entry(obs[i].dept).or_default().push(i);
        } else {
            let e = others.entry(obs[i].dept).or_default();
            e.0 += obs[i].y;
            e.1 += 1;
        }
    }
    for (j, idx) in self_rows {
        let Some(&(sum, n)) = others.get(&j) else {
            continue;
        };
        let own = idx.iter().map(|&i| obs[i].y).sum::<f64>() / idx.len() as f64;
        let gap = own - sum / n as f64;
        if gap >= th.self_inflation_points {
            let detail = format!("self rating {gap:+.1} points above the others' mean");
            for i in idx {
                rater_flags[obs[i].rater].insert("self_inflation".into());
                flags.push((i, "self_inflation", detail.clone()));
            }
        }
    }

    // Exclusions, decided per response.
    let excluding: PlHashSet<&str> = if policy.handling == "exclude" {
        policy.exclude_flags.iter().map(String::as_str).collect()
    } else {
        PlHashSet::default()
    };
    for (i, flag, _) in &flags {
        if excluding.contains(flag) {
            out.excluded
                .entry(ratings[rows[*i]].rating_id.to_string())
                .or_insert_with(|| (*flag).to_string());
        }
    }
    if policy.trim_extremes {
        // Per department: drop the highest and the lowest response.
        let mut per_dept: BTreeMap<usize, Vec<(f64, &str)>> = BTreeMap::new();
        for (id, idx) in response_ids.iter().zip(&responses) {
            let mean = idx.iter().map(|&i| obs[i].y).sum::<f64>() / idx.len() as f64;
            per_dept
                .entry(obs[idx[0]].dept)
                .or_default()
                .push((mean, id));
        }
        for list in per_dept.values_mut() {
            if list.len() < 3 {
                continue;
            }
            list.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(b.1)));
            for (_, id) in [list[0], list[list.len() - 1]] {
                out.excluded
                    .entry(id.to_string())
                    .or_insert_with(|| "trimmed".into());
            }
        }
    }

    for (i, flag, detail) in flags {
        let r = &ratings[rows[i]];
        out.flags.push(RatingFlag {
            period,
            rating_id: r.rating_id.to_string(),
            item: r.item.to_string(),
            rater_id: r.rater_id.to_string(),
            dept_id: r.dept_id.to_string(),
            flag: flag.into(),
            detail,
        });
    }
    for k in 0..n_rater {
        let Some((sev, se, n, separate)) = stats[k] else {
            continue;
        };
        let rated: BTreeSet<usize> = by_rater[k].iter().map(|&i| obs[i].dept).collect();
        let excluded = by_rater[k]
            .iter()
            .any(|&i| out.excluded.contains_key(&*ratings[rows[i]].rating_id));
        out.effects.push(RaterEffect {
            rater_id: raters.names[k].to_string(),
            period,
            n_ratings: n,
            n_depts: rated.len(),
            severity: sev,
            se,
            flags: std::mem::take(&mut rater_flags[k]).into_iter().collect(),
            excluded,
            separate_group: separate,
        });
    }
}

/// The `rater_effects` mart.
pub fn effects_frame(effects: &[RaterEffect], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str(
            "rater_id",
            effects.iter().map(|e| Some(e.rater_id.as_str())),
        )
        .periods(&effects.iter().map(|e| e.period).collect::<Vec<_>>(), as_of)
        .i64(
            "n_ratings",
            effects.iter().map(|e| Some(e.n_ratings as i64)),
        )
        .i64("n_depts", effects.iter().map(|e| Some(e.n_depts as i64)))
        .f64("severity", effects.iter().map(|e| Some(e.severity)))
        .f64("se", effects.iter().map(|e| Some(e.se)))
        .str("flags", effects.iter().map(|e| Some(e.flags.join(","))))
        .bool("excluded", effects.iter().map(|e| Some(e.excluded)))
        .bool(
            "separate_group",
            effects.iter().map(|e| Some(e.separate_group)),
        )
        .build()
}

/// The `rating_flags` mart.
pub fn flags_frame(flags: &[RatingFlag], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str(
            "rating_id",
            flags.iter().map(|f| Some(f.rating_id.as_str())),
        )
        .str("item", flags.iter().map(|f| Some(f.item.as_str())))
        .str("rater_id", flags.iter().map(|f| Some(f.rater_id.as_str())))
        .str("dept_id", flags.iter().map(|f| Some(f.dept_id.as_str())))
        .periods(&flags.iter().map(|f| f.period).collect::<Vec<_>>(), as_of)
        .str("flag", flags.iter().map(|f| Some(f.flag.as_str())))
        .str("detail", flags.iter().map(|f| Some(f.detail.as_str())))
        .build()
}
