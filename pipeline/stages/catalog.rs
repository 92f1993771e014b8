//! Stage 0: the policy and the indicator catalog, loaded and checked
//! together before any data is read.

use super::*;

/// Loads the policy (explicit file, else the first fallback that exists,
/// else built in) and the indicator catalog, and checks both together:
/// the policy against the catalog, and every definition's SQL against the
/// schemas, before any data is read. All problems are reported at once.
pub fn load_policy(
    explicit: Option<&std::path::Path>,
    fallbacks: &[std::path::PathBuf],
) -> Result<(LoadedPolicy, Vec<Indicator>), crate::error::Failure> {
    let mut catalog = None;
    let policy = crate::policy::resolve_with(explicit, fallbacks, &mut |p| {
        let (c, problems) = check_definitions(p);
        catalog = c;
        problems
    })?;
    Ok((
        policy,
        catalog.expect("no problems means the catalog loaded"),
    ))
}

/// The catalog and the problems found in it and in the policy's use of it.
pub(super) fn check_definitions(policy: &LoadedPolicy) -> (Option<Vec<Indicator>>, Vec<String>) {
    let mut folder_problems = Vec::new();
    if let Some(dir) = policy.templates_dir() {
        if !dir.is_dir() {
            folder_problems.push(format!(
                "site.templates: {} is not a folder (paths are relative to the policy file)",
                dir.display()
            ));
        }
    }
    let catalog = match measure::load_catalog(policy) {
        Ok(c) => c,
        Err(e) => return (None, [folder_problems, e.problems].concat()),
    };
    let category: HashMap<&str, &str> = catalog
        .iter()
        .map(|i| (i.id.as_str(), i.category.as_str()))
        .collect();
    let mut problems = folder_problems;
    problems.extend(
        policy
            .policy
            .validate_indicators(&|id| category.get(id).map(|c| c.to_string())),
    );
    let as_of = NaiveDate::from_ymd_opt(2000, 1, 1).expect("valid date");
    let views = empty_lake()
        .and_then(|lake| {
            build_views(
                lake,
                &RatingMonths {
                    months: Vec::new(),
                    scan: &|_, _| Ok(None),
                },
                &mut |_, df, _| Ok(df.lazy()),
                None,
                policy,
                as_of,
                &Progress::silent(),
            )
        })
        .and_then(|views| {
            let plans = crate::model::plans::empty(policy.tz)?;
            let mut sql = views.sql();
            sql.extend(
                measure::PLAN_VIEWS
                    .into_iter()
                    .zip([plans.status, plans.periods, plans.rejects])
                    .map(|(name, df)| (name, df.lazy())),
            );
            Ok(sql)
        });
    match views {
        Ok(views) => problems.extend(measure::validate(&catalog, &views)),
        Err(e) => problems.push(format!("cannot prepare the indicator views: {e:#}")),
    }
    (Some(catalog), problems)
}
