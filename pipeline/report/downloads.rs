//! The downloads: each year's results for HR as CSV and XLSX, and the data
//! dictionary of every lake table, the rejects and the marts as CSV.

use super::*;

impl Site<'_> {
    /// The year's results for HR, as CSV (UTF-8 with BOM, as Excel expects)
    /// and XLSX, one pair per year.
    pub(super) fn downloads(&self, out: &OutDir) -> Result<Vec<(String, Vec<u8>)>> {
        let header = [
            "dept_id",
            "name",
            "dept_type",
            "total_score",
            "grade",
            "rank_in_type",
            "bonus_coefficient",
            "veto",
            "veto_reasons",
            "is_partial",
        ];
        let mut out = vec![("data-dictionary.csv".to_string(), dictionary_csv(out)?)];
        for year in self
            .d
            .periods
            .get(&Grain::Year)
            .cloned()
            .unwrap_or_default()
        {
            let rows: Vec<(&data::Dept, &data::DeptScore)> = self
                .d
                .depts
                .iter()
                .filter_map(|d| Some((d, self.d.scores.get(&(d.id.clone(), Grain::Year, year))?)))
                .collect();
            let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
            w.write_record(header)?;
            for (dept, s) in &rows {
                w.write_record([
                    dept.id.clone(),
                    dept.name.clone(),
                    dept.type_id.clone(),
                    s.total.map_or(String::new(), |v| format!("{v:.2}")),
                    s.grade.clone().unwrap_or_default(),
                    s.rank.map_or(String::new(), |r| r.to_string()),
                    s.bonus.map_or(String::new(), |b| format!("{b:.4}")),
                    s.veto.to_string(),
                    s.veto_reasons.clone().unwrap_or_default(),
                    s.is_partial.to_string(),
                ])?;
            }
            out.push((
                format!("results-{}.csv", year.label()),
                w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?,
            ));
            out.push((
                format!("results-{}.xlsx", year.label()),
                xlsx(&header, &rows, year)?,
            ));
        }
        Ok(out)
    }
}

/// One year's results as an XLSX workbook. The document's creation date is
/// the period's first day, so the same results give the same bytes.
pub(super) fn xlsx(
    header: &[&str],
    rows: &[(&data::Dept, &data::DeptScore)],
    year: Period,
) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook};
    let mut wb = Workbook::new();
    let created = ExcelDateTime::from_ymd(year.start.year() as u16, 1, 1)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    wb.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let ws = wb.add_worksheet();
    ws.set_name(year.label())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let x = |e: rust_xlsxwriter::XlsxError| anyhow::anyhow!("{e}");
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, *h).map_err(x)?;
    }
    for (r, (dept, s)) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        ws.write_string(r, 0, &dept.id).map_err(x)?;
        ws.write_string(r, 1, &dept.name).map_err(x)?;
        ws.write_string(r, 2, &dept.type_id).map_err(x)?;
        if let Some(t) = s.total {
            ws.write_number(r, 3, t).map_err(x)?;
        }
        ws.write_string(r, 4, s.grade.as_deref().unwrap_or(""))
            .map_err(x)?;
        if let Some(k) = s.rank {
            ws.write_number(r, 5, k as f64).map_err(x)?;
        }
        if let Some(b) = s.bonus {
            ws.write_number(r, 6, b).map_err(x)?;
        }
        ws.write_boolean(r, 7, s.veto).map_err(x)?;
        ws.write_string(r, 8, s.veto_reasons.as_deref().unwrap_or(""))
            .map_err(x)?;
        ws.write_boolean(r, 9, s.is_partial).map_err(x)?;
    }
    wb.save_to_buffer().map_err(x)
}

/// The data dictionary as CSV (`dataset,column,type,description`): every
/// column of the lake tables (with the `month` partition column readers
/// see), the rejects and the marts, with its type as polars names it, for
/// tools that check what they read against it.
pub(super) fn dictionary_csv(out: &OutDir) -> Result<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["dataset", "column", "type", "description"])?;
    for spec in crate::ingest::tables::ALL {
        let file = match spec.month_column {
            Some(_) => lake::last_partition(out, spec.name)?,
            None => Some(out.read(&out.table_path(spec.name, false))).filter(|p| p.is_file()),
        };
        let Some(file) = file else { continue };
        let dataset = format!("lake/{}", spec.name);
        for (c, ty) in lake::read_schema(&file)? {
            let d = match c.as_str() {
                "source_file" => "Input file the row came from (relative to the input folder).",
                "source_line" => "Line (CSV, JSON Lines) or row (Parquet) in that file, from 1.",
                _ => "As in the input contract (docs/contract.md#inputs); times in UTC.",
            };
            w.write_record([dataset.as_str(), c.as_str(), ty.as_str(), d])?;
        }
        if let Some(mc) = spec.month_column {
            let d = format!(
                "Partition folder month=YYYY-MM: the month of {mc} in the policy's time zone."
            );
            w.write_record([dataset.as_str(), "month", "str", d.as_str()])?;
        }
    }
    let rejects = out.read(&out.rejects());
    if rejects.is_file() {
        for (c, ty) in lake::read_schema(&rejects)? {
            w.write_record([
                "rejects",
                c.as_str(),
                ty.as_str(),
                "See the data-quality page.",
            ])?;
        }
    }
    for (name, schema) in mart_schemas(out)? {
        let dataset = format!("marts/{name}");
        for (c, ty) in schema {
            let d = dictionary::describe(&name, &c).unwrap_or("");
            w.write_record([dataset.as_str(), c.as_str(), ty.as_str(), d])?;
        }
    }
    w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))
}
