//! The cross-checks: the source document's audit triggers over the trends
//! (satisfaction up while complaints are not down, a sharp rise on few
//! raters, high satisfaction with poor timeliness).

use super::*;

/// One audit finding.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub dept_id: String,
    pub check_id: &'static str,
    pub grain: Grain,
    pub period: Period,
    pub detail: String,
}

/// The source document's audit triggers, on the latest complete period of
/// each grain:
/// * `satisfaction_up_complaints_not_down`: satisfaction meets its target
///   or is improving, while the valid complaint rate did not fall over the
///   same window (Sen's slope not below zero, complaints present);
/// * `sharp_rise_few_raters`: satisfaction up sharply on few raters;
/// * `satisfaction_high_timeliness_poor`: satisfaction meets its target
///   while on-time resolution misses its own.
pub fn cross_checks(trends: &[Trend], policy: &Policy) -> Vec<Finding> {
    let by: HashMap<(&str, &str, Grain), &Trend> = trends
        .iter()
        .map(|t| ((t.dept_id.as_str(), t.indicator_id.as_str(), t.grain), t))
        .collect();
    let cp = &policy.cross_checks;
    let mut out = Vec::new();
    for sat in trends.iter().filter(|t| t.indicator_id == "satisfaction") {
        let Some(period) = sat.latest else { continue };
        let (dept, grain) = (sat.dept_id.as_str(), sat.grain);
        let mut find = |check_id: &'static str, detail: String| {
            out.push(Finding {
                dept_id: dept.to_string(),
                check_id,
                grain,
                period,
                detail,
            });
        };
        let sat_value = sat.value.map_or("-".into(), |v| format!("{v:.1}"));
        let sat_ok = sat.status == "met" || sat.direction == "improving";
        if let Some(c) = by.get(&(dept, "valid_complaint_rate", grain)) {
            let present = c.window_mean.is_some_and(|m| m > 0.0);
            if sat_ok
                && present
                && c.n_points >= policy.trends.min_points
                && c.sen_slope.is_some_and(|s| s >= 0.0)
            {
                find(
                    "satisfaction_up_complaints_not_down",
                    format!(
                        "satisfaction {sat_value} ({}, {}) while valid complaints per 1,000 cases did not fall: Sen's slope {:+.2} per {} over {} periods, mean {:.1}",
                        if sat.status.is_empty() { "-" } else { &sat.status },
                        sat.direction,
                        c.sen_slope.unwrap_or(0.0),
                        grain.as_str(),
                        c.n_points,
                        c.window_mean.unwrap_or(0.0)
                    ),
                );
            }
        }
        if let (Some(rise), Some(raters)) = (sat.change_prev, sat.n_raters) {
            if rise >= cp.sharp_rise_points && raters < cp.few_raters {
                find(
                    "sharp_rise_few_raters",
                    format!("satisfaction up {rise:+.1} points to {sat_value} on {raters} distinct raters"),
                );
            }
        }
        if sat.status == "met" {
            if let Some(t) = by.get(&(dept, "on_time_resolution_rate", grain)) {
                if t.status == "missed" && t.latest == Some(period) {
                    find(
                        "satisfaction_high_timeliness_poor",
                        format!(
                            "satisfaction {sat_value} meets its target while on-time resolution is {} (missed)",
                            t.value.map_or("-".into(), |v| format!("{v:.1}%"))
                        ),
                    );
                }
            }
        }
    }
    out.sort_by(|a, b| {
        (&a.dept_id, a.grain, a.period, a.check_id)
            .cmp(&(&b.dept_id, b.grain, b.period, b.check_id))
    });
    out
}
