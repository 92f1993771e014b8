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

use crate::error::PolicyError;

mod validate;
pub use validate::*;

/// The policy compiled into the binary: the source document's numbers.
pub const DEFAULT_POLICY: &str = include_str!("default.toml");

/// Rater groups the `ratings.rater_group` column may hold.
pub const RATER_GROUPS: [&str; 7] = [
    "client_internal",
    "client_external",
    "superior",
    "peer",
    "self",
    "third_party",
    "subordinate",
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
    /// Follow-up of bad reviews: rectification and call-backs.
    #[serde(default)]
    pub followups: FollowupPolicy,
    /// Improvement plans: how they are verified.
    #[serde(default)]
    pub plans: PlanPolicy,
    /// When a department is called in (约谈).
    #[serde(default)]
    pub escalation: EscalationPolicy,
    /// Staff measures and the monthly 服务之星.
    #[serde(default)]
    pub staff: StaffPolicy,
    /// `followups`, `plans` and `escalation` as each version changes them,
    /// made by [`Policy::parse`]; [`Policy::rules_on`] picks one.
    #[serde(skip)]
    pub rules: Vec<Rules>,
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

    /// The trend window of a grain: how many complete periods it spans.
    pub fn window_for(&self, grain: &str) -> usize {
        Self::per_grain(&self.window, grain, 12)
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

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FollowupPolicy {
    /// Working days after a bad review by which its rater is called back.
    pub call_back_working_days: u32,
    /// Working days after a bad review by which it is rectified or
    /// explained.
    pub rectify_working_days: u32,
    /// Only raters who gave their name (`ratings.real_name`) are owed a
    /// call-back.
    pub call_back_real_name_only: bool,
    pub bad_review: BadReview,
}

impl Default for FollowupPolicy {
    fn default() -> Self {
        FollowupPolicy {
            call_back_working_days: 5,
            rectify_working_days: 5,
            call_back_real_name_only: true,
            bad_review: BadReview::default(),
        }
    }
}

/// When a department is called in (约谈); 0 or false turns a rule off.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationPolicy {
    /// Complete months in a row at the lowest grade.
    pub lowest_grade_months: u32,
    /// An indicator that meets its target short-term while declining
    /// long-term (the trend flag).
    pub short_term_met_long_term_declining: bool,
    /// Bad reviews and complaints with a follow-up overdue at as-of.
    pub overdue_followups: u32,
    /// Improvement plans overdue (due date passed, not done) at as-of.
    pub overdue_plans: u32,
}

/// Staff measures: the composite's weights and the 服务之星 rule.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaffPolicy {
    /// Weights of the composite's parts (`satisfaction`, `good_review_rate`,
    /// `on_time_rate`, `first_time_rate`, `volume`), re-normalised over the
    /// parts a person has data for.
    pub weights: BTreeMap<String, f64>,
    /// A composite is given from this many ratings in the period.
    pub min_ratings: usize,
    pub stars: StarPolicy,
    pub review360: Review360Policy,
    pub hr: HrPolicy,
}

impl StaffPolicy {
    /// The weights in the order of [`STAFF_PARTS`] (0 where absent).
    pub fn part_weights(&self) -> [f64; 5] {
        STAFF_PARTS.map(|p| self.weights.get(p).copied().unwrap_or(0.0))
    }
}

/// The parts of a staff member's composite.
pub const STAFF_PARTS: [&str; 5] = [
    "satisfaction",
    "good_review_rate",
    "on_time_rate",
    "first_time_rate",
    "volume",
];

impl Default for StaffPolicy {
    fn default() -> Self {
        // The source document's service centre: satisfaction 40%, process
        // (on-time and first-time) 30%, workload 20%; good reviews the rest.
        StaffPolicy {
            weights: [
                ("satisfaction", 40.0),
                ("good_review_rate", 10.0),
                ("on_time_rate", 15.0),
                ("first_time_rate", 15.0),
                ("volume", 20.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            min_ratings: 10,
            stars: StarPolicy::default(),
            review360: Review360Policy::default(),
            hr: HrPolicy::default(),
        }
    }
}

/// Managers' 360-degree feedback: the groups' weights in its composite
/// (the anonymity minimums are `raters.anonymity_min`'s).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Review360Policy {
    /// Weight of `superior`, `peer`, `subordinate`, `client` and `self`
    /// (re-normalised over the groups published).
    pub weights: BTreeMap<String, f64>,
}

/// The rater groups whose ratings that name a `staff_id` are 360-degree
/// feedback on that person (the rest of a 360 are service objects'
/// ratings, which count for the department too).
pub const FEEDBACK_GROUPS: [&str; 4] = ["superior", "peer", "subordinate", "self"];

/// The groups of a manager's 360, in the mart's order.
pub const REVIEW360_GROUPS: [&str; 5] = ["superior", "peer", "subordinate", "client", "self"];

impl Default for Review360Policy {
    fn default() -> Self {
        Review360Policy {
            weights: [
                ("superior", 30.0),
                ("peer", 20.0),
                ("subordinate", 25.0),
                ("client", 25.0),
                ("self", 0.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        }
    }
}

/// The yearly HR lists.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HrPolicy {
    /// Share of a department's ranked staff in the reserve pool (0-1).
    pub top_share: f64,
    /// Months with a composite a person needs in the year before a
    /// declining trend is claimed.
    pub min_months: usize,
}

impl Default for HrPolicy {
    fn default() -> Self {
        HrPolicy {
            top_share: 0.2,
            min_months: 6,
        }
    }
}

/// 服务之星: who may be one, and how many a month.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StarPolicy {
    /// `department` (the best of each department) or `organisation`.
    pub per: String,
    /// Stars per department (or for the organisation) each month.
    pub top: usize,
    /// Ratings a person needs in the month.
    pub min_ratings: usize,
    /// The composite a person needs (0-100): a star is good, not only the
    /// best of a weak month.
    pub min_composite: f64,
}

impl Default for StarPolicy {
    fn default() -> Self {
        StarPolicy {
            per: "department".into(),
            top: 1,
            min_ratings: 20,
            min_composite: 80.0,
        }
    }
}

/// How improvement plans are verified.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlanPolicy {
    /// The grain of the period in which a plan's indicator is checked: the
    /// first complete one after the due date (`month` or `quarter`).
    pub verify_grain: String,
}

impl Default for PlanPolicy {
    fn default() -> Self {
        PlanPolicy {
            verify_grain: "month".into(),
        }
    }
}

impl Default for EscalationPolicy {
    fn default() -> Self {
        EscalationPolicy {
            lowest_grade_months: 2,
            short_term_met_long_term_declining: true,
            overdue_followups: 5,
            overdue_plans: 2,
        }
    }
}

/// What counts as a bad review (差评).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BadReview {
    /// The rating item whose answer decides.
    pub item: String,
    /// At or below this score on the 0-100 scale.
    pub max_score: f64,
    /// Rater groups whose ratings can be bad reviews.
    pub groups: Vec<String>,
    /// `ratings.channel` values that count; empty: every channel.
    pub channels: Vec<String>,
}

impl Default for BadReview {
    fn default() -> Self {
        BadReview {
            item: "overall".into(),
            max_score: 25.0,
            groups: vec!["client_internal".into(), "client_external".into()],
            channels: Vec::new(),
        }
    }
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
    /// Changes to `[followups]`, `[plans]` and `[escalation]` from `from`
    /// on, key by key over the rules in force before (see [`Rules`]).
    #[serde(default)]
    pub followups: Option<toml::Table>,
    #[serde(default)]
    pub plans: Option<toml::Table>,
    #[serde(default)]
    pub escalation: Option<toml::Table>,
}

/// The follow-up, plan and escalation rules in force from a day: the
/// top-level sections, changed key by key by each version that changes
/// them, in the order of the versions.
#[derive(Debug, Clone)]
pub struct Rules {
    /// First day in force (the earliest day for the top-level rules and
    /// the first version's).
    pub from: NaiveDate,
    /// Where they were set, for messages: `` or `versions[N].`.
    pub at: String,
    pub followups: FollowupPolicy,
    pub plans: PlanPolicy,
    pub escalation: EscalationPolicy,
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
    /// What the site shows of people: `none`, `stars` (the 服务之星 page)
    /// or `all` (also a page per staff member).
    #[serde(default = "default_publish_staff")]
    pub publish_staff: String,
}

fn default_publish_staff() -> String {
    "stars".into()
}

impl Default for SitePolicy {
    fn default() -> Self {
        SitePolicy {
            publish_rater_audit: true,
            templates: String::new(),
            indicators: String::new(),
            publish_staff: default_publish_staff(),
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

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
) -> Result<LoadedPolicy, crate::error::Failure> {
    resolve_with(explicit, fallbacks, &mut |_| Vec::new())
}

/// [`resolve`] with extra checks, reported together with the policy's own.
pub fn resolve_with(
    explicit: Option<&Path>,
    fallbacks: &[PathBuf],
    more: &mut dyn FnMut(&LoadedPolicy) -> Vec<String>,
) -> Result<LoadedPolicy, crate::error::Failure> {
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
                crate::error::Failure::Usage(format!(
                    "cannot read policy file {}: {e}",
                    path.display()
                ))
            })?;
            Ok(load_text_with(text, PolicySource::File(path), more)?)
        }
    }
}

#[cfg(test)]
mod tests;
