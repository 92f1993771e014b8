use super::*;

fn frame(ids: &[&str], months: &[i32], values: &[i64]) -> DataFrame {
    df!("case_id" => ids, "month" => months, "v" => values).unwrap()
}

fn rows(df: &DataFrame) -> Vec<(String, i32, i64)> {
    let ids = df.column("case_id").unwrap().str().unwrap().clone();
    let months = df.column("month").unwrap().i32().unwrap().clone();
    let values = df.column("v").unwrap().i64().unwrap().clone();
    (0..df.height())
        .map(|i| {
            let id = ids.get(i).unwrap().to_string();
            (id, months.get(i).unwrap(), values.get(i).unwrap())
        })
        .collect()
}

/// The rows `merge_in_order` gives, which must merge.
fn merged(
    old: &DataFrame,
    again: &[&str],
    new: &DataFrame,
    by: &[&str],
) -> Vec<(String, i32, i64)> {
    let again: BTreeSet<&str> = again.iter().copied().collect();
    rows(&merge_in_order(old, &again, new, by).unwrap())
}

fn owned(rows: &[(&str, i32, i64)]) -> Vec<(String, i32, i64)> {
    rows.iter()
        .map(|&(id, m, v)| (id.to_string(), m, v))
        .collect()
}

#[test]
fn kept_rows_and_derived_rows_merge_in_key_order() {
    let old = frame(&["a", "b", "c", "d"], &[1, 1, 1, 1], &[1, 2, 3, 4]);
    let new = frame(&["b", "e"], &[1, 1], &[20, 50]);
    // By hand: b and d are derived again (b's new row replaces its
    // kept row, d has none now), e is new and goes last.
    assert_eq!(
        merged(&old, &["b", "d"], &new, &["case_id"]),
        owned(&[("a", 1, 1), ("b", 1, 20), ("c", 1, 3), ("e", 1, 50)])
    );
}

#[test]
fn among_equal_keys_kept_rows_come_first_as_in_a_stable_sort() {
    // Two key columns; "a" is not derived again, so its kept rows stay
    // and a new row with an equal key follows them (a stable sort of
    // the kept rows, then the new ones, puts it there).
    let old = frame(&["a", "a", "c"], &[1, 2, 1], &[1, 2, 3]);
    let new = frame(&["a", "c"], &[1, 0], &[10, 30]);
    assert_eq!(
        merged(&old, &["c"], &new, &["case_id", "month"]),
        owned(&[("a", 1, 1), ("a", 1, 10), ("a", 2, 2), ("c", 0, 30)])
    );
}

#[test]
fn rows_out_of_key_order_are_refused() {
    let sorted = frame(&["a", "b"], &[1, 1], &[1, 2]);
    let unsorted = frame(&["b", "a"], &[1, 1], &[2, 1]);
    let none = BTreeSet::new();
    for (old, new) in [(&unsorted, &sorted), (&sorted, &unsorted)] {
        let refused = merge_in_order(old, &none, new, &["case_id"]).unwrap_err();
        assert!(refused.to_string().contains("not in case order"));
    }
    // Text order is by bytes: "B" (0x42) before "a" (0x61).
    let bytes = frame(&["B", "a"], &[1, 1], &[1, 2]);
    assert!(merge_in_order(&bytes, &none, &sorted, &["case_id"]).is_ok());
}
