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
    /// IANA time zone of local timestamps and of period boundaries.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Language of the scorecards: `zh-CN` or `en`.
    #[serde(default = "default_locale")]
    pub locale: String,
    #[serde(default)]
    pub ingest: IngestPolicy,
    pub raters: RaterPolicy,
    pub scoring: ScoringPolicy,
    pub trends: TrendPolicy,
    pub cross_checks: CrossCheckPolicy,
    pub complaints: ComplaintPolicy,
    #[serde(default)]
    pub calendar: Calendar,
    /// Time limits by `service_type` (`default` for any other).
    #[serde(default)]
    pub service_limits: BTreeMap<String, ServiceLimit>,
    /// Grade bands, highest first.
    pub grades: Vec<Grade>,
    /// Phase-in of the bonus link.
    pub bonus_phases: Vec<BonusPhase>,
    pub veto: VetoPolicy,
    /// Department types by id.
    pub department_types: BTreeMap<String, DepartmentType>,
    /// Weights and targets, each in force from its `from` date.
    pub versions: Vec<Version>,
    #[serde(default)]
    pub privacy: PrivacyPolicy,
    #[serde(default)]
    pub site: SitePolicy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyPolicy {
    /// Replace rater ids in published outputs by a keyed hash.
    #[serde(default)]
    pub pseudonymize_raters: bool,
    /// Environment variable holding the key.
    #[serde(default = "default_key_env")]
    pub key_env: String,
    /// Show raters' comments on published pages.
    #[serde(default)]
    pub publish_comments: bool,
}

impl Default for PrivacyPolicy {
    fn default() -> Self {
        PrivacyPolicy {
            pseudonymize_raters: false,
            key_env: default_key_env(),
            publish_comments: false,
        }
    }
}

fn default_key_env() -> String {
    "SCORECARD_RATER_KEY".into()
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
    /// A file with the size and settled modification time logged for its
    /// path is taken as unchanged without being read.
    #[serde(default = "default_trust_file_times")]
    pub trust_file_times: bool,
}

impl Default for IngestPolicy {
    fn default() -> Self {
        IngestPolicy {
            encoding: default_encoding(),
            max_reject_share: default_max_reject_share(),
            min_records_for_limit: default_min_records_for_limit(),
            trust_file_times: default_trust_file_times(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaterPolicy {
    /// Grain of the rater severity estimation: month, quarter or year.
    pub estimation_grain: String,
    /// Shrinkage of rater effects (0 = plain least squares).
    pub shrinkage: f64,
    /// `keep`, `exclude` or `fair_mean`.
    pub handling: String,
    /// Flags whose ratings are left out when `handling = "exclude"`.
    #[serde(default)]
    pub exclude_flags: Vec<String>,
    /// Drop each department's highest and lowest response per period.
    #[serde(default)]
    pub trim_extremes: bool,
    /// Smallest number of distinct raters a group needs to be shown alone.
    pub anonymity_min: BTreeMap<String, u32>,
    pub flags: FlagThresholds,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagThresholds {
    pub severity_points: f64,
    pub severity_z: f64,
    pub favouritism_points: f64,
    pub favouritism_z: f64,
    pub favouritism_min_ratings: u32,
    pub straight_line_min_items: u32,
    pub outlier_z: f64,
    pub self_inflation_points: f64,
}

/// Flags the rater checks can raise.
pub const RATER_FLAGS: [&str; 8] = [
    "lenient",
    "severe",
    "favouritism",
    "hostility",
    "straight_line",
    "outlier",
    "self_inflation",
    "separate_group",
];

impl RaterPolicy {
    /// The anonymity minimum of a group (self is always shown: 1).
    pub fn min_raters(&self, group: &str) -> usize {
        if group == "self" {
            return 1;
        }
        self.anonymity_min.get(group).copied().unwrap_or(3).max(1) as usize
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringPolicy {
    /// `rescale` or `zero`: what missing indicators do to the total.
    pub missing: String,
    /// Relative miss (share of target) still counted as `near`.
    pub near_tolerance: f64,
    /// Days after a period's end when its results close.
    pub close_after_days: u32,
    /// Least share (0-1) of a department's indicator weight that must have
    /// data for the period to get a total at all.
    #[serde(default = "default_min_coverage")]
    pub min_coverage: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrendPolicy {
    /// Significance level of the Mann-Kendall test.
    pub significance: f64,
    /// Fewest points in the window for a trend to be claimed.
    pub min_points: usize,
    /// Trend window per grain, in complete periods.
    pub window: BTreeMap<String, usize>,
    /// Short rolling mean window per grain.
    pub rolling_short: BTreeMap<String, usize>,
    /// Long rolling mean window per grain.
    pub rolling_long: BTreeMap<String, usize>,
    /// Consecutive improvements that make a continuous improver.
    pub improvement_run: usize,
}

impl TrendPolicy {
    /// A per-grain setting, with a fallback for a grain the table omits.
    pub fn per_grain(table: &BTreeMap<String, usize>, grain: &str, default: usize) -> usize {
        table.get(grain).copied().unwrap_or(default).max(1)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossCheckPolicy {
    /// Rise in satisfaction (points) that counts as sharp.
    pub sharp_rise_points: f64,
    /// Fewer distinct raters than this is "few".
    pub few_raters: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintPolicy {
    /// Rectification deadline, in working days, when `due_at` is not given.
    pub rectify_working_days: u32,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calendar {
    /// Weekday names (`mon` ... `sun`) that are not working days.
    #[serde(default)]
    pub weekend: Vec<String>,
    /// Public holidays (ISO dates).
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Make-up working days on a weekend (调休).
    #[serde(default)]
    pub workdays: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceLimit {
    /// Clock hours from receipt to the resolution deadline.
    pub hours: Option<f64>,
    /// Working days after the day of receipt (deadline at that day's end).
    pub working_days: Option<u32>,
    /// Clock hours from receipt to the response deadline.
    pub response_hours: Option<f64>,
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
    /// Client rater groups that carry the service-object weight.
    pub serves: Vec<String>,
}

/// Weights and targets in force from a date.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// Written to every score row (`policy_version`).
    pub id: String,
    /// First day (ISO date) the version applies to.
    pub from: String,
    /// Category weights in points of 100.
    pub categories: BTreeMap<String, f64>,
    /// Weight of each rater group in satisfaction.
    pub group_weights: BTreeMap<String, f64>,
    /// Per department type overrides of `group_weights`.
    #[serde(default)]
    pub group_weights_by_type: BTreeMap<String, BTreeMap<String, f64>>,
    /// Department type -> indicator id -> target, weight and rule.
    pub indicators: BTreeMap<String, BTreeMap<String, IndicatorTarget>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndicatorTarget {
    /// Target in the indicator's unit.
    pub target: f64,
    /// Points of 100 this indicator carries for the department type.
    pub weight: f64,
    /// `linear`, `ratio`, `bands` or `levels`.
    pub rule: String,
    /// linear: units of shortfall per deduction step.
    pub per: Option<f64>,
    /// linear: points deducted per step.
    pub deduct: Option<f64>,
    /// linear: count whole steps only.
    #[serde(default)]
    pub stepped: bool,
    /// bands: `[threshold, points]`, best first.
    pub bands: Option<Vec<[f64; 2]>>,
    /// levels: `[level code, points]`, best first.
    pub levels: Option<Vec<[f64; 2]>>,
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
    /// Folder of indicator SQL files, relative to the policy file.
    #[serde(default)]
    pub indicators: String,
}

impl Default for SitePolicy {
    fn default() -> Self {
        SitePolicy {
            publish_rater_audit: true,
            templates: String::new(),
            indicators: String::new(),
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
fn default_trust_file_times() -> bool {
    true
}
fn default_min_coverage() -> f64 {
    0.5
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
        self.relative_path(&self.policy.site.templates)
    }

    /// Folder of extra indicator definitions, if the policy names one.
    pub fn indicators_dir(&self) -> Option<PathBuf> {
        self.relative_path(&self.policy.site.indicators)
    }

    fn relative_path(&self, p: &str) -> Option<PathBuf> {
        let p = p.trim();
        if p.is_empty() {
            return None;
        }
        Some(match self.base_dir() {
            Some(base) => base.join(p),
            None => PathBuf::from(p),
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

fn check_dates_ascending<'a>(p: &mut Vec<String>, key: &str, dates: impl Iterator<Item = &'a str>) {
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

fn check_indicator(p: &mut Vec<String>, key: &str, ind: &IndicatorTarget) {
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

/// Parses and validates policy text; `source` is named in messages.
pub fn load_text(text: String, source: PolicySource) -> Result<LoadedPolicy, PolicyError> {
    load_text_with(text, source, &mut |_| Vec::new())
}

/// Parses and validates policy text, adding the problems `more` finds (the
/// checks against the indicator catalog), and reports them all at once.
pub fn load_text_with(
    text: String,
    source: PolicySource,
    more: &mut dyn FnMut(&LoadedPolicy) -> Vec<String>,
) -> Result<LoadedPolicy, PolicyError> {
    let source_name = source.to_string();
    let policy = Policy::parse(&text).map_err(|e| PolicyError {
        source_name: source_name.clone(),
        problems: vec![e],
    })?;
    let mut problems = policy.validate();
    // An invalid time zone is reported above; UTC lets the other checks run.
    let tz = policy.timezone.parse::<Tz>().unwrap_or(Tz::UTC);
    let loaded = LoadedPolicy {
        policy,
        text,
        source,
        tz,
    };
    problems.extend(more(&loaded));
    if problems.is_empty() {
        Ok(loaded)
    } else {
        Err(PolicyError {
            source_name,
            problems,
        })
    }
}

/// Resolves which policy a command uses: an explicit file, else the first of
/// `fallbacks` that exists, else the embedded default.
pub fn resolve(
    explicit: Option<&Path>,
    fallbacks: &[PathBuf],
) -> Result<LoadedPolicy, crate::Failure> {
    resolve_with(explicit, fallbacks, &mut |_| Vec::new())
}

/// [`resolve`] with extra checks, reported together with the policy's own.
pub fn resolve_with(
    explicit: Option<&Path>,
    fallbacks: &[PathBuf],
    more: &mut dyn FnMut(&LoadedPolicy) -> Vec<String>,
) -> Result<LoadedPolicy, crate::Failure> {
    let path = match explicit {
        Some(p) => Some(p.to_path_buf()),
        None => fallbacks.iter().find(|p| p.is_file()).cloned(),
    };
    match path {
        None => Ok(load_text_with(
            DEFAULT_POLICY.to_string(),
            PolicySource::Embedded,
            more,
        )?),
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                crate::Failure::Usage(format!("cannot read policy file {}: {e}", path.display()))
            })?;
            Ok(load_text_with(text, PolicySource::File(path), more)?)
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
}
