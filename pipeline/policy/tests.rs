use super::*;

#[test]
fn embedded_default_is_valid() {
    let p = load_text(DEFAULT_POLICY.into(), PolicySource::Embedded).unwrap();
    assert_eq!(p.policy.timezone, "Asia/Shanghai");
    assert_eq!(p.policy.locale, "zh-CN");
    // The rater-group weights of the source document, in points of 100.
    assert_eq!(p.policy.versions[0].group_weights["client"], 50.0);
    // Bonus +20% for excellent, -15% for unqualified.
    assert_eq!(p.policy.grades[0].bonus, 0.20);
    assert_eq!(p.policy.grades.last().unwrap().bonus, -0.15);
    // Phase-in 0%, 10%, 30%.
    let shares: Vec<f64> = p
        .policy
        .bonus_phases
        .iter()
        .map(|b| b.linked_share)
        .collect();
    assert_eq!(shares, vec![0.0, 0.10, 0.30]);
}

#[test]
fn every_problem_is_reported_with_its_key_path() {
    let text = DEFAULT_POLICY
        .replace(
            "timezone = \"Asia/Shanghai\"",
            "timezone = \"Mars/Olympus\"",
        )
        .replace("locale = \"zh-CN\"", "locale = \"fr\"")
        .replace("superior = 25", "superior = 35");
    let err = load_text(text, PolicySource::Embedded).unwrap_err();
    let all = err.problems.join("\n");
    assert!(all.contains("timezone: `Mars/Olympus`"), "{all}");
    assert!(all.contains("locale: `fr`"), "{all}");
    // client 50 + superior 35 + peer 15 + self 5 + third party 5 = 110
    assert!(
        all.contains("versions[0].group_weights: weights add up to 110"),
        "{all}"
    );
    assert_eq!(err.problems.len(), 3, "{all}");
}

#[test]
fn unknown_key_is_an_error_naming_the_key() {
    let text = DEFAULT_POLICY.replace("[ingest]", "[ingest]\nmax_reject_shares = 0.1");
    let err = load_text(text, PolicySource::Embedded).unwrap_err();
    assert!(
        err.problems[0].contains("max_reject_shares"),
        "{}",
        err.problems[0]
    );
}

/// The default policy with a second version from `from` that ends with
/// `changes` (its own `[versions.*]` tables).
fn with_second_version(from: &str, changes: &str) -> String {
    let (start, end) = (
        DEFAULT_POLICY.find("\n[[versions]]\n").unwrap(),
        DEFAULT_POLICY.find("[privacy]").unwrap(),
    );
    let second = DEFAULT_POLICY[start..end]
        .replace("id = \"2026.1\"", "id = \"2026.2\"")
        .replace("from = \"2024-01-01\"", &format!("from = \"{from}\""));
    format!(
        "{}{second}{changes}\n\n{}",
        &DEFAULT_POLICY[..end],
        &DEFAULT_POLICY[end..]
    )
}

#[test]
fn a_version_changes_the_follow_up_and_escalation_rules_from_its_date() {
    let text = with_second_version(
        "2026-10-01",
        "[versions.followups]\nrectify_working_days = 10\n\n\
         [versions.followups.bad_review]\nmax_score = 0.0\n\n\
         [versions.escalation]\noverdue_plans = 1\n",
    );
    let p = load_text(text, PolicySource::Embedded).unwrap().policy;
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
    let (before, after) = (p.rules_on(day("2026-09-30")), p.rules_on(day("2026-10-01")));
    assert_eq!(before.followups.rectify_working_days, 5);
    assert_eq!(before.followups.bad_review.max_score, 25.0);
    assert_eq!(before.escalation.overdue_plans, 2);
    assert_eq!(after.followups.rectify_working_days, 10);
    assert_eq!(after.followups.bad_review.max_score, 0.0);
    assert_eq!(after.escalation.overdue_plans, 1);
    // The keys not given carry on.
    assert_eq!(after.followups.call_back_working_days, 5);
    assert_eq!(after.followups.bad_review.item, "overall");
    assert_eq!(after.escalation.overdue_followups, 5);
    assert_eq!(after.plans.verify_grain, "month");
    // Days before every version take the first version's rules.
    assert_eq!(p.rules_on(NaiveDate::MIN).followups.rectify_working_days, 5);

    // Bad values are reported under the version's key path.
    let text = with_second_version(
        "2026-10-01",
        "[versions.followups]\nrectify_working_days = 0\n\n[versions.plans]\nverify_grain = \"week\"\n",
    );
    let all = load_text(text, PolicySource::Embedded)
        .unwrap_err()
        .problems
        .join("\n");
    assert!(
        all.contains("versions[1].followups.rectify_working_days: must be at least 1"),
        "{all}"
    );
    assert!(
        all.contains("versions[1].plans.verify_grain: `week` is not month or quarter"),
        "{all}"
    );
    let text = with_second_version("2026-10-01", "[versions.followups]\nrectify_days = 10\n");
    let all = load_text(text, PolicySource::Embedded)
        .unwrap_err()
        .problems
        .join("\n");
    assert!(all.contains("versions[1].followups"), "{all}");
    assert!(all.contains("unknown field `rectify_days`"), "{all}");
}
