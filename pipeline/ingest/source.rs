//! Finding input files and handing on their records: one text value per
//! contract column, with the line it came from and its raw text, borrowed
//! from the file's text (nothing is allocated per valid record).
//!
//! CSV and JSON Lines are parsed here rather than by polars so that one bad
//! line becomes one reject with its line number instead of failing the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;

use super::tables::TableSpec;
use super::Reason;
use crate::policy::Encoding;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Format {
    Csv,
    Jsonl,
    Parquet,
}

impl Format {
    pub fn from_path(p: &Path) -> Option<Format> {
        let ext = p.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(Format::Csv),
            "jsonl" | "ndjson" => Some(Format::Jsonl),
            "parquet" => Some(Format::Parquet),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
        }
    }
}

/// One input file of one table.
#[derive(Debug, Clone)]
pub struct InputFile {
    pub table: &'static TableSpec,
    pub path: PathBuf,
    /// Path relative to the input folder, with `/` separators: the name used
    /// in rejects, the lake's `source_file` and the ingest log.
    pub rel: String,
    pub format: Format,
}

/// Lists the input files per table (docs/contract.md#inputs): `NAME.ext` or a
/// folder `NAME/` of such files, searched recursively, in name order.
/// Returns the files and the names of entries that were not recognised.
pub fn discover(input: &Path) -> std::io::Result<(Vec<InputFile>, Vec<String>)> {
    let mut files = Vec::new();
    let mut ignored = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(input)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name == "policy.toml" {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            match super::tables::by_name(&name) {
                Some(table) => {
                    let mut found = Vec::new();
                    walk(&path, &mut found)?;
                    found.sort();
                    for p in found {
                        match Format::from_path(&p) {
                            Some(format) => files.push(InputFile {
                                table,
                                rel: relative(input, &p),
                                path: p,
                                format,
                            }),
                            None if looks_like_data(&p) => ignored.push(relative(input, &p)),
                            None => {}
                        }
                    }
                }
                None => ignored.push(format!("{name}/")),
            }
        } else {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            match (super::tables::by_name(stem), Format::from_path(&path)) {
                (Some(table), Some(format)) => files.push(InputFile {
                    table,
                    rel: relative(input, &path),
                    path,
                    format,
                }),
                // Notes beside the data (README.md, ...) are not data.
                _ if !looks_like_data(&path) => {}
                _ => ignored.push(name),
            }
        }
    }
    Ok((files, ignored))
}

/// Files a user may have meant as input: warned about when not recognised.
fn looks_like_data(p: &Path) -> bool {
    let ext = p
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        ext.as_str(),
        "csv" | "jsonl" | "ndjson" | "json" | "parquet" | "tsv" | "xlsx" | "xls" | "gz" | "zip"
    )
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let p = entry.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

fn relative(base: &Path, p: &Path) -> String {
    let rel = p.strip_prefix(base).unwrap_or(p);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// What a reader hands on, record by record.
pub enum Read<'a> {
    /// A record: the text of each contract column (`None` = absent or
    /// empty, else trimmed), with its 1-based line (CSV: where the record
    /// starts; Parquet: the row number) and its raw text.
    Record {
        line: u64,
        fields: &'a [Option<&'a str>],
        raw: &'a str,
    },
    /// A record that could not be split into fields.
    Reject(ReadReject),
}

/// A problem with one record found while reading, before typed validation.
#[derive(Debug, Clone)]
pub struct ReadReject {
    pub line: u64,
    pub column: Option<String>,
    pub reason: Reason,
    pub message: String,
    pub raw: String,
}

/// How CSV files are split into records. Both give the same records,
/// lines and raw text (`tests/it/fuzz.rs` checks it on every fuzz case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CsvReader {
    /// csv-core over the whole file: no allocation per record or field.
    #[default]
    Fast,
    /// The `csv` crate's record reader, a field at a time: the reference.
    Exact,
}

/// The most columns a table has (each record's fields are kept on the
/// stack).
pub const MAX_COLUMNS: usize = 16;

/// A problem that makes a whole file unusable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{file}: {message}")]
pub struct FileError {
    pub file: String,
    pub message: String,
}

/// Reads one file, given its bytes, handing each record to `each`; returns
/// the encoding read (`utf-8`, `utf-8-bom`, `gb18030` or `parquet`). After
/// an error the records already handed on are to be dropped.
pub fn read(
    file: &InputFile,
    bytes: &[u8],
    encoding: Encoding,
    csv: CsvReader,
    each: &mut dyn FnMut(Read<'_>),
) -> Result<&'static str, FileError> {
    let fail = |message: String| FileError {
        file: file.rel.clone(),
        message,
    };
    match file.format {
        Format::Parquet => read_parquet(file.table, bytes, each)
            .map(|()| "parquet")
            .map_err(fail),
        Format::Csv | Format::Jsonl => {
            let (text, enc) = decode(bytes, encoding).map_err(fail)?;
            match (file.format, csv) {
                (Format::Csv, CsvReader::Fast) => read_csv(file.table, &text, each),
                (Format::Csv, CsvReader::Exact) => read_csv_exact(file.table, &text, each),
                _ => read_jsonl(file.table, &text, each),
            }
            .map_err(fail)?;
            Ok(enc)
        }
    }
}

/// Decodes text strictly. `Auto` takes UTF-8 when every byte is valid UTF-8,
/// else GB18030 (a superset of GBK and GB2312). A file that is mostly valid
/// UTF-8 with a few broken bytes is a damaged UTF-8 file, not GB18030: it
/// fails with the line of the first bad byte rather than being garbled.
pub fn decode(
    bytes: &[u8],
    encoding: Encoding,
) -> Result<(std::borrow::Cow<'_, str>, &'static str), String> {
    let (bytes, had_bom) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    let utf8_label = if had_bom { "utf-8-bom" } else { "utf-8" };
    let utf8 = std::str::from_utf8(bytes);
    match utf8 {
        Ok(s) if encoding != Encoding::Gb18030 => return Ok((s.into(), utf8_label)),
        Err(e) if encoding == Encoding::Utf8 || had_bom => {
            return Err(bad_utf8_message(bytes, e.valid_up_to()));
        }
        Err(e) if encoding == Encoding::Auto => {
            // Count multi-byte UTF-8 characters against invalid sequences.
            let mut multibyte = 0usize;
            let mut invalid = 0usize;
            for chunk in bytes.utf8_chunks() {
                multibyte += chunk.valid().chars().filter(|c| c.len_utf8() > 1).count();
                if !chunk.invalid().is_empty() {
                    invalid += 1;
                }
            }
            // GB18030 text only rarely forms valid multi-byte UTF-8 by
            // chance, and then among many invalid sequences.
            if multibyte > 0 && multibyte >= invalid {
                return Err(bad_utf8_message(bytes, e.valid_up_to()));
            }
        }
        _ => {}
    }
    match encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes) {
        Some(s) => Ok((s.into_owned().into(), "gb18030")),
        None => {
            let at = utf8.err().map_or(0, |e| e.valid_up_to());
            let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
            Err(format!(
                "the file is neither valid UTF-8 (first bad byte on line {line}) nor valid GB18030/GBK text; re-export it as UTF-8"
            ))
        }
    }
}

fn bad_utf8_message(bytes: &[u8], at: usize) -> String {
    let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
    format!(
        "line {line}: invalid UTF-8 at byte {at}; the file looks like UTF-8 with damaged bytes. Fix the export, or set ingest.encoding = \"gb18030\" in the policy if it really is GB18030"
    )
}

/// Maps a header to contract columns; fails naming missing required columns.
fn map_header(table: &TableSpec, header: &[String]) -> Result<Vec<Option<usize>>, String> {
    let mut seen = BTreeMap::new();
    for (i, h) in header.iter().enumerate() {
        if let Some(prev) = seen.insert(h.as_str(), i) {
            return Err(format!(
                "column `{h}` appears twice in the header (positions {} and {})",
                prev + 1,
                i + 1
            ));
        }
    }
    let missing: Vec<&str> = table.required().filter(|c| !seen.contains_key(c)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "missing required column{} {} for table `{}`; the file has columns: {}",
            if missing.len() == 1 { "" } else { "s" },
            missing
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", "),
            table.name,
            if header.is_empty() {
                "(none)".to_string()
            } else {
                header.join(", ")
            }
        ));
    }
    Ok(table
        .columns
        .iter()
        .map(|c| seen.get(c.name).copied())
        .collect())
}

/// A field's text as validation sees it: trimmed, `None` when empty.
fn clean(v: &str) -> Option<&str> {
    // Most fields start and end with a visible ASCII character, and trimming
    // would not change them.
    let b = v.as_bytes();
    if let (Some(first), Some(last)) = (b.first(), b.last()) {
        if first.is_ascii_graphic() && last.is_ascii_graphic() {
            return Some(v);
        }
    }
    let t = v.trim();
    (!t.is_empty()).then_some(t)
}

fn header_of(fields: impl Iterator<Item = String>) -> Result<Vec<String>, String> {
    let header: Vec<String> = fields.map(|h| h.trim().to_lowercase()).collect();
    if header.iter().all(|h| h.is_empty()) {
        return Err("the file is empty: a CSV file needs a header line".into());
    }
    Ok(header)
}

/// Hands on one CSV record: skipped when blank, a reject when its field
/// count is not the header's, else its contract columns.
fn csv_record<'a>(
    header_len: usize,
    map: &[Option<usize>],
    line: u64,
    raw: &str,
    n: usize,
    field: impl Fn(usize) -> &'a str,
    each: &mut dyn FnMut(Read<'_>),
) {
    let raw = raw.trim_end_matches(['\r', '\n']);
    if n == 1 && field(0).trim().is_empty() {
        return; // a blank line
    }
    if n != header_len {
        each(Read::Reject(ReadReject {
            line,
            column: None,
            reason: Reason::RaggedRow,
            message: format!("expected {header_len} fields as in the header, found {n}"),
            raw: raw.to_string(),
        }));
        return;
    }
    let mut fields = [None; MAX_COLUMNS];
    for (f, m) in fields.iter_mut().zip(map) {
        *f = m.and_then(|i| clean(field(i)));
    }
    each(Read::Record {
        line,
        fields: &fields[..map.len()],
        raw,
    });
}

/// Reads CSV with csv-core over the whole text (the `csv` crate's parser,
/// with its defaults), each record's fields unescaped into one reused
/// buffer. A record's line and start are where the reader stood before it,
/// as the `csv` crate reports them.
fn read_csv(table: &TableSpec, text: &str, each: &mut dyn FnMut(Read<'_>)) -> Result<(), String> {
    let bytes = text.as_bytes();
    let mut rdr = csv_core::Reader::new();
    let (mut out, mut ends) = (vec![0u8; 1 << 12], vec![0usize; 64]);
    let mut pos = 0usize;
    // The next record: (line, start, field count), its fields in
    // `out[ends[i - 1]..ends[i]]`.
    let mut next = |out: &mut Vec<u8>, ends: &mut Vec<usize>, pos: &mut usize| {
        let (line, start) = (rdr.line(), *pos);
        let (mut n_out, mut n_ends) = (0, 0);
        loop {
            let (res, n_in, o, e) =
                rdr.read_record(&bytes[*pos..], &mut out[n_out..], &mut ends[n_ends..]);
            *pos += n_in;
            n_out += o;
            n_ends += e;
            match res {
                csv_core::ReadRecordResult::InputEmpty => {}
                csv_core::ReadRecordResult::OutputFull => out.resize(out.len() * 2, 0),
                csv_core::ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                csv_core::ReadRecordResult::Record => return Some((line, start, n_ends)),
                csv_core::ReadRecordResult::End => return None,
            }
        }
    };
    let header = match next(&mut out, &mut ends, &mut pos) {
        Some((_, _, n)) => header_of((0..n).map(|i| field_text(&out, &ends, i).to_string()))?,
        None => header_of(std::iter::empty())?,
    };
    let map = map_header(table, &header)?;
    while let Some((line, start, n)) = next(&mut out, &mut ends, &mut pos) {
        // A record's raw text runs to the next record's start: here, or to
        // the end when only line breaks follow.
        let rest = &text[pos..];
        let end = if rest.bytes().all(|b| b == b'\r' || b == b'\n') {
            text.len()
        } else {
            pos
        };
        let (out, ends) = (&out, &ends);
        let text_of = |i: usize| field_text(out, ends, i);
        csv_record(
            header.len(),
            &map,
            line,
            &text[start..end],
            n,
            text_of,
            each,
        );
    }
    Ok(())
}

/// Field `i` of a record csv-core read into `out` and `ends`. Fields of
/// text split at ASCII bytes, with ASCII quotes taken out, are UTF-8.
fn field_text<'a>(out: &'a [u8], ends: &[usize], i: usize) -> &'a str {
    let from = if i == 0 { 0 } else { ends[i - 1] };
    std::str::from_utf8(&out[from..ends[i]])
        .expect("fields of UTF-8 text split at ASCII bytes are UTF-8")
}

/// [`read_csv`] with the `csv` crate's record reader: the reference the
/// fast reader is checked against.
fn read_csv_exact(
    table: &TableSpec,
    text: &str,
    each: &mut dyn FnMut(Read<'_>),
) -> Result<(), String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header = header_of(
        rdr.headers()
            .map_err(|e| format!("cannot read the header: {e}"))?
            .iter()
            .map(String::from),
    )?;
    let map = map_header(table, &header)?;
    let mut record = csv::StringRecord::new();
    let mut held: Option<(u64, usize, csv::StringRecord)> = None;
    // A record's raw line runs to the next record's start, so each record
    // is handed on when the next one has been read.
    let mut hand_on = |held: Option<(u64, usize, csv::StringRecord)>, end: usize| {
        if let Some((line, start, rec)) = held {
            let field = |i: usize| rec.get(i).unwrap_or("");
            csv_record(
                header.len(),
                &map,
                line,
                &text[start..end],
                rec.len(),
                field,
                each,
            );
        }
    };
    loop {
        let pos_before = rdr.position().clone();
        match rdr.read_record(&mut record) {
            Ok(true) => {
                let start = record.position().map_or(0, |p| p.byte() as usize);
                let line = record.position().map_or(pos_before.line(), |p| p.line());
                hand_on(held.take(), start);
                held = Some((line, start, record.clone()));
            }
            Ok(false) => break,
            // Only I/O or UTF-8 fail here, neither possible on a string.
            Err(e) => return Err(format!("line {}: {e}", pos_before.line())),
        }
    }
    hand_on(held, text.len());
    Ok(())
}

fn read_jsonl(table: &TableSpec, text: &str, each: &mut dyn FnMut(Read<'_>)) -> Result<(), String> {
    let mut keys_seen = std::collections::BTreeSet::new();
    let mut any = false;
    for (i, line_text) in text.lines().enumerate() {
        let line = i as u64 + 1;
        let raw = line_text.trim_end_matches('\r');
        if raw.trim().is_empty() {
            continue;
        }
        any = true;
        let reject = |column: Option<&str>, reason, message: String| {
            Read::Reject(ReadReject {
                line,
                column: column.map(String::from),
                reason,
                message,
                raw: raw.to_string(),
            })
        };
        let value: serde_json::Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => {
                each(reject(
                    None,
                    Reason::BadJson,
                    format!("not valid JSON: {e}"),
                ));
                continue;
            }
        };
        let Some(obj) = value.as_object() else {
            each(reject(
                None,
                Reason::BadJson,
                "expected a JSON object on each line".into(),
            ));
            continue;
        };
        keys_seen.extend(obj.keys().cloned());
        let mut texts: Vec<Option<String>> = Vec::with_capacity(table.columns.len());
        let mut bad = None;
        for col in table.columns {
            texts.push(match obj.get(col.name) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => Some(s.clone()),
                Some(serde_json::Value::Bool(b)) => Some(b.to_string()),
                Some(serde_json::Value::Number(n)) => Some(n.to_string()),
                Some(_) => {
                    bad = Some(col.name);
                    None
                }
            });
        }
        if let Some(col) = bad {
            each(reject(
                Some(col),
                Reason::NotScalar,
                "expected a string, number or boolean, found an array or object".into(),
            ));
            continue;
        }
        let fields: Vec<Option<&str>> =
            texts.iter().map(|t| t.as_deref().and_then(clean)).collect();
        each(Read::Record {
            line,
            fields: &fields,
            raw,
        });
    }
    // A required key that no record has is a missing column, as in CSV.
    if any {
        let header: Vec<String> = keys_seen.iter().cloned().collect();
        if table.required().any(|c| !keys_seen.contains(c)) {
            map_header(table, &header)?;
        }
    }
    Ok(())
}

fn read_parquet(
    table: &TableSpec,
    bytes: &[u8],
    each: &mut dyn FnMut(Read<'_>),
) -> Result<(), String> {
    // polars' Parquet decoder can panic on damaged pages (found by fuzzing):
    // a damaged export is refused as a file, never a crash.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        read_parquet_inner(table, bytes, each)
    }))
    .unwrap_or_else(|_| {
        Err("not a readable Parquet file: its data pages are damaged; re-export it".into())
    })
}

fn read_parquet_inner(
    table: &TableSpec,
    bytes: &[u8],
    each: &mut dyn FnMut(Read<'_>),
) -> Result<(), String> {
    let df = ParquetReader::new(std::io::Cursor::new(bytes))
        .finish()
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let header: Vec<String> = df
        .get_column_names()
        .iter()
        .map(|s| s.trim().to_lowercase())
        .collect();
    let map = map_header(table, &header)?;
    let mut columns: Vec<Option<Vec<Option<String>>>> = Vec::new();
    for m in &map {
        columns.push(match m {
            Some(i) => Some(
                column_as_text(&df.columns()[*i])
                    .map_err(|e| format!("column `{}` cannot be read as text: {e}", header[*i]))?,
            ),
            None => None,
        });
    }
    for row in 0..df.height() {
        let fields: Vec<Option<&str>> = columns
            .iter()
            .map(|c| c.as_ref().and_then(|v| v[row].as_deref()).and_then(clean))
            .collect();
        let raw = table
            .columns
            .iter()
            .zip(&fields)
            .filter_map(|(c, v)| v.map(|v| format!("{}={v}", c.name)))
            .collect::<Vec<_>>()
            .join(", ");
        each(Read::Record {
            line: row as u64 + 1,
            fields: &fields,
            raw: &raw,
        });
    }
    Ok(())
}

/// A Parquet column as text. Timestamps are written as RFC 3339 (UTC when
/// the column has a time zone, local time otherwise) so they go through the
/// same validation as CSV text.
fn column_as_text(col: &Column) -> PolarsResult<Vec<Option<String>>> {
    let s = col.as_materialized_series();
    match s.dtype() {
        DataType::Datetime(unit, tz) => {
            let ca = s.datetime()?;
            let to_us = |v: i64| match unit {
                TimeUnit::Nanoseconds => v / 1000,
                TimeUnit::Microseconds => v,
                TimeUnit::Milliseconds => v * 1000,
            };
            Ok(ca
                .physical()
                .iter()
                .map(|v| {
                    v.and_then(|v| chrono::DateTime::from_timestamp_micros(to_us(v)))
                        .map(|dt| match tz {
                            Some(_) => dt.format("%Y-%m-%dT%H:%M:%S%.fZ").to_string(),
                            None => dt.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string(),
                        })
                })
                .collect())
        }
        DataType::Date => {
            let ca = s.date()?;
            Ok(ca
                .physical()
                .iter()
                .map(|v| v.map(|d| crate::time::date_from_days(d).to_string()))
                .collect())
        }
        _ => {
            let t = s.cast(&DataType::String)?;
            Ok(t.str()?.iter().map(|v| v.map(str::to_string)).collect())
        }
    }
}
