//! The output folder's layout (DESIGN.md section 7) and the only code that
//! writes into it. Every file is written under `OUT/.staging/` first and
//! renamed into place when complete, so a reader never sees half a file and
//! a failed run leaves the previous outputs as they were.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::Digest;

use anyhow::{Context, Result};
use polars::prelude::{
    concat, DataFrame, HiveOptions, LazyFrame, ParquetCompression, ParquetReader, ParquetWriter,
    PlRefPath, ScanArgsParquet, SerReader, StatisticsOptions, UnionArgs,
};

/// Paths inside one output folder. Writers stage files under final paths
/// (see [`Staging`]); readers go through [`OutDir::read`], which sees what
/// the current run has staged, so later stages of a run read what earlier
/// stages made before anything is published.
#[derive(Debug, Clone)]
pub struct OutDir {
    pub root: PathBuf,
    /// (final path, staged path) of what the current run has staged.
    overlay: Arc<Mutex<Vec<(PathBuf, PathBuf)>>>,
}

impl OutDir {
    pub fn new(root: impl Into<PathBuf>) -> OutDir {
        OutDir {
            root: root.into(),
            overlay: Arc::default(),
        }
    }

    /// Where to read `final_path` now: its staged copy if this run staged it
    /// (or a folder holding it), else the published file.
    pub fn read(&self, final_path: &Path) -> PathBuf {
        let overlay = self.overlay.lock().expect("overlay lock");
        overlay
            .iter()
            .rev()
            .find_map(|(f, s)| {
                let rest = final_path.strip_prefix(f).ok()?;
                // `join("")` would add a trailing separator.
                Some(if rest.as_os_str().is_empty() {
                    s.clone()
                } else {
                    s.join(rest)
                })
            })
            .unwrap_or_else(|| final_path.to_path_buf())
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
    /// Results a later run may reuse (see `reuse.rs`); never read by users.
    pub fn raters_cache(&self) -> PathBuf {
        self.root.join("cache").join("raters")
    }
    /// Derived cases a later run may reuse (see `reuse.rs`).
    pub fn cases_cache(&self) -> PathBuf {
        self.root.join("cache").join("cases")
    }
    /// Takes the output folder's lock for a run that writes into it. The
    /// lock is the operating system's file lock on `OUT/.lock`: it is
    /// released when the run ends, however it ends, so a run killed at night
    /// never blocks the next one. The file names the holder for messages.
    pub fn lock(&self, command: &str, progress: &crate::progress::Progress) -> Result<RunLock> {
        fs::create_dir_all(&self.root).with_context(|| {
            format!(
                "cannot create output folder {}: is its parent writable?",
                self.root.display()
            )
        })?;
        let path = self.root.join(".lock");
        let mut file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| {
                format!(
                    "cannot open {}: is the output folder writable?",
                    path.display()
                )
            })?;
        let mut previous = String::new();
        use std::io::{Read, Seek, Write};
        let _ = file.read_to_string(&mut previous);
        let previous = previous.trim().replace('\n', ", ");
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                return Err(crate::Failure::Busy(format!(
                    "another scorecard run is writing to {} ({}); this one stops without touching it",
                    self.root.display(),
                    if previous.is_empty() { "holder unknown".to_string() } else { previous }
                ))
                .into());
            }
            Err(fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        if !previous.is_empty() {
            // The file stays behind after every run; only a run that did not
            // finish leaves its staging folder too.
            if self.staging_root().exists() {
                progress.warn(&format!(
                    "the previous run ({previous}) ended without finishing; its unfinished work is recovered or discarded"
                ));
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        writeln!(
            file,
            "pid {}\ncommand {command}\nstarted {}",
            std::process::id(),
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )?;
        file.sync_all()?;
        Ok(RunLock { _file: file })
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

/// Holds the output folder's lock until dropped.
#[derive(Debug)]
pub struct RunLock {
    _file: fs::File,
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

/// The journal a publication writes before its first rename: if the run
/// dies part-way, the next run completes the publication from it.
const JOURNAL: &str = "journal.tsv";

impl Staging {
    pub fn new(out: &OutDir) -> Result<Staging> {
        let root = out.staging_root();
        if root.exists() {
            recover(out, &root)?;
            remove_tree(&root).with_context(|| format!("cannot clear {}", root.display()))?;
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
        self.out
            .overlay
            .lock()
            .expect("overlay lock")
            .push((final_path.to_path_buf(), staged.clone()));
        staged
    }

    /// A scratch folder for intermediate files of this run: never
    /// published, removed with the staging folder.
    pub fn scratch(&self, name: &str) -> PathBuf {
        self.dir.join("scratch").join(name)
    }

    /// Stages a small file's bytes.
    pub fn write(&mut self, final_path: &Path, bytes: &[u8]) -> Result<()> {
        let staged = self.stage(final_path);
        if let Some(parent) = staged.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::write(&staged, bytes).with_context(|| format!("cannot write {}", staged.display()))
    }

    /// Moves every staged file or folder into place, in the order staged. A
    /// folder replaces the old folder whole. The moves are journalled first,
    /// so a run killed part-way is completed by the next one.
    pub fn publish(mut self) -> Result<()> {
        let moves = std::mem::take(&mut self.moves);
        let rel = |p: &Path| {
            p.strip_prefix(&self.out.root)
                .unwrap_or(p)
                .display()
                .to_string()
        };
        let journal: String = moves
            .iter()
            .map(|(s, t)| format!("{}\t{}\n", rel(s), rel(t)))
            .collect();
        let path = self.dir.join(JOURNAL);
        {
            use std::io::Write;
            let mut f = fs::File::create(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            f.write_all(journal.as_bytes())?;
            f.sync_all()
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        apply(&self.dir, &moves)?;
        self.out.overlay.lock().expect("overlay lock").clear();
        fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        Ok(())
    }
}

/// Carries out journalled moves; a move whose staged side is gone was done.
fn apply(run_dir: &Path, moves: &[(PathBuf, PathBuf)]) -> Result<()> {
    let old_dir = run_dir.join("old");
    for (i, (staged, target)) in moves.iter().enumerate() {
        if !staged.exists() {
            continue;
        }
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        if target.is_dir() {
            let aside = old_dir.join(i.to_string());
            fs::create_dir_all(&old_dir)?;
            fs::rename(target, &aside)
                .with_context(|| format!("cannot move aside {}", target.display()))?;
        }
        fs::rename(staged, target).with_context(|| {
            format!("cannot move {} into {}", staged.display(), target.display())
        })?;
        if i == 0 {
            crate::failpoint("publish");
        }
    }
    Ok(())
}

/// Completes the publication of a run that died after journalling it;
/// staging without a journal held nothing published and is dropped.
fn recover(out: &OutDir, root: &Path) -> Result<()> {
    for entry in fs::read_dir(root)? {
        let run_dir = entry?.path();
        let journal = run_dir.join(JOURNAL);
        if !journal.is_file() {
            continue;
        }
        let text = fs::read_to_string(&journal)
            .with_context(|| format!("cannot read {}", journal.display()))?;
        let moves: Vec<(PathBuf, PathBuf)> = text
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(s, t)| (out.root.join(s), out.root.join(t)))
            .collect();
        apply(&run_dir, &moves)?;
        fs::remove_file(&journal)?;
    }
    Ok(())
}

impl Drop for Staging {
    fn drop(&mut self) {
        if let Ok(mut o) = self.out.overlay.lock() {
            o.clear();
        }
        let _ = remove_tree(&self.dir);
        if let Some(root) = self.dir.parent() {
            let _ = fs::remove_dir(root);
        }
    }
}

/// Removes a folder and everything in it, its files by several threads at
/// once. What a run leaves behind holds the last run's site (about 11 k
/// pages on the standard set): removed one file after another, most of the
/// time went to waiting for the file system, which serves several removals
/// at once (1.5 s against 0.8 s with four at a time).
pub fn remove_tree(root: &Path) -> std::io::Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    const AT_ONCE: usize = 4;
    let (mut folders, mut files) = (vec![root.to_path_buf()], Vec::new());
    let mut i = 0;
    while i < folders.len() {
        for e in fs::read_dir(&folders[i])? {
            let e = e?;
            if e.file_type()?.is_dir() {
                folders.push(e.path());
            } else {
                files.push(e.path());
            }
        }
        i += 1;
    }
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..AT_ONCE.min(files.len()) {
            s.spawn(|| {
                while let Some(f) = files.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let _ = fs::remove_file(f);
                }
            });
        }
    });
    // Deepest first; whatever is left (a file made meanwhile) goes the
    // ordinary way, with its error.
    for f in folders.iter().rev() {
        let _ = fs::remove_dir(f);
    }
    match root.exists() {
        true => fs::remove_dir_all(root),
        false => Ok(()),
    }
}

/// A file or folder name for an id from the data (a department id in a page
/// path): only letters, digits, `-`, `_` and `.` are kept; any other byte is
/// written `~XX` (so distinct ids stay distinct), a leading dot and Windows'
/// reserved names (CON, NUL, COM1, ...) are escaped, and a long id is cut
/// and finished with a hash. The result can never name a parent folder.
pub fn file_name(id: &str) -> String {
    let mut s = String::with_capacity(id.len());
    for (i, b) in id.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            s.push(b as char);
        } else {
            s.push_str(&format!("~{b:02X}"));
        }
    }
    if s.is_empty() {
        s.push('_');
    }
    let stem = s.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        s.insert(0, '_');
    }
    const MAX: usize = 100;
    if s.len() > MAX {
        let hash = crate::policy::hex(&sha2::Sha256::digest(id.as_bytes()));
        s.truncate(80);
        s.push('~');
        s.push_str(&hash[..16]);
    }
    s
}

/// Writes a frame as one Parquet file (zstd, with statistics).
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    write_with(df, path, ParquetCompression::Zstd(None), true, None).map(|_| ())
}

/// A Parquet file that [`write_parquet`] wrote, and its rows as read back.
pub struct Previous<'a> {
    pub path: &'a Path,
    pub rows: &'a DataFrame,
}

/// Writes `df` as [`write_parquet`] does, the same bytes, but takes each
/// row group whose rows `previous` holds unchanged at the same place from
/// that file as it is, compressed, instead of encoding it again: when a
/// frame changes only near its end, most of it is copied. Gives how many
/// row groups were copied. `previous` must have been written by this
/// program with [`write_parquet`] (the caller knows: the case and rater
/// stores' fingerprints cover the program), and its rows must be the
/// file's. A file written otherwise still gives the right rows (they are
/// compared; its codec and Parquet types are checked), but not
/// necessarily the bytes a fresh write gives.
pub fn write_parquet_reusing(
    df: &mut DataFrame,
    path: &Path,
    previous: Option<Previous>,
) -> Result<usize> {
    write_with(df, path, ParquetCompression::Zstd(None), true, previous)
}

/// Writes an intermediate file that this run reads back once and never
/// publishes: LZ4 and no statistics, which write several times faster than
/// zstd with statistics for files somewhat larger.
pub fn write_scratch_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    write_with(df, path, ParquetCompression::Lz4Raw, false, None).map(|_| ())
}

fn write_with(
    df: &mut DataFrame,
    path: &Path,
    compression: ParquetCompression,
    statistics: bool,
    previous: Option<Previous>,
) -> Result<usize> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let previous = previous
        .map(|p| OldGroups::open(p, df, compression))
        .transpose()?
        .flatten();
    let file =
        fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut w = std::io::BufWriter::new(file);
    // Minimum, maximum and null count per column chunk: what engines read
    // to skip row groups. Distinct counts are left out: they cost a hash of
    // every value, and readers do not use them to prune.
    let statistics = if statistics {
        StatisticsOptions::default()
    } else {
        StatisticsOptions::empty()
    };
    let copied = write_row_groups(df, &mut w, compression, statistics, previous.as_ref())
        .with_context(|| format!("cannot write {}", path.display()))?;
    use std::io::Write;
    w.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(copied)
}

/// Rows per row group: polars' own default. A file's groups are cut every
/// this many rows from its top (polars would cut it into equal parts), so
/// that rows added at the end leave the groups before them where they were.
const ROW_GROUP_ROWS: usize = 512 * 512;

/// How many row groups a file of `rows` rows has.
pub fn row_groups(rows: usize) -> usize {
    rows.div_ceil(ROW_GROUP_ROWS)
}

/// The row groups of a file written before, with its bytes and rows.
struct OldGroups<'a> {
    bytes: polars_buffer::Buffer<u8>,
    meta: polars_parquet::parquet::metadata::FileMetadata,
    /// The first row of each group.
    starts: Vec<usize>,
    rows: &'a DataFrame,
}

impl<'a> OldGroups<'a> {
    /// `None` when the file cannot lend any group: its columns are not
    /// `df`'s (as frames or as Parquet types), it is compressed otherwise,
    /// or its rows are not as many as the file holds.
    fn open(
        previous: Previous<'a>,
        df: &DataFrame,
        compression: ParquetCompression,
    ) -> Result<Option<OldGroups<'a>>> {
        use polars::prelude::{CompatLevel, SchemaExt};
        use polars_parquet::parquet::compression::Compression;
        use polars_parquet::write::{to_parquet_schema, CompressionOptions};
        if previous.rows.schema() != df.schema() {
            return Ok(None);
        }
        let bytes = fs::read(previous.path)
            .with_context(|| format!("cannot read {}", previous.path.display()))?;
        let meta = polars_parquet::parquet::read::read_metadata(&mut std::io::Cursor::new(&bytes))
            .with_context(|| format!("cannot read {}", previous.path.display()))?;
        let types = to_parquet_schema(&df.schema().to_arrow(CompatLevel::newest()))?;
        let codec = Compression::from(CompressionOptions::from(compression));
        let same_codec = meta
            .row_groups
            .iter()
            .flat_map(|g| g.parquet_columns())
            .all(|c| c.compression() == codec);
        if meta.schema().fields() != types.fields()
            || !same_codec
            || meta.num_rows != previous.rows.height()
        {
            return Ok(None);
        }
        let starts = meta
            .row_groups
            .iter()
            .scan(0, |next, g| {
                let start = *next;
                *next += g.num_rows();
                Some(start)
            })
            .collect();
        Ok(Some(OldGroups {
            bytes: bytes.into(),
            meta,
            starts,
            rows: previous.rows,
        }))
    }

    /// The pages of the old file's row group that holds exactly `piece`,
    /// the rows from `start` on, if there is one: the same rows at the
    /// same place, floats to the bit.
    fn pages(
        &self,
        start: usize,
        piece: &DataFrame,
    ) -> Result<Option<Vec<Vec<polars_parquet::write::CompressedPage>>>> {
        use polars_parquet::parquet::read::get_page_iterator;
        use polars_parquet::write::CompressedPage;
        let Ok(i) = self.starts.binary_search(&start) else {
            return Ok(None);
        };
        let group = &self.meta.row_groups[i];
        if group.num_rows() != piece.height()
            || !same_rows(&self.rows.slice(start as i64, piece.height()), piece)?
        {
            return Ok(None);
        }
        let mut leaves = Vec::with_capacity(piece.width());
        for chunk in group.parquet_columns() {
            let cursor = std::io::Cursor::new(self.bytes.clone());
            let pages = get_page_iterator(chunk, cursor, Vec::new(), usize::MAX)?
                .map(|page| {
                    let mut page = page?;
                    // A flat column's page holds one value per row, null
                    // or not; the writer needs the count, which reading
                    // leaves out.
                    if let CompressedPage::Data(data) = &mut page {
                        data.num_rows = Some(data.num_values());
                    }
                    Ok(page)
                })
                .collect::<Result<Vec<CompressedPage>>>()?;
            leaves.push(pages);
        }
        Ok(Some(leaves))
    }
}

/// The two frames hold the same values (nulls where the other has nulls),
/// floats compared by their bits: 0.0 and -0.0 are written differently.
fn same_rows(a: &DataFrame, b: &DataFrame) -> Result<bool> {
    use polars::prelude::DataType;
    for (x, y) in a.columns().iter().zip(b.columns()) {
        // Both hold the same group of rows (its height was checked).
        let same = match x.dtype() {
            DataType::Float64 => (x.f64()?.iter())
                .zip(y.f64()?.iter())
                .all(|(a, b)| a.map(f64::to_bits) == b.map(f64::to_bits)),
            DataType::Float32 => (x.f32()?.iter())
                .zip(y.f32()?.iter())
                .all(|(a, b)| a.map(f32::to_bits) == b.map(f32::to_bits)),
            _ => x.equals_missing(y),
        };
        if !same {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Writes `df` as Parquet the way polars' `ParquetWriter` writes each
/// [`ROW_GROUP_ROWS`] rows as a batch (the same pages, options and footer,
/// so the same bytes), but encodes and compresses each row group's columns
/// on every core. polars encodes them lazily as the file is written, on
/// one thread, which made writing a 4-million-row mart take two seconds
/// with a core idle. One row group's pages are held at a time. A group
/// `previous` holds unchanged is copied from it; gives how many were.
fn write_row_groups(
    df: &mut DataFrame,
    w: &mut impl std::io::Write,
    compression: ParquetCompression,
    statistics: StatisticsOptions,
    previous: Option<&OldGroups>,
) -> Result<usize> {
    use polars::prelude::{CompatLevel, SchemaExt};
    use polars_parquet::write::{
        array_to_columns, compress, to_parquet_schema, CompressedPage, CompressionOptions, Version,
        WriteOptions,
    };
    let arrow_schema = df.schema().to_arrow(CompatLevel::newest());
    let types = to_parquet_schema(&arrow_schema)?.fields().to_vec();
    let encodings = polars::io::parquet::write::get_encodings(&arrow_schema);
    let codec: CompressionOptions = compression.into();
    let options = WriteOptions {
        statistics,
        compression: codec,
        version: Version::V1,
        data_page_size: None,
    };
    let mut writer = ParquetWriter::new(w)
        .with_compression(compression)
        .with_statistics(statistics)
        .batched(df.schema())?;
    let mut copied = 0;
    for start in (0..df.height()).step_by(ROW_GROUP_ROWS) {
        let mut piece = df.slice(start as i64, ROW_GROUP_ROWS);
        if let Some(leaves) = previous
            .map(|p| p.pages(start, &piece))
            .transpose()?
            .flatten()
        {
            writer.write_row_group(piece.height() as u64, &leaves)?;
            copied += 1;
            continue;
        }
        piece.rechunk_mut_par();
        for batch in piece.iter_chunks(CompatLevel::newest(), false) {
            let columns = batch.columns();
            // Each column gives one list of pages per leaf (one, for the
            // flat columns the project writes).
            let encoded = crate::on_every_core(columns.len(), |c| {
                let leaves =
                    array_to_columns(&columns[c], types[c].clone(), options, &encodings[c])?;
                leaves
                    .into_iter()
                    .map(|pages| {
                        pages
                            .map(|page| Ok(compress(page?, Vec::new(), codec)?))
                            .collect::<Result<Vec<CompressedPage>>>()
                    })
                    .collect::<Result<Vec<_>>>()
            })?;
            let leaves: Vec<Vec<CompressedPage>> = encoded.into_iter().flatten().collect();
            writer.write_row_group(batch.len() as u64, &leaves)?;
        }
    }
    writer.finish()?;
    Ok(copied)
}

/// The SHA-256 of a file's content, read through a buffer (not held whole).
pub fn file_digest(path: &Path) -> Result<Vec<u8>> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    read_through(path, |bytes| h.update(bytes))?;
    Ok(h.finalize().to_vec())
}

/// A fast 128-bit checksum (XXH3) of a file's content, in hex, read
/// through a buffer: for the caches' record of the files they were made
/// from, which is checked again every run (SHA-256, as the ingest log
/// records inputs, took six times as long over the lake's month files).
pub fn file_checksum(path: &Path) -> Result<String> {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    read_through(path, |bytes| h.update(bytes))?;
    Ok(format!("{:032x}", h.digest128()))
}

/// Hands a file's content to `feed` a buffer at a time.
fn read_through(path: &Path, mut feed: impl FnMut(&[u8])) -> Result<()> {
    use std::io::Read;
    let cannot = || format!("cannot read {}", path.display());
    let mut f = fs::File::open(path).with_context(cannot)?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).with_context(cannot)?;
        if n == 0 {
            return Ok(());
        }
        feed(&buf[..n]);
    }
}

pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file)
        .finish()
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Some columns of a Parquet file.
pub fn read_parquet_columns(path: &Path, columns: &[&str]) -> Result<DataFrame> {
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file)
        .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
        .finish()
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Column names and types of a Parquet file, without reading its rows.
pub fn read_schema(path: &Path) -> Result<Vec<(String, String)>> {
    let file = fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let df = ParquetReader::new(file)
        .with_slice(Some((0, 0)))
        .finish()
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(df
        .schema()
        .iter()
        .map(|(name, dtype)| (name.to_string(), dtype.to_string()))
        .collect())
}

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

fn scan_files(files: impl Iterator<Item = PathBuf>) -> Result<Option<LazyFrame>> {
    let scans = files.map(|f| scan_file(&f)).collect::<Result<Vec<_>>>()?;
    if scans.is_empty() {
        return Ok(None);
    }
    Ok(Some(concat(scans, UnionArgs::default())?))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tree_is_removed_whole_and_a_missing_one_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("old");
        // 3 folders of 40 pages each, one nested folder, an empty folder,
        // and a page at the top.
        for d in ["a", "b", "c/deeper"] {
            fs::create_dir_all(root.join(d)).unwrap();
            for i in 0..40 {
                fs::write(root.join(d).join(format!("{i}.html")), "x").unwrap();
            }
        }
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::write(root.join("index.html"), "x").unwrap();
        fs::write(tmp.path().join("kept.html"), "x").unwrap();
        remove_tree(&root).unwrap();
        assert!(!root.exists());
        // Beside it, nothing is touched.
        assert!(tmp.path().join("kept.html").is_file());
        let err = remove_tree(&root).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    /// A frame of `n` rows of every column type the project writes, with
    /// nulls and repeated texts, in chunks of uneven sizes.
    fn every_type(n: usize) -> DataFrame {
        use crate::frame::Builder;
        let piece = |from: usize, to: usize| {
            Builder::new()
                .str(
                    "id",
                    (from..to).map(|i| (i % 7 != 0).then(|| format!("R{:08}", i * 7919 % n))),
                )
                .str(
                    "dept",
                    (from..to).map(|i| Some(["hr", "it", "legal"][i % 3])),
                )
                .i64("count", (from..to).map(|i| Some((i * 31 % 1000) as i64)))
                .f64(
                    "score",
                    (from..to).map(|i| (i % 11 != 0).then(|| (i % 97) as f64 / 9.0)),
                )
                .bool(
                    "on_time",
                    (from..to).map(|i| (i % 5 != 0).then_some(i % 2 == 0)),
                )
                .ts(
                    "at",
                    (from..to).map(|i| Some(1_700_000_000_000_000 + i as i64 * 1_234_567)),
                )
                .date(
                    "day",
                    (from..to).map(|i| {
                        chrono::NaiveDate::from_num_days_from_ce_opt(738_000 + (i / 900) as i32)
                    }),
                )
                .build()
                .unwrap()
        };
        let cuts = [0, n / 5, (n / 5 + 3).min(n), n];
        let mut df = piece(cuts[0], cuts[1]);
        for w in cuts[1..].windows(2) {
            df.vstack_mut_owned(piece(w[0], w[1])).unwrap();
        }
        df
    }

    /// The bytes polars' own writer gives for `df` written a batch of
    /// [`ROW_GROUP_ROWS`] rows at a time, each in one piece (polars writes
    /// a row group per piece).
    fn polars_bytes(
        df: &DataFrame,
        compression: ParquetCompression,
        statistics: StatisticsOptions,
    ) -> Vec<u8> {
        let mut expected = Vec::new();
        let mut writer = ParquetWriter::new(&mut expected)
            .with_compression(compression)
            .with_statistics(statistics)
            .batched(df.schema())
            .unwrap();
        for start in (0..df.height()).step_by(ROW_GROUP_ROWS) {
            let mut batch = df.slice(start as i64, ROW_GROUP_ROWS);
            batch.rechunk_mut();
            writer.write_batch(&batch).unwrap();
        }
        writer.finish().unwrap();
        expected
    }

    fn row_groups(path: &Path) -> Vec<usize> {
        ParquetReader::new(fs::File::open(path).unwrap())
            .get_metadata()
            .unwrap()
            .row_groups
            .iter()
            .map(|g| g.num_rows())
            .collect()
    }

    #[test]
    fn a_file_encoded_on_every_core_has_the_bytes_polars_writes() {
        let dir = tempfile::tempdir().unwrap();
        // 600,000 rows in three chunks of uneven sizes, which are cut into
        // row groups every 262,144 rows; and a frame with no rows.
        for (n, groups) in [(600_000, vec![262_144, 262_144, 75_712]), (0, vec![])] {
            for (compression, statistics, write) in [
                (
                    ParquetCompression::Zstd(None),
                    StatisticsOptions::default(),
                    write_parquet as fn(&mut DataFrame, &Path) -> Result<()>,
                ),
                (
                    ParquetCompression::Lz4Raw,
                    StatisticsOptions::empty(),
                    write_scratch_parquet,
                ),
            ] {
                let mut df = every_type(n);
                let expected = polars_bytes(&df, compression, statistics);
                let path = dir.path().join("t.parquet");
                write(&mut df, &path).unwrap();
                let written = fs::read(&path).unwrap();
                assert!(
                    written == expected,
                    "{n} rows, {compression:?}: the bytes differ"
                );
                let back = read_parquet(&path).unwrap();
                assert!(back.equals_missing(&df), "{n} rows read back differ");
                assert_eq!(row_groups(&path), groups);
            }
        }
    }

    #[test]
    fn unchanged_row_groups_are_copied_and_the_bytes_are_a_fresh_write() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new, fresh) = (
            dir.path().join("old.parquet"),
            dir.path().join("new.parquet"),
            dir.path().join("fresh.parquet"),
        );
        let base = every_type(600_000);
        write_parquet(&mut base.clone(), &old).unwrap();
        let kept = read_parquet(&old).unwrap();
        // `score` holds the given float at `row`.
        let with_score = |df: &DataFrame, row: usize, v: f64| {
            let scores: Vec<Option<f64>> = df
                .column("score")
                .unwrap()
                .f64()
                .unwrap()
                .iter()
                .enumerate()
                .map(|(i, s)| if i == row { Some(v) } else { s })
                .collect();
            let mut df = df.clone();
            df.with_column(polars::prelude::Column::new("score".into(), scores))
                .unwrap();
            df
        };
        // Row 11 has no score; row 97 scores 0.0.
        let mut appended = base.clone();
        appended.vstack_mut_owned(every_type(1_000)).unwrap();
        let cases: [(&str, DataFrame, usize); 6] = [
            ("the same rows", base.clone(), 3),
            // The third group grows: the two before it are where they were.
            ("rows added at the end", appended, 2),
            (
                "a value changed in the first group",
                with_score(&base, 11, 4.0),
                2,
            ),
            (
                "a value changed in the last group",
                with_score(&base, 599_999, 4.0),
                2,
            ),
            // 0.0 and -0.0 are equal as numbers but written differently.
            ("0.0 made -0.0", with_score(&base, 97, -0.0), 2),
            // One row fewer at the top moves every group's rows.
            ("the first row removed", base.slice(1, 600_000), 0),
        ];
        for (what, df, expected_copies) in cases {
            let previous = Previous {
                path: &old,
                rows: &kept,
            };
            let copied = write_parquet_reusing(&mut df.clone(), &new, Some(previous)).unwrap();
            assert_eq!(copied, expected_copies, "{what}: groups copied");
            write_parquet(&mut df.clone(), &fresh).unwrap();
            assert!(
                fs::read(&new).unwrap() == fs::read(&fresh).unwrap(),
                "{what}: not the bytes of a fresh write"
            );
            assert!(read_parquet(&new).unwrap().equals_missing(&df), "{what}");
        }
        // The same rows compressed otherwise: nothing copied (the pages
        // would not be the codec the file declares).
        let lz4 = dir.path().join("lz4.parquet");
        write_scratch_parquet(&mut base.clone(), &lz4).unwrap();
        let previous = Previous {
            path: &lz4,
            rows: &kept,
        };
        let copied = write_parquet_reusing(&mut base.clone(), &new, Some(previous)).unwrap();
        assert_eq!(copied, 0);
        // Rows that are not the file's, or other columns: nothing copied.
        let other = base.select(["id", "dept"]).unwrap();
        let previous = Previous {
            path: &old,
            rows: &other,
        };
        let copied = write_parquet_reusing(&mut other.clone(), &new, Some(previous)).unwrap();
        assert_eq!(copied, 0);
    }

    #[test]
    fn file_checksums_and_digests_are_of_the_content() {
        // Expected values from the reference implementation (the `xxhash`
        // package for Python: xxh3_128_hexdigest). 512,000 bytes take two
        // reads and part of a third.
        let dir = tempfile::tempdir().unwrap();
        let long: Vec<u8> = (0..2000).flat_map(|_| 0..=255u8).collect();
        for (content, expected) in [
            (&b""[..], "99aa06d3014798d86001c324468d497f"),
            (b"abc", "06b05ab6733a618578af5f94892f3950"),
            (&long, "7467d0a77655fc0e5d90bc7b3dfdf1cb"),
        ] {
            let path = dir.path().join("f");
            fs::write(&path, content).unwrap();
            assert_eq!(file_checksum(&path).unwrap(), expected);
        }
        // FIPS 180-2's example: SHA-256("abc").
        fs::write(dir.path().join("abc"), "abc").unwrap();
        assert_eq!(
            crate::policy::hex(&file_digest(&dir.path().join("abc")).unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let missing = file_checksum(&dir.path().join("missing")).unwrap_err();
        assert!(
            format!("{missing:#}").contains("cannot read"),
            "{missing:#}"
        );
    }

    #[test]
    fn ids_become_safe_file_names() {
        assert_eq!(file_name("hr"), "hr");
        assert_eq!(file_name("dept-01_a.b"), "dept-01_a.b");
        // No separators, no parent folders.
        assert_eq!(file_name("../../x"), "~2E.~2F..~2Fx");
        assert_eq!(file_name("a/b\\c"), "a~2Fb~5Cc");
        assert_eq!(file_name(".."), "~2E.");
        // Windows' reserved names.
        assert_eq!(file_name("CON"), "_CON");
        assert_eq!(file_name("com1.txt"), "_com1.txt");
        assert_eq!(file_name("COM"), "COM");
        // Non-ASCII is kept distinct, byte by byte.
        assert_eq!(file_name("人"), "~E4~BA~BA");
        assert_eq!(file_name(""), "_");
        // 300 characters: cut to 80 plus a hash, and two long ids that
        // share their first 80 characters stay distinct.
        let a = "x".repeat(300);
        let b = format!("{}y", "x".repeat(299));
        assert_eq!(file_name(&a).len(), 97);
        assert_ne!(file_name(&a), file_name(&b));
    }
}
