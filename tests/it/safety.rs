//! Unattended runs: a lock, crash safety (SIGKILL at several steps),
//! determinism.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use polars::prelude::*;

use crate::{files_under, published, Workspace};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_scorecard"))
}

fn copy_dir(from: &Path, to: &Path) {
    for f in files_under(from) {
        let dest = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&f, &dest).unwrap();
    }
}

fn samples_into(ws: &Workspace) {
    copy_dir(&crate::samples(), &ws.input);
}

fn run_args<'a>(input: &'a Path, out: &'a Path) -> Vec<String> {
    ["run", "--quiet", "--as-of", "2026-10-31", "--input"]
        .iter()
        .map(|s| s.to_string())
        .chain([
            input.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ])
        .collect()
}

fn run_ok(input: &Path, out: &Path) {
    let o = bin().args(run_args(input, out)).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Starts a run that stops at `failpoint`; returns it once it is there.
fn start_paused(input: &Path, out: &Path, failpoint: &str) -> std::process::Child {
    let mut child = bin()
        .args(run_args(input, out))
        .env("SCORECARD_FAILPOINT", failpoint)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let wanted = format!("failpoint {failpoint}: waiting to be killed");
    loop {
        match lines.next() {
            Some(Ok(l)) if l.contains(&wanted) => break,
            Some(_) => continue,
            None => panic!("the run ended before failpoint {failpoint}"),
        }
    }
    child
}

/// Every Parquet output as a frame, by relative path.
fn frames(out: &Path) -> Vec<(String, DataFrame)> {
    published(out)
        .into_iter()
        .filter(|(rel, _)| rel.ends_with(".parquet"))
        .map(|(rel, _)| {
            (
                rel.clone(),
                scorecard::lake::read_parquet(&out.join(&rel)).unwrap(),
            )
        })
        .collect()
}

fn assert_same_outputs(a: &Path, b: &Path) {
    let (fa, fb) = (frames(a), frames(b));
    assert_eq!(
        fa.iter().map(|f| &f.0).collect::<Vec<_>>(),
        fb.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    for ((name, x), (_, y)) in fa.iter().zip(&fb) {
        assert!(x.equals_missing(y), "{name} differs");
    }
    let site = |p: &Path| -> Vec<(String, Vec<u8>)> {
        published(p)
            .into_iter()
            .filter(|(r, _)| r.starts_with("site"))
            .collect()
    };
    assert!(site(a) == site(b), "the site differs");
}

const LATE_RATINGS: &str = "rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n\
    LATE1,2026-10-30 10:00:00,hr,E0001,client_internal,overall,5\n\
    LATE2,2026-10-30 11:00:00,hr,E0002,client_internal,overall,2\n\
    LATE3,2026-10-30 12:00:00,gsc,C0000001,client_external,overall,4\n";

#[test]
fn a_run_killed_at_any_step_leaves_the_published_outputs_and_the_next_run_recovers() {
    let ws = Workspace::new();
    samples_into(&ws);
    run_ok(&ws.input, &ws.out);
    let before = published(&ws.out);
    // The next night's export arrives.
    ws.put("ratings/2026-10-late.csv", LATE_RATINGS);
    for step in ["ingest", "compute", "render"] {
        let mut child = start_paused(&ws.input, &ws.out, step);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(
            published(&ws.out) == before,
            "killed at {step}: the published outputs changed"
        );
    }
    // Killed in the middle of publishing: the next run completes it.
    let mut child = start_paused(&ws.input, &ws.out, "publish");
    child.kill().unwrap();
    child.wait().unwrap();
    run_ok(&ws.input, &ws.out);

    // The recovered folder equals a clean run on the same inputs.
    let clean = ws.out.with_file_name("clean");
    run_ok(&ws.input, &clean);
    assert_same_outputs(&ws.out, &clean);
}

#[test]
fn a_second_run_waits_for_nobody_and_names_the_holder() {
    let ws = Workspace::new();
    samples_into(&ws);
    let mut first = start_paused(&ws.input, &ws.out, "compute");
    let o = bin().args(run_args(&ws.input, &ws.out)).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "another scorecard run is writing to {}",
            ws.out.display()
        )) && err.contains(&format!("pid {}", first.id()))
            && err.contains("command run"),
        "{err}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // The killed run's lock is gone with it: the next run takes over.
    let o = bin().args(run_args(&ws.input, &ws.out)).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("ended without finishing"));
}

#[test]
fn two_runs_on_the_same_inputs_give_the_same_outputs() {
    let ws = Workspace::new();
    samples_into(&ws);
    let a: PathBuf = ws.out.with_file_name("a");
    let b: PathBuf = ws.out.with_file_name("b");
    run_ok(&ws.input, &a);
    run_ok(&ws.input, &b);
    assert_same_outputs(&a, &b);
    // Parquet files are byte-identical too, not only equal in content.
    // Only run.json (the run's times) and the page store's record of when
    // it wrote each page differ.
    let bytes = |p: &Path| -> Vec<(String, Vec<u8>)> {
        published(p)
            .into_iter()
            .filter(|(r, _)| r != "run.json" && r != "cache/pages/stamps.json")
            .collect()
    };
    assert!(bytes(&a) == bytes(&b), "outputs differ byte for byte");
}

#[test]
fn hostile_department_names_and_ids_stay_text_and_inside_the_output_folder() {
    let ws = Workspace::new();
    let hostile_name = "<script>alert('x')</script> & \"引号\" مرحبا 🎉";
    ws.put(
        "departments.csv",
        format!(
            "dept_id,name,dept_type\n\
             ../../x,\"{}\",internal_service\n\
             CON,Console,internal_service\n\
             {},Long,internal_service\n",
            hostile_name.replace('"', "\"\""),
            "y".repeat(300)
        ),
    );
    ws.put(
        "ratings.csv",
        "rating_id,rated_at,dept_id,rater_id,rater_group,item,score\n\
         r1,2026-03-02 10:00:00,../../x,E1,client_internal,overall,5\n",
    );
    ws.put(
        "measurements.csv",
        "dept_id,metric,period_start,numerator,denominator\n../../x,process_compliance,2026-03-01,20,20\n",
    );
    ws.run_cli(None, "2026-03-31");
    let page = std::fs::read_to_string(ws.out.join("site/index.html")).unwrap();
    // Escaped as text, and every character kept.
    assert!(
        !page.contains("<script>alert"),
        "the name must not become markup"
    );
    assert!(
        page.contains("&lt;script&gt;alert(&#x27;x&#x27;)&lt;&#x2f;script&gt; &amp; &quot;引号&quot; مرحبا 🎉"),
        "the name is shown escaped and intact"
    );
    assert!(
        !page.contains("href=\"../../x"),
        "an id never becomes a path as it is"
    );
    // Nothing was written next to the output folder.
    let parent: Vec<_> = std::fs::read_dir(ws.out.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let mut parent = parent;
    parent.sort();
    assert_eq!(parent, vec!["input", "out"]);
}

#[test]
fn rater_ids_are_pseudonymised_with_a_key_that_is_never_written() {
    let ws = Workspace::new();
    samples_into(&ws);
    ws.put_policy(&[("pseudonymize_raters = false", "pseudonymize_raters = true")]);
    // Without the key the run refuses before writing anything.
    let o = bin()
        .args(run_args(&ws.input, &ws.out))
        .env_remove("SCORECARD_RATER_KEY")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("SCORECARD_RATER_KEY is not set"));
    assert!(!ws.out.exists());

    let key = "k3y-0f-the-perf0rmance-0ffice";
    let o = bin()
        .args(run_args(&ws.input, &ws.out))
        .env("SCORECARD_RATER_KEY", key)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let effects =
        scorecard::lake::read_parquet(&ws.out.join("marts/rater_effects.parquet")).unwrap();
    let ids: Vec<String> = effects
        .column("rater_id")
        .unwrap()
        .str()
        .unwrap()
        .iter()
        .flatten()
        .map(String::from)
        .collect();
    // R- and 16 hex digits, for every rater; the raw id of a superior is
    // nowhere in the published marts or site.
    assert!(
        ids.iter().all(|id| id.len() == 18 && id.starts_with("R-")),
        "{:?}",
        &ids[..3]
    );
    let s01 = scorecard::privacy::pseudonym(key.as_bytes(), "S01");
    assert!(ids.contains(&s01), "the same rater keeps one pseudonym");
    for (rel, bytes) in published(&ws.out) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(key),
            "{rel} holds the key"
        );
    }
    for mart in ["rater_effects", "rating_flags"] {
        let df =
            scorecard::lake::read_parquet(&ws.out.join(format!("marts/{mart}.parquet"))).unwrap();
        let raw = df
            .column("rater_id")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .flatten()
            .any(|id| id == "S01");
        assert!(!raw, "{mart} names rater S01");
    }
}

#[test]
fn a_damaged_lake_file_is_named_and_the_published_marts_stay() {
    let ws = Workspace::new();
    samples_into(&ws);
    run_ok(&ws.input, &ws.out);
    let before = published(&ws.out);
    // Scramble the middle of one ratings partition (its pages, not its
    // footer), as a disk error would.
    let part = files_under(&ws.out.join("lake/ratings"))
        .into_iter()
        .find(|f| f.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let mut bytes = std::fs::read(&part).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n / 4..n / 2] {
        *b ^= 0x5a;
    }
    std::fs::write(&part, &bytes).unwrap();
    let o = bin()
        .args(["compute", "--quiet", "--out"])
        .arg(&ws.out)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        err.contains(&format!("the lake file {} is damaged", part.display())),
        "{err}"
    );
    // Everything but the damaged file is as the last good run left it.
    let after: Vec<_> = published(&ws.out)
        .into_iter()
        .filter(|(name, _)| !part.ends_with(name))
        .collect();
    let before: Vec<_> = before
        .into_iter()
        .filter(|(name, _)| !part.ends_with(name))
        .collect();
    assert_eq!(before, after);
}
