//! Agreement among raters: rwg(J) per department and period, ICC(1) and
//! ICC(2) across departments, summed in parts so that periods add up; and
//! the `reliability` mart.

use super::*;

/// The spread of some values: their number, their mean, and the sum of
/// their squared deviations from the mean. The spreads of two parts merge
/// into the spread of the whole (Chan, Golub and LeVeque 1979), so a
/// quarter's or a year's is built from its months' without their values.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub mean: f64,
    pub m2: f64,
}

impl Spread {
    /// In two passes: the mean, then the squared deviations from it.
    pub fn of(xs: &[f64]) -> Spread {
        if xs.is_empty() {
            return Spread::default();
        }
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        let m2 = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>();
        Spread {
            n: xs.len(),
            mean,
            m2,
        }
    }

    /// Adds the values `other` stands for.
    pub fn merge(&mut self, other: &Spread) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let (a, b) = (self.n as f64, other.n as f64);
        let n = a + b;
        let d = other.mean - self.mean;
        self.mean += d * b / n;
        self.m2 += other.m2 + d * d * a * b / n;
        self.n += other.n;
    }

    /// The sample variance (n - 1 in the denominator).
    pub(super) fn variance(&self) -> f64 {
        self.m2 / (self.n as f64 - 1.0)
    }
}

/// rwg(J) of James, Demaree and Wolf (1984) against the uniform null: per
/// item (the spread of its scores, and its scale's number of levels A), the
/// observed variance over the expected variance (A^2 - 1) / 12 of an
/// A-level scale; J items combine as J(1 - r) / (J(1 - r) + r) with r the
/// mean ratio. Set to 0 when raters disagree more than chance.
pub fn rwg(items: &[(Spread, f64)]) -> Option<f64> {
    let ratios: Vec<f64> = items
        .iter()
        .filter(|(s, levels)| s.n >= 2 && *levels >= 2.0)
        .map(|(s, levels)| s.variance() / ((levels * levels - 1.0) / 12.0))
        .collect();
    if ratios.is_empty() {
        return None;
    }
    let j = ratios.len() as f64;
    let r = ratios.iter().sum::<f64>() / j;
    if r >= 1.0 {
        return Some(0.0);
    }
    Some(j * (1.0 - r) / (j * (1.0 - r) + r))
}

/// ICC(1) and ICC(2) from a one-way ANOVA with groups as targets (Bliese
/// 2000), from each group's spread: ICC(1) = (MSB - MSW) / (MSB + (k - 1)
/// MSW), ICC(2) = (MSB - MSW) / MSB, with k the mean group size.
pub fn icc(groups: &[Spread]) -> Option<(f64, f64)> {
    let groups: Vec<&Spread> = groups.iter().filter(|s| s.n > 0).collect();
    let g = groups.len();
    let n: usize = groups.iter().map(|s| s.n).sum();
    if g < 2 || n <= g {
        return None;
    }
    let grand = groups.iter().map(|s| s.mean * s.n as f64).sum::<f64>() / n as f64;
    let ssb: f64 = groups
        .iter()
        .map(|s| s.n as f64 * (s.mean - grand).powi(2))
        .sum();
    let ssw: f64 = groups.iter().map(|s| s.m2).sum();
    let msb = ssb / (g - 1) as f64;
    let msw = ssw / (n - g) as f64;
    if msb <= 0.0 {
        return None;
    }
    let k = n as f64 / g as f64;
    Some(((msb - msw) / (msb + (k - 1.0) * msw), (msb - msw) / msb))
}

/// One row of the `reliability` mart.
#[derive(Debug, Clone, PartialEq)]
pub struct Reliability {
    pub dept_id: String,
    pub period: Period,
    pub n_raters: usize,
    pub rwg: Option<f64>,
    pub icc1: Option<f64>,
    pub icc2: Option<f64>,
}

/// The days a pass reports on: the periods that end in `from..=to`, each
/// made of the ratings of its days from `from` on. The days before `from`
/// that a pass reads count only toward the weeks that reach back into
/// them; what came before `from` in a quarter or year still open is handed
/// in by the pass that read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Window {
    /// Every period of every day.
    pub const ALL: Window = Window {
        from: NaiveDate::MIN,
        to: NaiveDate::MAX,
    };

    pub fn keeps(&self, p: Period) -> bool {
        self.from <= p.end && p.end <= self.to
    }

    /// Whether a rating of `day` counts toward `p`, a period containing it.
    pub fn counts(&self, p: Period, day: NaiveDate) -> bool {
        self.keeps(p) && (p.grain == Grain::Week || day >= self.from)
    }
}

/// What the reliability of a quarter or year is built from, for one
/// department: handed from one pass to the next for the periods still
/// open where the first stopped, and kept with a complete estimation
/// period so that a later run need not read its ratings again.
#[derive(Debug, Clone, PartialEq)]
pub struct ReliabilityPart {
    pub dept_id: String,
    pub period: Period,
    /// Per item: the spread of its scores and its scale's number of levels.
    pub items: Vec<(String, Spread, f64)>,
    /// The distinct raters.
    pub raters: Vec<String>,
    /// The spread of the response means.
    pub responses: Spread,
}

/// [`ReliabilityPart`] with its texts by number.
#[derive(Debug, Default, Clone)]
pub(super) struct Part {
    pub(super) items: Vec<(usize, Spread, f64)>,
    pub(super) raters: Vec<u32>,
    pub(super) responses: Spread,
}

impl Part {
    /// Adds a later part of the period (items by number, raters as a set).
    pub(super) fn merge(&mut self, other: &Part) {
        for (item, s, levels) in &other.items {
            match self.items.iter_mut().find(|x| x.0 == *item) {
                Some(x) => x.1.merge(s),
                None => self.items.push((*item, *s, *levels)),
            }
        }
        self.raters.extend(&other.raters);
        self.raters.sort_unstable();
        self.raters.dedup();
        self.responses.merge(&other.responses);
    }
}

/// Reliability per department and period of every grain, and one row
/// `dept_id = '*'` per period with ICC(1) and ICC(2) across departments.
/// `counted` marks the item ratings that count (not excluded); only the
/// periods of `window` are computed.
pub fn reliability(
    ratings: &[ItemRating],
    counted: &[bool],
    responses: &ResponseNumbers,
    window: Window,
) -> Vec<Reliability> {
    reliability_from(ratings, counted, responses, window, &[], &[]).0
}

/// [`reliability`], continuing the quarters and years `open` that began
/// before the window (as a pass that ended the day before `window.from`
/// left them), and giving for each day of `stops` (ascending, each the
/// last day of a month) the parts of the quarters and years then open.
///
/// Weeks and months are computed from their ratings: per item the spread
/// of its scores, the raters, and per response (in id order) the mean of
/// its scores; a quarter or year merges its months' spreads in month
/// order and counts each rater once. A response whose items fall in two
/// months counts once in each.
pub fn reliability_from<'a>(
    ratings: &'a [ItemRating],
    counted: &[bool],
    responses: &ResponseNumbers,
    window: Window,
    open: &'a [ReliabilityPart],
    stops: &[NaiveDate],
) -> (Vec<Reliability>, Vec<Vec<ReliabilityPart>>) {
    /// One department's ratings in one week or month: per item (by number)
    /// its raw scores and scale levels, the raters (by number), and per
    /// response (by number, in id order) the sum and count of its scores.
    #[derive(Default)]
    struct Cell {
        items: Vec<(usize, Vec<f64>, f64)>,
        raters: Vec<u32>,
        responses: Vec<(u32, f64, usize)>,
    }
    assert_eq!(
        responses.of_item.len(),
        ratings.len(),
        "numbers of other items"
    );
    let response_of = responses
        .of_item
        .iter()
        .map(|&n| responses.rank[n as usize]);
    let (mut depts, mut items, mut raters) = (Ids::new(), Ids::new(), Ids::new());
    // Quarters and years, by department number: those begun before the
    // window first.
    let mut coarse: BTreeMap<(Period, usize), Part> = BTreeMap::new();
    for o in open {
        let part = Part {
            items: o
                .items
                .iter()
                .map(|(item, s, levels)| (items.id(item), *s, *levels))
                .collect(),
            raters: o.raters.iter().map(|r| raters.id(r) as u32).collect(),
            responses: o.responses,
        };
        coarse
            .entry((o.period, depts.id(&o.dept_id)))
            .or_default()
            .merge(&part);
    }
    let mut cells: Vec<((Period, usize), Cell)> = Vec::new();
    let mut index: PlHashMap<(Period, usize), usize> = PlHashMap::default();
    // The cells of the last day and department seen: a response's items
    // come together.
    type Seen = ((NaiveDate, usize), [Option<usize>; 2]);
    let mut last: Option<Seen> = None;
    for ((r, &ok), response) in ratings.iter().zip(counted).zip(response_of) {
        if !ok {
            continue;
        }
        let dept = depts.id_by(r.keys.dept, &r.dept_id);
        let at = match last {
            Some((seen, at)) if seen == (r.day, dept) => at,
            _ => {
                let mut at = [None; 2];
                for (slot, g) in at.iter_mut().zip([Grain::Week, Grain::Month]) {
                    let p = Period::containing(g, r.day);
                    if window.counts(p, r.day) {
                        *slot = Some(*index.entry((p, dept)).or_insert_with(|| {
                            cells.push(((p, dept), Cell::default()));
                            cells.len() - 1
                        }));
                    }
                }
                last = Some(((r.day, dept), at));
                at
            }
        };
        let (item, rater) = (
            items.id_by(r.keys.item, &r.item),
            raters.id_by(r.keys.rater, &r.rater_id) as u32,
        );
        for c in at.into_iter().flatten() {
            let c = &mut cells[c].1;
            match c.items.iter_mut().find(|x| x.0 == item) {
                Some(x) => x.1.push(r.raw),
                None => c.items.push((item, vec![r.raw], r.levels)),
            }
            if c.raters.last() != Some(&rater) {
                c.raters.push(rater);
            }
            match c.responses.last_mut() {
                Some(x) if x.0 == response => {
                    x.1 += r.y;
                    x.2 += 1;
                }
                _ => c.responses.push((response, r.y, 1)),
            }
        }
    }
    drop(index);
    // Each cell's spreads: each rater once, each response once in id order
    // (a response found in two runs adds up in run order: the sort is
    // stable).
    let parts: Vec<((Period, usize), Part)> = cells
        .into_iter()
        .map(|(key, mut c)| {
            c.raters.sort_unstable();
            c.raters.dedup();
            c.responses.sort_by_key(|x| x.0);
            c.responses.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    kept.1 += later.1;
                    kept.2 += later.2;
                }
                same
            });
            let means: Vec<f64> = c.responses.iter().map(|(_, s, n)| s / *n as f64).collect();
            let part = Part {
                items: c
                    .items
                    .into_iter()
                    .map(|(item, xs, levels)| (item, Spread::of(&xs), levels))
                    .collect(),
                raters: c.raters,
                responses: Spread::of(&means),
            };
            (key, part)
        })
        .collect();
    // Quarters and years from their months, in month order, with the
    // parts still open at each stop.
    let open_at = |coarse: &BTreeMap<(Period, usize), Part>, day: NaiveDate| {
        coarse
            .iter()
            .filter(|((p, _), _)| p.start <= day && day < p.end)
            .map(|(k, part)| (*k, part.clone()))
            .collect::<Vec<_>>()
    };
    let mut months: Vec<usize> = (0..parts.len())
        .filter(|&c| parts[c].0 .0.grain == Grain::Month)
        .collect();
    months.sort_unstable_by_key(|&c| parts[c].0 .0);
    let mut stopped = Vec::new();
    for c in months {
        let ((month, dept), part) = &parts[c];
        while let Some(&day) = stops.get(stopped.len()).filter(|&&d| month.start > d) {
            stopped.push(open_at(&coarse, day));
        }
        for g in [Grain::Quarter, Grain::Year] {
            coarse
                .entry((Period::containing(g, month.start), *dept))
                .or_default()
                .merge(part);
        }
    }
    while let Some(&day) = stops.get(stopped.len()) {
        stopped.push(open_at(&coarse, day));
    }

    // Rows in (period, department name) order, so that each period's ICC
    // adds up its departments in one order.
    let (dept_rank, by_rank) = depts.sorted();
    let item_rank = items.ranks();
    let mut keys: Vec<(Period, usize, &Part)> = parts
        .iter()
        .map(|((p, dept), part)| (*p, dept_rank[*dept], part))
        .chain(
            coarse
                .iter()
                .filter(|((p, _), _)| window.keeps(*p))
                .map(|((p, dept), part)| (*p, dept_rank[*dept], part)),
        )
        .collect();
    keys.sort_unstable_by_key(|k| (k.0, k.1));
    let mut out = Vec::new();
    for period_rows in keys.chunk_by(|a, b| a.0 == b.0) {
        let period = period_rows[0].0;
        let mut groups = Vec::with_capacity(period_rows.len());
        for &(_, rank, part) in period_rows {
            // Items in name order.
            let mut list: Vec<(usize, Spread, f64)> = part
                .items
                .iter()
                .map(|(item, s, levels)| (item_rank[*item], *s, *levels))
                .collect();
            list.sort_unstable_by_key(|x| x.0);
            let list: Vec<(Spread, f64)> = list.into_iter().map(|(_, s, l)| (s, l)).collect();
            out.push(Reliability {
                dept_id: by_rank[rank].to_string(),
                period,
                n_raters: part.raters.len(),
                rwg: rwg(&list),
                icc1: None,
                icc2: None,
            });
            groups.push(part.responses);
        }
        let (icc1, icc2) = icc(&groups).map_or((None, None), |(a, b)| (Some(a), Some(b)));
        out.push(Reliability {
            dept_id: "*".into(),
            period,
            n_raters: 0,
            rwg: None,
            icc1,
            icc2,
        });
    }
    out.sort_by(|a, b| (&a.dept_id, a.period).cmp(&(&b.dept_id, b.period)));
    // In text order throughout, so that what is kept does not depend on
    // the order the texts were met in.
    let stopped = stopped
        .into_iter()
        .map(|parts| {
            let mut parts: Vec<ReliabilityPart> = parts
                .into_iter()
                .map(|((period, dept), part)| {
                    let mut items: Vec<(String, Spread, f64)> = part
                        .items
                        .iter()
                        .map(|(item, s, levels)| (items.names[*item].to_string(), *s, *levels))
                        .collect();
                    items.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                    ReliabilityPart {
                        dept_id: depts.names[dept].to_string(),
                        period,
                        items,
                        raters: raters.texts(&part.raters),
                        responses: part.responses,
                    }
                })
                .collect();
            parts.sort_unstable_by(|a, b| (&a.dept_id, a.period).cmp(&(&b.dept_id, b.period)));
            parts
        })
        .collect();
    (out, stopped)
}

pub fn reliability_frame(rows: &[Reliability], as_of: NaiveDate) -> Result<DataFrame> {
    Builder::new()
        .str("dept_id", rows.iter().map(|r| Some(r.dept_id.as_str())))
        .periods(&rows.iter().map(|r| r.period).collect::<Vec<_>>(), as_of)
        .i64("n_raters", rows.iter().map(|r| Some(r.n_raters as i64)))
        .f64("rwg", rows.iter().map(|r| r.rwg))
        .f64("icc1", rows.iter().map(|r| r.icc1))
        .f64("icc2", rows.iter().map(|r| r.icc2))
        .build()
}
