use super::*;

/// Every file under `dir` (relative path, bytes), in path order.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_lake_does_not_depend_on_how_files_are_batched() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    // Three months of daily files, invalid records included.
    let args = crate::commands::generate::GenerateArgs {
        out: input.clone(),
        departments: 4,
        months: 3,
        end_month: "2026-10".into(),
        ratings: 30_000,
        cases: 600,
        complaints: None,
        seed: 7,
        format: "csv".into(),
        split: "day".into(),
        no_bad_records: false,
    };
    crate::commands::generate::generate(&args, &Progress::silent()).unwrap();
    // A later file moves a rating of 1 August to October.
    let first_day = std::fs::read_to_string(input.join("ratings/2026-08-01.csv")).unwrap();
    let mut lines = first_day.lines();
    let (header, line) = (lines.next().unwrap(), lines.next().unwrap());
    let at = |name: &str| header.split(',').position(|c| c == name).unwrap();
    let mut fields: Vec<String> = line.split(',').map(String::from).collect();
    let (id, item) = (fields[at("rating_id")].clone(), fields[at("item")].clone());
    assert!(fields[at("rated_at")].starts_with("2026-08-01"), "{line}");
    fields[at("rated_at")] = "2026-10-15 12:00:00".into();
    std::fs::write(
        input.join("ratings/zz-correction.csv"),
        format!("{header}\n{}\n", fields.join(",")),
    )
    .unwrap();

    let policy = crate::stages::load_policy(None, &[]).unwrap().0;
    let ingest_into = |name: &str, batch_bytes: u64, held_bytes: usize| -> PathBuf {
        let root = tmp.path().join(name);
        let out = OutDir::new(&root);
        let mut staging = Staging::new(&out).unwrap();
        let p = Progress::silent();
        let options = Options {
            batch_bytes,
            held_bytes,
            ..Options::default()
        };
        ingest_with(&input, Some((&out, &mut staging)), &policy, &p, &options).unwrap();
        staging.publish().unwrap();
        root
    };
    let whole = ingest_into("whole", BATCH_BYTES, HELD_BYTES);
    // One byte a batch: every file is a batch of its own.
    let single = ingest_into("single", 1, HELD_BYTES);
    // And nothing held: after each file, every month read so far is merged
    // and written out, and merged again as later files touch it (the
    // correction below supersedes a rating of a month written long before).
    let unheld = ingest_into("unheld", 1, 0);
    let ratings_files = source::discover(&input)
        .unwrap()
        .0
        .into_iter()
        .filter(|f| f.table.name == "ratings")
        .collect::<Vec<_>>();
    assert_eq!(batches(ratings_files.clone(), BATCH_BYTES).len(), 1);
    assert_eq!(batches(ratings_files.clone(), 1).len(), ratings_files.len());
    assert!(ratings_files.len() > 90, "{} files", ratings_files.len());

    // The same partitions and rejects, byte for byte (the ingest log
    // records when each file was read, so it differs).
    let lake = |root: &Path| {
        let mut f = files(&root.join("lake"));
        f.retain(|(name, _)| !name.starts_with("_ingest_log"));
        f.extend(files(&root.join("rejects")));
        f
    };
    let a = lake(&whole);
    let names = |f: &[(String, Vec<u8>)]| f.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert!(a.len() > 6, "{:?}", names(&a));
    for other in [&single, &unheld] {
        let b = lake(other);
        assert_eq!(names(&a), names(&b));
        for ((name, x), (_, y)) in a.iter().zip(&b) {
            assert!(x == y, "{name} differs in {}", other.display());
        }
    }
    // The corrected rating is in October only.
    for month in ["2026-08", "2026-09", "2026-10"] {
        let part = unheld.join(format!("lake/ratings/month={month}/part-0.parquet"));
        let df = lake::read_parquet(&part).unwrap();
        let ids = df.column("rating_id").unwrap().str().unwrap();
        let items = df.column("item").unwrap().str().unwrap();
        let n = ids
            .iter()
            .zip(items.iter())
            .filter(|(i, t)| *i == Some(id.as_str()) && *t == Some(item.as_str()))
            .count();
        assert_eq!(n, usize::from(month == "2026-10"), "{month}");
    }
}

#[test]
fn key_hashes_tell_apart_keys_whose_texts_join_the_same() {
    let df = df!(
        "rating_id" => [Some("ab"), Some("a"), Some("ab"), None],
        "item" => [Some("c"), Some("bc"), Some("c"), Some("c")],
    )
    .unwrap();
    let h = key_hashes(&df, &tables::RATINGS).unwrap();
    // ("ab", "c") and ("a", "bc") join to the same text "abc".
    assert_ne!(h[0], h[1]);
    // The same key twice, the same hash.
    assert_eq!(h[0], h[2]);
    assert!(h[0].is_some());
    // A null key column: no key, never superseded.
    assert_eq!(h[3], None);
}
