use super::*;

#[test]
fn a_tree_is_removed_whole_and_a_missing_one_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("old");
    // 3 folders of 40 pages each, one nested folder, an empty folder,
    // and a page at the top.
    for d in ["a", "b", "c/deeper"] {
        fs::create_dir_all(root.join(d)).unwrap();
        for i in 0..40 {
            fs::write(root.join(d).join(format!("{i}.html")), "x").unwrap();
        }
    }
    fs::create_dir_all(root.join("empty")).unwrap();
    fs::write(root.join("index.html"), "x").unwrap();
    fs::write(tmp.path().join("kept.html"), "x").unwrap();
    remove_tree(&root).unwrap();
    assert!(!root.exists());
    // Beside it, nothing is touched.
    assert!(tmp.path().join("kept.html").is_file());
    let err = remove_tree(&root).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
}

/// A frame of `n` rows of every column type the project writes, with
/// nulls and repeated texts, in chunks of uneven sizes.
fn every_type(n: usize) -> DataFrame {
    use crate::frame::Builder;
    let piece = |from: usize, to: usize| {
        Builder::new()
            .str(
                "id",
                (from..to).map(|i| (i % 7 != 0).then(|| format!("R{:08}", i * 7919 % n))),
            )
            .str(
                "dept",
                (from..to).map(|i| Some(["hr", "it", "legal"][i % 3])),
            )
            .i64("count", (from..to).map(|i| Some((i * 31 % 1000) as i64)))
            .f64(
                "score",
                (from..to).map(|i| (i % 11 != 0).then(|| (i % 97) as f64 / 9.0)),
            )
            .bool(
                "on_time",
                (from..to).map(|i| (i % 5 != 0).then_some(i % 2 == 0)),
            )
            .ts(
                "at",
                (from..to).map(|i| Some(1_700_000_000_000_000 + i as i64 * 1_234_567)),
            )
            .date(
                "day",
                (from..to).map(|i| {
                    chrono::NaiveDate::from_num_days_from_ce_opt(738_000 + (i / 900) as i32)
                }),
            )
            .build()
            .unwrap()
    };
    let cuts = [0, n / 5, (n / 5 + 3).min(n), n];
    let mut df = piece(cuts[0], cuts[1]);
    for w in cuts[1..].windows(2) {
        df.vstack_mut_owned(piece(w[0], w[1])).unwrap();
    }
    df
}

/// The bytes polars' own writer gives for `df` written a batch of
/// [`ROW_GROUP_ROWS`] rows at a time, each in one piece (polars writes
/// a row group per piece).
fn polars_bytes(
    df: &DataFrame,
    compression: ParquetCompression,
    statistics: StatisticsOptions,
) -> Vec<u8> {
    let mut expected = Vec::new();
    let mut writer = ParquetWriter::new(&mut expected)
        .with_compression(compression)
        .with_statistics(statistics)
        .batched(df.schema())
        .unwrap();
    for start in (0..df.height()).step_by(ROW_GROUP_ROWS) {
        let mut batch = df.slice(start as i64, ROW_GROUP_ROWS);
        batch.rechunk_mut();
        writer.write_batch(&batch).unwrap();
    }
    writer.finish().unwrap();
    expected
}

fn row_groups(path: &Path) -> Vec<usize> {
    ParquetReader::new(fs::File::open(path).unwrap())
        .get_metadata()
        .unwrap()
        .row_groups
        .iter()
        .map(|g| g.num_rows())
        .collect()
}

#[test]
fn a_file_encoded_on_every_core_has_the_bytes_polars_writes() {
    let dir = tempfile::tempdir().unwrap();
    // 600,000 rows in three chunks of uneven sizes, which are cut into
    // row groups every 262,144 rows; and a frame with no rows.
    for (n, groups) in [(600_000, vec![262_144, 262_144, 75_712]), (0, vec![])] {
        let mut df = every_type(n);
        let expected = polars_bytes(
            &df,
            ParquetCompression::Zstd(None),
            StatisticsOptions::default(),
        );
        let path = dir.path().join("t.parquet");
        write_parquet(&mut df, &path).unwrap();
        let written = fs::read(&path).unwrap();
        assert!(written == expected, "{n} rows: the bytes differ");
        let back = read_parquet(&path).unwrap();
        assert!(back.equals_missing(&df), "{n} rows read back differ");
        assert_eq!(row_groups(&path), groups);
    }
}

#[test]
fn unchanged_row_groups_are_copied_and_the_bytes_are_a_fresh_write() {
    let dir = tempfile::tempdir().unwrap();
    let (old, new, fresh) = (
        dir.path().join("old.parquet"),
        dir.path().join("new.parquet"),
        dir.path().join("fresh.parquet"),
    );
    let base = every_type(600_000);
    write_parquet(&mut base.clone(), &old).unwrap();
    let kept = read_parquet(&old).unwrap();
    // `score` holds the given float at `row`.
    let with_score = |df: &DataFrame, row: usize, v: f64| {
        let scores: Vec<Option<f64>> = df
            .column("score")
            .unwrap()
            .f64()
            .unwrap()
            .iter()
            .enumerate()
            .map(|(i, s)| if i == row { Some(v) } else { s })
            .collect();
        let mut df = df.clone();
        df.with_column(polars::prelude::Column::new("score".into(), scores))
            .unwrap();
        df
    };
    // Row 11 has no score; row 97 scores 0.0.
    let mut appended = base.clone();
    appended.vstack_mut_owned(every_type(1_000)).unwrap();
    let cases: [(&str, DataFrame, usize); 6] = [
        ("the same rows", base.clone(), 3),
        // The third group grows: the two before it are where they were.
        ("rows added at the end", appended, 2),
        (
            "a value changed in the first group",
            with_score(&base, 11, 4.0),
            2,
        ),
        (
            "a value changed in the last group",
            with_score(&base, 599_999, 4.0),
            2,
        ),
        // 0.0 and -0.0 are equal as numbers but written differently.
        ("0.0 made -0.0", with_score(&base, 97, -0.0), 2),
        // One row fewer at the top moves every group's rows.
        ("the first row removed", base.slice(1, 600_000), 0),
    ];
    for (what, df, expected_copies) in cases {
        let previous = Previous {
            path: &old,
            rows: &kept,
        };
        let copied = write_parquet_reusing(&mut df.clone(), &new, Some(previous)).unwrap();
        assert_eq!(copied, expected_copies, "{what}: groups copied");
        write_parquet(&mut df.clone(), &fresh).unwrap();
        assert!(
            fs::read(&new).unwrap() == fs::read(&fresh).unwrap(),
            "{what}: not the bytes of a fresh write"
        );
        assert!(read_parquet(&new).unwrap().equals_missing(&df), "{what}");
    }
    // The same rows compressed otherwise: nothing copied (the pages
    // would not be the codec the file declares).
    let lz4 = dir.path().join("lz4.parquet");
    fs::write(
        &lz4,
        polars_bytes(
            &base,
            ParquetCompression::Lz4Raw,
            StatisticsOptions::empty(),
        ),
    )
    .unwrap();
    let previous = Previous {
        path: &lz4,
        rows: &kept,
    };
    let copied = write_parquet_reusing(&mut base.clone(), &new, Some(previous)).unwrap();
    assert_eq!(copied, 0);
    // Rows that are not the file's, or other columns: nothing copied.
    let other = base.select(["id", "dept"]).unwrap();
    let previous = Previous {
        path: &old,
        rows: &other,
    };
    let copied = write_parquet_reusing(&mut other.clone(), &new, Some(previous)).unwrap();
    assert_eq!(copied, 0);
}

#[test]
fn file_checksums_and_digests_are_of_the_content() {
    // Expected values from the reference implementation (the `xxhash`
    // package for Python: xxh3_128_hexdigest). 512,000 bytes take two
    // reads and part of a third.
    let dir = tempfile::tempdir().unwrap();
    let long: Vec<u8> = (0..2000).flat_map(|_| 0..=255u8).collect();
    for (content, expected) in [
        (&b""[..], "99aa06d3014798d86001c324468d497f"),
        (b"abc", "06b05ab6733a618578af5f94892f3950"),
        (&long, "7467d0a77655fc0e5d90bc7b3dfdf1cb"),
    ] {
        let path = dir.path().join("f");
        fs::write(&path, content).unwrap();
        assert_eq!(file_checksum(&path).unwrap(), expected);
    }
    // FIPS 180-2's example: SHA-256("abc").
    fs::write(dir.path().join("abc"), "abc").unwrap();
    assert_eq!(
        crate::policy::hex(&file_digest(&dir.path().join("abc")).unwrap()),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let missing = file_checksum(&dir.path().join("missing")).unwrap_err();
    assert!(
        format!("{missing:#}").contains("cannot read"),
        "{missing:#}"
    );
}

#[test]
fn ids_become_safe_file_names() {
    assert_eq!(file_name("hr"), "hr");
    assert_eq!(file_name("dept-01_a.b"), "dept-01_a.b");
    // No separators, no parent folders.
    assert_eq!(file_name("../../x"), "~2E.~2F..~2Fx");
    assert_eq!(file_name("a/b\\c"), "a~2Fb~5Cc");
    assert_eq!(file_name(".."), "~2E.");
    // Windows' reserved names.
    assert_eq!(file_name("CON"), "_CON");
    assert_eq!(file_name("com1.txt"), "_com1.txt");
    assert_eq!(file_name("COM"), "COM");
    // Non-ASCII is kept distinct, byte by byte.
    assert_eq!(file_name("人"), "~E4~BA~BA");
    assert_eq!(file_name(""), "_");
    // 300 characters: cut to 80 plus a hash, and two long ids that
    // share their first 80 characters stay distinct.
    let a = "x".repeat(300);
    let b = format!("{}y", "x".repeat(299));
    assert_eq!(file_name(&a).len(), 97);
    assert_ne!(file_name(&a), file_name(&b));
}
