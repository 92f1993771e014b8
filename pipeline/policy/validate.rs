//! A policy's text parsed and checked as a whole (every problem with its key
//! path: weights that do not add up, unknown types, dates out of order,
//! bands that overlap), and the lookups the stages make in it (the version
//! in force on a day, a score's grade).

use super::*;

impl Policy {
    /// Parses TOML text; a structural error (bad syntax, unknown key, wrong
    /// type) comes back with its line, column and key.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut policy: Policy =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', "\n    "))?;
        policy.rules = policy.dated_rules()?;
        Ok(policy)
    }

    /// The rules of each version that changes `followups`, `plans` or
    /// `escalation`, after the top-level ones (see [`Rules`]).
    fn dated_rules(&self) -> Result<Vec<Rules>, String> {
        let mut now = Rules {
            from: NaiveDate::MIN,
            at: String::new(),
            followups: self.followups.clone(),
            plans: self.plans.clone(),
            escalation: self.escalation.clone(),
        };
        let mut out = vec![now.clone()];
        for (i, v) in self.versions.iter().enumerate() {
            if v.followups.is_none() && v.plans.is_none() && v.escalation.is_none() {
                continue;
            }
            // A `from` that is not a date is reported by `validate`.
            let Some(from) = (i == 0).then_some(NaiveDate::MIN).or(parse_date(&v.from)) else {
                continue;
            };
            let at = format!("versions[{i}].");
            now = Rules {
                from,
                followups: changed(&now.followups, &v.followups, &format!("{at}followups"))?,
                plans: changed(&now.plans, &v.plans, &format!("{at}plans"))?,
                escalation: changed(&now.escalation, &v.escalation, &format!("{at}escalation"))?,
                at,
            };
            out.push(now.clone());
        }
        Ok(out)
    }

    /// The follow-up, plan and escalation rules in force on `day`: those
    /// of the last version that changed them and starts on or before it
    /// (the first version's for days before every `from`).
    pub fn rules_on(&self, day: NaiveDate) -> &Rules {
        self.rules
            .iter()
            .rev()
            .find(|r| r.from <= day)
            .expect("the top-level rules apply from the earliest day")
    }

    /// Checks the whole policy and returns every problem found. Checks that
    /// need the indicator catalog are in [`Policy::validate_indicators`].
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.timezone.parse::<Tz>().is_err() {
            p.push(format!(
                "timezone: `{}` is not an IANA time zone name (for example `Asia/Shanghai`)",
                self.timezone
            ));
        }
        if !matches!(self.locale.as_str(), "zh-CN" | "en") {
            p.push(format!(
                "locale: `{}` is not supported; use `zh-CN` or `en`",
                self.locale
            ));
        }
        if !matches!(self.ingest.encoding.as_str(), "auto" | "utf-8" | "gb18030") {
            p.push(format!(
                "ingest.encoding: `{}` is not one of `auto`, `utf-8`, `gb18030`",
                self.ingest.encoding
            ));
        }
        let share = self.ingest.max_reject_share;
        if !(0.0..=1.0).contains(&share) {
            p.push(format!(
                "ingest.max_reject_share: {share} must be between 0 and 1"
            ));
        }
        self.validate_staff(&mut p);
        let r = &self.raters;
        if !matches!(r.estimation_grain.as_str(), "month" | "quarter" | "year") {
            p.push(format!(
                "raters.estimation_grain: `{}` is not one of month, quarter, year",
                r.estimation_grain
            ));
        }
        if !(r.shrinkage >= 0.0 && r.shrinkage.is_finite()) {
            p.push(format!(
                "raters.shrinkage: {} must be 0 or more",
                r.shrinkage
            ));
        }
        if !matches!(r.handling.as_str(), "keep" | "exclude" | "fair_mean") {
            p.push(format!(
                "raters.handling: `{}` is not one of keep, exclude, fair_mean",
                r.handling
            ));
        }
        for f in &r.exclude_flags {
            if !RATER_FLAGS.contains(&f.as_str()) {
                p.push(format!(
                    "raters.exclude_flags: `{f}` is not a flag; expected one of {}",
                    RATER_FLAGS.join(", ")
                ));
            }
        }
        for (g, n) in &r.anonymity_min {
            if !RATER_GROUPS.contains(&g.as_str()) || g == "self" {
                p.push(format!(
                    "raters.anonymity_min.{g}: not a rater group (self is always shown separately)"
                ));
            }
            if *n == 0 {
                p.push(format!("raters.anonymity_min.{g}: must be at least 1"));
            }
        }
        let f = &r.flags;
        for (k, v) in [
            ("severity_points", f.severity_points),
            ("severity_z", f.severity_z),
            ("favouritism_points", f.favouritism_points),
            ("favouritism_z", f.favouritism_z),
            ("outlier_z", f.outlier_z),
            ("self_inflation_points", f.self_inflation_points),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                p.push(format!("raters.flags.{k}: {v} must be positive"));
            }
        }
        for rules in &self.rules {
            p.extend(rules.problems());
        }
        if !matches!(self.scoring.missing.as_str(), "rescale" | "zero") {
            p.push(format!(
                "scoring.missing: `{}` is not one of `rescale`, `zero`",
                self.scoring.missing
            ));
        }
        if !(0.0..=1.0).contains(&self.scoring.min_coverage) {
            p.push(format!(
                "scoring.min_coverage: {} must be a share between 0 and 1",
                self.scoring.min_coverage
            ));
        }
        let t = &self.trends;
        if !(t.significance > 0.0 && t.significance < 1.0) {
            p.push(format!(
                "trends.significance: {} must be between 0 and 1",
                t.significance
            ));
        }
        if t.min_points < 3 {
            p.push(format!(
                "trends.min_points: {} must be at least 3",
                t.min_points
            ));
        }
        for (key, table) in [
            ("trends.window", &t.window),
            ("trends.rolling_short", &t.rolling_short),
            ("trends.rolling_long", &t.rolling_long),
        ] {
            for (g, n) in table {
                if !matches!(g.as_str(), "week" | "month" | "quarter" | "year") {
                    p.push(format!(
                        "{key}.{g}: not a grain (week, month, quarter, year)"
                    ));
                }
                if *n == 0 {
                    p.push(format!("{key}.{g}: must be at least 1"));
                }
            }
        }
        if !(0.0..1.0).contains(&self.scoring.near_tolerance) {
            p.push(format!(
                "scoring.near_tolerance: {} must be a share between 0 and 1",
                self.scoring.near_tolerance
            ));
        }

        for d in &self.calendar.weekend {
            if weekday(d).is_none() {
                p.push(format!(
                    "calendar.weekend: `{d}` is not a weekday name (mon, tue, wed, thu, fri, sat, sun)"
                ));
            }
        }
        for (key, list) in [
            ("calendar.holidays", &self.calendar.holidays),
            ("calendar.workdays", &self.calendar.workdays),
        ] {
            for (i, d) in list.iter().enumerate() {
                if parse_date(d).is_none() {
                    p.push(format!("{key}[{i}]: `{d}` is not a date like 2026-10-01"));
                }
            }
        }
        for (k, lim) in &self.service_limits {
            let key = format!("service_limits.{k}");
            match (lim.hours, lim.working_days) {
                (Some(_), Some(_)) => {
                    p.push(format!("{key}: give `hours` or `working_days`, not both"))
                }
                (Some(h), None) if !(h > 0.0 && h.is_finite()) => {
                    p.push(format!("{key}.hours: {h} must be positive"))
                }
                (None, Some(0)) => p.push(format!("{key}.working_days: must be at least 1")),
                _ => {}
            }
            if let Some(h) = lim.response_hours {
                if !(h > 0.0 && h.is_finite()) {
                    p.push(format!("{key}.response_hours: {h} must be positive"));
                }
            }
        }

        if self.grades.is_empty() {
            p.push("grades: at least one grade is needed".into());
        }
        for (i, pair) in self.grades.windows(2).enumerate() {
            if pair[1].min_score >= pair[0].min_score {
                p.push(format!(
                    "grades[{}].min_score: {} must be below the grade before it ({}); list grades highest first",
                    i + 1,
                    pair[1].min_score,
                    pair[0].min_score
                ));
            }
        }
        if let Some(last) = self.grades.last() {
            if last.min_score > 0.0 {
                p.push(format!(
                    "grades[{}].min_score: the lowest grade must start at 0 so every score has a grade (it is {})",
                    self.grades.len() - 1,
                    last.min_score
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, g) in self.grades.iter().enumerate() {
            if !(-1.0..=1.0).contains(&g.bonus) {
                p.push(format!(
                    "grades[{i}].bonus: {} must be a share between -1 and 1 (0.20 = +20%)",
                    g.bonus
                ));
            }
            if !seen.insert(g.id.as_str()) {
                p.push(format!("grades[{i}].id: `{}` appears twice", g.id));
            }
        }
        if !self.grades.iter().any(|g| g.id == self.veto.grade) {
            p.push(format!(
                "veto.grade: `{}` is not the id of a grade in [[grades]]",
                self.veto.grade
            ));
        }

        check_dates_ascending(
            &mut p,
            "bonus_phases",
            self.bonus_phases.iter().map(|b| b.from.as_str()),
        );
        for (i, ph) in self.bonus_phases.iter().enumerate() {
            if !(0.0..=1.0).contains(&ph.linked_share) {
                p.push(format!(
                    "bonus_phases[{i}].linked_share: {} must be between 0 and 1",
                    ph.linked_share
                ));
            }
        }

        if self.department_types.is_empty() {
            p.push("department_types: at least one department type is needed".into());
        }
        for (t, dt) in &self.department_types {
            if !is_identifier(t) {
                p.push(format!(
                    "department_types.{t}: type ids use lower-case letters, digits and `_`"
                ));
            }
            if dt.serves.is_empty() {
                p.push(format!(
                    "department_types.{t}.serves: name at least one client group"
                ));
            }
            for g in &dt.serves {
                if g != "client_internal" && g != "client_external" {
                    p.push(format!(
                        "department_types.{t}.serves: `{g}` is not `client_internal` or `client_external`"
                    ));
                }
            }
        }

        if self.versions.is_empty() {
            p.push("versions: at least one [[versions]] block is needed".into());
        }
        check_dates_ascending(
            &mut p,
            "versions",
            self.versions.iter().map(|v| v.from.as_str()),
        );
        for (vi, v) in self.versions.iter().enumerate() {
            let vk = format!("versions[{vi}]");
            if v.id.trim().is_empty() {
                p.push(format!("{vk}.id: must not be empty"));
            }
            for k in v.categories.keys() {
                if !CATEGORIES.contains(&k.as_str()) {
                    p.push(format!(
                        "{vk}.categories.{k}: unknown category; expected one of {}",
                        CATEGORIES.join(", ")
                    ));
                }
            }
            check_sum(
                &mut p,
                &format!("{vk}.categories"),
                v.categories.values().sum(),
            );
            let mut weight_sets = vec![(format!("{vk}.group_weights"), &v.group_weights)];
            for (t, w) in &v.group_weights_by_type {
                if !self.department_types.contains_key(t) {
                    p.push(format!(
                        "{vk}.group_weights_by_type.{t}: unknown department type"
                    ));
                }
                weight_sets.push((format!("{vk}.group_weights_by_type.{t}"), w));
            }
            for (key, weights) in weight_sets {
                for (k, w) in weights {
                    if !WEIGHT_GROUPS.contains(&k.as_str()) {
                        p.push(format!(
                            "{key}.{k}: unknown rater group; expected one of {}",
                            WEIGHT_GROUPS.join(", ")
                        ));
                    }
                    if *w < 0.0 || !w.is_finite() {
                        p.push(format!("{key}.{k}: {w} must be a non-negative number"));
                    }
                }
                check_sum(&mut p, &key, weights.values().sum());
            }
            for t in self.department_types.keys() {
                if !v.indicators.contains_key(t) {
                    p.push(format!(
                        "{vk}.indicators.{t}: department type `{t}` has no indicators in this version"
                    ));
                }
            }
            for (t, inds) in &v.indicators {
                if !self.department_types.contains_key(t) {
                    p.push(format!("{vk}.indicators.{t}: unknown department type"));
                    continue;
                }
                for (id, ind) in inds {
                    check_indicator(&mut p, &format!("{vk}.indicators.{t}.{id}"), ind);
                }
                check_sum(
                    &mut p,
                    &format!("{vk}.indicators.{t} (weights)"),
                    inds.values().map(|i| i.weight).sum(),
                );
            }
        }
        p
    }

    /// Checks that need the indicator catalog: unknown indicator ids, and
    /// indicator weights per category against the category weights.
    pub fn validate_indicators(&self, category_of: &dyn Fn(&str) -> Option<String>) -> Vec<String> {
        let mut p = Vec::new();
        for (vi, v) in self.versions.iter().enumerate() {
            for (t, inds) in &v.indicators {
                let mut per_cat: BTreeMap<String, f64> = BTreeMap::new();
                for (id, ind) in inds {
                    match category_of(id) {
                        Some(c) => *per_cat.entry(c).or_default() += ind.weight,
                        None => p.push(format!(
                            "versions[{vi}].indicators.{t}.{id}: no indicator `{id}` is defined in the indicator folder"
                        )),
                    }
                }
                for (c, w) in &v.categories {
                    let got = per_cat.get(c).copied().unwrap_or(0.0);
                    if (got - w).abs() > 1e-6 {
                        p.push(format!(
                            "versions[{vi}].indicators.{t}: {c} indicators weigh {got}, but versions[{vi}].categories.{c} is {w}"
                        ));
                    }
                }
            }
        }
        p
    }

    /// Department type ids, sorted.
    pub fn dept_type_ids(&self) -> Vec<&str> {
        self.department_types.keys().map(String::as_str).collect()
    }

    /// The version in force on `day` (the last whose `from` is on or before
    /// it; the first version for days before every `from`).
    pub fn version_for(&self, day: NaiveDate) -> &Version {
        self.versions
            .iter()
            .rev()
            .find(|v| parse_date(&v.from).is_some_and(|f| f <= day))
            .unwrap_or(&self.versions[0])
    }

    /// Share of the bonus linked to the grade on `day` (0 before any phase).
    pub fn linked_share(&self, day: NaiveDate) -> f64 {
        self.bonus_phases
            .iter()
            .rev()
            .find(|b| parse_date(&b.from).is_some_and(|f| f <= day))
            .map_or(0.0, |b| b.linked_share)
    }

    /// The grade a total score earns.
    pub fn grade_for(&self, score: f64) -> &Grade {
        self.grades
            .iter()
            .find(|g| score >= g.min_score)
            .unwrap_or_else(|| self.grades.last().expect("validated: grades not empty"))
    }

    pub fn grade(&self, id: &str) -> Option<&Grade> {
        self.grades.iter().find(|g| g.id == id)
    }
}

impl Policy {
    /// `[staff]` and `site.publish_staff`.
    fn validate_staff(&self, p: &mut Vec<String>) {
        let st = &self.staff;
        for (k, w) in &st.weights {
            if !STAFF_PARTS.contains(&k.as_str()) {
                p.push(format!(
                    "staff.weights.{k}: not a part of the composite; expected one of {}",
                    STAFF_PARTS.join(", ")
                ));
            }
            if !(w.is_finite() && *w >= 0.0) {
                p.push(format!("staff.weights.{k}: {w} must be 0 or more"));
            }
        }
        if st.part_weights().iter().sum::<f64>() <= 0.0 {
            p.push("staff.weights: give at least one part a weight above 0".into());
        }
        if !matches!(st.stars.per.as_str(), "department" | "organisation") {
            p.push(format!(
                "staff.stars.per: `{}` is not department or organisation",
                st.stars.per
            ));
        }
        if st.stars.min_ratings < st.min_ratings {
            p.push(format!(
                "staff.stars.min_ratings: {} is below staff.min_ratings ({}): a star needs a composite",
                st.stars.min_ratings, st.min_ratings
            ));
        }
        if !(0.0..=100.0).contains(&st.stars.min_composite) {
            p.push(format!(
                "staff.stars.min_composite: {} is not on the 0-100 scale",
                st.stars.min_composite
            ));
        }
        for (k, w) in &st.review360.weights {
            if !REVIEW360_GROUPS.contains(&k.as_str()) {
                p.push(format!(
                    "staff.review360.weights.{k}: not a group of a manager's 360; expected one of {}",
                    REVIEW360_GROUPS.join(", ")
                ));
            }
            if !(w.is_finite() && *w >= 0.0) {
                p.push(format!(
                    "staff.review360.weights.{k}: {w} must be 0 or more"
                ));
            }
        }
        if !(st.hr.top_share > 0.0 && st.hr.top_share <= 1.0) {
            p.push(format!(
                "staff.hr.top_share: {} is not a share above 0 and at most 1",
                st.hr.top_share
            ));
        }
        if st.hr.min_months < 3 || st.hr.min_months > 12 {
            p.push(format!(
                "staff.hr.min_months: {} is not between 3 and 12 (months of a year)",
                st.hr.min_months
            ));
        }
        if !matches!(self.site.publish_staff.as_str(), "none" | "stars" | "all") {
            p.push(format!(
                "site.publish_staff: `{}` is not one of none, stars, all",
                self.site.publish_staff
            ));
        }
    }
}

/// Indicator categories, in the order pages show them.
pub const CATEGORIES: [&str; 3] = ["result", "process", "development"];
/// Keys of `group_weights`; `client` stands for the groups a type serves.
pub const WEIGHT_GROUPS: [&str; 5] = ["client", "superior", "peer", "self", "third_party"];

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

pub fn weekday(s: &str) -> Option<chrono::Weekday> {
    use chrono::Weekday::*;
    Some(match s.to_ascii_lowercase().as_str() {
        "mon" => Mon,
        "tue" => Tue,
        "wed" => Wed,
        "thu" => Thu,
        "fri" => Fri,
        "sat" => Sat,
        "sun" => Sun,
        _ => return None,
    })
}

pub(super) fn check_dates_ascending<'a>(
    p: &mut Vec<String>,
    key: &str,
    dates: impl Iterator<Item = &'a str>,
) {
    let mut last: Option<NaiveDate> = None;
    for (i, s) in dates.enumerate() {
        match parse_date(s) {
            Some(d) => {
                if let Some(prev) = last {
                    if d <= prev {
                        p.push(format!(
                            "{key}[{i}].from: {d} must be after the one before it ({prev}); periods may not overlap"
                        ));
                    }
                }
                last = Some(d);
            }
            None => p.push(format!(
                "{key}[{i}].from: `{s}` is not a date like 2026-01-01"
            )),
        }
    }
}

pub(super) fn check_indicator(p: &mut Vec<String>, key: &str, ind: &IndicatorTarget) {
    if !ind.target.is_finite() {
        p.push(format!("{key}.target: must be a finite number"));
    }
    if !(ind.weight > 0.0 && ind.weight.is_finite()) {
        p.push(format!("{key}.weight: {} must be positive", ind.weight));
    }
    let extra = |p: &mut Vec<String>, name: &str, present: bool| {
        if present {
            p.push(format!(
                "{key}.{name}: does not apply to rule `{}`",
                ind.rule
            ));
        }
    };
    match ind.rule.as_str() {
        "linear" => {
            match (ind.per, ind.deduct) {
                (Some(per), Some(deduct)) => {
                    if !(per > 0.0 && per.is_finite()) {
                        p.push(format!("{key}.per: {per} must be positive"));
                    }
                    if !(deduct >= 0.0 && deduct.is_finite()) {
                        p.push(format!("{key}.deduct: {deduct} must not be negative"));
                    }
                }
                _ => p.push(format!(
                    "{key}: rule `linear` needs `per` and `deduct` (deduct points for every `per` units short of target)"
                )),
            }
            extra(p, "bands", ind.bands.is_some());
            extra(p, "levels", ind.levels.is_some());
        }
        "ratio" => {
            if ind.target <= 0.0 {
                p.push(format!(
                    "{key}.target: rule `ratio` needs a positive target"
                ));
            }
            extra(p, "per", ind.per.is_some());
            extra(p, "deduct", ind.deduct.is_some());
            extra(p, "bands", ind.bands.is_some());
            extra(p, "levels", ind.levels.is_some());
        }
        "bands" | "levels" => {
            let (name, list) = if ind.rule == "bands" {
                ("bands", &ind.bands)
            } else {
                ("levels", &ind.levels)
            };
            match list {
                Some(l) if !l.is_empty() => {
                    for (i, [_, pts]) in l.iter().enumerate() {
                        if *pts < 0.0 || *pts > ind.weight {
                            p.push(format!(
                                "{key}.{name}[{i}]: {pts} points must be between 0 and the weight {}",
                                ind.weight
                            ));
                        }
                    }
                }
                _ => p.push(format!(
                    "{key}: rule `{name}` needs `{name} = [[threshold, points], ...]`"
                )),
            }
            extra(p, "per", ind.per.is_some());
            extra(p, "deduct", ind.deduct.is_some());
            extra(
                p,
                if name == "bands" { "levels" } else { "bands" },
                if name == "bands" {
                    ind.levels.is_some()
                } else {
                    ind.bands.is_some()
                },
            );
        }
        other => p.push(format!(
            "{key}.rule: `{other}` is not one of `linear`, `ratio`, `bands`, `levels`"
        )),
    }
}

pub(super) fn check_sum(p: &mut Vec<String>, key: &str, sum: f64) {
    if (sum - 100.0).abs() > 1e-6 {
        p.push(format!("{key}: weights add up to {sum}, not 100"));
    }
}

pub(super) fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `base` with the keys of `changes` put over it (tables key by key).
fn changed<T>(base: &T, changes: &Option<toml::Table>, at: &str) -> Result<T, String>
where
    T: Clone + serde::Serialize + serde::de::DeserializeOwned,
{
    let Some(changes) = changes else {
        return Ok(base.clone());
    };
    fn put(into: &mut toml::Table, from: &toml::Table) {
        for (k, v) in from {
            match (into.get_mut(k), v) {
                (Some(toml::Value::Table(a)), toml::Value::Table(b)) => put(a, b),
                _ => {
                    into.insert(k.clone(), v.clone());
                }
            }
        }
    }
    let mut table = toml::Table::try_from(base).map_err(|e| format!("{at}: {e}"))?;
    put(&mut table, changes);
    toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| format!("{at}: {}", e.message()))
}

impl Rules {
    /// What is wrong with these rules, each problem under its key path.
    fn problems(&self) -> Vec<String> {
        let (at, mut p) = (&self.at, Vec::new());
        if !matches!(self.plans.verify_grain.as_str(), "month" | "quarter") {
            p.push(format!(
                "{at}plans.verify_grain: `{}` is not month or quarter",
                self.plans.verify_grain
            ));
        }
        let fu = &self.followups;
        for (k, v) in [
            ("call_back_working_days", fu.call_back_working_days),
            ("rectify_working_days", fu.rectify_working_days),
        ] {
            if v == 0 {
                p.push(format!("{at}followups.{k}: must be at least 1"));
            }
        }
        let bad = &fu.bad_review;
        if !(0.0..=100.0).contains(&bad.max_score) {
            p.push(format!(
                "{at}followups.bad_review.max_score: {} is not on the 0-100 scale",
                bad.max_score
            ));
        }
        if bad.groups.is_empty() {
            p.push(format!(
                "{at}followups.bad_review.groups: name at least one rater group"
            ));
        }
        for g in &bad.groups {
            if !RATER_GROUPS.contains(&g.as_str()) {
                p.push(format!(
                    "{at}followups.bad_review.groups: `{g}` is not a rater group; expected one of {}",
                    RATER_GROUPS.join(", ")
                ));
            }
        }
        p
    }
}
