//! `scorecard generate`: seeded, reproducible synthetic exports that look
//! like a real organisation's: departments of every type with Chinese and
//! English names, raters of all six groups (some lenient, some severe, a few
//! favouring one department), seasonality, improving and declining
//! departments, cases with transfers, reopenings and overdue work,
//! complaints with root causes, incidents (one confirmed veto) and audit,
//! training and innovation measurements.
//!
//! Records are drawn day by day. Each day's (or month's) file of ratings
//! and process events is written as soon as its days are generated, and
//! complaints and appeals are appended to their files as their days pass,
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

/// (id, Chinese name, English name, type, parent)
const NAMED: [(&str, &str, &str, &str, &str); 14] = [
    (
        "hr",
        "人力资源部",
        "Human Resources",
        "internal_service",
        "",
    ),
    (
        "it",
        "信息技术部",
        "Information Technology",
        "internal_service",
        "",
    ),
    (
        "office",
        "综合办公室",
        "General Office",
        "internal_service",
        "",
    ),
    (
        "facilities",
        "后勤保障部",
        "Facilities Management",
        "internal_service",
        "office",
    ),
    (
        "gsc",
        "政务服务中心",
        "Government Service Centre",
        "external_service",
        "",
    ),
    (
        "realestate",
        "不动产登记窗口",
        "Real Estate Registration Window",
        "external_service",
        "gsc",
    ),
    (
        "socsec",
        "社保服务窗口",
        "Social Security Window",
        "external_service",
        "gsc",
    ),
    (
        "hotline",
        "12345热线",
        "12345 Hotline",
        "external_service",
        "",
    ),
    (
        "cs",
        "客户服务部",
        "Customer Service",
        "external_service",
        "",
    ),
    (
        "legal",
        "法务部",
        "Legal Affairs",
        "professional_support",
        "",
    ),
    ("finance", "财务部", "Finance", "professional_support", ""),
    (
        "audit",
        "审计部",
        "Internal Audit",
        "professional_support",
        "",
    ),
    (
        "procurement",
        "采购部",
        "Procurement",
        "professional_support",
        "",
    ),
    (
        "records",
        "档案室",
        "Records Office",
        "professional_support",
        "office",
    ),
];

const ITEMS: [&str; 4] = ["attitude", "timeliness", "professionalism", "overall"];
const CHANNELS: [&str; 4] = ["window", "online", "phone", "app"];
const ROOT_CAUSES: [&str; 5] = [
    "流程缺陷",
    "人员能力不足",
    "政策解读不清",
    "系统故障",
    "服务态度",
];
const COMMENTS: [&str; 6] = [
    "办理很快，态度好",
    "材料要求讲得清楚，一次办成",
    "等了很久, 希望增加窗口",
    "工作人员解释\"不清楚\"，跑了两趟",
    "Helpful and quick",
    "系统又卡了\n第二次才提交成功",
];

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
            return Err(crate::Failure::Usage(format!(
                "--format `{other}` is not one of csv, jsonl, parquet, mixed"
            ))
            .into())
        }
    })
}

pub fn generate(args: &GenerateArgs, progress: &Progress) -> Result<()> {
    let end =
        NaiveDate::parse_from_str(&format!("{}-01", args.end_month), "%Y-%m-%d").map_err(|_| {
            crate::Failure::Usage(format!("--end-month `{}` is not YYYY-MM", args.end_month))
        })?;
    if args.months == 0 || args.departments == 0 {
        return Err(
            crate::Failure::Usage("--months and --departments must be at least 1".into()).into(),
        );
    }
    if !matches!(args.split.as_str(), "day" | "month") {
        return Err(
            crate::Failure::Usage(format!("--split `{}` is not day or month", args.split)).into(),
        );
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
    let mut last_complaint: Option<Rec> = None;
    let mut n_complaints = 0usize;
    let mut incidents = Vec::new();
    let mut measurements = Vec::new();
    let mut case_seq = 0u64;
    let mut rating_seq = 0u64;

    for m in 0..args.months {
        let month = add_months(start, m as i32);
        let days = days_in_month(month);
        let per_day = 1.0 / days as f64;
        let season = 0.03 * ((month.month() as f64 - 1.0) / 12.0 * std::f64::consts::TAU).sin();
        let quality: Vec<f64> = depts
            .iter()
            .map(|d| (d.base + d.slope * m as f64 + season).clamp(0.05, 0.98))
            .collect();
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
                    let mut low = false;
                    for item in ITEMS.iter().take(n_items) {
                        let latent = 1.0 + 4.0 * q + lean + 0.6 * rng.normal();
                        let score = latent.round().clamp(1.0, 5.0) as i64;
                        low |= score <= 2;
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
                            ],
                        ));
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
                    make_case(&mut rng, &mut events, d, &depts, q, case_seq, day, end);
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
                    let rectified = if rng.chance(0.85) {
                        ts(at + Duration::hours(24 + rng.below(24 * 14) as i64))
                    } else {
                        String::new()
                    };
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
        }
        for (di, d) in depts.iter().enumerate() {
            measure(&mut rng, &mut measurements, d, quality[di], month);
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
                ],
            ));
        }
        progress.step(&format!("generated {}", month.format("%Y-%m")));
    }
    writers.finish()?;
    appeals.finish()?;
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

fn make_departments(n: usize, rng: &mut Rng) -> Vec<Dept> {
    (0..n)
        .map(|i| {
            let (id, name, name_en, dtype, parent) = NAMED[i % NAMED.len()];
            let round = i / NAMED.len();
            let suffix = |s: &str| {
                if round == 0 {
                    s.to_string()
                } else {
                    format!("{s}-{}", round + 1)
                }
            };
            // A third improve (hr, facilities, socsec, legal, procurement
            // among the named ones), a sixth decline (gsc, finance), the rest
            // hold steady.
            let slope = match i % 6 {
                0 | 3 => 0.008,
                4 => -0.010,
                _ => 0.0,
            };
            Dept {
                id: suffix(id),
                name: if round == 0 {
                    name.to_string()
                } else {
                    format!("{name}（{}）", round + 1)
                },
                name_en: if round == 0 {
                    name_en.to_string()
                } else {
                    format!("{name_en} ({})", round + 1)
                },
                dtype,
                parent: if parent.is_empty() {
                    String::new()
                } else {
                    suffix(parent)
                },
                base: 0.72 + 0.2 * rng.f(),
                slope,
                headcount: 8 + rng.below(40) as u32,
            }
        })
        .collect()
}

/// External service departments see more traffic than the others.
fn dept_share(d: &Dept, all: &[Dept]) -> f64 {
    let w = |d: &Dept| {
        if d.dtype == "external_service" {
            2.5
        } else {
            1.0
        }
    };
    w(d) / all.iter().map(w).sum::<f64>()
}

/// Raters: clients (mostly one-off), superiors, peers, self, third parties;
/// each with a leniency, a few favouring one department.
struct RaterPool {
    staff: Vec<(String, f64)>,
    superiors: Vec<(String, f64)>,
    third: Vec<(String, f64)>,
    /// (rater, favoured department index)
    favouring: Vec<(String, usize)>,
}

impl RaterPool {
    fn new(depts: &[Dept], rng: &mut Rng) -> RaterPool {
        let lean = |rng: &mut Rng| {
            let r = rng.f();
            if r < 0.08 {
                0.9 // lenient
            } else if r < 0.16 {
                -0.9 // severe
            } else {
                0.25 * rng.normal()
            }
        };
        RaterPool {
            staff: (0..400)
                .map(|i| (format!("E{:04}", i + 1), lean(rng)))
                .collect(),
            superiors: (0..6)
                .map(|i| (format!("S{:02}", i + 1), lean(rng)))
                .collect(),
            third: (0..5)
                .map(|i| (format!("T{:02}", i + 1), lean(rng)))
                .collect(),
            favouring: (0..3)
                .map(|i| {
                    (
                        format!("E9{:03}", i + 1),
                        rng.below(depts.len() as u64) as usize,
                    )
                })
                .collect(),
        }
    }

    /// (group, rater id, leniency) for a response to department `d`.
    fn draw(&self, rng: &mut Rng, d: &Dept, di: usize) -> (&'static str, String, f64) {
        // Favouring raters are peers who rate many departments fairly and
        // one department far above its quality (人情分).
        for (r, fav) in &self.favouring {
            if *fav == di && rng.chance(0.08) {
                return ("peer", r.clone(), 1.5);
            }
            if rng.chance(0.01) {
                return ("peer", r.clone(), 0.0);
            }
        }
        let x = rng.f();
        let client = if d.dtype == "external_service" {
            "client_external"
        } else {
            "client_internal"
        };
        if x < 0.62 {
            if client == "client_external" {
                // Citizens: a large population, most rate once.
                let id = format!("C{:07}", rng.below(2_000_000));
                (client, id, 0.3 * rng.normal())
            } else {
                let (id, l) = rng.pick(&self.staff).clone();
                (client, id, l)
            }
        } else if x < 0.78 {
            let (id, l) = rng.pick(&self.superiors).clone();
            ("superior", id, l)
        } else if x < 0.9 {
            let (id, l) = rng.pick(&self.staff).clone();
            ("peer", id, l)
        } else if x < 0.94 {
            ("self", format!("self-{}", d.id), 0.6)
        } else {
            let (id, l) = rng.pick(&self.third).clone();
            ("third_party", id, l)
        }
    }
}

fn add_months(d: NaiveDate, n: i32) -> NaiveDate {
    let total = d.year() * 12 + d.month0() as i32 + n;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .expect("valid month")
}

fn days_in_month(month: NaiveDate) -> u32 {
    (add_months(month, 1) - month).num_days() as u32
}

/// A time in office hours (mostly) on a random day of the month.
fn random_time(rng: &mut Rng, month: NaiveDate, days: u32) -> NaiveDateTime {
    let day = month + Duration::days(rng.below(days as u64) as i64);
    random_time_on(rng, day)
}

/// A time in office hours (mostly) on `day`.
fn random_time_on(rng: &mut Rng, day: NaiveDate) -> NaiveDateTime {
    let hour = if rng.chance(0.9) {
        8 + rng.below(10)
    } else {
        rng.below(24)
    } as u32;
    let t = NaiveTime::from_hms_opt(hour, rng.below(60) as u32, rng.below(60) as u32)
        .expect("valid time");
    day.and_time(t)
}

#[allow(clippy::too_many_arguments)]
fn make_case(
    rng: &mut Rng,
    events: &mut Vec<Rec>,
    d: &Dept,
    depts: &[Dept],
    q: f64,
    seq: u64,
    day: NaiveDate,
    end: NaiveDate,
) {
    let case_id = format!("CASE{seq:07}");
    let received = random_time_on(rng, day);
    let external = d.dtype == "external_service";
    let instant = external && rng.chance(0.55 + 0.3 * q);
    let service = if external {
        rng.pick(&[
            "registration",
            "certificate",
            "consultation",
            "benefit_claim",
        ])
        .to_string()
    } else if d.dtype == "internal_service" {
        rng.pick(&["it_repair", "payroll", "onboarding", "facilities_request"])
            .to_string()
    } else {
        rng.pick(&[
            "contract_review",
            "reimbursement",
            "budget_query",
            "legal_opinion",
        ])
        .to_string()
    };
    let limit_h = if instant {
        8
    } else {
        24 * (3 + rng.below(10) as i64)
    };
    let due = received + Duration::hours(limit_h);
    let response_due = received + Duration::hours(if instant { 1 } else { 24 });
    let last_day =
        add_months(end, 1).and_hms_opt(0, 0, 0).expect("valid time") - Duration::seconds(1);
    let mut ev = |at: NaiveDateTime, event: &str, dept: &str| {
        if at <= last_day {
            let mut f = vec![
                ("case_id", case_id.clone()),
                ("event", event.to_string()),
                ("at", ts(at)),
                ("dept_id", dept.to_string()),
            ];
            if event == "received" {
                f.push(("service_type", service.clone()));
                f.push(("due_at", ts(due)));
                f.push(("response_due_at", ts(response_due)));
                f.push(("instant", instant.to_string()));
            }
            events.push(rec(at, f));
        }
    };
    ev(received, "received", &d.id);
    if external {
        ev(received, "visit", &d.id);
    }
    if rng.chance(0.01) {
        ev(received + Duration::hours(2), "cancelled", &d.id);
        return;
    }
    let slow = 1.0 + 0.8 * (1.0 - q);
    let respond = received + Duration::minutes((rng.f() * 90.0 * slow) as i64 + 5);
    ev(respond, "responded", &d.id);
    let mut holder = d.id.clone();
    let mut t = respond;
    if rng.chance(0.06) {
        let other = &depts[rng.below(depts.len() as u64) as usize];
        if other.id != d.id {
            t += Duration::hours(2 + rng.below(30) as i64);
            ev(t, "transferred", &other.id);
            holder = other.id.clone();
        }
    }
    if rng.chance(0.03) {
        t += Duration::hours(4);
        ev(t, "suspended", &holder);
        t += Duration::hours(24 + rng.below(72) as i64);
        ev(t, "resumed", &holder);
    }
    if external && rng.chance(0.25 * (1.2 - q)) {
        ev(t + Duration::hours(30), "visit", &holder);
    }
    // Overdue: a poorly performing department misses more deadlines, and
    // some cases are still open at the end.
    let hours = if instant {
        rng.f() * 6.0 * slow
    } else {
        rng.f() * limit_h as f64 * 0.8 * slow
    };
    let resolved = t + Duration::minutes((hours * 60.0) as i64 + 10);
    if rng.chance(0.02) {
        return; // never resolved: overdue or pending at as-of
    }
    ev(resolved, "resolved", &holder);
    let mut last = resolved;
    if rng.chance(0.08 * (1.3 - q)) {
        last = resolved + Duration::hours(24 + rng.below(72) as i64);
        ev(last, "reopened", &holder);
        last += Duration::hours(8 + rng.below(48) as i64);
        ev(last, "resolved", &holder);
    }
    if rng.chance(0.85 + 0.1 * q) {
        ev(last + Duration::hours(1), "notified", &holder);
    }
}

/// Monthly KPIs from other systems: audit samples, training, innovation and
/// the department-type measures the source document names.
fn measure(rng: &mut Rng, out: &mut Vec<Rec>, d: &Dept, q: f64, month: NaiveDate) {
    let at = month.and_hms_opt(0, 0, 0).expect("valid time");
    let start = month.to_string();
    let mut push = |metric: &str,
                    period: Option<(String, String)>,
                    fields: Vec<(&'static str, String)>| {
        let (period_start, period_end) = period.unwrap_or_else(|| (start.clone(), String::new()));
        let mut f = vec![
            ("dept_id", d.id.clone()),
            ("metric", metric.to_string()),
            ("period_start", period_start),
            ("period_end", period_end),
        ];
        f.extend(fields);
        out.push(rec(at, f));
    };
    let sampled = 20u64;
    let ok = (0..sampled).filter(|_| rng.chance(0.8 + 0.2 * q)).count();
    push(
        "process_compliance",
        None,
        vec![
            ("numerator", ok.to_string()),
            ("denominator", sampled.to_string()),
        ],
    );
    let hours = (d.headcount as f64 * (1.0 + 2.0 * q + rng.f())).round();
    push("training_hours", None, vec![("value", hours.to_string())]);
    push("headcount", None, vec![("value", d.headcount.to_string())]);
    if month.month().is_multiple_of(3) {
        // Behaviour-anchored innovation level for the quarter: 20 / 10 / 0.
        let level = if rng.chance(q * 0.6) {
            20
        } else if rng.chance(0.6) {
            10
        } else {
            0
        };
        let q_start = add_months(month, -2);
        let q_end = add_months(month, 1) - Duration::days(1);
        push(
            "innovation_level",
            Some((q_start.to_string(), q_end.to_string())),
            vec![("value", level.to_string())],
        );
    }
    let specific = match d.id.split('-').next().unwrap_or("") {
        "hr" => Some(("payroll_accuracy", 500u64, 0.995)),
        "it" => Some(("repair_within_2h", 60, 0.85)),
        "legal" => Some(("contract_review_accuracy", 40, 0.97)),
        "hotline" => Some(("call_answer_rate", 3000, 0.8)),
        _ => None,
    };
    if let Some((metric, n, base)) = specific {
        let p = (base + (1.0 - base) * q).min(1.0);
        let k = (n as f64 * (p - 0.01 * rng.f())).round().max(0.0) as u64;
        push(
            metric,
            None,
            vec![("numerator", k.to_string()), ("denominator", n.to_string())],
        );
    }
    if d.id.starts_with("finance") {
        push(
            "budget_deviation",
            None,
            vec![("value", format!("{:.1}", 2.0 + 6.0 * (1.0 - q) * rng.f()))],
        );
    }
}

/// A handful of invalid rating rows, one per kind of problem.
fn bad_ratings(month: NaiveDate, dept: &str) -> Vec<Rec> {
    let at = month.and_hms_opt(10, 0, 0).expect("valid time") + Duration::days(3);
    let base = |id: &str| {
        vec![
            ("rating_id", id.to_string()),
            ("rated_at", ts(at)),
            ("dept_id", dept.to_string()),
            ("rater_id", "E0001".to_string()),
            ("rater_group", "client_internal".to_string()),
            ("item", "overall".to_string()),
            ("score", "4".to_string()),
        ]
    };
    let with = |id: &str, key: &'static str, val: &str| {
        let mut f = base(id);
        f.retain(|(k, _)| *k != key);
        f.push((key, val.to_string()));
        rec(at, f)
    };
    vec![
        with("BAD-1", "score", "7"),
        with("BAD-2", "dept_id", "ghost-dept"),
        with("BAD-3", "rated_at", "2026-13-45 25:00"),
        with("BAD-4", "rater_group", "boss"),
        with("BAD-5", "rater_id", ""),
        with("BAD-6", "score", "很好"),
    ]
}

fn bad_events(month: NaiveDate, dept: &str) -> Vec<Rec> {
    let at = month.and_hms_opt(11, 0, 0).expect("valid time") + Duration::days(4);
    vec![rec(
        at,
        vec![
            ("case_id", "CASE-BAD-1".into()),
            ("event", "teleported".into()),
            ("at", ts(at)),
            ("dept_id", dept.to_string()),
        ],
    )]
}

/// Writes the day or month files of the high-volume tables.
struct Writers {
    out: PathBuf,
    format: String,
    split: String,
    /// Records whose file is not written yet: (table, YYYY-MM-DD, or
    /// YYYY-MM split by month) -> records. A file is written once every
    /// day it covers has been generated, so no file is written twice; a
    /// case's later events wait here for their day.
    pending: BTreeMap<(&'static str, String), Vec<Rec>>,
}

impl Writers {
    fn new(out: &Path, format: &str, split: &str) -> Result<Writers> {
        file_kind(format, "ratings")?;
        Ok(Writers {
            out: out.to_path_buf(),
            format: format.to_string(),
            split: split.to_string(),
            pending: BTreeMap::new(),
        })
    }

    fn file_name(&self, day: NaiveDate) -> String {
        let format = if self.split == "month" {
            "%Y-%m"
        } else {
            "%Y-%m-%d"
        };
        day.format(format).to_string()
    }

    fn hold(&mut self, spec: &'static TableSpec, recs: Vec<Rec>) {
        for r in recs {
            let name = self.file_name(r.at.date());
            self.pending.entry((spec.name, name)).or_default().push(r);
        }
    }

    /// Writes the files of the days up to `day` (split by month: of the
    /// months that end by `day`), now that they are complete.
    fn flush(&mut self, day: NaiveDate) -> Result<()> {
        let next = day + Duration::days(1);
        if self.split == "month" && next.month() == day.month() {
            return Ok(());
        }
        let last = self.file_name(day);
        let complete: Vec<(&'static str, String)> = self
            .pending
            .keys()
            .filter(|(_, name)| *name <= last)
            .cloned()
            .collect();
        for key in complete {
            let recs = self.pending.remove(&key).expect("listed");
            self.write(key, recs)?;
        }
        Ok(())
    }

    fn write(&self, (table, name): (&'static str, String), mut recs: Vec<Rec>) -> Result<()> {
        let spec = tables::ALL
            .iter()
            .find(|t| t.name == table)
            .expect("a table of the contract");
        recs.sort_by_key(|r| r.at);
        write_file(
            &self.out,
            spec,
            Some(&name),
            recs,
            file_kind(&self.format, table)?,
        )
    }

    /// Writes what is still held: days after the last month generated.
    fn finish(mut self) -> Result<()> {
        for (key, recs) in std::mem::take(&mut self.pending) {
            self.write(key, recs)?;
        }
        Ok(())
    }
}

/// A low-volume table written as it is generated, to `OUT/<table>.<ext>`:
/// records are held until their day has been generated, then appended in
/// time order (CSV and JSON Lines appended to, Parquet one row group per
/// day).
struct Stream {
    spec: &'static TableSpec,
    kind: FileKind,
    path: PathBuf,
    /// Records of days not yet complete.
    pending: Vec<Rec>,
    text: Option<std::io::BufWriter<std::fs::File>>,
    parquet: Option<polars::io::parquet::write::BatchedWriter<std::fs::File>>,
}

impl Stream {
    fn create(out: &Path, spec: &'static TableSpec, kind: FileKind) -> Result<Stream> {
        let path = out.join(format!("{}.{}", spec.name, kind.ext()));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut stream = Stream {
            spec,
            kind,
            path,
            pending: Vec::new(),
            text: None,
            parquet: None,
        };
        if kind == FileKind::Parquet {
            let schema = typed_frame(spec, &[], &field)?.schema().as_ref().clone();
            stream.parquet = Some(ParquetWriter::new(file).batched(&schema)?);
        } else {
            let mut w = std::io::BufWriter::new(file);
            w.write_all(&encode(spec, &[], kind, true)?)?;
            stream.text = Some(w);
        }
        Ok(stream)
    }

    fn hold(&mut self, recs: impl IntoIterator<Item = Rec>) {
        self.pending.extend(recs);
    }

    /// Appends the records held for the days up to `day`, in time order.
    fn flush(&mut self, day: NaiveDate) -> Result<()> {
        let (mut done, later): (Vec<Rec>, Vec<Rec>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|r| r.at.date() <= day);
        self.pending = later;
        done.sort_by_key(|r| r.at);
        self.append(&done)
    }

    fn append(&mut self, recs: &[Rec]) -> Result<()> {
        if recs.is_empty() {
            return Ok(());
        }
        let written = match (&mut self.text, &mut self.parquet) {
            (Some(w), _) => w
                .write_all(&encode(self.spec, recs, self.kind, false)?)
                .map_err(anyhow::Error::from),
            (_, Some(w)) => w
                .write_batch(&typed_frame(self.spec, recs, &field)?)
                .map_err(anyhow::Error::from),
            _ => unreachable!("a stream writes text or Parquet"),
        };
        written.with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Appends what is still held (days after the last one generated)
    /// and closes the file.
    fn finish(mut self) -> Result<()> {
        let mut rest = std::mem::take(&mut self.pending);
        rest.sort_by_key(|r| r.at);
        self.append(&rest)?;
        let finished = match (self.text, self.parquet) {
            (Some(mut w), _) => w.flush().map_err(anyhow::Error::from),
            (_, Some(w)) => w.finish().map(|_| ()).map_err(anyhow::Error::from),
            _ => unreachable!("a stream writes text or Parquet"),
        };
        finished.with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// A record's value in column `c` (the last one given), or empty.
fn field(r: &Rec, c: &str) -> String {
    r.fields
        .iter()
        .rev()
        .find(|(k, _)| *k == c)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Writes records as `OUT/<table>.<ext>` or `OUT/<table>/<name>.<ext>`.
fn write_file(
    out: &Path,
    spec: &TableSpec,
    name: Option<&str>,
    recs: Vec<Rec>,
    kind: FileKind,
) -> Result<()> {
    let path = match name {
        Some(n) => out.join(spec.name).join(format!("{n}.{}", kind.ext())),
        None => out.join(format!("{}.{}", spec.name, kind.ext())),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let bytes: Vec<u8> = match kind {
        FileKind::Parquet => {
            let mut df = typed_frame(spec, &recs, &field)?;
            let mut buf = Vec::new();
            ParquetWriter::new(&mut buf).finish(&mut df)?;
            buf
        }
        _ => encode(spec, &recs, kind, true)?,
    };
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Records as CSV (with its header, byte order mark or encoding when
/// `start`: the file's first bytes) or JSON Lines.
fn encode(spec: &TableSpec, recs: &[Rec], kind: FileKind, start: bool) -> Result<Vec<u8>> {
    Ok(match kind {
        FileKind::Csv | FileKind::CsvBom | FileKind::CsvGb18030 => {
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new());
            if start {
                w.write_record(spec.columns.iter().map(|c| c.name))?;
            }
            for r in recs {
                w.write_record(spec.columns.iter().map(|c| field(r, c.name)))?;
            }
            let text = String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
            match kind {
                FileKind::CsvBom if start => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
                FileKind::CsvGb18030 => encoding_rs::GB18030.encode(&text).0.into_owned(),
                _ => text.into_bytes(),
            }
        }
        FileKind::Jsonl => {
            let mut buf = Vec::new();
            for r in recs {
                if r.fields.iter().any(|(k, _)| *k == "event") && field(r, "event") == "teleported"
                {
                    // One malformed line, as a truncated export would leave.
                    writeln!(buf, "{{\"case_id\": \"CASE-BAD-2\", \"event\": ")?;
                }
                let mut obj = serde_json::Map::new();
                for c in spec.columns {
                    let v = field(r, c.name);
                    if v.is_empty() {
                        continue;
                    }
                    let jv = match c.kind {
                        Kind::Bool if v == "true" || v == "false" => {
                            serde_json::Value::Bool(v == "true")
                        }
                        Kind::Number { .. } => v
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map(serde_json::Value::Number)
                            .unwrap_or(serde_json::Value::String(v)),
                        _ => serde_json::Value::String(v),
                    };
                    obj.insert(c.name.to_string(), jv);
                }
                serde_json::to_writer(&mut buf, &obj)?;
                buf.push(b'\n');
            }
            buf
        }
        FileKind::Parquet => unreachable!("Parquet is written as frames"),
    })
}

/// A typed frame for Parquet output: numbers as floats, dates as dates,
/// booleans as booleans, everything else as text.
fn typed_frame(
    spec: &TableSpec,
    recs: &[Rec],
    get: &dyn Fn(&Rec, &str) -> String,
) -> Result<DataFrame> {
    let mut cols = Vec::new();
    for c in spec.columns {
        let vals: Vec<String> = recs.iter().map(|r| get(r, c.name)).collect();
        let name: PlSmallStr = c.name.into();
        let col = match c.kind {
            Kind::Number { .. } => {
                Float64Chunked::from_iter_options(name, vals.iter().map(|v| v.parse::<f64>().ok()))
                    .into_column()
            }
            Kind::Date => Int32Chunked::from_iter_options(
                name,
                vals.iter()
                    .map(|v| crate::ingest::fields::parse_date(v).ok()),
            )
            .into_date()
            .into_column(),
            Kind::Bool => BooleanChunked::from_iter_options(
                name,
                vals.iter()
                    .map(|v| crate::ingest::fields::parse_bool(v).ok()),
            )
            .into_column(),
            _ => StringChunked::from_iter_options(
                name,
                vals.iter().map(|v| (!v.is_empty()).then_some(v.as_str())),
            )
            .into_column(),
        };
        cols.push(col);
    }
    Ok(DataFrame::new(recs.len(), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rating(id: &str, day: u32, hour: u32) -> Rec {
        let at = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap() + Duration::days(day as i64 - 1);
        let at = at.and_hms_opt(hour, 0, 0).unwrap();
        rec(
            at,
            vec![("rating_id", id.to_string()), ("rated_at", ts(at))],
        )
    }

    /// The rating ids in a CSV file, in file order.
    fn ids(path: &Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap();
        let text = text.trim_start_matches('\u{feff}');
        text.lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn a_day_file_is_written_once_its_day_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writers::new(dir.path(), "csv", "day").unwrap();
        // Generated on 1 March: two ratings that day (out of time order)
        // and a record that falls on 2 March.
        w.hold(
            &tables::RATINGS,
            vec![rating("b", 1, 10), rating("c", 2, 9), rating("a", 1, 9)],
        );
        w.flush(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap())
            .unwrap();
        let file = |name: &str| dir.path().join("ratings").join(format!("{name}.csv"));
        assert_eq!(ids(&file("2026-03-01")), ["a", "b"]);
        assert!(!file("2026-03-02").exists());
        // Only 2 March's record is still held.
        assert_eq!(w.pending.values().map(Vec::len).sum::<usize>(), 1);
        w.hold(&tables::RATINGS, vec![rating("d", 2, 8)]);
        w.flush(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
            .unwrap();
        assert_eq!(ids(&file("2026-03-02")), ["d", "c"]);
        assert!(w.pending.is_empty());
    }

    #[test]
    fn a_month_file_is_written_once_its_last_day_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writers::new(dir.path(), "csv", "month").unwrap();
        w.hold(
            &tables::RATINGS,
            vec![
                rating("late", 31, 9),
                rating("april", 32, 9),
                rating("early", 1, 9),
            ],
        );
        let file = |name: &str| dir.path().join("ratings").join(format!("{name}.csv"));
        w.flush(NaiveDate::from_ymd_opt(2026, 3, 30).unwrap())
            .unwrap();
        assert!(!file("2026-03").exists());
        w.flush(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap())
            .unwrap();
        assert_eq!(ids(&file("2026-03")), ["early", "late"]);
        assert!(!file("2026-04").exists());
        w.finish().unwrap();
        assert_eq!(ids(&file("2026-04")), ["april"]);
    }

    #[test]
    fn a_stream_appends_after_one_header() {
        let dir = tempfile::tempdir().unwrap();
        for kind in [FileKind::CsvBom, FileKind::Parquet] {
            let mut s = Stream::create(dir.path(), &tables::RATINGS, kind).unwrap();
            s.append(&[rating("a", 1, 9)]).unwrap();
            s.append(&[]).unwrap();
            s.append(&[rating("b", 2, 9), rating("c", 3, 9)]).unwrap();
            s.finish().unwrap();
            let path = dir.path().join(format!("ratings.{}", kind.ext()));
            let got: Vec<String> = if kind == FileKind::Parquet {
                let df = crate::lake::read_parquet(&path).unwrap();
                crate::frame::strs(&df, "rating_id")
                    .unwrap()
                    .into_iter()
                    .flatten()
                    .collect()
            } else {
                let bytes = std::fs::read(&path).unwrap();
                assert!(bytes.starts_with(b"\xEF\xBB\xBFrating_id,"));
                ids(&path)
            };
            assert_eq!(got, ["a", "b", "c"], "{kind:?}");
        }
    }

    #[test]
    fn a_stream_writes_held_records_once_their_day_is_complete() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Stream::create(dir.path(), &tables::RATINGS, FileKind::Csv).unwrap();
        s.hold([rating("late", 3, 9), rating("b", 1, 10), rating("a", 1, 9)]);
        s.flush(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
            .unwrap();
        s.hold([rating("c", 2, 9)]);
        s.flush(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
            .unwrap();
        // 3 March is never flushed: finishing writes it.
        s.finish().unwrap();
        assert_eq!(
            ids(&dir.path().join("ratings.csv")),
            ["a", "b", "c", "late"]
        );
    }

    #[test]
    fn poisson_keeps_its_mean_at_any_size() {
        // The mean of n draws has standard error sqrt(mean / n): 0.22 for
        // mean 10 and 4.5 for mean 5000 with n = 200 and 250; allow 4 of them.
        let mut rng = Rng(42);
        let small: u64 = (0..200).map(|_| rng.poisson(10.0)).sum();
        assert!((small as f64 / 200.0 - 10.0).abs() < 0.9, "{small}");
        let large: u64 = (0..250).map(|_| rng.poisson(5000.0)).sum();
        assert!((large as f64 / 250.0 - 5000.0).abs() < 18.0, "{large}");
    }
}
