//! Integration tests: whole commands over small input folders whose
//! expected results are worked out by hand from the fixture text.

mod cli;
mod fuzz;
mod incremental;
mod ingest;
mod model;
mod people;
mod raters;
mod safety;
mod site;

use std::path::{Path, PathBuf};

use polars::prelude::*;
use scorecard::progress::Progress;
use scorecard::run::{self, Manifest, RunOptions};

/// The header of a ratings CSV with the required columns.
pub const RATINGS_HEADER: &str = "rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n";

/// The default policy with each `from` text replaced by its `to`. Every
/// `from` must be in it: a setting renamed in the policy fails here instead
/// of leaving a test on the default without a word.
pub fn policy_with(changes: &[(&str, &str)]) -> String {
    let mut policy = scorecard::policy::DEFAULT_POLICY.to_string();
    for (from, to) in changes {
        assert!(policy.contains(from), "the default policy has no `{from}`");
        policy = policy.replace(from, to);
    }
    policy
}

/// Every file under `dir` (recursively), sorted; empty if `dir` is absent.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Every file under `dir` with its bytes, by path relative to `dir`, in
/// path order: for before/after comparisons.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    files_under(dir)
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            (rel, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// Every published file under the output folder `out` with its bytes: not
/// the run lock (every run, failed or not, writes its holder there), nor a
/// run's staging folder.
pub fn published(out: &Path) -> Vec<(String, Vec<u8>)> {
    snapshot(out)
        .into_iter()
        .filter(|(rel, _)| rel != ".lock" && !rel.starts_with(".staging"))
        .collect()
}

/// The project's `data_samples/`.
pub fn samples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data_samples")
}

/// The run manifest (`run.json`) of the output folder `out`.
pub fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap()
}

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

    /// Writes the default policy, changed as [`policy_with`] says, as the
    /// input folder's `policy.toml`.
    pub fn put_policy(&self, changes: &[(&str, &str)]) {
        self.put("policy.toml", policy_with(changes));
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

    /// `scorecard run --quiet --as-of AS_OF` from `input` (the workspace's
    /// input folder if `None`) into the workspace's output; must succeed.
    pub fn run_cli(&self, input: Option<&Path>, as_of: &str) {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_scorecard"))
            .args(["run", "--quiet", "--as-of", as_of, "--input"])
            .arg(input.unwrap_or(&self.input))
            .arg("--out")
            .arg(&self.out)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// SQL over the output folder.
    pub fn sql(&self, q: &str) -> DataFrame {
        scorecard::commands::query::execute(&scorecard::lake::OutDir::new(&self.out), q)
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

/// SplitMix64 with Box-Muller normals: small and reproducible, for seeded
/// synthetic data and fuzzing.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn f(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.f().max(1e-12);
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * self.f()).cos()
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.f() < p
    }
}

pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}
