//! The ratings as the rater model reads them: item ratings from the lake's
//! columns, their keys, and dense numbers for departments, raters, items and
//! responses.

use super::*;

/// One item answer, as the rater model sees it.
#[derive(Debug, Clone)]
pub struct ItemRating {
    pub rating_id: Arc<str>,
    pub item: Arc<str>,
    pub rater_id: Arc<str>,
    pub group: Arc<str>,
    pub dept_id: Arc<str>,
    pub day: NaiveDate,
    /// Normalised score, 0-100.
    pub y: f64,
    /// Score on its own scale, and the number of levels of that scale.
    pub raw: f64,
    pub levels: f64,
    /// The texts' numbers (see [`Keys`]).
    pub keys: Keys,
}

/// Numbers standing for an item rating's department, rater, item and
/// rater group: one number per distinct text across the item ratings of a
/// read ([`items_from_frame`]), so the steps that number these texts for
/// themselves ([`Ids::id_by`]) look a number up in a list instead of
/// hashing the text. Item ratings made otherwise carry [`Keys::NONE`] and
/// are looked up by their texts, with the same result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    pub dept: u32,
    pub rater: u32,
    pub item: u32,
    pub group: u32,
}

impl Keys {
    pub const NONE: Keys = Keys {
        dept: u32::MAX,
        rater: u32::MAX,
        item: u32::MAX,
        group: u32::MAX,
    };
}

/// The columns of `ratings` that [`items_from_frame`] reads.
pub const RATING_COLUMNS: [&str; 9] = [
    "rating_id",
    "rated_at",
    "dept_id",
    "rater_id",
    "rater_group",
    "item",
    "score",
    "scale_min",
    "scale_max",
];

/// Item ratings from the `ratings` view, leaving out the ratings in
/// `removed` (removed on appeal), each score normalised to 0-100 on its own
/// scale. The rows are read in parts, one per core.
pub fn items_from_frame(
    df: &DataFrame,
    removed: &PlHashSet<String>,
    tz: chrono_tz::Tz,
) -> Result<Vec<ItemRating>> {
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    items_in_parts(df, removed, tz, cores)
}

/// [`items_from_frame`] with the rows read in `parts` parts at once, each
/// into its own slots of the result.
pub(super) fn items_in_parts(
    df: &DataFrame,
    removed: &PlHashSet<String>,
    tz: chrono_tz::Tz,
    parts: usize,
) -> Result<Vec<ItemRating>> {
    let n = df.height();
    let part = n.div_ceil(parts.max(1)).max(1);
    let mut slots: Vec<Option<ItemRating>> = Vec::with_capacity(n);
    slots.resize_with(n, || None);
    let names: Vec<[Vec<Arc<str>>; 4]> = std::thread::scope(|s| {
        let readers: Vec<_> = slots
            .chunks_mut(part)
            .enumerate()
            .map(|(k, slots)| {
                let rows = df.slice((k * part) as i64, slots.len());
                s.spawn(move || read_items(&rows, removed, tz, slots))
            })
            .collect();
        readers
            .into_iter()
            .map(|r| r.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect::<Result<Vec<_>>>()
    })?;
    // Each part numbered its texts in the order it met them; one number per
    // text across the parts, in the order of the parts.
    let mut numbers: [PlHashMap<Arc<str>, u32>; 4] = Default::default();
    for (slots, names) in slots.chunks_mut(part).zip(names) {
        let to_global: Vec<Vec<u32>> = numbers
            .iter_mut()
            .zip(names)
            .map(|(numbers, names)| {
                names
                    .into_iter()
                    .map(|name| {
                        let next = numbers.len() as u32;
                        *numbers.entry(name).or_insert(next)
                    })
                    .collect()
            })
            .collect();
        for k in slots.iter_mut().flatten().map(|r| &mut r.keys) {
            k.dept = to_global[0][k.dept as usize];
            k.rater = to_global[1][k.rater as usize];
            k.item = to_global[2][k.item as usize];
            k.group = to_global[3][k.group as usize];
        }
    }
    // Rows left out leave empty slots; the rest keep their order. Collected
    // in place (`flatten` would copy them into a new allocation: a second
    // copy of a year's item ratings at the peak).
    #[allow(clippy::filter_map_identity)]
    let items = slots.into_iter().filter_map(|r| r).collect();
    Ok(items)
}

/// Reads `df`'s rows into `slots` (as many), leaving a slot empty for a
/// row left out. Their keys are numbered in the order met; returns the
/// texts by number: departments, raters, items and groups.
pub(super) fn read_items(
    df: &DataFrame,
    removed: &PlHashSet<String>,
    tz: chrono_tz::Tz,
    slots: &mut [Option<ItemRating>],
) -> Result<[Vec<Arc<str>>; 4]> {
    use crate::frame::float_column;
    // Read in place, row after row: only the item ratings themselves are
    // held.
    let text = |name: &str| -> Result<&StringChunked> { Ok(df.column(name)?.str()?) };
    let mut texts = [
        text("rating_id")?.iter(),
        text("item")?.iter(),
        text("rater_id")?.iter(),
        text("rater_group")?.iter(),
        text("dept_id")?.iter(),
    ];
    let mut ats = crate::frame::micros_in_place(df, "rated_at")?.iter();
    let (raw, lo, hi) = (
        float_column(df, "score")?,
        float_column(df, "scale_min")?,
        float_column(df, "scale_max")?,
    );
    let mut numbers = [raw.f64()?.iter(), lo.f64()?.iter(), hi.f64()?.iter()];
    // Each distinct text is stored once per column (and part), numbered,
    // and shared (a rater's id by all their ratings): copies are reference
    // counts. A column's rows often repeat the row before (a response's
    // items share its id, rater, group and department), which needs no
    // lookup. Response ids are only shared with the row before: a
    // response's items come together, and keeping every id seen would cost
    // more than it saves.
    /// A column's texts, each stored once and numbered in the order met.
    #[derive(Default)]
    struct Pool {
        before: Option<(Arc<str>, u32)>,
        index: PlHashMap<Arc<str>, u32>,
        names: Vec<Arc<str>>,
    }
    impl Pool {
        fn get(&mut self, s: &str) -> (Arc<str>, u32) {
            if let Some((a, n)) = self.before.as_ref().filter(|(a, _)| **a == *s) {
                return (a.clone(), *n);
            }
            let (a, n) = match self.index.get_key_value(s) {
                Some((a, &n)) => (a.clone(), n),
                None => {
                    let (a, n): (Arc<str>, u32) = (Arc::from(s), self.names.len() as u32);
                    self.index.insert(a.clone(), n);
                    self.names.push(a.clone());
                    (a, n)
                }
            };
            self.before = Some((a.clone(), n));
            (a, n)
        }
    }
    let (mut depts, mut raters, mut items, mut groups): (Pool, Pool, Pool, Pool) =
        Default::default();
    let mut id_before: Option<Arc<str>> = None;
    let mut days = crate::time::calendar::LocalDays::new(tz);
    for slot in slots.iter_mut() {
        let t = texts.each_mut().map(|c| c.next().flatten());
        let [raw, lo, hi] = numbers.each_mut().map(|c| c.next().flatten());
        let at = ats.next().flatten();
        // Rows with a field missing, and ratings removed on appeal, are
        // left out.
        let (Some(id), Some(item), Some(rater), Some(group), Some(dept)) =
            (t[0], t[1], t[2], t[3], t[4])
        else {
            continue;
        };
        let (Some(raw), Some(lo), Some(hi), Some(at)) = (raw, lo, hi, at) else {
            continue;
        };
        if removed.contains(id) {
            continue;
        }
        let rating_id = match id_before.take().filter(|a| **a == *id) {
            Some(a) => a,
            None => Arc::from(id),
        };
        id_before = Some(rating_id.clone());
        let ((dept_id, dept), (rater_id, rater)) = (depts.get(dept), raters.get(rater));
        let ((item, item_n), (group, group_n)) = (items.get(item), groups.get(group));
        *slot = Some(ItemRating {
            rating_id,
            item,
            rater_id,
            group,
            dept_id,
            day: days.day(at),
            y: (raw - lo) / (hi - lo) * 100.0,
            raw,
            levels: hi - lo + 1.0,
            keys: Keys {
                dept,
                rater,
                item: item_n,
                group: group_n,
            },
        });
    }
    let names = |p: Pool| p.names;
    Ok([names(depts), names(raters), names(items), names(groups)])
}

/// Numbers texts densely, in the order met: by their number of [`Keys`]
/// where they have one (an index into a list), else by the text.
pub(crate) struct Ids<'a> {
    /// Per number (see [`Ids::id_by`]), its id + 1; 0 for not met.
    pub(super) by_number: Vec<u32>,
    pub(super) index: PlHashMap<&'a str, usize>,
    pub(crate) names: Vec<&'a str>,
}

impl<'a> Ids<'a> {
    pub(crate) fn new() -> Ids<'a> {
        Ids {
            by_number: Vec::new(),
            index: PlHashMap::default(),
            names: Vec::new(),
        }
    }

    /// The id of `s`, for which `number` stands (a number of [`Keys`]):
    /// looked up in a list; by the text for [`Keys::NONE`]'s numbers and
    /// the first time a number is met, so numbered and unnumbered texts
    /// share ids.
    pub(crate) fn id_by(&mut self, number: u32, s: &'a str) -> usize {
        if number == u32::MAX {
            return self.id(s);
        }
        let n = number as usize;
        match self.by_number.get(n) {
            Some(&i) if i != 0 => return i as usize - 1,
            Some(_) => {}
            None => self.by_number.resize(n + 1, 0),
        }
        let i = self.id(s);
        self.by_number[n] = i as u32 + 1;
        i
    }

    /// The id of `s`, by the text.
    pub(crate) fn id(&mut self, s: &'a str) -> usize {
        match self.index.get(s) {
            Some(&i) => i,
            None => {
                self.names.push(s);
                self.index.insert(s, self.names.len() - 1);
                self.names.len() - 1
            }
        }
    }

    /// The texts of `ids`, each once, in text order.
    pub(crate) fn texts(&self, ids: &[u32]) -> Vec<String> {
        let mut texts: Vec<String> = ids
            .iter()
            .map(|&i| self.names[i as usize].to_string())
            .collect();
        texts.sort_unstable();
        texts.dedup();
        texts
    }

    /// Each id's rank when the texts are sorted.
    pub(crate) fn ranks(&self) -> Vec<usize> {
        self.sorted().0
    }

    /// Each id's rank when the texts are sorted, and the texts by rank.
    pub(crate) fn sorted(&self) -> (Vec<usize>, Vec<&'a str>) {
        let mut order: Vec<usize> = (0..self.names.len()).collect();
        order.sort_unstable_by(|&a, &b| self.names[a].cmp(self.names[b]));
        let mut rank = vec![0; order.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r;
        }
        (rank, order.into_iter().map(|i| self.names[i]).collect())
    }
}

/// Every item rating's response (`rating_id`), numbered once for the
/// passes that add up by response: reliability in id order, satisfaction
/// in order of first appearance.
pub struct ResponseNumbers {
    /// Per item rating, its response's number by first appearance.
    pub of_item: Vec<u32>,
    /// Per response (by first appearance), its rank in id order.
    pub rank: Vec<u32>,
}

impl ResponseNumbers {
    pub fn of(ratings: &[ItemRating]) -> ResponseNumbers {
        let ids = IdRuns::of(ratings.len(), |k| &ratings[k].rating_id);
        // Numbers by first appearance: ranks ordered by their first row.
        let mut rank: Vec<u32> = (0..ids.first_row.len() as u32).collect();
        rank.sort_unstable_by_key(|&d| ids.first_row[d as usize]);
        let mut number_of_rank = vec![0u32; rank.len()];
        for (number, &d) in rank.iter().enumerate() {
            number_of_rank[d as usize] = number as u32;
        }
        let of_item = ids.per_row(|r| number_of_rank[r as usize]);
        ResponseNumbers { of_item, rank }
    }
}

/// Numbers the responses (`rating_id`) of `rows` in id order: the number
/// of each row's response, and the ids by number.
pub(super) fn number_responses<'a>(
    ratings: &'a [ItemRating],
    rows: &[usize],
) -> (Vec<u32>, Vec<&'a str>) {
    let ids = IdRuns::of(rows.len(), |k| &ratings[rows[k]].rating_id);
    (ids.per_row(|r| r), ids.by_rank)
}

/// The ids of `n` rows ranked in id order. By sorting, not hashing: a
/// response's items come together, so the runs of rows with one id are few
/// (about a quarter of the rows), and sorting them by id gives the id
/// order, which is wanted anyway; an id found in two runs is one id.
/// Hashing a year's million ids took longer than the sort.
pub(super) struct IdRuns<'a> {
    /// Rows in runs of one id: each run's first row, in row order.
    pub(super) starts: Vec<u32>,
    /// Each run's id's rank in id order.
    pub(super) rank_of_run: Vec<u32>,
    /// Per rank, the first row with that id.
    pub(super) first_row: Vec<u32>,
    /// The ids by rank.
    pub(super) by_rank: Vec<&'a str>,
    pub(super) n: usize,
}

impl<'a> IdRuns<'a> {
    /// The ids of rows `0..n`, `id(k)` for row `k`.
    pub(super) fn of(n: usize, id: impl Fn(usize) -> &'a str) -> IdRuns<'a> {
        // (id, first row) of each run, in row order.
        let mut runs: Vec<(&str, u32)> = Vec::new();
        for k in 0..n {
            let s = id(k);
            if runs.last().is_none_or(|(last, _)| *last != s) {
                runs.push((s, k as u32));
            }
        }
        // Runs in id order (of one id, the first first).
        let mut by_id: Vec<u32> = (0..runs.len() as u32).collect();
        by_id.sort_unstable_by(|&a, &b| runs[a as usize].cmp(&runs[b as usize]));
        let mut rank_of_run = vec![0u32; runs.len()];
        let (mut first_row, mut by_rank): (Vec<u32>, Vec<&str>) = (Vec::new(), Vec::new());
        for &run in &by_id {
            let (s, row) = runs[run as usize];
            if by_rank.last() != Some(&s) {
                first_row.push(row);
                by_rank.push(s);
            }
            rank_of_run[run as usize] = first_row.len() as u32 - 1;
        }
        IdRuns {
            starts: runs.into_iter().map(|(_, row)| row).collect(),
            rank_of_run,
            first_row,
            by_rank,
            n,
        }
    }

    /// Per row, `number(rank)` of its id.
    pub(super) fn per_row(&self, number: impl Fn(u32) -> u32) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.n);
        for (k, &from) in self.starts.iter().enumerate() {
            let to = self.starts.get(k + 1).map_or(self.n, |&r| r as usize);
            out.extend(std::iter::repeat_n(
                number(self.rank_of_run[k]),
                to - from as usize,
            ));
        }
        out
    }
}
