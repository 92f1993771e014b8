use super::*;

#[test]
fn quantile_interpolates_linearly() {
    // numpy.quantile([1, 2, 3, 4, 10], 0.9) = 4 + 0.6 * (10 - 4) = 7.6
    let mut v = vec![10.0, 1.0, 3.0, 2.0, 4.0];
    assert!((quantile(&mut v, 0.9).unwrap() - 7.6).abs() < 1e-12);
    assert_eq!(quantile(&mut [5.0], 0.9), Some(5.0));
    assert_eq!(quantile(&mut [], 0.9), None);
    // Ties, unsorted: numpy.quantile([1, 2, 2, 3], q) for q = 0, 0.5,
    // 0.9 and 1 is 1, 2, 2 + 0.7 * (3 - 2) = 2.7, and 3.
    for (q, expected) in [(0.0, 1.0), (0.5, 2.0), (0.9, 2.7), (1.0, 3.0)] {
        let got = quantile(&mut [3.0, 2.0, 1.0, 2.0], q).unwrap();
        assert!((got - expected).abs() < 1e-12, "q = {q}: {got}");
    }
}

#[test]
fn every_builtin_definition_parses() {
    for (stem, text) in BUILTIN {
        let i = parse(stem, text, stem).unwrap_or_else(|e| panic!("{stem}: {e:?}"));
        assert_eq!(i.id, stem);
    }
}

#[test]
fn header_problems_are_all_reported() {
    let text = "-- id: other\n-- name_zh: x\n-- unit: %\n-- category: outcome\n-- direction: up\n-- aggregate: ratio\nSELECT 1";
    let p = parse("mine", text, "mine.sql").unwrap_err();
    let all = p.join("\n");
    assert!(all.contains("missing `-- name_en: ...`"), "{all}");
    assert!(
        all.contains("id `other` must match the file name `mine.sql`"),
        "{all}"
    );
    assert!(all.contains("category `outcome`"), "{all}");
    assert!(all.contains("direction `up`"), "{all}");
}
