//! The downloads: each year's results for HR as CSV and XLSX, and the data
//! dictionary of every lake table, the rejects and the marts as CSV.

use super::*;
use crate::frame;

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
            let cells: Vec<Vec<Cell>> = rows
                .iter()
                .map(|(dept, s)| {
                    let num = |v: Option<f64>| v.map_or(Cell::Empty, Cell::Number);
                    vec![
                        Cell::Text(dept.id.clone()),
                        Cell::Text(dept.name.clone()),
                        Cell::Text(dept.type_id.clone()),
                        num(s.total),
                        Cell::Text(s.grade.clone().unwrap_or_default()),
                        num(s.rank.map(|k| k as f64)),
                        num(s.bonus),
                        Cell::Bool(s.veto),
                        Cell::Text(s.veto_reasons.clone().unwrap_or_default()),
                        Cell::Bool(s.is_partial),
                    ]
                })
                .collect();
            let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
            out.push((
                format!("results-{}.xlsx", year.label()),
                xlsx_table(&year.label(), &header, &cells, year.start.year())?,
            ));
        }
        Ok(out)
    }
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

/// A cell of an exported table.
pub(super) enum Cell {
    Text(String),
    Number(f64),
    Bool(bool),
    Empty,
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Text(s) => s.clone(),
            Cell::Number(v) => format!("{v}"),
            Cell::Bool(b) => b.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

impl Site<'_> {
    /// Each closed year's HR lists (`hr_lists`) as CSV (UTF-8 with BOM)
    /// and XLSX, headed in the site's language: for `OUT/hr/`, never the
    /// site, as the lists name people.
    pub(super) fn hr_exports(&self, out: &OutDir) -> Result<Vec<(String, Vec<u8>)>> {
        let Some(df) = data::mart(out, "hr_lists")? else {
            return Ok(Vec::new());
        };
        let s = |c: &str| frame::strs(&df, c);
        let (period, dept, list, staff, name, name_en, grade, previous) = (
            s("period")?,
            s("dept_id")?,
            s("list")?,
            s("staff_id")?,
            s("name")?,
            s("name_en")?,
            s("grade")?,
            s("previous_grade")?,
        );
        let start = frame::dates(&df, "period_start")?;
        let i = |c: &str| frame::i64s(&df, c);
        let (rank, ranked, months) = (i("rank_in_dept")?, i("ranked")?, i("months")?);
        let f = |c: &str| frame::f64s(&df, c);
        let (composite, tau, p) = (f("composite")?, f("trend_tau")?, f("trend_p")?);
        let header: Vec<String> = [
            "hr_col_year",
            "dept_name",
            "hr_col_list",
            "hr_col_staff_id",
            "staff_name",
            "composite",
            "hr_col_grade",
            "hr_col_rank",
            "hr_col_ranked",
            "hr_col_previous_grade",
            "hr_col_months",
            "hr_col_trend_tau",
            "hr_col_trend_p",
        ]
        .iter()
        .map(|k| self.t[*k].clone())
        .collect();
        let text = |v: &Option<String>| v.clone().map_or(Cell::Empty, Cell::Text);
        let num = |v: Option<f64>| v.map_or(Cell::Empty, Cell::Number);
        let int = |v: Option<i64>| v.map_or(Cell::Empty, |n| Cell::Number(n as f64));
        let mut years: BTreeMap<(String, Option<NaiveDate>), Vec<Vec<Cell>>> = BTreeMap::new();
        for r in 0..df.height() {
            let shown = if self.english {
                name_en[r].clone().or_else(|| name[r].clone())
            } else {
                name[r].clone()
            };
            let row = vec![
                text(&period[r]),
                Cell::Text(self.dept_name(dept[r].as_deref().unwrap_or(""))),
                Cell::Text(
                    self.t[&format!("hr_list_{}", list[r].as_deref().unwrap_or(""))].clone(),
                ),
                text(&staff[r]),
                text(&shown),
                num(composite[r].map(|c| (c * 100.0).round() / 100.0)),
                Cell::Text(self.grade_name(grade[r].as_deref())),
                int(rank[r]),
                int(ranked[r]),
                match previous[r].as_deref() {
                    Some(g) => Cell::Text(self.grade_name(Some(g))),
                    None => Cell::Empty,
                },
                int(months[r]),
                num(tau[r]),
                num(p[r]),
            ];
            years
                .entry((period[r].clone().unwrap_or_default(), start[r]))
                .or_default()
                .push(row);
        }
        let mut files = Vec::new();
        for ((label, start), rows) in years {
            let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
            w.write_record(&header)?;
            for row in &rows {
                w.write_record(row.iter().map(Cell::text))?;
            }
            files.push((
                format!("hr-lists-{label}.csv"),
                w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?,
            ));
            let year = start.map_or(1970, |d| d.year());
            files.push((
                format!("hr-lists-{label}.xlsx"),
                xlsx_table(&label, &header, &rows, year)?,
            ));
        }
        Ok(files)
    }
}

/// A table as an XLSX workbook of one sheet; created on 1 January of
/// `year`, so the same rows give the same bytes.
pub(super) fn xlsx_table(
    sheet: &str,
    header: &[String],
    rows: &[Vec<Cell>],
    year: i32,
) -> Result<Vec<u8>> {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook};
    let x = |e: rust_xlsxwriter::XlsxError| anyhow::anyhow!("{e}");
    let mut wb = Workbook::new();
    let created = ExcelDateTime::from_ymd(year as u16, 1, 1).map_err(x)?;
    wb.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let ws = wb.add_worksheet();
    ws.set_name(sheet).map_err(x)?;
    for (c, h) in header.iter().enumerate() {
        ws.write_string(0, c as u16, h).map_err(x)?;
    }
    for (r, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32 + 1, c as u16);
            match cell {
                Cell::Text(s) => {
                    ws.write_string(r, c, s).map_err(x)?;
                }
                Cell::Number(v) => {
                    ws.write_number(r, c, *v).map_err(x)?;
                }
                Cell::Bool(b) => {
                    ws.write_boolean(r, c, *b).map_err(x)?;
                }
                Cell::Empty => {}
            }
        }
    }
    wb.save_to_buffer().map_err(x)
}
