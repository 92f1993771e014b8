//! Inline SVG charts, drawn in Rust so every number can be read without
//! JavaScript: a sparkline, and a trend chart with target line, process
//! limits and the points where a run rule fired.

use std::fmt::Write as _;

/// `v` with `decimals` decimals, the same text as `format!("{v:.N}")`
/// writes (rounding the exact binary value half to even), made with
/// integers where that is certain: a chart holds hundreds of points and
/// the standard formatting's exact path was a tenth of render's time.
/// Near a tie, for large or non-finite values and for a negative zero
/// result, the standard formatting writes it.
pub struct Fixed(pub f64, pub usize);

impl std::fmt::Display for Fixed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Fixed(v, decimals) = *self;
        let scale = 10f64.powi(decimals as i32);
        let scaled = v * scale;
        // Below 2^30 the product is within 2^-22 of the exact one, far
        // from 0.5 - 1e-6 of a tie, so it rounds the same way.
        let near_tie = (scaled - scaled.floor() - 0.5).abs() < 1e-6;
        let rounded = scaled.round();
        if decimals > 3
            || !scaled.is_finite()
            || scaled.abs() >= (1u64 << 30) as f64
            || near_tie
            || (rounded == 0.0 && v.is_sign_negative())
        {
            return write!(f, "{v:.decimals$}");
        }
        let n = rounded as i64;
        let unit = 10i64.pow(decimals as u32);
        let sign = if n < 0 { "-" } else { "" };
        let (whole, part) = (n.abs() / unit, n.abs() % unit);
        if decimals == 0 {
            write!(f, "{sign}{whole}")
        } else {
            write!(f, "{sign}{whole}.{part:0decimals$}")
        }
    }
}

/// A small line of the last values; gaps break the line.
pub fn sparkline(values: &[Option<f64>]) -> String {
    let (w, h) = (80.0, 20.0);
    let present: Vec<f64> = values.iter().flatten().copied().collect();
    if present.len() < 2 {
        return String::new();
    }
    let (lo, hi) = bounds(&present, None);
    let step = w / (values.len().max(2) - 1) as f64;
    let y = |v: f64| h - 2.0 - (v - lo) / (hi - lo) * (h - 4.0);
    let mut path = String::new();
    let mut pen_down = false;
    for (i, v) in values.iter().enumerate() {
        match v {
            Some(v) => {
                let _ = write!(
                    path,
                    "{}{},{} ",
                    if pen_down { "L" } else { "M" },
                    Fixed(i as f64 * step, 1),
                    Fixed(y(*v), 1)
                );
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let last = present[present.len() - 1];
    format!(
        r#"<svg class="spark" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{last:.1}"><path d="{}" fill="none" stroke="currentColor" stroke-width="1.5"/></svg>"#,
        path.trim_end()
    )
}

fn bounds(values: &[f64], extra: Option<&[f64]>) -> (f64, f64) {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in values.iter().chain(extra.unwrap_or(&[])) {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    if (hi - lo).abs() < 1e-9 {
        (lo - 1.0, hi + 1.0)
    } else {
        let pad = (hi - lo) * 0.08;
        (lo - pad, hi + pad)
    }
}

/// One point of a trend chart.
#[derive(Debug, Clone)]
pub struct ChartPoint {
    pub label: String,
    pub value: Option<f64>,
    pub signal: bool,
}

/// A trend chart: values by period, a dashed target line, dotted process
/// limits (UCL/LCL) and red points where a run rule fired. Every point has
/// a `<title>` with its period and value.
pub fn trend_chart(
    title: &str,
    points: &[ChartPoint],
    target: Option<f64>,
    limits: Option<(f64, f64, f64)>,
) -> String {
    let (w, h, left, bottom) = (640.0, 200.0, 44.0, 22.0);
    let present: Vec<f64> = points.iter().filter_map(|p| p.value).collect();
    if present.is_empty() {
        return String::new();
    }
    let mut extra: Vec<f64> = target.into_iter().collect();
    if let Some((_, u, l)) = limits {
        extra.extend([u, l]);
    }
    let (lo, hi) = bounds(&present, Some(&extra));
    let plot_w = w - left - 8.0;
    let plot_h = h - bottom - 8.0;
    let step = plot_w / (points.len().max(2) - 1) as f64;
    let x = |i: usize| left + i as f64 * step;
    let y = |v: f64| 8.0 + plot_h - (v - lo) / (hi - lo) * plot_h;
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
    };
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{}"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    // Axis labels: min and max.
    let _ = write!(
        s,
        r#"<text x="{}" y="{:.1}" class="axis" text-anchor="end">{hi:.1}</text><text x="{}" y="{:.1}" class="axis" text-anchor="end">{lo:.1}</text>"#,
        left - 4.0,
        y(hi) + 4.0,
        left - 4.0,
        y(lo)
    );
    if let Some((c, u, l)) = limits {
        for (v, class) in [(u, "limit"), (l, "limit"), (c, "center")] {
            let _ = write!(
                s,
                r#"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" class="{class}"/>"#,
                w - 8.0,
                y(v),
                y(v)
            );
        }
    }
    if let Some(t) = target {
        let _ = write!(
            s,
            r#"<line x1="{left}" x2="{}" y1="{:.1}" y2="{:.1}" class="target"><title>target {t}</title></line>"#,
            w - 8.0,
            y(t),
            y(t)
        );
    }
    let mut path = String::new();
    let mut pen_down = false;
    for (i, p) in points.iter().enumerate() {
        match p.value {
            Some(v) => {
                let _ = write!(
                    path,
                    "{}{},{} ",
                    if pen_down { "L" } else { "M" },
                    Fixed(x(i), 1),
                    Fixed(y(v), 1)
                );
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let _ = write!(s, r#"<path d="{}" class="line"/>"#, path.trim_end());
    for (i, p) in points.iter().enumerate() {
        if let Some(v) = p.value {
            let _ = write!(
                s,
                r#"<circle cx="{}" cy="{}" r="{}" class="{}"><title>{} {}</title></circle>"#,
                Fixed(x(i), 1),
                Fixed(y(v), 1),
                if p.signal { 4.0 } else { 2.5 },
                if p.signal { "point signal" } else { "point" },
                esc(&p.label),
                Fixed(v, 1)
            );
        }
    }
    if let (Some(first), Some(last)) = (points.first(), points.last()) {
        let _ = write!(
            s,
            r#"<text x="{left}" y="{}" class="axis">{}</text><text x="{}" y="{}" class="axis" text-anchor="end">{}</text>"#,
            h - 4.0,
            esc(&first.label),
            w - 8.0,
            h - 4.0,
            esc(&last.label)
        );
    }
    s.push_str("</svg>");
    s
}

/// A histogram of values in fixed-width bins.
pub fn histogram(title: &str, values: &[f64], bin: f64) -> String {
    if values.is_empty() {
        return String::new();
    }
    let lo = (values.iter().cloned().fold(f64::INFINITY, f64::min) / bin).floor() * bin;
    let hi = (values.iter().cloned().fold(f64::NEG_INFINITY, f64::max) / bin).floor() * bin;
    let n = ((hi - lo) / bin) as usize + 1;
    let mut counts = vec![0usize; n];
    for v in values {
        counts[(((v - lo) / bin).floor() as usize).min(n - 1)] += 1;
    }
    let max = *counts.iter().max().unwrap_or(&1) as f64;
    let (w, h) = (640.0, 160.0);
    let bw = (w - 40.0) / n as f64;
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{title}"><title>{title}</title>"#
    );
    for (i, c) in counts.iter().enumerate() {
        let bh = *c as f64 / max * (h - 30.0);
        let from = lo + i as f64 * bin;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" class="bar"><title>{from:.0} to {:.0}: {c}</title></rect>"#,
            20.0 + i as f64 * bw,
            h - 20.0 - bh,
            (bw - 2.0).max(1.0),
            bh,
            from + bin
        );
    }
    let _ = write!(
        s,
        r#"<text x="20" y="{}" class="axis">{lo:.0}</text><text x="{}" y="{}" class="axis" text-anchor="end">{:.0}</text></svg>"#,
        h - 4.0,
        w - 20.0,
        h - 4.0,
        hi + bin
    );
    s
}

/// A chart a page shows, drawn only when the page is rendered: a page whose
/// digest matches the published one is linked without drawing anything.
/// In a template it prints as its SVG (the environment's formatter writes
/// it unescaped, and `| safe` takes the same text); to the page digest it
/// is a map of one entry, `chart`, the bytes of everything it is drawn
/// from, so the digest covers what the drawing shows.
#[derive(Debug)]
pub enum Drawing {
    Sparkline(Vec<Option<f64>>),
    Trend {
        title: String,
        points: Vec<ChartPoint>,
        target: Option<f64>,
        limits: Option<(f64, f64, f64)>,
    },
}

impl Drawing {
    pub fn value(self) -> minijinja::Value {
        minijinja::Value::from_object(self)
    }

    pub fn draw(&self) -> String {
        match self {
            Drawing::Sparkline(values) => sparkline(values),
            Drawing::Trend {
                title,
                points,
                target,
                limits,
            } => trend_chart(title, points, *target, *limits),
        }
    }

    /// Everything the drawing depends on, as bytes.
    fn inputs(&self) -> Vec<u8> {
        fn num(b: &mut Vec<u8>, v: Option<f64>) {
            match v {
                Some(x) => {
                    b.push(1);
                    b.extend_from_slice(&x.to_bits().to_le_bytes());
                }
                None => b.push(0),
            }
        }
        fn text(b: &mut Vec<u8>, s: &str) {
            b.extend_from_slice(&(s.len() as u64).to_le_bytes());
            b.extend_from_slice(s.as_bytes());
        }
        let mut b = Vec::new();
        match self {
            Drawing::Sparkline(values) => {
                b.push(b's');
                for &v in values {
                    num(&mut b, v);
                }
            }
            Drawing::Trend {
                title,
                points,
                target,
                limits,
            } => {
                b.push(b't');
                text(&mut b, title);
                num(&mut b, *target);
                match limits {
                    Some((c, u, l)) => [*c, *u, *l].into_iter().for_each(|x| num(&mut b, Some(x))),
                    None => b.push(0),
                }
                for p in points {
                    text(&mut b, &p.label);
                    num(&mut b, p.value);
                    b.push(u8::from(p.signal));
                }
            }
        }
        b
    }
}

impl minijinja::value::Object for Drawing {
    fn repr(self: &std::sync::Arc<Self>) -> minijinja::value::ObjectRepr {
        minijinja::value::ObjectRepr::Map
    }

    fn get_value(self: &std::sync::Arc<Self>, key: &minijinja::Value) -> Option<minijinja::Value> {
        (key.as_str() == Some("chart")).then(|| minijinja::Value::from_bytes(self.inputs()))
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Str(&["chart"])
    }

    fn render(self: &std::sync::Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result
    where
        Self: Sized + 'static,
    {
        f.write_str(&self.draw())
    }
}

/// Writes a [`Drawing`] as its SVG, every other value as minijinja does.
pub fn formatter(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    match value.downcast_object_ref::<Drawing>() {
        Some(d) => out
            .write_str(&d.draw())
            .map_err(|e| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, e.to_string())),
        None => minijinja::escape_formatter(out, state, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_decimals_are_the_standard_formatting() {
        // The oracle is the standard library's formatting. Ties in binary
        // (0.25, 0.125, 2.5) round half to even there; 0.35 and 1.005 are
        // a little below or above their decimal; -0.04 rounds to "-0.0".
        let mut values = vec![
            0.0,
            -0.0,
            0.25,
            0.125,
            2.5,
            -2.5,
            0.35,
            1.005,
            -0.04,
            0.05,
            99.95,
            -99.95,
            123.456,
            1e9,
            1.5e9,
            -1e12,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::MIN_POSITIVE,
        ];
        // And a spread of values of every size chart coordinates take.
        let mut x: u64 = 12345;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
            values.push((unit - 0.3) * 10f64.powi((x % 9) as i32 - 2));
        }
        for v in values {
            for d in 0..=3 {
                assert_eq!(Fixed(v, d).to_string(), format!("{v:.d$}"), "{v:e} to {d}");
            }
        }
    }

    #[test]
    fn sparkline_breaks_at_gaps_and_needs_two_points() {
        assert_eq!(sparkline(&[Some(1.0)]), "");
        let s = sparkline(&[Some(1.0), Some(2.0), None, Some(3.0), Some(2.0)]);
        // Two segments: a move, a line, then a new move after the gap.
        assert_eq!(s.matches('M').count(), 2);
        assert_eq!(s.matches('L').count(), 2);
    }

    #[test]
    fn chart_escapes_labels_and_marks_signals() {
        let pts = vec![
            ChartPoint {
                label: "<a>".into(),
                value: Some(1.0),
                signal: false,
            },
            ChartPoint {
                label: "b".into(),
                value: Some(5.0),
                signal: true,
            },
        ];
        let s = trend_chart("t & u", &pts, Some(3.0), Some((3.0, 6.0, 0.0)));
        assert!(s.contains("&lt;a&gt;") && !s.contains("<a>"));
        assert!(s.contains("t &amp; u"));
        assert_eq!(s.matches("point signal").count(), 1);
        assert_eq!(s.matches(r#"class="limit""#).count(), 2);
    }

    #[test]
    fn a_drawing_prints_as_its_svg_and_digests_as_its_inputs() {
        let mut env = minijinja::Environment::new();
        env.set_formatter(formatter);
        env.add_template("p.html", "{{ a }}|{{ a | safe }}|{{ b }}")
            .unwrap();
        let values = vec![Some(1.0), Some(2.0), None, Some(4.0)];
        let ctx = |v: Vec<Option<f64>>| {
            minijinja::context! { a => Drawing::Sparkline(v).value(), b => "<b>" }
        };
        // Printed or through `safe`, the drawing is the sparkline's SVG,
        // unescaped; other values are escaped as before.
        let html = env
            .get_template("p.html")
            .unwrap()
            .render(ctx(values.clone()))
            .unwrap();
        let svg = sparkline(&values);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert_eq!(html, format!("{svg}|{svg}|&lt;b&gt;"));
        // The digest follows the inputs: the same values give the same
        // digest, one value changed another.
        let digest = |v| crate::nightly::pages::page_digest("p.html", &ctx(v)).unwrap();
        assert_eq!(digest(values.clone()), digest(values.clone()));
        let mut moved = values.clone();
        moved[3] = Some(4.5);
        assert_ne!(digest(values), digest(moved));
    }
}
