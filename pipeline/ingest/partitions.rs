//! Checked rows into the lake's month partitions: spilled by event month
//! while files are read, merged with the partitions they touch, and
//! deduplicated by key (the later file wins), also across months.

use super::*;

/// An empty frame with a table's lake schema.
pub fn empty_frame(spec: &TableSpec) -> Result<DataFrame> {
    build_frame(spec, &[])
}

/// Builds the typed frame of a table's new rows, in file then line order,
/// with lineage columns `source_file` and `source_line`.
pub(super) fn build_frame(spec: &TableSpec, results: &[FileResult]) -> Result<DataFrame> {
    let n: usize = results.iter().map(|r| r.rows.len()).sum();
    let mut columns = Vec::with_capacity(spec.columns.len() + 2);
    for (i, col) in spec.columns.iter().enumerate() {
        let vals = results
            .iter()
            .flat_map(|r| r.rows.iter().map(move |row| &row.vals[i]));
        let name: PlSmallStr = col.name.into();
        let column = match col.kind {
            Kind::Timestamp => Int64Chunked::from_iter_options(
                name,
                vals.map(|v| match v {
                    Val::Ts(t) => Some(*t),
                    _ => None,
                }),
            )
            .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
            .into_column(),
            Kind::Date => Int32Chunked::from_iter_options(
                name,
                vals.map(|v| match v {
                    Val::Date(d) => Some(*d),
                    _ => None,
                }),
            )
            .into_date()
            .into_column(),
            Kind::Number { .. } => Float64Chunked::from_iter_options(
                name,
                vals.map(|v| match v {
                    Val::Num(x) => Some(*x),
                    _ => None,
                }),
            )
            .into_column(),
            Kind::Bool => BooleanChunked::from_iter_options(
                name,
                vals.map(|v| match v {
                    Val::Bool(b) => Some(*b),
                    _ => None,
                }),
            )
            .into_column(),
            Kind::Text | Kind::Enum(_) | Kind::DeptRef | Kind::DeptType => {
                StringChunked::from_iter_options(
                    name,
                    vals.map(|v| match v {
                        Val::Text(s) => Some(s.as_str()),
                        _ => None,
                    }),
                )
                .into_column()
            }
        };
        columns.push(column);
    }
    columns.push(
        StringChunked::from_iter_values(
            "source_file".into(),
            results
                .iter()
                .flat_map(|r| std::iter::repeat_n(r.file.rel.as_str(), r.rows.len())),
        )
        .into_column(),
    );
    columns.push(
        Int64Chunked::from_iter_values(
            "source_line".into(),
            results
                .iter()
                .flat_map(|r| r.rows.iter().map(|row| row.line as i64)),
        )
        .into_column(),
    );
    Ok(DataFrame::new(n, columns)?)
}

/// Existing lake rows then new rows; the last version of each key wins.
pub(super) fn merge(
    spec: &TableSpec,
    existing: Option<DataFrame>,
    new: DataFrame,
) -> Result<DataFrame> {
    let all = match existing {
        Some(old) => {
            let unexpected = |e: PolarsError| {
                anyhow::anyhow!(
                    "the lake's `{}` table has an unexpected schema: {e}",
                    spec.name
                )
            };
            let old = old
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
    let lf = all.lazy();
    let merged = match spec.key {
        Key::Columns(k) => dedupe(lf, k.to_vec()).collect()?,
        Key::EventIdOrAll => {
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

/// A partitioned table's new rows, spilled to scratch files month by month
/// as batches are read, then merged into the lake one month at a time.
pub(super) struct Spill {
    pub(super) spec: &'static TableSpec,
    /// `None` when only checking: rows are counted, not kept.
    pub(super) dir: Option<PathBuf>,
    /// Month (`YYYY-MM`) -> its chunk files, in read order.
    pub(super) chunks: BTreeMap<String, Vec<PathBuf>>,
    /// For keys that can move between months (the key does not contain the
    /// month column): a 128-bit hash of the key -> (month, read order) of
    /// its latest version. Later files win, as in [`merge`].
    pub(super) latest: Option<PlHashMap<u128, (u32, i64)>>,
    /// The smallest and largest first key column among the keys in
    /// `latest`: an older version of one of them has its first column, so
    /// a partition with no value in this range holds none.
    pub(super) key_range: Option<(String, String)>,
    pub(super) months: Vec<String>,
    pub(super) month_index: HashMap<String, u32>,
    pub(super) days: LocalDays,
    /// Valid rows read.
    pub(super) rows: usize,
}

/// The read-order column of spilled chunks (dropped before the lake).
pub(super) const ORD: &str = "_ord";

impl Spill {
    pub(super) fn new(spec: &'static TableSpec, dir: Option<PathBuf>, tz: Tz) -> Spill {
        let movable = match spec.key {
            Key::Columns(k) => !k.iter().any(|c| Some(*c) == spec.month_column),
            Key::EventIdOrAll => true,
        };
        Spill {
            spec,
            latest: (movable && dir.is_some()).then(PlHashMap::default),
            key_range: None,
            dir,
            chunks: BTreeMap::new(),
            months: Vec::new(),
            month_index: HashMap::new(),
            days: LocalDays::new(tz),
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

    /// The month (as [`Spill::month_id`]) of each row's event, in the
    /// policy's time zone; a name is looked up only where the month changes
    /// from the row before.
    pub(super) fn month_ids(&mut self, df: &DataFrame, month_col: &str) -> Result<Vec<u32>> {
        let c = df.column(month_col)?;
        let days: Vec<NaiveDate> = match self.spec.columns
            [self.spec.column_index(month_col).expect("month column")]
        .kind
        {
            Kind::Timestamp => c
                .datetime()?
                .physical()
                .iter()
                .map(|v| self.days.day(v.expect("event time is required")))
                .collect(),
            Kind::Date => c
                .date()?
                .physical()
                .iter()
                .map(|v| crate::time::date_from_days(v.expect("period_start is required")))
                .collect(),
            _ => unreachable!("month columns are timestamps or dates"),
        };
        let mut last: Option<((i32, u32), u32)> = None;
        Ok(days
            .into_iter()
            .map(|d| {
                let ym = (d.year(), d.month());
                match last {
                    Some((seen, id)) if seen == ym => id,
                    _ => {
                        let id = self.month_id(&crate::time::month_of_day(d));
                        last = Some((ym, id));
                        id
                    }
                }
            })
            .collect())
    }

    /// Spills one batch (rows in file, then line order).
    pub(super) fn add(&mut self, mut df: DataFrame) -> Result<()> {
        let n = df.height();
        let first = self.rows as i64;
        self.rows += n;
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        if n == 0 {
            return Ok(());
        }
        let month_col = self.spec.month_column.expect("partitioned table");
        let months = self.month_ids(&df, month_col)?;
        if let Some(latest) = &mut self.latest {
            let hashes = key_hashes(&df, self.spec)?;
            for (i, h) in hashes.into_iter().enumerate() {
                if let Some(h) = h {
                    latest.insert(h, (months[i], first + i as i64));
                }
            }
            // Over every first key column, complete keys or not: a range
            // wider than needed only reads more.
            let firsts = df.column(key_columns(self.spec)[0])?.str()?;
            let (lo, hi) = (firsts.iter().flatten().min(), firsts.iter().flatten().max());
            if let (Some(lo), Some(hi)) = (lo, hi) {
                self.key_range = Some(match self.key_range.take() {
                    None => (lo.to_string(), hi.to_string()),
                    Some((a, b)) => (a.min(lo.to_string()), b.max(hi.to_string())),
                });
            }
        }
        df.with_column(
            Int64Chunked::from_iter_values(ORD.into(), first..first + n as i64).into_column(),
        )?;
        // Group rows by month, keeping read order within each month (a
        // stable sort).
        let mut order: Vec<IdxSize> = (0..n as IdxSize).collect();
        order.sort_by_key(|&a| months[a as usize]);
        let df = df.take(&IdxCa::from_vec("order".into(), order.clone()))?;
        let mut start = 0usize;
        while start < n {
            let id = months[order[start] as usize];
            let mut end = start + 1;
            while end < n && months[order[end] as usize] == id {
                end += 1;
            }
            let month = &self.months[id as usize];
            let files = self.chunks.entry(month.clone()).or_default();
            let path = dir.join(month).join(format!("{:06}.parquet", files.len()));
            lake::write_scratch_parquet(&mut df.slice(start as i64, end - start), &path)?;
            files.push(path);
            start = end;
        }
        Ok(())
    }

    /// Whether the row with this key hash, in month `month`, is superseded
    /// by a later version in another month (or, with `ord`, by any later
    /// version of the new rows).
    pub(super) fn superseded(&self, h: Option<u128>, month: &str, ord: Option<i64>) -> bool {
        let (Some(latest), Some(h)) = (&self.latest, h) else {
            return false;
        };
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
        if self.latest.is_none() {
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

    /// Merges the spilled rows into the lake, staging every month partition
    /// that changes; returns the table's row count afterwards.
    pub(super) fn merge_into(
        self,
        out: &OutDir,
        staging: &mut Staging,
        rows_before: usize,
        progress: &Progress,
    ) -> Result<usize> {
        let spec = self.spec;
        let existing = lake::partition_files(out, spec.name)?;
        // Months to rewrite: those with new rows, and (when keys can move)
        // those holding an earlier version of a key now in another month.
        let mut months: BTreeSet<String> = self.chunks.keys().cloned().collect();
        if self.latest.as_ref().is_some_and(|l| !l.is_empty()) {
            let key_cols = key_columns(spec);
            let others: Vec<(&String, &PathBuf)> = existing
                .iter()
                .filter(|(month, _)| !months.contains(*month))
                .collect();
            let moved = crate::runtime::on_every_core(others.len(), |i| {
                let (month, path) = others[i];
                // Read alone first, the first key column tells whether the
                // partition can hold a version of a new key (with ids that
                // grow over time, as most systems give them, no older
                // month can): a fraction of reading and hashing every key.
                let mut keys = lake::read_parquet_columns(path, &key_cols[..1])?;
                if let Some((lo, hi)) = &self.key_range {
                    let in_range = keys
                        .column(key_cols[0])?
                        .str()?
                        .iter()
                        .flatten()
                        .any(|k| lo.as_str() <= k && k <= hi.as_str());
                    if !in_range {
                        return Ok(false);
                    }
                }
                // The other key columns, beside the first already read.
                if key_cols.len() > 1 {
                    let rest = lake::read_parquet_columns(path, &key_cols[1..])?;
                    keys.hstack_mut(rest.columns())?;
                }
                Ok(key_hashes(&keys, spec)?
                    .into_iter()
                    .any(|h| self.superseded(h, month, None)))
            })?;
            for ((month, _), moved) in others.into_iter().zip(moved) {
                if moved {
                    months.insert(month.clone());
                }
            }
        }
        // Each month is staged in month order, then merged on every core,
        // one month per core at a time (a month is read, merged and written
        // whole, so memory holds a month per core).
        let table_dir = out.table_path(spec.name, true);
        let jobs: Vec<(String, PathBuf)> = months
            .into_iter()
            .map(|month| {
                let path = table_dir
                    .join(format!("month={month}"))
                    .join("part-0.parquet");
                let staged = staging.stage(&path);
                (month, staged)
            })
            .collect();
        let last_log = std::sync::Mutex::new(std::time::Instant::now());
        let done = std::sync::atomic::AtomicUsize::new(0);
        let counts = crate::runtime::on_every_core(jobs.len(), |i| {
            let (month, staged) = &jobs[i];
            let counts = self.merge_month(month, existing.get(month), staged)?;
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
            Ok(counts)
        })?;
        Ok(counts
            .into_iter()
            .fold(rows_before, |rows, (old, merged)| rows + merged - old))
    }

    /// Merges one month's spilled rows with its lake partition (if any) and
    /// writes the result to `staged`; returns the partition's row counts
    /// before and after.
    pub(super) fn merge_month(
        &self,
        month: &str,
        existing: Option<&PathBuf>,
        staged: &Path,
    ) -> Result<(usize, usize)> {
        let spec = self.spec;
        let old = existing.map(|p| lake::read_parquet(p)).transpose()?;
        let old_rows = old.as_ref().map_or(0, |d| d.height());
        let old = old
            .map(|d| self.drop_superseded(d, month, false))
            .transpose()?;
        let mut new: Option<DataFrame> = None;
        for chunk in self.chunks.get(month).into_iter().flatten() {
            let df = lake::read_parquet(chunk)?;
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
        let mut merged = merge(spec, old, new)?;
        lake::write_parquet(&mut merged, staged)?;
        Ok((old_rows, merged.height()))
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
