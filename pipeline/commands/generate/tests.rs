use super::*;

fn rating(id: &str, day: u32, hour: u32) -> Rec {
    let at = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap() + Duration::days(day as i64 - 1);
    let at = at.and_hms_opt(hour, 0, 0).unwrap();
    rec(
        at,
        vec![("rating_id", id.to_string()), ("rated_at", ts(at))],
    )
}

/// The rating ids in a CSV file, in file order.
fn ids(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.trim_start_matches('\u{feff}');
    text.lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap().to_string())
        .collect()
}

#[test]
fn a_day_file_is_written_once_its_day_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writers::new(dir.path(), "csv", "day").unwrap();
    // Generated on 1 March: two ratings that day (out of time order)
    // and a record that falls on 2 March.
    w.hold(
        &tables::RATINGS,
        vec![rating("b", 1, 10), rating("c", 2, 9), rating("a", 1, 9)],
    );
    w.flush(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap())
        .unwrap();
    let file = |name: &str| dir.path().join("ratings").join(format!("{name}.csv"));
    assert_eq!(ids(&file("2026-03-01")), ["a", "b"]);
    assert!(!file("2026-03-02").exists());
    // Only 2 March's record is still held.
    assert_eq!(w.pending.values().map(Vec::len).sum::<usize>(), 1);
    w.hold(&tables::RATINGS, vec![rating("d", 2, 8)]);
    w.flush(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
        .unwrap();
    assert_eq!(ids(&file("2026-03-02")), ["d", "c"]);
    assert!(w.pending.is_empty());
}

#[test]
fn a_month_file_is_written_once_its_last_day_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = Writers::new(dir.path(), "csv", "month").unwrap();
    w.hold(
        &tables::RATINGS,
        vec![
            rating("late", 31, 9),
            rating("april", 32, 9),
            rating("early", 1, 9),
        ],
    );
    let file = |name: &str| dir.path().join("ratings").join(format!("{name}.csv"));
    w.flush(NaiveDate::from_ymd_opt(2026, 3, 30).unwrap())
        .unwrap();
    assert!(!file("2026-03").exists());
    w.flush(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap())
        .unwrap();
    assert_eq!(ids(&file("2026-03")), ["early", "late"]);
    assert!(!file("2026-04").exists());
    w.finish().unwrap();
    assert_eq!(ids(&file("2026-04")), ["april"]);
}

#[test]
fn a_stream_appends_after_one_header() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [FileKind::CsvBom, FileKind::Parquet] {
        let mut s = Stream::create(dir.path(), &tables::RATINGS, kind).unwrap();
        s.append(&[rating("a", 1, 9)]).unwrap();
        s.append(&[]).unwrap();
        s.append(&[rating("b", 2, 9), rating("c", 3, 9)]).unwrap();
        s.finish().unwrap();
        let path = dir.path().join(format!("ratings.{}", kind.ext()));
        let got: Vec<String> = if kind == FileKind::Parquet {
            let df = crate::lake::read_parquet(&path).unwrap();
            crate::frame::strs(&df, "rating_id")
                .unwrap()
                .into_iter()
                .flatten()
                .collect()
        } else {
            let bytes = std::fs::read(&path).unwrap();
            assert!(bytes.starts_with(b"\xEF\xBB\xBFrating_id,"));
            ids(&path)
        };
        assert_eq!(got, ["a", "b", "c"], "{kind:?}");
    }
}

#[test]
fn a_stream_writes_held_records_once_their_day_is_complete() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Stream::create(dir.path(), &tables::RATINGS, FileKind::Csv).unwrap();
    s.hold([rating("late", 3, 9), rating("b", 1, 10), rating("a", 1, 9)]);
    s.flush(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
        .unwrap();
    s.hold([rating("c", 2, 9)]);
    s.flush(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap())
        .unwrap();
    // 3 March is never flushed: finishing writes it.
    s.finish().unwrap();
    assert_eq!(
        ids(&dir.path().join("ratings.csv")),
        ["a", "b", "c", "late"]
    );
}

#[test]
fn poisson_keeps_its_mean_at_any_size() {
    // The mean of n draws has standard error sqrt(mean / n): 0.22 for
    // mean 10 and 4.5 for mean 5000 with n = 200 and 250; allow 4 of them.
    let mut rng = Rng(42);
    let small: u64 = (0..200).map(|_| rng.poisson(10.0)).sum();
    assert!((small as f64 / 200.0 - 10.0).abs() < 0.9, "{small}");
    let large: u64 = (0..250).map(|_| rng.poisson(5000.0)).sum();
    assert!((large as f64 / 250.0 - 5000.0).abs() < 18.0, "{large}");
}
