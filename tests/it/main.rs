//! Integration tests: whole commands over small input folders whose
//! expected results are worked out by hand from the fixture text.

mod cli;
mod compute;
mod ingest;
mod raters;
mod safety;

use std::path::{Path, PathBuf};

use polars::prelude::*;
use scorecard::progress::Progress;
use scorecard::run::{self, Manifest, RunOptions};

/// A temporary input folder and output folder.
pub struct Workspace {
    _tmp: tempfile::TempDir,
    pub input: PathBuf,
    pub out: PathBuf,
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace::new()
    }
}

impl Workspace {
    pub fn new() -> Workspace {
        let tmp = tempfile::tempdir().expect("temp dir");
        let input = tmp.path().join("input");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&input).unwrap();
        Workspace {
            _tmp: tmp,
            input,
            out,
        }
    }

    /// Writes a file under the input folder.
    pub fn put(&self, rel: &str, bytes: impl AsRef<[u8]>) {
        let p = self.input.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    /// The three departments most tests use.
    pub fn put_departments(&self) {
        self.put(
            "departments.csv",
            "dept_id,name,dept_type,name_en,parent_id\n\
             hr,人力资源部,internal_service,Human Resources,\n\
             gsc,政务服务中心,external_service,Government Service Centre,\n\
             legal,法务部,professional_support,Legal Affairs,hr\n",
        );
    }

    /// `scorecard ingest` through the library.
    pub fn ingest(&self) -> anyhow::Result<Manifest> {
        run::run(
            &RunOptions {
                input: self.input.clone(),
                out: self.out.clone(),
                policy: None,
                as_of: None,
                ingest_only: true,
            },
            &Progress::silent(),
        )
    }

    /// SQL over the output folder.
    pub fn sql(&self, q: &str) -> DataFrame {
        scorecard::query::execute(&scorecard::lake::OutDir::new(&self.out), q)
            .unwrap_or_else(|e| panic!("query failed: {q}: {e:#}"))
    }

    /// Rows of a query as text tuples, `None` shown as "∅".
    pub fn rows(&self, q: &str) -> Vec<Vec<String>> {
        table_rows(&self.sql(q))
    }
}

pub fn table_rows(df: &DataFrame) -> Vec<Vec<String>> {
    (0..df.height())
        .map(|i| {
            df.columns()
                .iter()
                .map(|c| match c.get(i).unwrap() {
                    AnyValue::Null => "∅".to_string(),
                    AnyValue::String(s) => s.to_string(),
                    AnyValue::StringOwned(s) => s.to_string(),
                    v => v.to_string(),
                })
                .collect()
        })
        .collect()
}

/// Owned strings from literals, for comparing rows.
pub fn strs(xs: &[&str]) -> Vec<String> {
    xs.iter().map(|s| s.to_string()).collect()
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}
