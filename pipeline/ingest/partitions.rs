//! Checked rows into the lake's month partitions: held by event month while
//! files are read, merged with the partitions they touch, and deduplicated
//! by key (the later file wins), also across months.

use super::*;

/// An empty frame with a table's lake schema.
pub fn empty_frame(spec: &'static TableSpec) -> Result<DataFrame> {
    Columns::new(spec, 0).finish("")
}

/// The typed frame of a table's new rows, in file then line order, with
/// lineage columns `source_file` and `source_line`.
pub(super) fn build_frame(spec: &'static TableSpec, results: &[FileResult]) -> Result<DataFrame> {
    let mut frames = results.iter().map(|r| &r.rows).filter(|df| df.height() > 0);
    let Some(first) = frames.next() else {
        return empty_frame(spec);
    };
    let mut df = first.clone();
    for f in frames {
        df.vstack_mut(f)?;
    }
    Ok(df)
}

/// Existing lake rows then new rows; the last version of each key wins
/// (`distinct`: the caller knows every key is there once).
pub(super) fn merge(
    spec: &TableSpec,
    existing: Option<DataFrame>,
    new: DataFrame,
    distinct: bool,
) -> Result<DataFrame> {
    let all = match existing {
        Some(old) => {
            let unexpected = |e: PolarsError| {
                anyhow::anyhow!(
                    "the lake's `{}` table has an unexpected schema: {e}",
                    spec.name
                )
            };
            let old = lake::with_missing_columns(old, new.schema())?
                .select(new.get_column_names_owned())
                .map_err(unexpected)?;
            old.vstack(&new).map_err(unexpected)?
        }
        None => new,
    };
    let dedupe = |lf: LazyFrame, cols: Vec<&str>| {
        lf.unique_stable_generic(
            Some(cols.into_iter().map(col).collect()),
            UniqueKeepStrategy::Last,
        )
    };
    let merged = match spec.key {
        Key::Columns(_) if distinct => all,
        Key::Columns(k) => dedupe(all.lazy(), k.to_vec()).collect()?,
        Key::EventIdOrAll => {
            let lf = all.lazy();
            let with_id = dedupe(
                lf.clone().filter(col("event_id").is_not_null()),
                vec!["event_id"],
            );
            let all_cols: Vec<&str> = spec.columns.iter().map(|c| c.name).collect();
            let without = dedupe(lf.filter(col("event_id").is_null()), all_cols);
            concat([with_id, without], UnionArgs::default())?.collect()?
        }
    };
    let sorted = merged.sort(
        spec.sort_columns(),
        SortMultipleOptions::default().with_maintain_order(true),
    )?;
    Ok(sorted)
}

/// A partitioned table's new rows, held in memory month by month as
/// batches are read. When more than `held_bytes` are held, the months the
/// latest batch did not touch (with files in time order, the months it has
/// moved past) are merged with their lake partition and written, in the
/// lake's own form, to the scratch folder; at the end each of those is
/// moved into place, and a month merged again only if later rows touch it
/// or may supersede one of its keys. So with input in time order each
/// month is written once.
pub(super) struct Spill {
    pub(super) spec: &'static TableSpec,
    /// `None` when only checking: rows are counted, not kept.
    pub(super) dir: Option<PathBuf>,
    /// The lake's partitions before this ingest, by month.
    pub(super) lake: BTreeMap<String, PathBuf>,
    /// Month id -> new rows not yet merged, in read order.
    pub(super) held: BTreeMap<u32, Vec<DataFrame>>,
    pub(super) held_bytes: usize,
    pub(super) max_held_bytes: usize,
    /// Month id -> the month merged so far.
    pub(super) merged: BTreeMap<u32, Merged>,
    /// For keys that can move between months (the key does not contain the
    /// month column): a 128-bit hash of the key -> (month, read order) of
    /// its latest version. Later files win, as in [`merge`].
    pub(super) latest: Option<PlHashMap<u128, (u32, i64)>>,
    /// The keys in `latest` read more than once.
    pub(super) repeated: PlHashSet<u128>,
    /// The smallest and largest first key column among the keys of each
    /// batch: an older version of one of its keys has its first column, so
    /// rows with no value in the range are not superseded by that batch.
    pub(super) batch_ranges: Vec<Option<(String, String)>>,
    pub(super) months: Vec<String>,
    pub(super) month_index: HashMap<String, u32>,
    pub(super) tz: Tz,
    /// Valid rows read.
    pub(super) rows: usize,
}

/// A month merged before the last batch was read, in the scratch folder.
pub(super) struct Merged {
    path: PathBuf,
    /// Rows of the lake's partition before this ingest, and of the merge.
    lake_rows: usize,
    rows: usize,
    /// Batches read when it was merged: only later ones can supersede it.
    batches: usize,
    /// Its first key column's smallest and largest value.
    key_range: Option<(String, String)>,
}

/// A month's held rows, handed to the core that merges them.
type HeldRows = std::sync::Mutex<Vec<DataFrame>>;

/// The read-order column of held rows (dropped before the lake).
pub(super) const ORD: &str = "_ord";

fn widen(range: &mut Option<(String, String)>, lo: &str, hi: &str) {
    *range = Some(match range.take() {
        None => (lo.to_string(), hi.to_string()),
        Some((a, b)) => (a.min(lo.to_string()), b.max(hi.to_string())),
    });
}

fn overlap(a: &Option<(String, String)>, b: &Option<(String, String)>) -> bool {
    match (a, b) {
        (Some((a_lo, a_hi)), Some((b_lo, b_hi))) => a_lo <= b_hi && b_lo <= a_hi,
        _ => false,
    }
}

/// The smallest and largest value of a text column.
fn text_range(df: &DataFrame, column: &str) -> Result<Option<(String, String)>> {
    let c = df.column(column)?.str()?;
    let (lo, hi) = (c.iter().flatten().min(), c.iter().flatten().max());
    Ok(lo.zip(hi).map(|(lo, hi)| (lo.to_string(), hi.to_string())))
}

impl Spill {
    pub(super) fn new(
        spec: &'static TableSpec,
        dir: Option<PathBuf>,
        lake: BTreeMap<String, PathBuf>,
        max_held_bytes: usize,
        tz: Tz,
    ) -> Spill {
        let movable = match spec.key {
            Key::Columns(k) => !k.iter().any(|c| Some(*c) == spec.month_column),
            Key::EventIdOrAll => true,
        };
        Spill {
            spec,
            latest: (movable && dir.is_some()).then(PlHashMap::default),
            repeated: PlHashSet::default(),
            batch_ranges: Vec::new(),
            dir,
            lake,
            held: BTreeMap::new(),
            held_bytes: 0,
            max_held_bytes,
            merged: BTreeMap::new(),
            months: Vec::new(),
            month_index: HashMap::new(),
            tz,
            rows: 0,
        }
    }

    pub(super) fn month_id(&mut self, m: &str) -> u32 {
        if let Some(&i) = self.month_index.get(m) {
            return i;
        }
        let i = self.months.len() as u32;
        self.months.push(m.to_string());
        self.month_index.insert(m.to_string(), i);
        i
    }

    /// The month of each row's event in the policy's time zone, as
    /// `year * 12 + month - 1`.
    fn month_numbers(spec: &TableSpec, days: &mut LocalDays, df: &DataFrame) -> Result<Vec<u32>> {
        let month_col = spec.month_column.expect("partitioned table");
        let c = df.column(month_col)?;
        let number = |d: NaiveDate| (d.year() * 12 + d.month0() as i32) as u32;
        Ok(
            match spec.columns[spec.column_index(month_col).expect("month column")].kind {
                Kind::Timestamp => c
                    .datetime()?
                    .physical()
                    .iter()
                    .map(|v| number(days.day(v.expect("event time is required"))))
                    .collect(),
                Kind::Date => c
                    .date()?
                    .physical()
                    .iter()
                    .map(|v| {
                        number(crate::time::date_from_days(
                            v.expect("period_start is required"),
                        ))
                    })
                    .collect(),
                _ => unreachable!("month columns are timestamps or dates"),
            },
        )
    }

    /// Takes one batch: each file's rows, in file then line order.
    pub(super) fn add(&mut self, files: Vec<DataFrame>) -> Result<()> {
        let n: usize = files.iter().map(|f| f.height()).sum();
        let mut ord = self.rows as i64;
        self.rows += n;
        if self.dir.is_none() || n == 0 {
            return Ok(());
        }
        // What each file's rows need, worked out on every core: months,
        // key hashes and the range of the first key column.
        let spec = self.spec;
        let movable = self.latest.is_some();
        let tz = self.tz;
        let prepared = files
            .into_par_iter()
            .filter(|df| df.height() > 0)
            .map(|df| -> Result<_> {
                let months = Spill::month_numbers(spec, &mut LocalDays::new(tz), &df)?;
                let hashes = movable.then(|| key_hashes(&df, spec)).transpose()?;
                let range = match movable {
                    true => text_range(&df, key_columns(spec)[0])?,
                    false => None,
                };
                Ok((df, months, hashes, range))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut touched = BTreeSet::new();
        let mut range = None;
        for (mut df, numbers, hashes, r) in prepared {
            let rows = df.height();
            if let Some((lo, hi)) = &r {
                widen(&mut range, lo, hi);
            }
            // Month ids, looked up only where the month changes.
            let mut last: Option<(u32, u32)> = None;
            let months: Vec<u32> = numbers
                .iter()
                .map(|&ym| match last {
                    Some((seen, id)) if seen == ym => id,
                    _ => {
                        let d = NaiveDate::from_ymd_opt((ym / 12) as i32, ym % 12 + 1, 1)
                            .expect("a month of a valid date");
                        let id = self.month_id(&crate::time::month_of_day(d));
                        last = Some((ym, id));
                        id
                    }
                })
                .collect();
            if let (Some(latest), Some(hashes)) = (&mut self.latest, hashes) {
                for (i, h) in hashes.into_iter().enumerate() {
                    if let Some(h) = h {
                        if latest.insert(h, (months[i], ord + i as i64)).is_some() {
                            self.repeated.insert(h);
                        }
                    }
                }
            }
            df.with_column(
                Int64Chunked::from_iter_values(ORD.into(), ord..ord + rows as i64).into_column(),
            )?;
            ord += rows as i64;
            // Group rows by month, keeping read order within each month (a
            // stable sort); a file of one month's rows, as most are, whole.
            let mut parts = Vec::new();
            if months.iter().all(|&m| m == months[0]) {
                parts.push((months[0], df));
            } else {
                let mut order: Vec<IdxSize> = (0..rows as IdxSize).collect();
                order.sort_by_key(|&a| months[a as usize]);
                let df = df.take(&IdxCa::from_vec("order".into(), order.clone()))?;
                let mut start = 0usize;
                while start < rows {
                    let id = months[order[start] as usize];
                    let mut end = start + 1;
                    while end < rows && months[order[end] as usize] == id {
                        end += 1;
                    }
                    parts.push((id, df.slice(start as i64, end - start)));
                    start = end;
                }
            }
            for (id, part) in parts {
                self.held_bytes += part.estimated_size();
                self.held.entry(id).or_default().push(part);
                touched.insert(id);
            }
        }
        if movable {
            self.batch_ranges.push(range);
        }
        if self.held_bytes > self.max_held_bytes {
            let mut past: Vec<u32> = self
                .held
                .keys()
                .copied()
                .filter(|m| !touched.contains(m))
                .collect();
            if past.is_empty() {
                past = self.held.keys().copied().collect();
            }
            self.merge_held(&past)?;
        }
        Ok(())
    }

    /// Merges months' held rows with what each holds so far and writes
    /// them to the scratch folder, on every core.
    fn merge_held(&mut self, ids: &[u32]) -> Result<()> {
        let dir = self.dir.clone().expect("held rows are kept");
        let chunks: Vec<HeldRows> = ids
            .iter()
            .map(|m| std::sync::Mutex::new(self.held.remove(m).unwrap_or_default()))
            .collect();
        let this = &*self;
        let merged = crate::runtime::on_every_core(ids.len(), |i| {
            let m = ids[i];
            let chunks = std::mem::take(&mut *chunks[i].lock().expect("held rows"));
            let month = &this.months[m as usize];
            let path = dir.join(format!("month={month}.parquet"));
            let tmp = dir.join(format!("month={month}.parquet.tmp"));
            let (existing, lake_rows) = match this.merged.get(&m) {
                Some(done) => (Some(done.path.clone()), Some(done.lake_rows)),
                None => (this.lake.get(month).cloned(), None),
            };
            let (old_rows, mut df) = this.merge_month(month, existing.as_deref(), chunks)?;
            lake::write_parquet(&mut df, &tmp)?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("cannot move {} into place", tmp.display()))?;
            let key_range = match this.latest {
                Some(_) => text_range(&df, key_columns(this.spec)[0])?,
                None => None,
            };
            Ok(Merged {
                path,
                lake_rows: lake_rows.unwrap_or(old_rows),
                rows: df.height(),
                batches: this.batch_ranges.len(),
                key_range,
            })
        })?;
        for (m, done) in ids.iter().zip(merged) {
            self.merged.insert(*m, done);
        }
        self.held_bytes = self
            .held
            .values()
            .flatten()
            .map(|c| c.estimated_size())
            .sum();
        Ok(())
    }

    /// Whether the row with this key hash, in month `month`, is superseded
    /// by a later version in another month (or, with `ord`, by any later
    /// version of the new rows).
    pub(super) fn superseded(&self, h: Option<u128>, month: &str, ord: Option<i64>) -> bool {
        let (Some(latest), Some(h)) = (&self.latest, h) else {
            return false;
        };
        // A new row whose key was read once is its key's latest version.
        if ord.is_some() && !self.repeated.contains(&h) {
            return false;
        }
        match latest.get(&h) {
            None => false,
            Some(&(m, o)) => self.months[m as usize] != month || ord.is_some_and(|ord| ord != o),
        }
    }

    pub(super) fn drop_superseded(
        &self,
        df: DataFrame,
        month: &str,
        with_ord: bool,
    ) -> Result<DataFrame> {
        // With no key read twice, no new row is superseded by another.
        if self.latest.is_none() || (with_ord && self.repeated.is_empty()) {
            return Ok(df);
        }
        let hashes = key_hashes(&df, self.spec)?;
        let ords: Vec<Option<i64>> = if with_ord {
            df.column(ORD)?.i64()?.iter().collect()
        } else {
            vec![None; df.height()]
        };
        let keep: BooleanChunked = hashes
            .into_iter()
            .zip(ords)
            .map(|(h, o)| Some(!self.superseded(h, month, o)))
            .collect();
        Ok(df.filter(&keep)?)
    }

    /// Whether the partition at `path` of `month` holds a key that a later
    /// version in another month supersedes. Its first key column alone,
    /// read first, tells whether it can: a fraction of reading and hashing
    /// every key.
    fn holds_superseded(
        &self,
        month: &str,
        path: &Path,
        range: &Option<(String, String)>,
    ) -> Result<bool> {
        let key_cols = key_columns(self.spec);
        let mut keys = lake::read_parquet_columns(path, &key_cols[..1])?;
        if !overlap(&text_range(&keys, key_cols[0])?, range) {
            return Ok(false);
        }
        if key_cols.len() > 1 {
            let rest = lake::read_parquet_columns(path, &key_cols[1..])?;
            keys.hstack_mut(rest.columns())?;
        }
        Ok(key_hashes(&keys, self.spec)?
            .into_iter()
            .any(|h| self.superseded(h, month, None)))
    }

    /// Merges the held and merged months into the lake, staging every month
    /// partition that changes; returns the table's row count afterwards.
    pub(super) fn merge_into(
        mut self,
        out: &OutDir,
        staging: &mut Staging,
        rows_before: usize,
        progress: &Progress,
    ) -> Result<usize> {
        let spec = self.spec;
        // The first key columns of every batch, and of the batches read
        // after each merged month.
        let range_from = |from: usize| {
            let mut r = None;
            for (lo, hi) in self.batch_ranges[from..].iter().flatten() {
                widen(&mut r, lo, hi);
            }
            r
        };
        let all_keys = range_from(0);
        let mut months: BTreeSet<u32> = self.held.keys().copied().collect();
        if self.latest.as_ref().is_some_and(|l| !l.is_empty()) {
            // Months merged before later batches that may supersede a key.
            let merged: Vec<u32> = self.merged.keys().copied().collect();
            let again = crate::runtime::on_every_core(merged.len(), |i| {
                let done = &self.merged[&merged[i]];
                let later = range_from(done.batches);
                Ok(overlap(&done.key_range, &later)
                    && self.holds_superseded(
                        &self.months[merged[i] as usize],
                        &done.path,
                        &later,
                    )?)
            })?;
            months.extend(
                merged
                    .iter()
                    .zip(again)
                    .filter(|(_, a)| *a)
                    .map(|(m, _)| *m),
            );
            // Partitions with no new rows that hold an earlier version of
            // a key now in another month.
            let others: Vec<(&String, &PathBuf)> = self
                .lake
                .iter()
                .filter(|(month, _)| {
                    self.month_index
                        .get(*month)
                        .is_none_or(|m| !self.held.contains_key(m) && !self.merged.contains_key(m))
                })
                .collect();
            let moved = crate::runtime::on_every_core(others.len(), |i| {
                let (month, path) = others[i];
                self.holds_superseded(month, path, &all_keys)
            })?;
            let moved: Vec<String> = others
                .into_iter()
                .zip(moved)
                .filter(|(_, m)| *m)
                .map(|((month, _), _)| month.clone())
                .collect();
            for month in moved {
                months.insert(self.month_id(&month));
            }
        }
        // Each month is staged in month order, then merged on every core,
        // one month per core at a time (a month is read, merged and written
        // whole, so memory holds a month per core); months merged already
        // and not again are moved into place.
        let table_dir = out.table_path(spec.name, true);
        let staged_path = |staging: &mut Staging, month: &str| {
            staging.stage(
                &table_dir
                    .join(format!("month={month}"))
                    .join("part-0.parquet"),
            )
        };
        let mut rows = rows_before;
        for (m, done) in &self.merged {
            if !months.contains(m) {
                let staged = staged_path(staging, &self.months[*m as usize]);
                if let Some(parent) = staged.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::rename(&done.path, &staged)
                    .with_context(|| format!("cannot move {} into place", done.path.display()))?;
                rows = rows + done.rows - done.lake_rows;
            }
        }
        let (jobs, chunks): (Vec<(u32, PathBuf)>, Vec<HeldRows>) = months
            .into_iter()
            .map(|m| {
                let staged = staged_path(staging, &self.months[m as usize]);
                let chunks = self.held.remove(&m).unwrap_or_default();
                ((m, staged), std::sync::Mutex::new(chunks))
            })
            .unzip();
        let last_log = std::sync::Mutex::new(std::time::Instant::now());
        let done = std::sync::atomic::AtomicUsize::new(0);
        let counts = crate::runtime::on_every_core(jobs.len(), |i| {
            let (m, staged) = &jobs[i];
            let month = &self.months[*m as usize];
            let chunks = std::mem::take(&mut *chunks[i].lock().expect("held rows"));
            let (existing, lake_rows) = match self.merged.get(m) {
                Some(d) => (Some(d.path.clone()), Some(d.lake_rows)),
                None => (self.lake.get(month).cloned(), None),
            };
            let (old_rows, mut df) = self.merge_month(month, existing.as_deref(), chunks)?;
            lake::write_parquet(&mut df, staged)?;
            let done = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let mut last = last_log.lock().expect("progress clock");
            if last.elapsed().as_secs() >= 5 && done < jobs.len() {
                progress.step(&format!(
                    "merging {} into the lake: {done} of {} month(s)",
                    spec.name,
                    jobs.len()
                ));
                *last = std::time::Instant::now();
            }
            Ok((lake_rows.unwrap_or(old_rows), df.height()))
        })?;
        Ok(counts
            .into_iter()
            .fold(rows, |rows, (old, merged)| rows + merged - old))
    }

    /// Merges one month's new rows with its partition so far (if any);
    /// returns the partition's rows before and the merged frame.
    pub(super) fn merge_month(
        &self,
        month: &str,
        existing: Option<&Path>,
        chunks: Vec<DataFrame>,
    ) -> Result<(usize, DataFrame)> {
        let spec = self.spec;
        let old = existing.map(lake::read_parquet).transpose()?;
        let old_rows = old.as_ref().map_or(0, |d| d.height());
        let old = old
            .map(|d| self.drop_superseded(d, month, false))
            .transpose()?;
        let mut new: Option<DataFrame> = None;
        for df in chunks {
            match new.as_mut() {
                None => new = Some(df),
                Some(n) => {
                    n.vstack_mut_owned(df)?;
                }
            }
        }
        let new = match new {
            Some(n) => self.drop_superseded(n, month, true)?.drop(ORD)?,
            None => empty_frame(spec)?,
        };
        // Keys read once each, with no earlier rows: nothing to dedupe.
        let distinct = old.is_none() && self.latest.is_some() && self.repeated.is_empty();
        Ok((old_rows, merge(spec, old, new, distinct)?))
    }
}

pub(super) fn key_columns(spec: &TableSpec) -> Vec<&'static str> {
    match spec.key {
        Key::Columns(k) => k.to_vec(),
        Key::EventIdOrAll => vec!["event_id"],
    }
}

/// A 128-bit hash (XXH3) of each row's key (text columns), `None` where a
/// key column is null (events without an id are deduplicated on all
/// columns, which include the month). Each value is hashed after its length,
/// so ("ab", "c") and ("a", "bc") differ; a collision among even billions of
/// keys is vanishingly unlikely.
pub(super) fn key_hashes(df: &DataFrame, spec: &TableSpec) -> Result<Vec<Option<u128>>> {
    let cols = key_columns(spec)
        .into_iter()
        .map(|c| Ok(df.column(c)?.str()?))
        .collect::<Result<Vec<_>>>()?;
    let mut iters: Vec<_> = cols.iter().map(|c| c.iter()).collect();
    let mut bytes = Vec::new();
    Ok((0..df.height())
        .map(|_| {
            bytes.clear();
            let mut complete = true;
            for it in &mut iters {
                match it.next().flatten() {
                    Some(v) => {
                        bytes.extend_from_slice(&(v.len() as u64).to_le_bytes());
                        bytes.extend_from_slice(v.as_bytes());
                    }
                    None => complete = false,
                }
            }
            complete.then(|| xxhash_rust::xxh3::xxh3_128(&bytes))
        })
        .collect())
}
