//! The output folder's layout (DESIGN.md section 7) and the only code that
//! writes into it. Every file is written under `OUT/.staging/` first and
//! renamed into place when complete, so a reader never sees half a file and
//! a failed run leaves the previous outputs as they were.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use polars::prelude::{
    DataFrame, ParquetCompression, ParquetReader, ParquetWriter, SerReader, StatisticsOptions,
};

/// Paths inside one output folder.
#[derive(Debug, Clone)]
pub struct OutDir {
    pub root: PathBuf,
}

impl OutDir {
    pub fn new(root: impl Into<PathBuf>) -> OutDir {
        OutDir { root: root.into() }
    }
    pub fn lake(&self) -> PathBuf {
        self.root.join("lake")
    }
    /// Folder of a partitioned table, or the file of an unpartitioned one.
    pub fn table_path(&self, table: &str, partitioned: bool) -> PathBuf {
        if partitioned {
            self.lake().join(table)
        } else {
            self.lake().join(format!("{table}.parquet"))
        }
    }
    pub fn ingest_log(&self) -> PathBuf {
        self.lake().join("_ingest_log.parquet")
    }
    pub fn rejects(&self) -> PathBuf {
        self.root.join("rejects").join("rejects.parquet")
    }
    pub fn marts(&self) -> PathBuf {
        self.root.join("marts")
    }
    pub fn site(&self) -> PathBuf {
        self.root.join("site")
    }
    pub fn policy(&self) -> PathBuf {
        self.root.join("policy.toml")
    }
    pub fn manifest(&self) -> PathBuf {
        self.root.join("run.json")
    }
    /// Fails with a usage error unless the folder holds a lake.
    pub fn require_lake(&self) -> std::result::Result<(), crate::Failure> {
        if self.lake().is_dir() {
            Ok(())
        } else {
            Err(crate::Failure::Usage(format!(
                "{} has no lake/: run `scorecard ingest` or `scorecard run` first",
                self.root.display()
            )))
        }
    }
    fn staging_root(&self) -> PathBuf {
        self.root.join(".staging")
    }
}

/// A private folder inside `OUT/` where a run builds what it will publish.
/// Being on the same file system as the targets makes the final renames
/// atomic. Dropped without [`Staging::publish`], it is removed and nothing
/// published changes.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    out: OutDir,
    /// (staged path, final path), in publication order.
    moves: Vec<(PathBuf, PathBuf)>,
}

impl Staging {
    pub fn new(out: &OutDir) -> Result<Staging> {
        let root = out.staging_root();
        // Leftovers of a killed run hold nothing published: clear them.
        if root.exists() {
            fs::remove_dir_all(&root)
                .with_context(|| format!("cannot clear {}", root.display()))?;
        }
        let dir = root.join(format!("run-{}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| {
            format!(
                "cannot create {}: is the output folder writable?",
                dir.display()
            )
        })?;
        Ok(Staging {
            dir,
            out: out.clone(),
            moves: Vec::new(),
        })
    }

    /// A staged path mirroring `final_path`; registered for publication.
    pub fn stage(&mut self, final_path: &Path) -> PathBuf {
        let rel = final_path
            .strip_prefix(&self.out.root)
            .unwrap_or(final_path);
        let staged = self.dir.join("new").join(rel);
        self.moves.push((staged.clone(), final_path.to_path_buf()));
        staged
    }

    /// Moves every staged file or folder into place, in the order staged. A
    /// folder replaces the old folder whole (old contents are removed).
    pub fn publish(mut self) -> Result<()> {
        let old_dir = self.dir.join("old");
        for (i, (staged, target)) in std::mem::take(&mut self.moves).into_iter().enumerate() {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            if target.is_dir() {
                let aside = old_dir.join(i.to_string());
                fs::create_dir_all(&old_dir)?;
                fs::rename(&target, &aside)
                    .with_context(|| format!("cannot move aside {}", target.display()))?;
            }
            fs::rename(&staged, &target).with_context(|| {
                format!("cannot move {} into {}", staged.display(), target.display())
            })?;
        }
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
        if let Some(root) = self.dir.parent() {
            let _ = fs::remove_dir(root);
        }
    }
}

/// Writes a frame as one Parquet file (zstd, with statistics).
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let file =
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    ParquetWriter::new(&mut w)
        .with_compression(ParquetCompression::Zstd(None))
        .with_statistics(StatisticsOptions::full())
        .finish(df)
        .with_context(|| format!("cannot write {}", path.display()))?;
    use std::io::Write;
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a lake table whole (every partition), or `None` if it is absent.
pub fn read_table(out: &OutDir, table: &str, partitioned: bool) -> Result<Option<DataFrame>> {
    let path = out.table_path(table, partitioned);
    if !partitioned {
        return if path.is_file() {
            read_parquet(&path).map(Some)
        } else {
            Ok(None)
        };
    }
    if !path.is_dir() {
        return Ok(None);
    }
    let mut files = Vec::new();
    for part in fs::read_dir(&path)? {
        let part = part?.path();
        if part.is_dir() {
            for f in fs::read_dir(&part)? {
                let f = f?.path();
                if f.extension().is_some_and(|e| e == "parquet") {
                    files.push(f);
                }
            }
        }
    }
    files.sort();
    let mut acc: Option<DataFrame> = None;
    for f in files {
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

/// Row count of a lake table, from the Parquet footers only.
pub fn count_rows(out: &OutDir, table: &str, partitioned: bool) -> Result<usize> {
    let path = out.table_path(table, partitioned);
    if !partitioned {
        return count_rows_file(&path);
    }
    let mut n = 0;
    if path.is_dir() {
        for part in fs::read_dir(&path)? {
            let part = part?.path();
            if part.is_dir() {
                for f in fs::read_dir(&part)? {
                    let f = f?.path();
                    if f.extension().is_some_and(|e| e == "parquet") {
                        n += count_rows_file(&f)?;
                    }
                }
            }
        }
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
