//! The ingest log (`lake/_ingest_log.parquet`) and the rejects as frames, and
//! what later stages read back from the log and the lake.

use super::*;

pub(super) fn rejects_frame(rejects: &[Reject]) -> Result<DataFrame> {
    let n = rejects.len();
    let s = |name: &str, f: &dyn Fn(&Reject) -> Option<&str>| {
        StringChunked::from_iter_options(name.into(), rejects.iter().map(f)).into_column()
    };
    Ok(DataFrame::new(
        n,
        vec![
            s("table", &|r| Some(&r.table)),
            s("file", &|r| Some(&r.file)),
            Int64Chunked::from_iter_values("line".into(), rejects.iter().map(|r| r.line as i64))
                .into_column(),
            s("column", &|r| r.column.as_deref()),
            s("reason", &|r| Some(r.reason.as_str())),
            s("message", &|r| Some(&r.message)),
            s("raw", &|r| Some(&r.raw)),
        ],
    )?)
}

pub(super) fn log_frame(rows: &[FileReport]) -> Result<DataFrame> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| (&a.table, &a.file).cmp(&(&b.table, &b.file)));
    let s = |name: &str, f: &dyn Fn(&FileReport) -> &str| {
        StringChunked::from_iter_values(name.into(), rows.iter().map(f)).into_column()
    };
    let u = |name: &str, f: &dyn Fn(&FileReport) -> u64| {
        Int64Chunked::from_iter_values(name.into(), rows.iter().map(|r| f(r) as i64)).into_column()
    };
    Ok(DataFrame::new(
        rows.len(),
        vec![
            s("table", &|r| &r.table),
            s("file", &|r| &r.file),
            s("sha256", &|r| &r.sha256),
            u("bytes", &|r| r.bytes),
            Int64Chunked::from_iter_options("modified".into(), rows.iter().map(|r| r.modified))
                .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                .into_column(),
            s("format", &|r| &r.format),
            s("encoding", &|r| &r.encoding),
            u("records", &|r| r.records),
            u("valid", &|r| r.valid),
            u("rejected", &|r| r.rejected),
        ],
    )?)
}

/// When the ingest that wrote the log began (see `Known::same_stat`).
pub(super) fn log_time(out: &OutDir) -> Option<std::time::SystemTime> {
    std::fs::metadata(out.read(&out.ingest_log()))
        .and_then(|m| m.modified())
        .ok()
}

/// The ingest log: one row per file ingested, with its hash.
pub fn read_log(out: &OutDir) -> Result<Vec<FileReport>> {
    let path = out.read(&out.ingest_log());
    if !path.is_file() {
        return Ok(Vec::new());
    }
    let df = lake::read_parquet(&path)?;
    let s = |c: &str| -> Result<Vec<String>> {
        Ok(df
            .column(c)?
            .str()?
            .iter()
            .map(|v| v.unwrap_or("").to_string())
            .collect())
    };
    let u = |c: &str| -> Result<Vec<u64>> {
        Ok(df
            .column(c)?
            .i64()?
            .iter()
            .map(|v| v.unwrap_or(0) as u64)
            .collect())
    };
    let (table, file, sha, format, enc) = (
        s("table")?,
        s("file")?,
        s("sha256")?,
        s("format")?,
        s("encoding")?,
    );
    let (bytes, records, valid, rejected) =
        (u("bytes")?, u("records")?, u("valid")?, u("rejected")?);
    // Logs written before the column existed vouch for no modification
    // time: their files are hashed once more.
    let modified: Vec<Option<i64>> = if df.column("modified").is_ok() {
        crate::frame::micros_in_place(&df, "modified")?
            .iter()
            .collect()
    } else {
        vec![None; df.height()]
    };
    Ok((0..df.height())
        .map(|i| FileReport {
            table: table[i].clone(),
            file: file[i].clone(),
            sha256: sha[i].clone(),
            bytes: bytes[i],
            modified: modified[i],
            format: format[i].clone(),
            encoding: enc[i].clone(),
            status: "ingested".into(),
            records: records[i],
            valid: valid[i],
            rejected: rejected[i],
        })
        .collect())
}

/// Latest event instant of a lake table (timestamp month column only),
/// read from its last partition: partitions are months of the event, so the
/// latest event is always there.
pub fn latest_instant(out: &OutDir, spec: &TableSpec) -> Result<Option<i64>> {
    let Some(mc) = spec.month_column else {
        return Ok(None);
    };
    let i = spec.column_index(mc).expect("month column");
    if spec.columns[i].kind != Kind::Timestamp {
        return Ok(None);
    }
    let Some(file) = lake::last_partition(out, spec.name)? else {
        return Ok(None);
    };
    let df = lake::read_parquet_columns(&file, &[mc])?;
    Ok(df.column(mc)?.datetime()?.physical().max())
}
