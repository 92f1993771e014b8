//! The synthetic organisation: named and numbered departments of every type,
//! pools of raters (some lenient, some severe, a few favouring one
//! department), cases with their events, measurements, and the deliberately
//! invalid records.

use super::*;

/// (id, Chinese name, English name, type, parent)
pub(super) const NAMED: [(&str, &str, &str, &str, &str); 14] = [
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

pub(super) const ITEMS: [&str; 4] = ["attitude", "timeliness", "professionalism", "overall"];
pub(super) const CHANNELS: [&str; 4] = ["window", "online", "phone", "app"];
pub(super) const ROOT_CAUSES: [&str; 5] = [
    "流程缺陷",
    "人员能力不足",
    "政策解读不清",
    "系统故障",
    "服务态度",
];
pub(super) const PLAN_MEASURES: [&str; 5] = [
    "优化办理流程，压缩审批环节",
    "开展窗口人员服务规范培训",
    "建立差评日清日结机制",
    "高峰时段增设弹性窗口",
    "修订服务指南并向社会公开",
];

pub(super) const PLAN_OWNERS: [&str; 8] = [
    "王磊", "李娜", "张伟", "刘洋", "陈静", "杨帆", "赵敏", "黄涛",
];

pub(super) const COMMENTS: [&str; 6] = [
    "办理很快，态度好",
    "材料要求讲得清楚，一次办成",
    "等了很久, 希望增加窗口",
    "工作人员解释\"不清楚\"，跑了两趟",
    "Helpful and quick",
    "系统又卡了\n第二次才提交成功",
];

pub(super) fn make_departments(n: usize, rng: &mut Rng) -> Vec<Dept> {
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
pub(super) fn dept_share(d: &Dept, all: &[Dept]) -> f64 {
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
pub(super) struct RaterPool {
    pub(super) staff: Vec<(String, f64)>,
    pub(super) superiors: Vec<(String, f64)>,
    pub(super) third: Vec<(String, f64)>,
    /// (rater, favoured department index)
    pub(super) favouring: Vec<(String, usize)>,
}

impl RaterPool {
    pub(super) fn new(depts: &[Dept], rng: &mut Rng) -> RaterPool {
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
    pub(super) fn draw(&self, rng: &mut Rng, d: &Dept, di: usize) -> (&'static str, String, f64) {
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

pub(super) fn add_months(d: NaiveDate, n: i32) -> NaiveDate {
    let total = d.year() * 12 + d.month0() as i32 + n;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .expect("valid month")
}

pub(super) fn days_in_month(month: NaiveDate) -> u32 {
    (add_months(month, 1) - month).num_days() as u32
}

/// A time in office hours (mostly) on a random day of the month.
pub(super) fn random_time(rng: &mut Rng, month: NaiveDate, days: u32) -> NaiveDateTime {
    let day = month + Duration::days(rng.below(days as u64) as i64);
    random_time_on(rng, day)
}

/// A time in office hours (mostly) on `day`.
pub(super) fn random_time_on(rng: &mut Rng, day: NaiveDate) -> NaiveDateTime {
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
pub(super) fn make_case(
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
pub(super) fn measure(rng: &mut Rng, out: &mut Vec<Rec>, d: &Dept, q: f64, month: NaiveDate) {
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
pub(super) fn bad_ratings(month: NaiveDate, dept: &str) -> Vec<Rec> {
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

pub(super) fn bad_events(month: NaiveDate, dept: &str) -> Vec<Rec> {
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
