//! `scorecard generate`: seeded, reproducible synthetic exports that look
//! like a real organisation's: departments of every type with Chinese and
//! English names, raters of all six groups (some lenient, some severe, a few
//! favouring one department), seasonality, improving and declining
//! departments, cases with transfers, reopenings and overdue work,
//! complaints with root causes, incidents (one confirmed veto) and audit,
//! training and innovation measurements, and the follow-ups of bad reviews
//! and complaints (call-backs, rectifications, a few reopened).
//!
//! Records are drawn day by day. Each day's (or month's) file of ratings
//! and process events is written as soon as its days are generated, and
//! complaints, appeals and follow-ups are appended to their files as their
//! days pass,
//! so memory holds about a day of records and the later events of open
//! cases, whatever the size of the set (`--split month` holds a month).
//! The same arguments and seed always give byte-identical files.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};
use clap::Args;
use polars::prelude::*;

use crate::ingest::tables::{self, Kind, TableSpec};
use crate::progress::Progress;

mod staff;
use staff::StaffDraws;
mod world;
use world::*;
mod files;
use files::*;

#[derive(Debug, Clone, Args)]
pub struct GenerateArgs {
    /// Folder to write (created; existing table files in it are replaced).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of departments (the first 14 have real names).
    #[arg(long, default_value_t = 14)]
    pub departments: usize,
    /// Number of months, ending with --end-month.
    #[arg(long, default_value_t = 24)]
    pub months: u32,
    /// Last month generated (YYYY-MM).
    #[arg(long, default_value = "2026-10")]
    pub end_month: String,
    /// Approximate number of rating rows (one per item answered).
    #[arg(long, default_value_t = 24_000)]
    pub ratings: u64,
    /// Approximate number of cases (each gives several process events).
    #[arg(long, default_value_t = 8_000)]
    pub cases: u64,
    /// Approximate number of complaints (default: a few per department and
    /// month, more where quality is low).
    #[arg(long)]
    pub complaints: Option<u64>,
    /// Random seed: the same seed gives the same files.
    #[arg(long, default_value_t = 20_261_001)]
    pub seed: u64,
    /// File format: csv, jsonl, parquet, or mixed (the layout of
    /// data_samples/: GB18030 and BOM CSV, JSON Lines and Parquet).
    #[arg(long, default_value = "csv")]
    pub format: String,
    /// One file per `month` or per `day` (as nightly exports arrive).
    #[arg(long, default_value = "day")]
    pub split: String,
    /// Leave out the handful of deliberately invalid records.
    #[arg(long)]
    pub no_bad_records: bool,
}

/// SplitMix64: small, fast, and stable across versions (unlike a crate's
/// default generator), which keeps generated files reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    fn f(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }
    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = self.f().max(1e-12);
        let u2 = self.f();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// Poisson: by inversion for small means; above 500 (where `exp(-mean)`
    /// heads for underflow) by the normal approximation, which is then
    /// accurate to well under a percent.
    fn poisson(&mut self, mean: f64) -> u64 {
        if mean > 500.0 {
            return (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64;
        }
        let l = (-mean).exp();
        let mut k = 0;
        let mut p = 1.0;
        loop {
            p *= self.f();
            if p <= l || k > 1000 {
                return k;
            }
            k += 1;
        }
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

#[derive(Debug, Clone)]
struct Dept {
    id: String,
    name: String,
    name_en: String,
    dtype: &'static str,
    parent: String,
    /// Latent quality at the start, 0-1.
    base: f64,
    /// Change of quality per month.
    slope: f64,
    headcount: u32,
}

/// A generated record: column name -> text, and the time it sorts by.
#[derive(Debug, Clone)]
struct Rec {
    at: NaiveDateTime,
    fields: Vec<(&'static str, String)>,
}

fn rec(at: NaiveDateTime, fields: Vec<(&'static str, String)>) -> Rec {
    Rec { at, fields }
}

fn ts(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn ts_offset(t: NaiveDateTime) -> String {
    // Local Asia/Shanghai time written with its fixed +08:00 offset.
    format!("{}+08:00", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// Where each table goes and in which format and encoding.
#[derive(Debug, Clone, Copy, PartialEq)]
enum FileKind {
    Csv,
    CsvBom,
    CsvGb18030,
    Jsonl,
    Parquet,
}

impl FileKind {
    fn ext(self) -> &'static str {
        match self {
            FileKind::Csv | FileKind::CsvBom | FileKind::CsvGb18030 => "csv",
            FileKind::Jsonl => "jsonl",
            FileKind::Parquet => "parquet",
        }
    }
}

fn file_kind(format: &str, table: &str) -> Result<FileKind> {
    Ok(match format {
        "csv" => FileKind::Csv,
        "jsonl" => FileKind::Jsonl,
        "parquet" => FileKind::Parquet,
        "mixed" => match table {
            "departments" => FileKind::CsvGb18030,
            "complaints" => FileKind::CsvBom,
            "process_events" | "incidents" => FileKind::Jsonl,
            "measurements" => FileKind::Parquet,
            _ => FileKind::Csv,
        },
        other => {
            return Err(crate::error::Failure::Usage(format!(
                "--format `{other}` is not one of csv, jsonl, parquet, mixed"
            ))
            .into())
        }
    })
}

pub fn generate(args: &GenerateArgs, progress: &Progress) -> Result<()> {
    let end =
        NaiveDate::parse_from_str(&format!("{}-01", args.end_month), "%Y-%m-%d").map_err(|_| {
            crate::error::Failure::Usage(format!("--end-month `{}` is not YYYY-MM", args.end_month))
        })?;
    if args.months == 0 || args.departments == 0 {
        return Err(crate::error::Failure::Usage(
            "--months and --departments must be at least 1".into(),
        )
        .into());
    }
    if !matches!(args.split.as_str(), "day" | "month") {
        return Err(crate::error::Failure::Usage(format!(
            "--split `{}` is not day or month",
            args.split
        ))
        .into());
    }
    let start = add_months(end, -(args.months as i32 - 1));
    let mut rng = Rng(args.seed);
    let depts = make_departments(args.departments, &mut rng);
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    for spec in tables::ALL {
        let p = out.join(spec.name);
        if p.is_dir() {
            std::fs::remove_dir_all(&p)?;
        }
        for ext in ["csv", "jsonl", "parquet"] {
            let f = out.join(format!("{}.{ext}", spec.name));
            if f.is_file() {
                std::fs::remove_file(&f)?;
            }
        }
    }

    // Reference data and low-volume tables go in one file each.
    let dept_recs: Vec<Rec> = depts
        .iter()
        .map(|d| {
            rec(
                NaiveDateTime::default(),
                vec![
                    ("dept_id", d.id.clone()),
                    ("name", d.name.clone()),
                    ("dept_type", d.dtype.to_string()),
                    ("name_en", d.name_en.clone()),
                    ("parent_id", d.parent.clone()),
                ],
            )
        })
        .collect();
    write_file(
        out,
        &tables::DEPARTMENTS,
        None,
        dept_recs,
        file_kind(&args.format, "departments")?,
    )?;

    let raters = RaterPool::new(&depts, &mut rng);
    let n_months = args.months as f64;
    let ratings_per_month = args.ratings as f64 / n_months;
    // Mean shortfall from full quality, to scale a requested complaint count.
    let mean_gap = (depts.iter().map(|d| 1.0 - d.base).sum::<f64>() / depts.len() as f64).max(0.05);
    let cases_per_month = args.cases as f64 / n_months;
    let shares: Vec<f64> = depts.iter().map(|d| dept_share(d, &depts)).collect();
    // Staff, and who served whom: a stream of its own.
    let client_per_month: Vec<f64> = shares
        .iter()
        .map(|s| ratings_per_month / 2.8 * s * 0.62)
        .collect();
    let dept_index: std::collections::HashMap<&str, usize> = depts
        .iter()
        .enumerate()
        .map(|(i, d)| (d.id.as_str(), i))
        .collect();
    let mut staff = StaffDraws::new(args.seed, &depts, &client_per_month, start, args.months);
    write_file(
        out,
        &tables::STAFF,
        None,
        staff.records(&depts, args.no_bad_records),
        file_kind(&args.format, "staff")?,
    )?;
    // Records are drawn day by day and written as soon as their day (or
    // month) is complete; complaints and appeals are appended to their
    // files as their days pass. Memory holds a day's records and the
    // events of cases still open, not the set.
    let mut writers = Writers::new(out, &args.format, &args.split)?;
    let mut complaints = Stream::create(
        out,
        &tables::COMPLAINTS,
        file_kind(&args.format, "complaints")?,
    )?;
    let mut appeals = Stream::create(
        out,
        &tables::RATING_APPEALS,
        file_kind(&args.format, "rating_appeals")?,
    )?;
    let mut followups = Stream::create(
        out,
        &tables::FOLLOWUPS,
        file_kind(&args.format, "followups")?,
    )?;
    // Follow-ups (and whether a rater gave their name) are drawn from a
    // stream of their own, so that they leave the other tables' draws as
    // they were.
    let mut fu = FollowupDraws::new(args.seed);
    // Improvement plans likewise.
    let mut plan_draws = PlanDraws::new(args.seed);
    let last_day = add_months(end, 1) - Duration::days(1);
    let (mut plans, mut plan_events) = (Vec::new(), Vec::new());
    let mut last_complaint: Option<Rec> = None;
    let mut n_complaints = 0usize;
    let mut incidents = Vec::new();
    let mut measurements = Vec::new();
    let mut case_seq = 0u64;
    let mut rating_seq = 0u64;
    let mut feedback_seq = 0u64;

    for m in 0..args.months {
        let month = add_months(start, m as i32);
        let days = days_in_month(month);
        let per_day = 1.0 / days as f64;
        let season = 0.03 * ((month.month() as f64 - 1.0) / 12.0 * std::f64::consts::TAU).sin();
        let quality: Vec<f64> = depts
            .iter()
            .map(|d| (d.base + d.slope * m as f64 + season).clamp(0.05, 0.98))
            .collect();
        if month.month().is_multiple_of(6) {
            writers.hold(
                &tables::RATINGS,
                staff.feedback(month, &depts, &mut feedback_seq),
            );
        }
        if !args.no_bad_records && m + 1 == args.months {
            writers.hold(&tables::RATINGS, bad_ratings(month, &depts[0].id));
            writers.hold(&tables::PROCESS_EVENTS, bad_events(month, &depts[0].id));
        }
        for day in (0..days).map(|i| month + Duration::days(i as i64)) {
            let mut ratings = Vec::new();
            let mut events = Vec::new();
            let mut todays_complaints = Vec::new();
            for (di, d) in depts.iter().enumerate() {
                let (q, share) = (quality[di], shares[di]);
                // Ratings: responses answer 2-4 items each.
                let n_resp = rng.poisson(ratings_per_month * share / 2.8 * per_day);
                for _ in 0..n_resp {
                    rating_seq += 1;
                    let at = random_time_on(&mut rng, day);
                    let (group, rater, lean) = raters.draw(&mut rng, d, di);
                    let rating_id = format!("R{:07}", rating_seq);
                    let n_items = 2 + rng.below(3) as usize;
                    let channel = if d.dtype == "external_service" {
                        rng.pick(&CHANNELS).to_string()
                    } else {
                        String::new()
                    };
                    let comment = if rng.chance(0.08) {
                        rng.pick(&COMMENTS).to_string()
                    } else {
                        String::new()
                    };
                    let at_text = if rng.chance(0.5) {
                        ts(at)
                    } else {
                        ts_offset(at)
                    };
                    let first_item = ratings.len();
                    let mut overall = None;
                    let mut low = false;
                    let is_client = matches!(group, "client_internal" | "client_external");
                    let real_name = if is_client {
                        fu.real_name().to_string()
                    } else {
                        String::new()
                    };
                    for item in ITEMS.iter().take(n_items) {
                        let latent = 1.0 + 4.0 * q + lean + 0.6 * rng.normal();
                        let score = latent.round().clamp(1.0, 5.0) as i64;
                        low |= score <= 2;
                        // What the person served is judged by: the
                        // overall answer, else the last.
                        if overall.is_none() || *item == "overall" {
                            overall = Some(score);
                        }
                        // A bad review (the default policy's): a service
                        // object's overall answer in the bottom two levels.
                        if is_client && *item == "overall" && score <= 2 {
                            followups.hold(fu.of_bad_review(&rating_id, at, real_name == "true"));
                        }
                        ratings.push(rec(
                            at,
                            vec![
                                ("rating_id", rating_id.clone()),
                                ("rated_at", at_text.clone()),
                                ("dept_id", d.id.clone()),
                                ("rater_id", rater.clone()),
                                ("rater_group", group.to_string()),
                                ("item", item.to_string()),
                                ("score", score.to_string()),
                                ("channel", channel.clone()),
                                ("comment", comment.clone()),
                                ("real_name", real_name.clone()),
                            ],
                        ));
                    }
                    // The person who served a service object: on every
                    // external response, on most internal ones.
                    if let (true, Some(o)) = (is_client, overall) {
                        let share = if d.dtype == "external_service" {
                            1.0
                        } else {
                            0.7
                        };
                        if let Some(p) = staff
                            .serves(share)
                            .then(|| staff.for_rating(di, day, o))
                            .flatten()
                        {
                            for r in &mut ratings[first_item..] {
                                r.fields.push(("staff_id", p.clone()));
                            }
                        }
                    }
                    if low && group == "client_external" && rng.chance(0.15) {
                        let decided = at + Duration::days(5 + rng.below(6) as i64);
                        let decision = if rng.chance(0.4) { "removed" } else { "upheld" };
                        // Decided days later: written on that day.
                        appeals.hold([rec(
                            decided,
                            vec![
                                ("rating_id", rating_id.clone()),
                                ("decided_at", ts(decided)),
                                ("decision", decision.to_string()),
                            ],
                        )]);
                    }
                }
                // Cases and their process events.
                let n_cases = rng.poisson(cases_per_month * share * per_day);
                for _ in 0..n_cases {
                    case_seq += 1;
                    let first_event = events.len();
                    make_case(&mut rng, &mut events, d, &depts, q, case_seq, day, end);
                    // Who resolved it, in the department that did.
                    for e in &mut events[first_event..] {
                        let field =
                            |k: &str| e.fields.iter().find(|f| f.0 == k).map(|f| f.1.as_str());
                        let di = match field("event") {
                            Some("resolved") => {
                                field("dept_id").and_then(|b| dept_index.get(b).copied())
                            }
                            _ => None,
                        };
                        if let Some(di) = di {
                            if let Some(p) = staff.for_case(di, e.at.date()) {
                                e.fields.push(("staff_id", p));
                            }
                        }
                    }
                }
                // Complaints: fewer where quality is high.
                let n_compl = rng.poisson(
                    per_day
                        * match args.complaints {
                            // Spread the requested total by volume, weighted
                            // to low quality.
                            Some(total) => total as f64 / n_months * share * (1.0 - q) / mean_gap,
                            None => (1.0 - q) * 3.0 * share * depts.len() as f64 / 3.0,
                        },
                );
                for _ in 0..n_compl {
                    n_complaints += 1;
                    let at = random_time_on(&mut rng, day);
                    let due = at + Duration::days(10);
                    let rectified_at = rng
                        .chance(0.85)
                        .then(|| at + Duration::hours(24 + rng.below(24 * 14) as i64));
                    let rectified = rectified_at.map(ts).unwrap_or_default();
                    if let Some(r) = rectified_at {
                        followups.hold(fu.of_complaint(&format!("K{n_complaints:06}"), r));
                    }
                    todays_complaints.push(rec(
                        at,
                        vec![
                            ("complaint_id", format!("K{n_complaints:06}")),
                            ("received_at", ts(at)),
                            ("dept_id", d.id.clone()),
                            (
                                "severity",
                                if rng.chance(0.1) { "major" } else { "general" }.into(),
                            ),
                            (
                                "valid",
                                if rng.chance(0.8) { "true" } else { "false" }.into(),
                            ),
                            ("root_cause", rng.pick(&ROOT_CAUSES).to_string()),
                            ("due_at", ts(due)),
                            ("rectified_at", rectified),
                            ("staff_id", staff.named(di, day, 0.6).unwrap_or_default()),
                        ],
                    ));
                }
            }
            writers.hold(&tables::RATINGS, ratings);
            writers.hold(&tables::PROCESS_EVENTS, events);
            writers.flush(day)?;
            if let Some(last) = todays_complaints.last() {
                last_complaint = Some(last.clone());
            }
            complaints.hold(todays_complaints);
            complaints.flush(day)?;
            appeals.flush(day)?;
            followups.flush(day)?;
        }
        for (di, d) in depts.iter().enumerate() {
            measure(&mut rng, &mut measurements, d, quality[di], month);
            plan_draws.after_month(
                d,
                quality[di],
                month,
                last_day,
                &mut plans,
                &mut plan_events,
            );
        }
        // Incidents: a confirmed veto-level incident in the 20th month at
        // the third external department, others unconfirmed or minor.
        if m == args.months.saturating_sub(5) {
            if let Some(d) = depts
                .iter()
                .filter(|d| d.dtype == "external_service")
                .nth(1)
            {
                let at = random_time(&mut rng, month, days);
                incidents.push(rec(
                    at,
                    vec![
                        ("incident_id", format!("INC-{}-01", month.format("%Y%m"))),
                        ("occurred_at", ts(at)),
                        ("dept_id", d.id.clone()),
                        ("kind", "major_service_incident".into()),
                        ("confirmed", "true".into()),
                    ],
                ));
            }
        }
        if rng.chance(0.3) {
            let d = rng.pick(&depts).clone();
            let at = random_time(&mut rng, month, days);
            let (kind, confirmed) = if rng.chance(0.5) {
                ("system_outage", "true")
            } else {
                ("broken_public_commitment", "false")
            };
            incidents.push(rec(
                at,
                vec![
                    (
                        "incident_id",
                        format!("INC-{}-{:02}", month.format("%Y%m"), 2 + rng.below(90)),
                    ),
                    ("occurred_at", ts(at)),
                    ("dept_id", d.id.clone()),
                    ("kind", kind.into()),
                    ("confirmed", confirmed.into()),
                    (
                        "staff_id",
                        dept_index
                            .get(d.id.as_str())
                            .and_then(|&di| staff.named(di, at.date(), 0.5))
                            .unwrap_or_default(),
                    ),
                ],
            ));
        }
        progress.step(&format!("generated {}", month.format("%Y-%m")));
    }
    writers.finish()?;
    appeals.finish()?;
    followups.finish()?;
    if !args.no_bad_records {
        if let Some(mut bad) = last_complaint {
            bad.fields
                .retain(|(k, _)| *k != "complaint_id" && *k != "valid");
            bad.fields.push(("complaint_id", "K-BAD-1".into()));
            bad.fields.push(("valid", "maybe".into()));
            complaints.hold([bad]);
        }
        let first = &depts[0].id;
        measurements.push(rec(
            NaiveDateTime::default(),
            vec![
                ("dept_id", first.clone()),
                ("metric", "training_hours".into()),
                ("period_start", add_months(end, 0).to_string()),
            ],
        ));
    }
    complaints.finish()?;
    if !args.no_bad_records {
        plan_draws.bad_records(&depts[0].id, last_day, &mut plans, &mut plan_events);
    }
    plans.sort_by_key(|r| r.at);
    plan_events.sort_by_key(|r| r.at);
    write_file(
        out,
        &tables::IMPROVEMENT_PLANS,
        None,
        plans,
        file_kind(&args.format, "improvement_plans")?,
    )?;
    write_file(
        out,
        &tables::PLAN_EVENTS,
        None,
        plan_events,
        file_kind(&args.format, "plan_events")?,
    )?;
    incidents.sort_by_key(|r| r.at);
    write_file(
        out,
        &tables::INCIDENTS,
        None,
        incidents,
        file_kind(&args.format, "incidents")?,
    )?;
    write_file(
        out,
        &tables::MEASUREMENTS,
        None,
        measurements,
        file_kind(&args.format, "measurements")?,
    )?;
    progress.step(&format!(
        "wrote {} departments, {rating_seq} responses, {case_seq} cases to {}",
        depts.len(),
        out.display()
    ));
    Ok(())
}

/// Follow-ups of bad reviews and complaints: most on time, some late,
/// some never; a few reopened.
struct FollowupDraws {
    rng: Rng,
    seq: u64,
}

impl FollowupDraws {
    fn new(seed: u64) -> FollowupDraws {
        FollowupDraws {
            rng: Rng(seed ^ 0x5eed_f011_0a05),
            seq: 0,
        }
    }

    /// Whether a service object gave their name: about three in five.
    fn real_name(&mut self) -> &'static str {
        if self.rng.chance(0.6) {
            "true"
        } else {
            "false"
        }
    }

    fn followup(&mut self, kind: &str, id: &str, what: &str, at: NaiveDateTime) -> Rec {
        self.seq += 1;
        let outcome = if what == "call_back" {
            let x = self.rng.f();
            if x < 0.7 {
                "satisfied"
            } else if x < 0.9 {
                "partly"
            } else {
                "unsatisfied"
            }
        } else {
            ""
        };
        rec(
            at,
            vec![
                ("followup_id", format!("F{:07}", self.seq)),
                ("subject_kind", kind.to_string()),
                ("subject_id", id.to_string()),
                ("kind", what.to_string()),
                ("at", ts(at)),
                ("outcome", outcome.to_string()),
            ],
        )
    }

    /// Hours after `at`: mostly within `soon` days, one in eight within
    /// two to three times that, `never` of the time not at all.
    fn delay(&mut self, soon: i64, never: f64) -> Option<Duration> {
        let x = self.rng.f();
        if x < never {
            None
        } else if x < never + 0.12 {
            Some(Duration::hours(
                24 * 2 * soon + self.rng.below(24 * soon as u64) as i64,
            ))
        } else {
            Some(Duration::hours(2 + self.rng.below(24 * soon as u64) as i64))
        }
    }

    fn of_bad_review(&mut self, rating_id: &str, at: NaiveDateTime, real_name: bool) -> Vec<Rec> {
        let mut out = Vec::new();
        if real_name {
            if let Some(d) = self.delay(4, 0.05) {
                out.push(self.followup("rating", rating_id, "call_back", at + d));
            }
        }
        if let Some(d) = self.delay(5, 0.08) {
            let how = if self.rng.chance(0.1) {
                "explained"
            } else {
                "rectified"
            };
            out.push(self.followup("rating", rating_id, how, at + d));
            if self.rng.chance(0.03) {
                let again = at + d + Duration::hours(24 + self.rng.below(48) as i64);
                out.push(self.followup("rating", rating_id, "reopened", again));
                let done = again + Duration::hours(24 + self.rng.below(72) as i64);
                out.push(self.followup("rating", rating_id, "rectified", done));
            }
        }
        out
    }

    /// A call-back after half of the complaints' rectifications.
    fn of_complaint(&mut self, complaint_id: &str, rectified: NaiveDateTime) -> Vec<Rec> {
        if !self.rng.chance(0.5) {
            return Vec::new();
        }
        let at = rectified + Duration::hours(4 + self.rng.below(72) as i64);
        vec![self.followup("complaint", complaint_id, "call_back", at)]
    }
}

/// Improvement plans: one after a month of low quality now and then, most
/// done on time, some late or never, a few extended; verified by the
/// quality office where a plan has no indicator to check.
struct PlanDraws {
    rng: Rng,
    plans: u64,
    events: u64,
}

/// Indicators a plan of each department type sets out to move, with the
/// target a plan would give.
fn plan_indicators(dtype: &str) -> &'static [(&'static str, f64)] {
    match dtype {
        "external_service" => &[
            ("satisfaction", 80.0),
            ("on_time_resolution_rate", 90.0),
            ("bad_review_rate", 4.0),
            ("instant_handled_share", 65.0),
        ],
        _ => &[
            ("satisfaction", 80.0),
            ("on_time_resolution_rate", 90.0),
            ("first_time_resolution_rate", 88.0),
        ],
    }
}

impl PlanDraws {
    fn new(seed: u64) -> PlanDraws {
        PlanDraws {
            rng: Rng(seed ^ 0x91a2_5eed_77e1),
            plans: 0,
            events: 0,
        }
    }

    fn event(&mut self, plan: &str, kind: &str, day: NaiveDate, new_due: Option<NaiveDate>) -> Rec {
        self.events += 1;
        let at = day.and_hms_opt(9, 0, 0).expect("valid time")
            + Duration::minutes(self.rng.below(8 * 60) as i64);
        rec(
            at,
            vec![
                ("event_id", format!("PE{:06}", self.events)),
                ("plan_id", plan.to_string()),
                ("kind", kind.to_string()),
                ("at", ts(at)),
                (
                    "new_due_on",
                    new_due.map(|d| d.to_string()).unwrap_or_default(),
                ),
            ],
        )
    }

    /// A plan for `d` opened early in the month after `month`, more likely
    /// the lower its quality `q` was; only what happened by `last_day`.
    fn after_month(
        &mut self,
        d: &Dept,
        q: f64,
        month: NaiveDate,
        last_day: NaiveDate,
        plans: &mut Vec<Rec>,
        events: &mut Vec<Rec>,
    ) {
        if !self.rng.chance(((0.85 - q) * 3.0).clamp(0.03, 0.6)) {
            return;
        }
        let opened = add_months(month, 1) + Duration::days(self.rng.below(7) as i64);
        if opened > last_day {
            return;
        }
        self.plans += 1;
        let id = format!("P{:05}", self.plans);
        let &(ind, target) = self.rng.pick(plan_indicators(d.dtype));
        let x = self.rng.f();
        let (reason, reason_ref, indicator) = if x < 0.5 {
            (
                "grade",
                month.format("%Y-%m").to_string(),
                Some((ind, target)),
            )
        } else if x < 0.8 {
            ("indicator", ind.to_string(), Some((ind, target)))
        } else if x < 0.85 {
            (
                "complaint",
                String::new(),
                Some(plan_indicators(d.dtype)[0]),
            )
        } else {
            let n = 1 + self.rng.below(20);
            ("audit", format!("AUD-{}-{n:02}", month.format("%Y")), None)
        };
        // Most plans give their own target; the rest are held to the policy's.
        let target = match indicator {
            Some((_, t)) if self.rng.chance(0.6) => t.to_string(),
            _ => String::new(),
        };
        let indicator = indicator.map(|(i, _)| i);
        let mut due = opened + Duration::days(30 + self.rng.below(45) as i64);
        plans.push(rec(
            opened.and_hms_opt(0, 0, 0).expect("valid time"),
            vec![
                ("plan_id", id.clone()),
                ("dept_id", d.id.clone()),
                ("opened_on", opened.to_string()),
                ("reason", reason.to_string()),
                ("reason_ref", reason_ref),
                ("indicator", indicator.unwrap_or_default().to_string()),
                ("target", target),
                ("measures", self.rng.pick(&PLAN_MEASURES).to_string()),
                ("owner", self.rng.pick(&PLAN_OWNERS).to_string()),
                ("due_on", due.to_string()),
            ],
        ));
        let mut evs = Vec::new();
        if self.rng.chance(0.7) {
            let half = opened + Duration::days((due - opened).num_days() / 2);
            evs.push(self.event(&id, "progress", half, None));
        }
        let x = self.rng.f();
        if x < 0.12 {
            let new_due = due + Duration::days(30);
            let asked = due - Duration::days(self.rng.below(5) as i64);
            evs.push(self.event(&id, "extended", asked, Some(new_due)));
            due = new_due;
        } else if x < 0.15 {
            // Asked for after the due date: left out.
            let asked = due + Duration::days(3);
            evs.push(self.event(&id, "extended", asked, Some(due + Duration::days(30))));
        }
        let x = self.rng.f();
        let done = if x < 0.7 {
            let span = (due - opened).num_days().max(1) as u64;
            Some(opened + Duration::days((span / 2 + self.rng.below(span / 2 + 1)) as i64))
        } else if x < 0.85 {
            Some(due + Duration::days(3 + self.rng.below(22) as i64))
        } else {
            None
        };
        if let Some(done) = done {
            evs.push(self.event(&id, "done", done, None));
        }
        let verdict_day = done.unwrap_or(due) + Duration::days(7 + self.rng.below(14) as i64);
        let verdict = match (indicator, done) {
            // Some left without a verdict: not measurable.
            (None, Some(_)) => match self.rng.f() {
                x if x < 0.6 => Some("verified"),
                x if x < 0.85 => Some("failed"),
                _ => None,
            },
            (None, None) => self.rng.chance(0.5).then_some("failed"),
            (Some(_), Some(_)) => self.rng.chance(0.1).then_some("verified"),
            (Some(_), None) => None,
        };
        if let Some(v) = verdict {
            evs.push(self.event(&id, v, verdict_day, None));
        }
        events.extend(evs.into_iter().filter(|e| e.at.date() <= last_day));
    }

    /// An event of no plan, and a plan due before it was opened.
    fn bad_records(
        &mut self,
        dept: &str,
        last_day: NaiveDate,
        plans: &mut Vec<Rec>,
        events: &mut Vec<Rec>,
    ) {
        let day = last_day - Duration::days(3);
        events.push(self.event("P-UNKNOWN", "progress", day, None));
        plans.push(rec(
            day.and_hms_opt(0, 0, 0).expect("valid time"),
            vec![
                ("plan_id", "P-BAD-1".into()),
                ("dept_id", dept.to_string()),
                ("opened_on", day.to_string()),
                ("reason", "audit".into()),
                ("owner", PLAN_OWNERS[0].into()),
                ("due_on", (day - Duration::days(10)).to_string()),
            ],
        ));
    }
}

#[cfg(test)]
mod tests;
