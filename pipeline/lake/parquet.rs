//! Parquet files: written with the lake's row groups (copying the groups a
//! kept file already holds), read whole, by columns or as a schema, and
//! checksummed.

use super::*;

/// Writes a frame as one Parquet file (zstd, with statistics).
pub fn write_parquet(df: &mut DataFrame, path: &Path) -> Result<()> {
    write_with(df, path, None).map(|_| ())
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
    write_with(df, path, previous)
}

fn write_with(df: &mut DataFrame, path: &Path, previous: Option<Previous>) -> Result<usize> {
    let compression = ParquetCompression::Zstd(None);
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
    // to skip row groups (no distinct counts: readers do not prune by them).
    let statistics = StatisticsOptions::default();
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
pub(super) const ROW_GROUP_ROWS: usize = 512 * 512;

/// How many row groups a file of `rows` rows has.
pub fn row_groups(rows: usize) -> usize {
    rows.div_ceil(ROW_GROUP_ROWS)
}

/// The row groups of a file written before, with its bytes and rows.
pub(super) struct OldGroups<'a> {
    pub(super) bytes: polars_buffer::Buffer<u8>,
    pub(super) meta: polars_parquet::parquet::metadata::FileMetadata,
    /// The first row of each group.
    pub(super) starts: Vec<usize>,
    pub(super) rows: &'a DataFrame,
}

impl<'a> OldGroups<'a> {
    /// `None` when the file cannot lend any group: its columns are not
    /// `df`'s (as frames or as Parquet types), it is compressed otherwise,
    /// or its rows are not as many as the file holds.
    pub(super) fn open(
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
    pub(super) fn pages(
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
pub(super) fn same_rows(a: &DataFrame, b: &DataFrame) -> Result<bool> {
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
pub(super) fn write_row_groups(
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
            let encoded = crate::runtime::on_every_core(columns.len(), |c| {
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
pub(super) fn read_through(path: &Path, mut feed: impl FnMut(&[u8])) -> Result<()> {
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
