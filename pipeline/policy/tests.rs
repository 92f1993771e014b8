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
