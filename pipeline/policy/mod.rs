//! The policy: every organisational decision the pipeline applies (time zone,
//! language, ingest limits, weights, targets, grades, bonus phase-in, veto).
//!
//! Consumes a TOML file (or the default embedded in the binary) and produces a
//! validated [`Policy`]. Parsing is typed and strict (`deny_unknown_fields`),
//! so a misspelt key is an error rather than a silent default; after parsing,
//! [`Policy::validate`] checks the whole file and reports every problem at
//! once, each with its key path.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The policy compiled into the binary: the source document's numbers.
pub const DEFAULT_POLICY: &str = include_str!("default.toml");

/// Rater groups the `ratings.rater_group` column may hold.
pub const RATER_GROUPS: [&str; 6] = [
    "client_internal",
    "client_external",
    "superior",
    "peer",
    "self",
    "third_party",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Label written to score rows so every mart says which rules produced it.
    pub version: String,
    /// IANA time zone of local timestamps and of period boundaries.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Language of the scorecards: `zh-CN` or `en`.
    #[serde(default = "default_locale")]
    pub locale: String,
    #[serde(default)]
    pub ingest: IngestPolicy,
    /// Category weights in points of 100.
    pub categories: BTreeMap<String, f64>,
    pub raters: RaterPolicy,
    /// Grade bands, highest first.
    pub grades: Vec<Grade>,
    /// Phase-in of the bonus link.
    pub bonus_phases: Vec<BonusPhase>,
    pub veto: VetoPolicy,
    /// Department types by id.
    pub department_types: BTreeMap<String, DepartmentType>,
    #[serde(default)]
    pub site: SitePolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestPolicy {
    /// `auto`, `utf-8` or `gb18030`.
    #[serde(default = "default_encoding")]
    pub encoding: String,
    /// Largest share (0-1) of rejected records a file may have.
    #[serde(default = "default_max_reject_share")]
    pub max_reject_share: f64,
    /// Files with fewer records are exempt from the share limit.
    #[serde(default = "default_min_records_for_limit")]
    pub min_records_for_limit: u64,
}

impl Default for IngestPolicy {
    fn default() -> Self {
        IngestPolicy {
            encoding: default_encoding(),
            max_reject_share: default_max_reject_share(),
            min_records_for_limit: default_min_records_for_limit(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaterPolicy {
    /// Smallest number of distinct raters a group needs to be shown alone.
    pub anonymity_min: u32,
    /// Weight of each rater group in satisfaction; `client` covers both
    /// client groups.
    pub group_weights: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grade {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    /// Lowest total score (inclusive) that earns this grade.
    pub min_score: f64,
    /// Bonus change when fully linked (0.20 = +20%).
    pub bonus: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BonusPhase {
    /// First day (ISO date) the phase applies.
    pub from: String,
    /// Share (0-1) of the bonus linked to the grade.
    pub linked_share: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VetoPolicy {
    /// Incident kinds that trigger the one-vote veto when confirmed.
    pub incident_kinds: Vec<String>,
    /// Grade forced on a vetoed department.
    pub grade: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepartmentType {
    pub name_zh: String,
    pub name_en: String,
    #[serde(default)]
    pub description: String,
    /// Indicator id -> target, weight and rule.
    pub indicators: BTreeMap<String, IndicatorTarget>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorTarget {
    /// Target in the indicator's unit.
    pub target: f64,
    /// Points of 100 this indicator carries for the department type.
    pub weight: f64,
    /// `linear` (default): `deduct` points per `per` units short of target;
    /// `anchored`: a behaviour-anchored level scored as a share of the weight.
    #[serde(default = "default_rule")]
    pub rule: String,
    pub per: Option<f64>,
    pub deduct: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SitePolicy {
    /// Whether the rater audit page is published with the site.
    #[serde(default = "default_true")]
    pub publish_rater_audit: bool,
    /// Folder of template overrides, relative to the policy file.
    #[serde(default)]
    pub templates: String,
}

impl Default for SitePolicy {
    fn default() -> Self {
        SitePolicy {
            publish_rater_audit: true,
            templates: String::new(),
        }
    }
}

fn default_timezone() -> String {
    "Asia/Shanghai".into()
}
fn default_locale() -> String {
    "zh-CN".into()
}
fn default_encoding() -> String {
    "auto".into()
}
fn default_max_reject_share() -> f64 {
    0.05
}
fn default_min_records_for_limit() -> u64 {
    50
}
fn default_rule() -> String {
    "linear".into()
}
fn default_true() -> bool {
    true
}

/// Text encoding of CSV and JSON Lines input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Auto,
    Utf8,
    Gb18030,
}

/// Where a policy came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    Embedded,
    File(PathBuf),
}

impl fmt::Display for PolicySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicySource::Embedded => write!(f, "built-in default policy"),
            PolicySource::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A validated policy with its text (copied to `OUT/policy.toml`) and origin.
#[derive(Debug, Clone)]
pub struct LoadedPolicy {
    pub policy: Policy,
    pub text: String,
    pub source: PolicySource,
    pub tz: Tz,
}

impl LoadedPolicy {
    /// SHA-256 of the policy text, recorded in the run manifest.
    pub fn sha256(&self) -> String {
        hex(&Sha256::digest(self.text.as_bytes()))
    }

    /// Folder that relative paths in the policy are resolved against.
    pub fn base_dir(&self) -> Option<&Path> {
        match &self.source {
            PolicySource::File(p) => p.parent(),
            PolicySource::Embedded => None,
        }
    }

    pub fn encoding(&self) -> Encoding {
        match self.policy.ingest.encoding.as_str() {
            "utf-8" => Encoding::Utf8,
            "gb18030" => Encoding::Gb18030,
            _ => Encoding::Auto,
        }
    }

    /// Override folder for report templates, if the policy names one.
    pub fn templates_dir(&self) -> Option<PathBuf> {
        let t = self.policy.site.templates.trim();
        if t.is_empty() {
            return None;
        }
        Some(match self.base_dir() {
            Some(base) => base.join(t),
            None => PathBuf::from(t),
        })
    }
}

/// Every problem found in a policy file, each with its key path.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_problems(.source_name, .problems))]
pub struct PolicyError {
    pub source_name: String,
    pub problems: Vec<String>,
}

fn render_problems(source: &str, problems: &[String]) -> String {
    let mut s = format!(
        "policy {source} has {} problem{}:",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    );
    for p in problems {
        s.push_str("\n  - ");
        s.push_str(p);
    }
    s
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Policy {
    /// Parses TOML text; a structural error (bad syntax, unknown key, wrong
    /// type) comes back with its line, column and key.
    pub fn parse(text: &str) -> Result<Policy, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().replace('\n', "\n    "))
    }

    /// Checks the whole policy and returns every problem found.
    pub fn validate(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.version.trim().is_empty() {
            p.push("version: must not be empty".into());
        }
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

        const CATEGORIES: [&str; 3] = ["result", "process", "development"];
        for k in self.categories.keys() {
            if !CATEGORIES.contains(&k.as_str()) {
                p.push(format!(
                    "categories.{k}: unknown category; expected one of {}",
                    CATEGORIES.join(", ")
                ));
            }
        }
        for c in CATEGORIES {
            if !self.categories.contains_key(c) {
                p.push(format!("categories.{c}: missing"));
            }
        }
        check_sum(&mut p, "categories", self.categories.values().sum());

        const WEIGHT_GROUPS: [&str; 5] = ["client", "superior", "peer", "self", "third_party"];
        for k in self.raters.group_weights.keys() {
            if !WEIGHT_GROUPS.contains(&k.as_str()) {
                p.push(format!(
                    "raters.group_weights.{k}: unknown rater group; expected one of {}",
                    WEIGHT_GROUPS.join(", ")
                ));
            }
        }
        for (k, w) in &self.raters.group_weights {
            if *w < 0.0 || !w.is_finite() {
                p.push(format!(
                    "raters.group_weights.{k}: {w} must be a non-negative number"
                ));
            }
        }
        check_sum(
            &mut p,
            "raters.group_weights",
            self.raters.group_weights.values().sum(),
        );
        if self.raters.anonymity_min == 0 {
            p.push("raters.anonymity_min: must be at least 1".into());
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
        for (i, g) in self.grades.iter().enumerate() {
            if !(-1.0..=1.0).contains(&g.bonus) {
                p.push(format!(
                    "grades[{i}].bonus: {} must be a share between -1 and 1 (0.20 = +20%)",
                    g.bonus
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, g) in self.grades.iter().enumerate() {
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

        let mut last_from: Option<NaiveDate> = None;
        for (i, ph) in self.bonus_phases.iter().enumerate() {
            match NaiveDate::parse_from_str(&ph.from, "%Y-%m-%d") {
                Ok(d) => {
                    if let Some(prev) = last_from {
                        if d <= prev {
                            p.push(format!(
                                "bonus_phases[{i}].from: {d} must be after the phase before it ({prev})"
                            ));
                        }
                    }
                    last_from = Some(d);
                }
                Err(_) => p.push(format!(
                    "bonus_phases[{i}].from: `{}` is not a date like 2026-01-01",
                    ph.from
                )),
            }
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
            if dt.indicators.is_empty() {
                p.push(format!("department_types.{t}.indicators: no indicators"));
            }
            for (id, ind) in &dt.indicators {
                let key = format!("department_types.{t}.indicators.{id}");
                if !ind.target.is_finite() {
                    p.push(format!("{key}.target: must be a finite number"));
                }
                if !(ind.weight > 0.0 && ind.weight.is_finite()) {
                    p.push(format!("{key}.weight: {} must be positive", ind.weight));
                }
                match ind.rule.as_str() {
                    "linear" => match (ind.per, ind.deduct) {
                        (Some(per), Some(deduct)) => {
                            if !(per > 0.0 && per.is_finite()) {
                                p.push(format!("{key}.per: {per} must be positive"));
                            }
                            if !(deduct >= 0.0 && deduct.is_finite()) {
                                p.push(format!("{key}.deduct: {deduct} must not be negative"));
                            }
                        }
                        _ => p.push(format!(
                            "{key}: a linear rule needs both `per` and `deduct` (deduct points for every `per` units short of target)"
                        )),
                    },
                    "anchored" => {
                        if ind.per.is_some() || ind.deduct.is_some() {
                            p.push(format!(
                                "{key}: `per` and `deduct` do not apply to an anchored rule"
                            ));
                        }
                    }
                    other => p.push(format!(
                        "{key}.rule: `{other}` is not one of `linear`, `anchored`"
                    )),
                }
            }
            check_sum(
                &mut p,
                &format!("department_types.{t}.indicators (weights)"),
                dt.indicators.values().map(|i| i.weight).sum(),
            );
        }
        p
    }

    /// Department type ids, sorted.
    pub fn dept_type_ids(&self) -> Vec<&str> {
        self.department_types.keys().map(String::as_str).collect()
    }
}

fn check_sum(p: &mut Vec<String>, key: &str, sum: f64) {
    if (sum - 100.0).abs() > 1e-6 {
        p.push(format!("{key}: weights add up to {sum}, not 100"));
    }
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Parses and validates policy text; `source_name` is used in messages.
pub fn load_text(text: String, source: PolicySource) -> Result<LoadedPolicy, PolicyError> {
    let source_name = source.to_string();
    let policy = Policy::parse(&text).map_err(|e| PolicyError {
        source_name: source_name.clone(),
        problems: vec![e],
    })?;
    let problems = policy.validate();
    if !problems.is_empty() {
        return Err(PolicyError {
            source_name,
            problems,
        });
    }
    let tz = policy
        .timezone
        .parse::<Tz>()
        .expect("time zone checked by validate");
    Ok(LoadedPolicy {
        policy,
        text,
        source,
        tz,
    })
}

/// Resolves which policy a command uses: an explicit file, else the first of
/// `fallbacks` that exists, else the embedded default.
pub fn resolve(
    explicit: Option<&Path>,
    fallbacks: &[PathBuf],
) -> Result<LoadedPolicy, crate::Failure> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => fallbacks.iter().find(|p| p.is_file()).cloned(),
    };
    match path {
        None => Ok(load_text(
            DEFAULT_POLICY.to_string(),
            PolicySource::Embedded,
        )?),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                crate::Failure::Usage(format!("cannot read policy file {}: {e}", path.display()))
            })?;
            Ok(load_text(text, PolicySource::File(path))?)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let p = load_text(DEFAULT_POLICY.into(), PolicySource::Embedded).unwrap();
        assert_eq!(p.policy.timezone, "Asia/Shanghai");
        assert_eq!(p.policy.locale, "zh-CN");
        // The source document's rater-group weights, in points of 100.
        assert_eq!(p.policy.raters.group_weights["client"], 50.0);
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
        // 50 + 35 + 10 + 5 + 10 = 110
        assert!(
            all.contains("raters.group_weights: weights add up to 110"),
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
}
