//! Reading a batch of files into rows: each record's fields parsed and
//! checked against its table, cross-field rules (scales, measurement
//! periods), and references to departments; what fails becomes a reject.

use super::*;

/// Reads and validates files in parallel. Files whose content was ingested
/// before are not parsed: their earlier log rows come back as `unchanged`.
/// A file that fails whole is added to `failures`.
pub(super) fn read_files(
    files: Vec<InputFile>,
    known: &Known,
    ctx: &Ctx,
    policy: &LoadedPolicy,
    csv: source::CsvReader,
    failures: &mut Vec<String>,
) -> Result<(Vec<FileReport>, Vec<FileResult>)> {
    let encoding = policy.encoding();
    let limit = policy.policy.ingest.max_reject_share;
    let min_records = policy.policy.ingest.min_records_for_limit;
    let outcomes: Vec<Result<Result<FileResult, FileReport>, FileError>> = files
        .into_par_iter()
        .map(|file| {
            let cannot_read = |e: std::io::Error| FileError {
                file: file.rel.clone(),
                message: format!("cannot read {}: {e}", file.path.display()),
            };
            let table = file.table.name;
            let meta = std::fs::metadata(&file.path).map_err(cannot_read)?;
            let modified = meta.modified().ok().and_then(micros_since_epoch);
            let unchanged = |i: usize| {
                let mut r = known.log[i].clone();
                r.status = "unchanged".into();
                r.file = file.rel.clone();
                r.modified = modified;
                r
            };
            if let Some(i) = known.same_stat(table, &file.rel, &meta) {
                return Ok(Err(unchanged(i)));
            }
            let same_content = |sha: &str| known.hashes.get(&(table, sha)).map(|&i| unchanged(i));
            let logged = known.paths.contains_key(&(table, file.rel.as_str()));
            // A file at a path ingested before is most likely unchanged (most
            // files of a nightly run are): it is hashed through a small
            // buffer first, and read whole only if its content is new.
            if logged {
                let sha = lake::file_digest(&file.path).map_err(|e| FileError {
                    file: file.rel.clone(),
                    message: format!("{e:#}"),
                })?;
                let sha = hex(&sha);
                if let Some(r) = same_content(&sha) {
                    return Ok(Err(r));
                }
            }
            let bytes = std::fs::read(&file.path).map_err(cannot_read)?;
            let sha = hex(&Sha256::digest(&bytes));
            if let Some(r) = same_content(&sha) {
                return Ok(Err(r));
            }
            let status = if logged { "changed" } else { "new" };
            let spec = file.table;
            let mut rows = Columns::new(spec, bytes.len() / 64);
            let mut rejects: Vec<Reject> = Vec::new();
            let reject = |line, column: Option<String>, reason, message, raw| Reject {
                table: spec.name.into(),
                file: file.rel.clone(),
                line,
                column,
                reason,
                message,
                raw,
            };
            let mut vals = Vec::with_capacity(spec.columns.len());
            let encoding = source::read(&file, &bytes, encoding, csv, &mut |read| match read {
                source::Read::Record { line, fields, raw } => {
                    match validate(spec, fields, ctx, &mut vals) {
                        Ok(()) => rows.push(line, &vals, fields, raw),
                        Err((column, reason, message)) => rejects.push(reject(
                            line,
                            Some(column.to_string()),
                            reason,
                            message,
                            raw.to_string(),
                        )),
                    }
                }
                source::Read::Reject(r) => {
                    rejects.push(reject(r.line, r.column, r.reason, r.message, r.raw))
                }
            })?;
            let records = (rows.len() + rejects.len()) as u64;
            let share = if records == 0 {
                0.0
            } else {
                rejects.len() as f64 / records as f64
            };
            if share > limit && records >= min_records {
                let mut msg = format!(
                    "{} of {} records rejected ({:.1}%), above the policy's ingest.max_reject_share of {:.1}%",
                    rejects.len(),
                    records,
                    share * 100.0,
                    limit * 100.0
                );
                for r in rejects.iter().take(3) {
                    msg.push_str(&format!(
                        "\n      line {}, column {}: {} ({})",
                        r.line,
                        r.column.as_deref().unwrap_or("-"),
                        r.message,
                        r.reason.as_str()
                    ));
                }
                return Err(FileError {
                    file: file.rel.clone(),
                    message: msg,
                });
            }
            let report = FileReport {
                table: file.table.name.into(),
                file: file.rel.clone(),
                sha256: sha,
                bytes: bytes.len() as u64,
                // Vouches for the content only if it is the size the
                // modification time came with.
                modified: modified.filter(|_| meta.len() == bytes.len() as u64),
                format: file.format.as_str().into(),
                encoding: encoding.into(),
                status: status.into(),
                records,
                valid: rows.len() as u64,
                rejected: rejects.len() as u64,
            };
            let raws = std::mem::take(&mut rows.raws);
            let rows = rows.finish(&file.rel).map_err(|e| FileError {
                file: file.rel.clone(),
                message: format!("{e:#}"),
            })?;
            Ok(Ok(FileResult {
                file,
                report,
                rows,
                raws,
                rejects,
            }))
        })
        .collect();
    let mut unchanged = Vec::new();
    let mut results = Vec::new();
    for o in outcomes {
        match o {
            Ok(Ok(r)) => results.push(r),
            Ok(Err(u)) => unchanged.push(u),
            Err(e) => failures.push(e.to_string()),
        }
    }
    Ok((unchanged, results))
}

/// Validates one record's texts (one per column of `spec`) into `vals`:
/// its typed values, or the first problem found.
pub(super) fn validate(
    spec: &TableSpec,
    texts: &[Option<&str>],
    ctx: &Ctx,
    vals: &mut Vec<Typed>,
) -> Result<(), (&'static str, Reason, String)> {
    vals.clear();
    for (col, field) in spec.columns.iter().zip(texts) {
        let Some(text) = *field else {
            if col.required {
                return Err((
                    col.name,
                    Reason::MissingValue,
                    format!("`{}` is required but empty", col.name),
                ));
            }
            vals.push(Typed::Null);
            continue;
        };
        let v = match col.kind {
            Kind::Text => Typed::Text,
            Kind::Timestamp => {
                Typed::Ts(fields::parse_timestamp(text, ctx.tz).map_err(|(r, m)| (col.name, r, m))?)
            }
            Kind::Date => Typed::Date(fields::parse_date(text).map_err(|(r, m)| (col.name, r, m))?),
            Kind::Number { min } => {
                let n = fields::parse_number(text).map_err(|(r, m)| (col.name, r, m))?;
                if let Some(min) = min {
                    if n < min {
                        return Err((
                            col.name,
                            Reason::OutOfRange,
                            format!("{n} is below the minimum of {min}"),
                        ));
                    }
                }
                Typed::Num(n)
            }
            Kind::Bool => Typed::Bool(fields::parse_bool(text).map_err(|(r, m)| (col.name, r, m))?),
            Kind::Enum(allowed) => {
                if !allowed.contains(&text) {
                    return Err((
                        col.name,
                        Reason::BadValue,
                        format!(
                            "`{}` is not one of: {}",
                            fields::clip(text),
                            allowed.join(", ")
                        ),
                    ));
                }
                Typed::Text
            }
            Kind::DeptRef => {
                // Parents are checked once every department is known.
                if spec.name != "departments" && !ctx.depts.contains(text) {
                    return Err((
                        col.name,
                        Reason::UnknownDepartment,
                        format!(
                            "department `{}` is not in the departments table",
                            fields::clip(text)
                        ),
                    ));
                }
                Typed::Text
            }
            Kind::DeptType => {
                if !ctx.dept_types.contains(text) {
                    return Err((
                        col.name,
                        Reason::UnknownDeptType,
                        format!(
                            "`{}` is not a department type of the policy; expected one of: {}",
                            fields::clip(text),
                            ctx.dept_types
                                .iter()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
                Typed::Text
            }
        };
        vals.push(v);
    }
    match spec.name {
        "ratings" => check_rating(spec, vals),
        "measurements" => check_measurement(spec, vals),
        "followups" => check_followup(spec, texts),
        "improvement_plans" => check_plan(spec, vals),
        "plan_events" => check_plan_event(spec, texts),
        "staff" => check_staff(spec, vals, texts),
        _ => Ok(()),
    }
}

/// A plan is due on or after the day it was opened.
pub(super) fn check_plan(
    spec: &TableSpec,
    vals: &[Typed],
) -> Result<(), (&'static str, Reason, String)> {
    let date = |c| match vals[spec.column_index(c).expect("improvement_plans column")] {
        Typed::Date(d) => d,
        _ => unreachable!("{c} is a required date"),
    };
    let (opened, due) = (date("opened_on"), date("due_on"));
    if due < opened {
        return Err((
            "due_on",
            Reason::DueBeforeOpened,
            format!(
                "due_on {} is before opened_on {}",
                crate::time::date_from_days(due),
                crate::time::date_from_days(opened)
            ),
        ));
    }
    Ok(())
}

/// An extension gives its new due date, and only an extension gives one.
pub(super) fn check_plan_event(
    spec: &TableSpec,
    texts: &[Option<&str>],
) -> Result<(), (&'static str, Reason, String)> {
    let text = |c| texts[spec.column_index(c).expect("plan_events column")];
    match (text("kind"), text("new_due_on")) {
        (Some("extended"), None) => Err((
            "new_due_on",
            Reason::ExtensionWithoutDate,
            "an `extended` event gives the new due date in new_due_on".into(),
        )),
        (Some(kind), Some(_)) if kind != "extended" => Err((
            "new_due_on",
            Reason::DateWithoutExtension,
            format!("new_due_on is given for a `{kind}` event; only `extended` has one"),
        )),
        _ => Ok(()),
    }
}

/// An outcome belongs to a call-back only.
pub(super) fn check_followup(
    spec: &TableSpec,
    texts: &[Option<&str>],
) -> Result<(), (&'static str, Reason, String)> {
    let text = |c| texts[spec.column_index(c).expect("followups column")];
    match (text("kind"), text("outcome")) {
        (Some(kind), Some(outcome)) if kind != "call_back" => Err((
            "outcome",
            Reason::OutcomeWithoutCallBack,
            format!(
                "outcome `{}` is given for a `{kind}` follow-up; only a call_back has one",
                fields::clip(outcome)
            ),
        )),
        _ => Ok(()),
    }
}

pub(super) fn num(vals: &[Typed], i: usize) -> Option<f64> {
    match vals[i] {
        Typed::Num(n) => Some(n),
        _ => None,
    }
}

/// Fills the default 1-5 scale and checks the score lies on it.
pub(super) fn check_rating(
    spec: &TableSpec,
    vals: &mut [Typed],
) -> Result<(), (&'static str, Reason, String)> {
    let idx = |c| spec.column_index(c).expect("ratings column");
    let (i_score, i_min, i_max) = (idx("score"), idx("scale_min"), idx("scale_max"));
    let lo = num(vals, i_min).unwrap_or(1.0);
    let hi = num(vals, i_max).unwrap_or(5.0);
    vals[i_min] = Typed::Num(lo);
    vals[i_max] = Typed::Num(hi);
    if lo >= hi {
        return Err((
            "scale_max",
            Reason::BadScale,
            format!("scale_min {lo} must be below scale_max {hi}"),
        ));
    }
    let score = num(vals, i_score).expect("score is required");
    if score < lo || score > hi {
        return Err((
            "score",
            Reason::OutOfRange,
            format!("score {score} is outside its scale {lo}-{hi}"),
        ));
    }
    Ok(())
}

/// Defaults `period_end` to the month's end; needs `value` or both counts.
pub(super) fn check_measurement(
    spec: &TableSpec,
    vals: &mut [Typed],
) -> Result<(), (&'static str, Reason, String)> {
    let idx = |c| spec.column_index(c).expect("measurements column");
    let start = match vals[idx("period_start")] {
        Typed::Date(d) => d,
        _ => unreachable!("period_start is a required date"),
    };
    let i_end = idx("period_end");
    let end = match vals[i_end] {
        Typed::Date(d) => d,
        _ => crate::time::month_end(start),
    };
    vals[i_end] = Typed::Date(end);
    if end < start {
        return Err((
            "period_end",
            Reason::BadPeriod,
            format!(
                "period_end {} is before period_start {}",
                crate::time::date_from_days(end),
                crate::time::date_from_days(start)
            ),
        ));
    }
    let value = num(vals, idx("value"));
    let numer = num(vals, idx("numerator"));
    let denom = num(vals, idx("denominator"));
    match (value, numer, denom) {
        (_, Some(_), Some(0.0)) => Err((
            "denominator",
            Reason::OutOfRange,
            "denominator is 0; leave the row out or give `value`".into(),
        )),
        (Some(_), _, _) | (None, Some(_), Some(_)) => Ok(()),
        (None, None, None) => Err((
            "value",
            Reason::IncompleteMeasurement,
            "give either `value` or both `numerator` and `denominator`".into(),
        )),
        (None, n, _) => Err((
            if n.is_none() {
                "numerator"
            } else {
                "denominator"
            },
            Reason::IncompleteMeasurement,
            "`numerator` and `denominator` must be given together (or give `value`)".into(),
        )),
    }
}

/// Department ids known after this ingest: the lake's plus the new valid ones.
pub(super) fn known_departments(
    lake: Option<&DataFrame>,
    results: &[FileResult],
) -> Result<HashSet<String>> {
    let mut set = HashSet::new();
    for df in lake.into_iter().chain(results.iter().map(|r| &r.rows)) {
        set.extend(
            df.column("dept_id")?
                .str()?
                .iter()
                .flatten()
                .map(String::from),
        );
    }
    Ok(set)
}

/// Rejects departments whose `parent_id` names no known department.
pub(super) fn check_parents(
    mut results: Vec<FileResult>,
    depts: &HashSet<String>,
) -> Result<Vec<FileResult>> {
    for r in &mut results {
        let keep: BooleanChunked = {
            let parents = r.rows.column("parent_id")?.str()?;
            let lines = r.rows.column("source_line")?.i64()?;
            parents
                .iter()
                .zip(lines.iter())
                .zip(&r.raws)
                .map(|((parent, line), raw)| match parent {
                    Some(p) if !depts.contains(p) => {
                        r.rejects.push(Reject {
                            table: "departments".into(),
                            file: r.file.rel.clone(),
                            line: line.expect("every row has a line") as u64,
                            column: Some("parent_id".into()),
                            reason: Reason::UnknownDepartment,
                            message: format!(
                                "parent department `{}` is not in the departments table",
                                fields::clip(p)
                            ),
                            raw: raw.clone(),
                        });
                        r.report.valid -= 1;
                        r.report.rejected += 1;
                        Some(false)
                    }
                    _ => Some(true),
                })
                .collect()
        };
        r.rows = r.rows.filter(&keep)?;
    }
    Ok(results)
}

/// A staff row's validity ends on or after it starts; a manager belongs to
/// a department.
pub(super) fn check_staff(
    spec: &TableSpec,
    vals: &[Typed],
    texts: &[Option<&str>],
) -> Result<(), (&'static str, Reason, String)> {
    let idx = |c| spec.column_index(c).expect("staff column");
    if let (Typed::Date(from), Typed::Date(to)) = (vals[idx("valid_from")], vals[idx("valid_to")]) {
        if to < from {
            return Err((
                "valid_to",
                Reason::BadPeriod,
                format!(
                    "valid_to {} is before valid_from {}",
                    crate::time::date_from_days(to),
                    crate::time::date_from_days(from)
                ),
            ));
        }
    }
    if texts[idx("role")] == Some("manager") && texts[idx("dept_id")].is_none() {
        return Err((
            "dept_id",
            Reason::ManagerWithoutDepartment,
            "a manager belongs to a department: give dept_id".into(),
        ));
    }
    Ok(())
}

/// One staff row's stretch of validity, in days since the epoch (`None`:
/// open at that end).
#[derive(Clone, Copy)]
struct Validity {
    from: Option<i32>,
    to: Option<i32>,
}

impl Validity {
    fn overlaps(&self, o: &Validity) -> bool {
        let starts_before_end = |a: Option<i32>, end: Option<i32>| match (a, end) {
            (Some(a), Some(e)) => a <= e,
            _ => true,
        };
        starts_before_end(self.from, o.to) && starts_before_end(o.from, self.to)
    }

    fn describe(&self) -> String {
        let day = |d: Option<i32>, open: &str| {
            d.map_or(open.to_string(), |d| {
                crate::time::date_from_days(d).to_string()
            })
        };
        format!(
            "{} to {}",
            day(self.from, "always"),
            day(self.to, "open end")
        )
    }
}

/// Rejects staff rows whose validity overlaps another row of the same
/// person: one kept in the lake (unless a new row with its key replaces
/// it) or one read before it. A new row with the key of an earlier one
/// replaces it, as deduplication does.
pub(super) fn check_overlaps(
    mut results: Vec<FileResult>,
    lake: Option<&DataFrame>,
) -> Result<Vec<FileResult>> {
    let rows_of = |df: &DataFrame| -> Result<Vec<(Option<String>, Validity)>> {
        let ids = df.column("staff_id")?.str()?.clone();
        let from = crate::frame::dates(df, "valid_from")?;
        let to = crate::frame::dates(df, "valid_to")?;
        let days = |d: Option<chrono::NaiveDate>| d.map(crate::time::days_since_epoch);
        Ok(ids
            .iter()
            .zip(from.into_iter().zip(to))
            .map(|(id, (f, t))| {
                (
                    id.map(String::from),
                    Validity {
                        from: days(f),
                        to: days(t),
                    },
                )
            })
            .collect())
    };
    let mut new_keys: HashSet<(String, Option<i32>)> = HashSet::new();
    for r in &results {
        for (id, v) in rows_of(&r.rows)? {
            new_keys.insert((id.unwrap_or_default(), v.from));
        }
    }
    // Per person: the stretches held so far, by `valid_from`.
    let mut held: HashMap<String, Vec<Validity>> = HashMap::new();
    if let Some(lake) = lake {
        for (id, v) in rows_of(lake)? {
            let id = id.unwrap_or_default();
            if !new_keys.contains(&(id.clone(), v.from)) {
                held.entry(id).or_default().push(v);
            }
        }
    }
    for r in &mut results {
        let rows = rows_of(&r.rows)?;
        let lines = r.rows.column("source_line")?.i64()?.clone();
        let mut keep = Vec::with_capacity(rows.len());
        for (i, (id, v)) in rows.into_iter().enumerate() {
            let id = id.unwrap_or_default();
            let stretches = held.entry(id.clone()).or_default();
            stretches.retain(|s| s.from != v.from);
            match stretches.iter().find(|s| s.overlaps(&v)) {
                Some(other) => {
                    r.rejects.push(Reject {
                        table: "staff".into(),
                        file: r.file.rel.clone(),
                        line: lines.get(i).expect("every row has a line") as u64,
                        column: Some("valid_from".into()),
                        reason: Reason::OverlappingValidity,
                        message: format!(
                            "staff `{}` from {} overlaps its row from {}",
                            fields::clip(&id),
                            v.describe(),
                            other.describe()
                        ),
                        raw: r.raws[i].clone(),
                    });
                    r.report.valid -= 1;
                    r.report.rejected += 1;
                    keep.push(false);
                }
                None => {
                    stretches.push(v);
                    keep.push(true);
                }
            }
        }
        let mask = BooleanChunked::from_iter_values("keep".into(), keep.into_iter());
        r.rows = r.rows.filter(&mask)?;
    }
    Ok(results)
}
