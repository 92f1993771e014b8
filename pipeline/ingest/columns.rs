//! A file's valid records as typed columns, appended to as records pass
//! validation: no value is allocated on its own, text goes straight into
//! Arrow string views.

use super::*;

/// A field's typed value; `Text` is the field's (trimmed) text itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Typed {
    Null,
    Text,
    Ts(i64),
    Date(i32),
    Num(f64),
    Bool(bool),
}

enum Builder {
    Text(StringChunkedBuilder),
    Ts(PrimitiveChunkedBuilder<Int64Type>),
    Date(PrimitiveChunkedBuilder<Int32Type>),
    Num(PrimitiveChunkedBuilder<Float64Type>),
    Bool(BooleanChunkedBuilder),
}

/// One file's valid rows of one table, column by column.
pub(super) struct Columns {
    spec: &'static TableSpec,
    builders: Vec<Builder>,
    lines: Vec<i64>,
    /// Raw text per row, kept only for departments (their parents are
    /// checked once every department is known).
    pub(super) raws: Vec<String>,
}

impl Columns {
    pub(super) fn new(spec: &'static TableSpec, capacity: usize) -> Columns {
        let builders = spec
            .columns
            .iter()
            .map(|c| {
                let name: PlSmallStr = c.name.into();
                match c.kind {
                    Kind::Timestamp => Builder::Ts(PrimitiveChunkedBuilder::new(name, capacity)),
                    Kind::Date => Builder::Date(PrimitiveChunkedBuilder::new(name, capacity)),
                    Kind::Number { .. } => {
                        Builder::Num(PrimitiveChunkedBuilder::new(name, capacity))
                    }
                    Kind::Bool => Builder::Bool(BooleanChunkedBuilder::new(name, capacity)),
                    Kind::Text | Kind::Enum(_) | Kind::DeptRef | Kind::DeptType => {
                        Builder::Text(StringChunkedBuilder::new(name, capacity))
                    }
                }
            })
            .collect();
        Columns {
            spec,
            builders,
            lines: Vec::with_capacity(capacity),
            raws: Vec::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.lines.len()
    }

    /// Appends a validated record: its values from [`validate`], the texts
    /// they were read from.
    pub(super) fn push(&mut self, line: u64, vals: &[Typed], texts: &[Option<&str>], raw: &str) {
        for ((b, v), t) in self.builders.iter_mut().zip(vals).zip(texts) {
            match (b, *v) {
                (Builder::Text(b), Typed::Text) => b.append_value(t.expect("a text value")),
                (Builder::Ts(b), Typed::Ts(x)) => b.append_value(x),
                (Builder::Date(b), Typed::Date(x)) => b.append_value(x),
                (Builder::Num(b), Typed::Num(x)) => b.append_value(x),
                (Builder::Bool(b), Typed::Bool(x)) => b.append_value(x),
                (Builder::Text(b), _) => b.append_null(),
                (Builder::Ts(b), _) => b.append_null(),
                (Builder::Date(b), _) => b.append_null(),
                (Builder::Num(b), _) => b.append_null(),
                (Builder::Bool(b), _) => b.append_null(),
            }
        }
        self.lines.push(line as i64);
        if self.spec.month_column.is_none() {
            self.raws.push(raw.to_string());
        }
    }

    /// The lake frame of these rows, with lineage columns `source_file`
    /// and `source_line`.
    pub(super) fn finish(self, file: &str) -> Result<DataFrame> {
        let n = self.lines.len();
        let mut columns: Vec<Column> = self
            .builders
            .into_iter()
            .map(|b| match b {
                Builder::Text(b) => b.finish().into_column(),
                Builder::Ts(b) => b
                    .finish()
                    .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                    .into_column(),
                Builder::Date(b) => b.finish().into_date().into_column(),
                Builder::Num(b) => b.finish().into_column(),
                Builder::Bool(b) => b.finish().into_column(),
            })
            .collect();
        columns.push(StringChunked::full("source_file".into(), file, n).into_column());
        columns.push(Int64Chunked::from_vec("source_line".into(), self.lines).into_column());
        Ok(DataFrame::new(n, columns)?)
    }
}
