//! The statistics of one series: Mann-Kendall with tie and continuity
//! corrections, Sen's slope, XmR limits and the run rules; plain Rust over
//! slices.

use super::*;

/// Mann-Kendall test statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    pub s: f64,
    pub var_s: f64,
    pub z: f64,
    pub p: f64,
    pub tau: f64,
}

/// The Mann-Kendall test as pymannkendall's `original_test`: S, the
/// variance with the tie correction, z with the continuity correction, the
/// two-sided normal p-value, and tau = S / (n (n - 1) / 2).
pub fn mann_kendall(x: &[f64]) -> MannKendall {
    let n = x.len();
    let mut s = 0.0;
    for k in 0..n {
        for j in k + 1..n {
            s += if x[j] > x[k] {
                1.0
            } else if x[j] < x[k] {
                -1.0
            } else {
                0.0
            };
        }
    }
    let mut sorted = x.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let mut ties = 0.0;
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        if t > 1.0 {
            ties += t * (t - 1.0) * (2.0 * t + 5.0);
        }
        i = j;
    }
    let nf = n as f64;
    let var_s = (nf * (nf - 1.0) * (2.0 * nf + 5.0) - ties) / 18.0;
    let z = if s > 0.0 {
        (s - 1.0) / var_s.sqrt()
    } else if s < 0.0 {
        (s + 1.0) / var_s.sqrt()
    } else {
        0.0
    };
    let p = if var_s > 0.0 {
        libm::erfc(z.abs() / std::f64::consts::SQRT_2)
    } else {
        1.0
    };
    let pairs = nf * (nf - 1.0) / 2.0;
    MannKendall {
        s,
        var_s,
        z,
        p,
        tau: if pairs > 0.0 { s / pairs } else { 0.0 },
    }
}

/// Sen's slope: the median of (x_j - x_k) / (t_j - t_k) over all pairs.
pub fn sens_slope(t: &[f64], x: &[f64]) -> Option<f64> {
    let mut slopes = Vec::with_capacity(x.len() * x.len() / 2);
    for k in 0..x.len() {
        for j in k + 1..x.len() {
            if t[j] != t[k] {
                slopes.push((x[j] - x[k]) / (t[j] - t[k]));
            }
        }
    }
    if slopes.is_empty() {
        return None;
    }
    slopes.sort_by(|a, b| a.total_cmp(b));
    let m = slopes.len();
    Some(if m % 2 == 1 {
        slopes[m / 2]
    } else {
        (slopes[m / 2 - 1] + slopes[m / 2]) / 2.0
    })
}

/// Natural process limits of an XmR chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub center: f64,
    pub mr_bar: f64,
    pub ucl: f64,
    pub lcl: f64,
}

/// Limits from the mean and the average moving range: mean +/- 2.66 mR-bar.
pub fn xmr(x: &[f64]) -> Option<Limits> {
    if x.len() < 2 {
        return None;
    }
    let center = x.iter().sum::<f64>() / x.len() as f64;
    let mr_bar = x.windows(2).map(|w| (w[1] - w[0]).abs()).sum::<f64>() / (x.len() - 1) as f64;
    Some(Limits {
        center,
        mr_bar,
        ucl: center + 2.66 * mr_bar,
        lcl: center - 2.66 * mr_bar,
    })
}

/// The run rules, point by point: `beyond_limits`, `run_of_7_above` /
/// `run_of_7_below` (fires from the 7th point of a run on one side of the
/// centre line), `two_of_three_above` / `two_of_three_below` (two of three
/// successive points beyond two sigma on one side; sigma = mR-bar / 1.128).
pub fn run_rules(x: &[f64], lim: &Limits) -> Vec<Vec<&'static str>> {
    let sigma = lim.mr_bar / 1.128;
    let mut out = vec![Vec::new(); x.len()];
    let mut run = 0i64;
    for i in 0..x.len() {
        if x[i] > lim.ucl || x[i] < lim.lcl {
            out[i].push("beyond_limits");
        }
        let side = (x[i] - lim.center).signum() as i64;
        run = if side == 0 {
            0
        } else if run.signum() == side {
            run + side
        } else {
            side
        };
        if run >= 7 {
            out[i].push("run_of_7_above");
        } else if run <= -7 {
            out[i].push("run_of_7_below");
        }
        if i >= 2 {
            let window = &x[i - 2..=i];
            let above = window
                .iter()
                .filter(|v| **v > lim.center + 2.0 * sigma)
                .count();
            let below = window
                .iter()
                .filter(|v| **v < lim.center - 2.0 * sigma)
                .count();
            let this_above = x[i] > lim.center + 2.0 * sigma;
            let this_below = x[i] < lim.center - 2.0 * sigma;
            if above >= 2 && this_above {
                out[i].push("two_of_three_above");
            }
            if below >= 2 && this_below {
                out[i].push("two_of_three_below");
            }
        }
    }
    out
}

/// Where a period sits on its grain's time line (gaps keep their width).
pub(super) fn ordinal(p: &Period) -> f64 {
    match p.grain {
        Grain::Week => {
            (p.start - NaiveDate::from_ymd_opt(1970, 1, 5).expect("a Monday")).num_days() as f64
                / 7.0
        }
        Grain::Month => (p.start.year() * 12 + p.start.month0() as i32) as f64,
        Grain::Quarter => (p.start.year() * 4 + (p.start.month0() / 3) as i32) as f64,
        Grain::Half => (p.start.year() * 2 + (p.start.month0() / 6) as i32) as f64,
        Grain::Year => p.start.year() as f64,
    }
}
