//! A table's files as this run sees them (staged or published): its month
//! partitions, read whole, scanned (all months or a range) and counted.

use super::*;

/// The files of a partitioned table, by month (`YYYY-MM`), as this run
/// sees them: the published partitions overlaid with those staged by this
/// run (a partition is staged file by file, so the table folder itself is
/// never replaced whole).
pub fn partition_files(out: &OutDir, table: &str) -> Result<BTreeMap<String, PathBuf>> {
    let dir = out.table_path(table, true);
    let mut finals: BTreeSet<PathBuf> = BTreeSet::new();
    if let Ok(rd) = fs::read_dir(&dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                finals.insert(e.path().join("part-0.parquet"));
            }
        }
    }
    for (f, _) in out.overlay.lock().expect("overlay lock").iter() {
        if f.starts_with(&dir) && f.file_name().is_some_and(|n| n == "part-0.parquet") {
            finals.insert(f.clone());
        }
    }
    let mut parts = BTreeMap::new();
    for f in finals {
        let Some(month) = f
            .parent()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("month="))
        else {
            continue;
        };
        let month = month.to_string();
        let path = out.read(&f);
        if path.is_file() {
            parts.insert(month, path);
        }
    }
    Ok(parts)
}

/// Reads a lake table whole (every partition), or `None` if it is absent.
pub fn read_table(out: &OutDir, table: &str, partitioned: bool) -> Result<Option<DataFrame>> {
    if !partitioned {
        let path = out.read(&out.table_path(table, false));
        return if path.is_file() {
            read_parquet(&path).map(Some)
        } else {
            Ok(None)
        };
    }
    let mut acc: Option<DataFrame> = None;
    for f in partition_files(out, table)?.into_values() {
        let df = read_parquet(&f)?;
        match acc.as_mut() {
            None => acc = Some(df),
            Some(a) => {
                a.vstack_mut_owned(df).with_context(|| {
                    format!("{} does not match its table's schema", f.display())
                })?;
            }
        }
    }
    Ok(acc)
}

/// A partitioned table as one lazy scan of its month files, in month order
/// (as this run sees them, without a hive `month` column), or `None` when
/// it has none. Queries on it read only the columns they name.
pub fn scan_table(out: &OutDir, table: &str) -> Result<Option<LazyFrame>> {
    scan_files(partition_files(out, table)?.into_values())
}

/// [`scan_table`] over the months `first..=last` (`YYYY-MM`) only.
pub fn scan_months(
    out: &OutDir,
    table: &str,
    first: &str,
    last: &str,
) -> Result<Option<LazyFrame>> {
    let files = partition_files(out, table)?;
    scan_files(
        files
            .range(first.to_string()..=last.to_string())
            .map(|(_, f)| f.clone()),
    )
}

pub(super) fn scan_files(files: impl Iterator<Item = PathBuf>) -> Result<Option<LazyFrame>> {
    let scans = files.map(|f| scan_file(&f)).collect::<Result<Vec<_>>>()?;
    if scans.is_empty() {
        return Ok(None);
    }
    // Diagonal: a file written before a column was added to its table
    // lacks it (null there).
    let args = UnionArgs {
        diagonal: true,
        ..Default::default()
    };
    Ok(Some(concat(scans, args)?))
}

/// `df` with each column of `like` that it lacks, all null: a lake file
/// written before the column was added to its table.
pub fn with_missing_columns(
    mut df: DataFrame,
    like: &polars::prelude::Schema,
) -> Result<DataFrame> {
    for (name, dtype) in like.iter() {
        if df.column(name).is_err() {
            let nulls = polars::prelude::Column::full_null(name.clone(), df.height(), dtype);
            df.with_column(nulls)?;
        }
    }
    Ok(df)
}

/// One Parquet file as a lazy scan (no hive columns from its path).
pub fn scan_file(path: &Path) -> Result<LazyFrame> {
    let args = ScanArgsParquet {
        hive_options: HiveOptions::new_disabled(),
        ..Default::default()
    };
    Ok(LazyFrame::scan_parquet(
        PlRefPath::try_from_path(path)?,
        args,
    )?)
}

/// The first partition file of `table` that cannot be read whole, with
/// the error; a scan's error does not say which file failed.
pub fn first_unreadable(out: &OutDir, table: &str) -> Option<(PathBuf, anyhow::Error)> {
    let files = partition_files(out, table).ok()?;
    files
        .into_values()
        .find_map(|f| read_parquet(&f).err().map(|e| (f, e)))
}

/// The file of a partitioned table's last (latest) month, if any.
pub fn last_partition(out: &OutDir, table: &str) -> Result<Option<PathBuf>> {
    Ok(partition_files(out, table)?.into_values().next_back())
}

/// Row count of a lake table, from the Parquet footers only.
pub fn count_rows(out: &OutDir, table: &str, partitioned: bool) -> Result<usize> {
    if !partitioned {
        return count_rows_file(&out.read(&out.table_path(table, false)));
    }
    let mut n = 0;
    for f in partition_files(out, table)?.into_values() {
        n += count_rows_file(&f)?;
    }
    Ok(n)
}

/// Row count of one Parquet file (0 if it does not exist).
pub fn count_rows_file(path: &Path) -> Result<usize> {
    if !path.is_file() {
        return Ok(0);
    }
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file)
        .num_rows()
        .with_context(|| format!("cannot read {}", path.display()))
}
