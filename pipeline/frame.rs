//! Moving columns between polars frames and plain Rust vectors. The
//! iterative per-case and per-department logic reads clearer (and runs
//! faster) as Rust over columns than as chains of expressions.

use anyhow::Result;
use chrono::NaiveDate;
use polars::prelude::*;

use crate::time::periods::Period;
use crate::time::{date_from_days, days_since_epoch};

pub(crate) fn column<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Column> {
    df.column(name)
        .map_err(|_| anyhow::anyhow!("column `{name}` is missing"))
}

pub fn strs(df: &DataFrame, name: &str) -> Result<Vec<Option<String>>> {
    Ok(column(df, name)?
        .str()?
        .iter()
        .map(|v| v.map(String::from))
        .collect())
}

/// A text column's values, borrowed from the frame (no copies).
pub fn str_refs<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<Option<&'a str>>> {
    Ok(column(df, name)?.str()?.iter().collect())
}

/// A datetime column in microseconds (the lake's unit), in place.
pub(crate) fn micros_in_place<'a>(df: &'a DataFrame, name: &str) -> Result<&'a Int64Chunked> {
    let ca = column(df, name)?.datetime()?;
    anyhow::ensure!(
        ca.time_unit() == TimeUnit::Microseconds,
        "column `{name}` is not in microseconds"
    );
    Ok(ca.physical())
}

/// Microseconds since the epoch (UTC) of a datetime column.
pub fn micros(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    Ok(micros_iter(df, name)?.collect())
}

/// Microseconds since the epoch (UTC) of a datetime column, read in place.
pub fn micros_iter<'a>(
    df: &'a DataFrame,
    name: &str,
) -> Result<impl Iterator<Item = Option<i64>> + 'a> {
    let ca = column(df, name)?.datetime()?;
    let unit = ca.time_unit();
    Ok(ca.physical().iter().map(move |v| {
        v.map(|v| match unit {
            TimeUnit::Nanoseconds => v / 1000,
            TimeUnit::Microseconds => v,
            TimeUnit::Milliseconds => v * 1000,
        })
    }))
}

pub fn f64s(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let c = column(df, name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.iter().collect())
}

pub fn i64s(df: &DataFrame, name: &str) -> Result<Vec<Option<i64>>> {
    let c = column(df, name)?.cast(&DataType::Int64)?;
    Ok(c.i64()?.iter().collect())
}

pub fn bools(df: &DataFrame, name: &str) -> Result<Vec<Option<bool>>> {
    Ok(column(df, name)?.bool()?.iter().collect())
}

pub fn dates(df: &DataFrame, name: &str) -> Result<Vec<Option<NaiveDate>>> {
    Ok(column(df, name)?
        .date()?
        .physical()
        .iter()
        .map(|v| v.map(date_from_days))
        .collect())
}

/// Builds a frame column by column.
#[derive(Default)]
pub struct Builder {
    columns: Vec<Column>,
    height: Option<usize>,
}

impl Builder {
    pub fn new() -> Builder {
        Builder::default()
    }

    fn push(mut self, c: Column) -> Builder {
        self.height.get_or_insert(c.len());
        self.columns.push(c);
        self
    }

    pub fn str<S: AsRef<str>>(self, name: &str, v: impl IntoIterator<Item = Option<S>>) -> Builder {
        let ca: StringChunked = v.into_iter().collect();
        self.push(ca.with_name(name.into()).into_column())
    }

    pub fn f64(self, name: &str, v: impl IntoIterator<Item = Option<f64>>) -> Builder {
        self.push(Float64Chunked::from_iter_options(name.into(), v.into_iter()).into_column())
    }

    pub fn i64(self, name: &str, v: impl IntoIterator<Item = Option<i64>>) -> Builder {
        self.push(Int64Chunked::from_iter_options(name.into(), v.into_iter()).into_column())
    }

    pub fn bool(self, name: &str, v: impl IntoIterator<Item = Option<bool>>) -> Builder {
        self.push(BooleanChunked::from_iter_options(name.into(), v.into_iter()).into_column())
    }

    /// A UTC timestamp column from microseconds.
    pub fn ts(self, name: &str, v: impl IntoIterator<Item = Option<i64>>) -> Builder {
        self.push(
            Int64Chunked::from_iter_options(name.into(), v.into_iter())
                .into_datetime(TimeUnit::Microseconds, Some(TimeZone::UTC))
                .into_column(),
        )
    }

    pub fn date(self, name: &str, v: impl IntoIterator<Item = Option<NaiveDate>>) -> Builder {
        self.push(
            Int32Chunked::from_iter_options(
                name.into(),
                v.into_iter().map(|d| d.map(days_since_epoch)),
            )
            .into_date()
            .into_column(),
        )
    }

    /// The columns every per-period mart has: `grain`, `period`,
    /// `period_start`, `period_end` and `is_partial` (at `as_of`).
    pub fn periods(self, periods: &[Period], as_of: NaiveDate) -> Builder {
        // Rows are many, periods few: each label is made once.
        let mut labels: PlHashMap<Period, String> = PlHashMap::default();
        for p in periods {
            labels.entry(*p).or_insert_with(|| p.label());
        }
        self.str("grain", periods.iter().map(|p| Some(p.grain.as_str())))
            .str("period", periods.iter().map(|p| Some(labels[p].as_str())))
            .date("period_start", periods.iter().map(|p| Some(p.start)))
            .date("period_end", periods.iter().map(|p| Some(p.end)))
            .bool(
                "is_partial",
                periods.iter().map(|p| Some(p.is_partial(as_of))),
            )
    }

    pub fn build(self) -> Result<DataFrame> {
        Ok(DataFrame::new(self.height.unwrap_or(0), self.columns)?)
    }
}

/// Values of a column read in place, by row number: no per-row copy, for
/// passes that visit rows out of order (one chunk per lake partition).
pub struct At<'a, T: PolarsDataType> {
    arrays: Vec<&'a T::Array>,
    /// Row number one past the end of each chunk.
    ends: Vec<usize>,
}

impl<'a, T: PolarsDataType> At<'a, T> {
    fn new(ca: &'a ChunkedArray<T>) -> At<'a, T> {
        let arrays: Vec<&T::Array> = ca.downcast_iter().collect();
        let ends = ca
            .chunk_lengths()
            .scan(0, |end, len| {
                *end += len;
                Some(*end)
            })
            .collect();
        At { arrays, ends }
    }

    /// The chunk holding row `i` and the row's place in it.
    fn locate(&self, i: usize) -> (&'a T::Array, usize) {
        let c = self.ends.partition_point(|&e| e <= i);
        let start = if c == 0 { 0 } else { self.ends[c - 1] };
        (self.arrays[c], i - start)
    }
}

impl<'a> At<'a, StringType> {
    pub fn strs(df: &'a DataFrame, name: &str) -> Result<At<'a, StringType>> {
        Ok(At::new(column(df, name)?.str()?))
    }

    pub fn get(&self, i: usize) -> Option<&'a str> {
        let (a, j) = self.locate(i);
        a.get(j)
    }
}

impl<'a> At<'a, BooleanType> {
    pub fn bools(df: &'a DataFrame, name: &str) -> Result<At<'a, BooleanType>> {
        Ok(At::new(column(df, name)?.bool()?))
    }

    pub fn get(&self, i: usize) -> Option<bool> {
        let (a, j) = self.locate(i);
        a.get(j)
    }
}

impl<'a> At<'a, Int64Type> {
    /// A datetime column in microseconds (the lake's unit).
    pub fn micros(df: &'a DataFrame, name: &str) -> Result<At<'a, Int64Type>> {
        Ok(At::new(micros_in_place(df, name)?))
    }

    pub fn get(&self, i: usize) -> Option<i64> {
        let (a, j) = self.locate(i);
        a.validity()
            .is_none_or(|v| v.get_bit(j))
            .then(|| a.value(j))
    }
}

impl<'a> At<'a, Float64Type> {
    /// A column made `Float64` by [`float_column`].
    pub fn floats(c: &'a Column) -> Result<At<'a, Float64Type>> {
        Ok(At::new(c.f64()?))
    }

    pub fn get(&self, i: usize) -> Option<f64> {
        let (a, j) = self.locate(i);
        a.validity()
            .is_none_or(|v| v.get_bit(j))
            .then(|| a.value(j))
    }
}

/// A numeric column as `Float64` (shared, not copied, when it already is).
pub fn float_column(df: &DataFrame, name: &str) -> Result<Column> {
    Ok(column(df, name)?.cast(&DataType::Float64)?)
}

/// A UTC microsecond instant as a literal of the lake's timestamp type.
pub(crate) fn instant(us: i64) -> Expr {
    lit(us).cast(DataType::Datetime(
        TimeUnit::Microseconds,
        Some(TimeZone::UTC),
    ))
}
