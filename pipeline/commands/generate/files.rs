//! Writing the generated records as export files: one per day or month,
//! CSV (UTF-8, BOM or GB18030), JSON Lines or Parquet, each written once its
//! last day is complete.

use super::*;

/// Writes the day or month files of the high-volume tables.
pub(super) struct Writers {
    pub(super) out: PathBuf,
    pub(super) format: String,
    pub(super) split: String,
    /// Records whose file is not written yet: (table, YYYY-MM-DD, or
    /// YYYY-MM split by month) -> records. A file is written once every
    /// day it covers has been generated, so no file is written twice; a
    /// case's later events wait here for their day.
    pub(super) pending: BTreeMap<(&'static str, String), Vec<Rec>>,
}

impl Writers {
    pub(super) fn new(out: &Path, format: &str, split: &str) -> Result<Writers> {
        file_kind(format, "ratings")?;
        Ok(Writers {
            out: out.to_path_buf(),
            format: format.to_string(),
            split: split.to_string(),
            pending: BTreeMap::new(),
        })
    }

    pub(super) fn file_name(&self, day: NaiveDate) -> String {
        let format = if self.split == "month" {
            "%Y-%m"
        } else {
            "%Y-%m-%d"
        };
        day.format(format).to_string()
    }

    pub(super) fn hold(&mut self, spec: &'static TableSpec, recs: Vec<Rec>) {
        for r in recs {
            let name = self.file_name(r.at.date());
            self.pending.entry((spec.name, name)).or_default().push(r);
        }
    }

    /// Writes the files of the days up to `day` (split by month: of the
    /// months that end by `day`), now that they are complete.
    pub(super) fn flush(&mut self, day: NaiveDate) -> Result<()> {
        let next = day + Duration::days(1);
        if self.split == "month" && next.month() == day.month() {
            return Ok(());
        }
        let last = self.file_name(day);
        let complete: Vec<(&'static str, String)> = self
            .pending
            .keys()
            .filter(|(_, name)| *name <= last)
            .cloned()
            .collect();
        for key in complete {
            let recs = self.pending.remove(&key).expect("listed");
            self.write(key, recs)?;
        }
        Ok(())
    }

    pub(super) fn write(
        &self,
        (table, name): (&'static str, String),
        mut recs: Vec<Rec>,
    ) -> Result<()> {
        let spec = tables::ALL
            .iter()
            .find(|t| t.name == table)
            .expect("a table of the contract");
        recs.sort_by_key(|r| r.at);
        write_file(
            &self.out,
            spec,
            Some(&name),
            recs,
            file_kind(&self.format, table)?,
        )
    }

    /// Writes what is still held: days after the last month generated.
    pub(super) fn finish(mut self) -> Result<()> {
        for (key, recs) in std::mem::take(&mut self.pending) {
            self.write(key, recs)?;
        }
        Ok(())
    }
}

/// A low-volume table written as it is generated, to `OUT/<table>.<ext>`:
/// records are held until their day has been generated, then appended in
/// time order (CSV and JSON Lines appended to, Parquet one row group per
/// day).
pub(super) struct Stream {
    pub(super) spec: &'static TableSpec,
    pub(super) kind: FileKind,
    pub(super) path: PathBuf,
    /// Records of days not yet complete.
    pub(super) pending: Vec<Rec>,
    pub(super) text: Option<std::io::BufWriter<std::fs::File>>,
    pub(super) parquet: Option<polars::io::parquet::write::BatchedWriter<std::fs::File>>,
}

impl Stream {
    pub(super) fn create(out: &Path, spec: &'static TableSpec, kind: FileKind) -> Result<Stream> {
        let path = out.join(format!("{}.{}", spec.name, kind.ext()));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut stream = Stream {
            spec,
            kind,
            path,
            pending: Vec::new(),
            text: None,
            parquet: None,
        };
        if kind == FileKind::Parquet {
            let schema = typed_frame(spec, &[], &field)?.schema().as_ref().clone();
            stream.parquet = Some(ParquetWriter::new(file).batched(&schema)?);
        } else {
            let mut w = std::io::BufWriter::new(file);
            w.write_all(&encode(spec, &[], kind, true)?)?;
            stream.text = Some(w);
        }
        Ok(stream)
    }

    pub(super) fn hold(&mut self, recs: impl IntoIterator<Item = Rec>) {
        self.pending.extend(recs);
    }

    /// Appends the records held for the days up to `day`, in time order.
    pub(super) fn flush(&mut self, day: NaiveDate) -> Result<()> {
        let (mut done, later): (Vec<Rec>, Vec<Rec>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|r| r.at.date() <= day);
        self.pending = later;
        done.sort_by_key(|r| r.at);
        self.append(&done)
    }

    pub(super) fn append(&mut self, recs: &[Rec]) -> Result<()> {
        if recs.is_empty() {
            return Ok(());
        }
        let written = match (&mut self.text, &mut self.parquet) {
            (Some(w), _) => w
                .write_all(&encode(self.spec, recs, self.kind, false)?)
                .map_err(anyhow::Error::from),
            (_, Some(w)) => w
                .write_batch(&typed_frame(self.spec, recs, &field)?)
                .map_err(anyhow::Error::from),
            _ => unreachable!("a stream writes text or Parquet"),
        };
        written.with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Appends what is still held (days after the last one generated)
    /// and closes the file.
    pub(super) fn finish(mut self) -> Result<()> {
        let mut rest = std::mem::take(&mut self.pending);
        rest.sort_by_key(|r| r.at);
        self.append(&rest)?;
        let finished = match (self.text, self.parquet) {
            (Some(mut w), _) => w.flush().map_err(anyhow::Error::from),
            (_, Some(w)) => w.finish().map(|_| ()).map_err(anyhow::Error::from),
            _ => unreachable!("a stream writes text or Parquet"),
        };
        finished.with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// A record's value in column `c` (the last one given), or empty.
pub(super) fn field(r: &Rec, c: &str) -> String {
    r.fields
        .iter()
        .rev()
        .find(|(k, _)| *k == c)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// Writes records as `OUT/<table>.<ext>` or `OUT/<table>/<name>.<ext>`.
pub(super) fn write_file(
    out: &Path,
    spec: &TableSpec,
    name: Option<&str>,
    recs: Vec<Rec>,
    kind: FileKind,
) -> Result<()> {
    let path = match name {
        Some(n) => out.join(spec.name).join(format!("{n}.{}", kind.ext())),
        None => out.join(format!("{}.{}", spec.name, kind.ext())),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let bytes: Vec<u8> = match kind {
        FileKind::Parquet => {
            let mut df = typed_frame(spec, &recs, &field)?;
            let mut buf = Vec::new();
            ParquetWriter::new(&mut buf).finish(&mut df)?;
            buf
        }
        _ => encode(spec, &recs, kind, true)?,
    };
    std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Records as CSV (with its header, byte order mark or encoding when
/// `start`: the file's first bytes) or JSON Lines.
pub(super) fn encode(
    spec: &TableSpec,
    recs: &[Rec],
    kind: FileKind,
    start: bool,
) -> Result<Vec<u8>> {
    Ok(match kind {
        FileKind::Csv | FileKind::CsvBom | FileKind::CsvGb18030 => {
            let mut w = csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new());
            if start {
                w.write_record(spec.columns.iter().map(|c| c.name))?;
            }
            for r in recs {
                w.write_record(spec.columns.iter().map(|c| field(r, c.name)))?;
            }
            let text = String::from_utf8(w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?)?;
            match kind {
                FileKind::CsvBom if start => [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat(),
                FileKind::CsvGb18030 => encoding_rs::GB18030.encode(&text).0.into_owned(),
                _ => text.into_bytes(),
            }
        }
        FileKind::Jsonl => {
            let mut buf = Vec::new();
            for r in recs {
                if r.fields.iter().any(|(k, _)| *k == "event") && field(r, "event") == "teleported"
                {
                    // One malformed line, as a truncated export would leave.
                    writeln!(buf, "{{\"case_id\": \"CASE-BAD-2\", \"event\": ")?;
                }
                let mut obj = serde_json::Map::new();
                for c in spec.columns {
                    let v = field(r, c.name);
                    if v.is_empty() {
                        continue;
                    }
                    let jv = match c.kind {
                        Kind::Bool if v == "true" || v == "false" => {
                            serde_json::Value::Bool(v == "true")
                        }
                        Kind::Number { .. } => v
                            .parse::<f64>()
                            .ok()
                            .and_then(serde_json::Number::from_f64)
                            .map(serde_json::Value::Number)
                            .unwrap_or(serde_json::Value::String(v)),
                        _ => serde_json::Value::String(v),
                    };
                    obj.insert(c.name.to_string(), jv);
                }
                serde_json::to_writer(&mut buf, &obj)?;
                buf.push(b'\n');
            }
            buf
        }
        FileKind::Parquet => unreachable!("Parquet is written as frames"),
    })
}

/// A typed frame for Parquet output: numbers as floats, dates as dates,
/// booleans as booleans, everything else as text.
pub(super) fn typed_frame(
    spec: &TableSpec,
    recs: &[Rec],
    get: &dyn Fn(&Rec, &str) -> String,
) -> Result<DataFrame> {
    let mut cols = Vec::new();
    for c in spec.columns {
        let vals: Vec<String> = recs.iter().map(|r| get(r, c.name)).collect();
        let name: PlSmallStr = c.name.into();
        let col = match c.kind {
            Kind::Number { .. } => {
                Float64Chunked::from_iter_options(name, vals.iter().map(|v| v.parse::<f64>().ok()))
                    .into_column()
            }
            Kind::Date => Int32Chunked::from_iter_options(
                name,
                vals.iter()
                    .map(|v| crate::ingest::fields::parse_date(v).ok()),
            )
            .into_date()
            .into_column(),
            Kind::Bool => BooleanChunked::from_iter_options(
                name,
                vals.iter()
                    .map(|v| crate::ingest::fields::parse_bool(v).ok()),
            )
            .into_column(),
            _ => StringChunked::from_iter_options(
                name,
                vals.iter().map(|v| (!v.is_empty()).then_some(v.as_str())),
            )
            .into_column(),
        };
        cols.push(col);
    }
    Ok(DataFrame::new(recs.len(), cols)?)
}
