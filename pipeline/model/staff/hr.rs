//! HR lists, each closed year, per department -> the `hr_lists` mart:
//!
//! * `top_two_years`: graded at the top grade (the policy's grade bands on
//!   the yearly composite) this year and the year before
//!   (连续两年服务质量考核优秀, promoted first);
//! * `reserve_pool`: the top share of the department's staff with a
//!   yearly composite, by [`super::by_merit`] (储备人才库; a share of n
//!   people is rounded up, so a department with a composite has one);
//! * `declining`: monthly composites with a significant downward
//!   Mann-Kendall trend over the year (at least `min_months` of them), to
//!   be talked to (约谈) even where they still meet their targets.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate};

use super::StaffMeasure;
use crate::model::trends::mann_kendall;
use crate::policy::Policy;
use crate::time::periods::{Grain, Period};

/// The lists, in the mart's order.
pub const LISTS: [&str; 3] = ["top_two_years", "reserve_pool", "declining"];

/// One row of `hr_lists`.
#[derive(Debug, Clone, PartialEq)]
pub struct HrRow {
    pub year: Period,
    pub dept_id: String,
    /// One of [`LISTS`].
    pub list: &'static str,
    pub staff_id: String,
    /// The year's composite, its grade and its rank in the department.
    pub composite: Option<f64>,
    pub grade: Option<String>,
    pub rank_in_dept: Option<usize>,
    /// Staff of the department with a yearly composite.
    pub ranked: usize,
    /// The grade of the year before (`top_two_years`).
    pub previous_grade: Option<String>,
    /// Months with a composite, and the trend's tau and p (`declining`).
    pub months: Option<usize>,
    pub trend_tau: Option<f64>,
    pub trend_p: Option<f64>,
}

/// What the lists need of the policy.
pub struct HrRules<'a> {
    pub policy: &'a Policy,
    /// The last day of a year that may be listed (closed by then).
    pub closed_by: NaiveDate,
}

/// The lists of every closed year, in year, department, list and rank
/// order.
pub fn hr_lists(measures: &[StaffMeasure], rules: &HrRules) -> Vec<HrRow> {
    let p = rules.policy;
    let hr = &p.staff.hr;
    let top = p.grades.first().map(|g| g.id.as_str());
    let grade = |c: Option<f64>| c.map(|c| p.grade_for(c).id.clone());
    // A person's best grade of each year, over their departments.
    let mut year_grade: BTreeMap<(i32, &str), (f64, String)> = BTreeMap::new();
    let mut years: BTreeMap<(NaiveDate, &str), Vec<&StaffMeasure>> = BTreeMap::new();
    // (year, dept, staff) -> monthly composites in month order.
    let mut months: BTreeMap<(NaiveDate, &str, &str), Vec<f64>> = BTreeMap::new();
    for m in measures {
        match m.period.grain {
            Grain::Year => {
                if let Some(c) = m.composite {
                    let e = year_grade
                        .entry((m.period.start.year(), m.staff_id.as_str()))
                        .or_insert((f64::NEG_INFINITY, String::new()));
                    if c > e.0 {
                        *e = (c, p.grade_for(c).id.clone());
                    }
                }
                if m.period.end <= rules.closed_by {
                    years
                        .entry((m.period.start, m.dept_id.as_str()))
                        .or_default()
                        .push(m);
                }
            }
            Grain::Month => {
                if let Some(c) = m.composite {
                    let y = Period::containing(Grain::Year, m.period.start).start;
                    months
                        .entry((y, m.dept_id.as_str(), m.staff_id.as_str()))
                        .or_default()
                        .push(c);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    for ((start, dept), mut rows) in years {
        let year = Period::containing(Grain::Year, start);
        rows.retain(|m| m.composite.is_some());
        rows.sort_by(|a, b| super::by_merit(a, b));
        let ranked = rows.len();
        let rank = |staff: &str| rows.iter().position(|m| m.staff_id == staff).map(|i| i + 1);
        let row = |m: &StaffMeasure, list: &'static str| HrRow {
            year,
            dept_id: dept.to_string(),
            list,
            staff_id: m.staff_id.clone(),
            composite: m.composite,
            grade: grade(m.composite),
            rank_in_dept: rank(&m.staff_id),
            ranked,
            previous_grade: None,
            months: None,
            trend_tau: None,
            trend_p: None,
        };
        let y = start.year();
        for m in &rows {
            let this = grade(m.composite);
            let before = year_grade.get(&(y - 1, m.staff_id.as_str()));
            if top.is_some() && this.as_deref() == top && before.map(|b| b.1.as_str()) == top {
                let mut r = row(m, "top_two_years");
                r.previous_grade = before.map(|b| b.1.clone());
                out.push(r);
            }
        }
        let pool = (hr.top_share * ranked as f64 - 1e-9).ceil().max(0.0) as usize;
        for m in rows.iter().take(pool) {
            out.push(row(m, "reserve_pool"));
        }
        // Everyone with monthly composites in the department that year,
        // ranked or not.
        let mut declining = Vec::new();
        let of_dept = months
            .range((start, dept, "")..)
            .take_while(|((s, d, _), _)| *s == start && *d == dept);
        for ((_, _, staff), xs) in of_dept {
            if xs.len() < hr.min_months {
                continue;
            }
            let mk = mann_kendall(xs);
            if mk.s < 0.0 && mk.p < p.trends.significance {
                declining.push((staff, xs.len(), mk));
            }
        }
        for (staff, n, mk) in declining {
            let m = rows.iter().find(|m| m.staff_id == *staff);
            out.push(HrRow {
                year,
                dept_id: dept.to_string(),
                list: "declining",
                staff_id: staff.to_string(),
                composite: m.and_then(|m| m.composite),
                grade: m.and_then(|m| grade(m.composite)),
                rank_in_dept: rank(staff),
                ranked,
                previous_grade: None,
                months: Some(n),
                trend_tau: Some(mk.tau),
                trend_p: Some(mk.p),
            });
        }
    }
    out
}
