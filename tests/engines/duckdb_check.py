#!/usr/bin/env python3
"""Reads a scorecard output folder with DuckDB, as a data team would.

Usage: duckdb_check.py OUT SCORECARD

Checks, and exits 1 listing every failure:
  * every lake table (hive-partitioned by month), the rejects and every mart
    load in DuckDB with exactly the columns and types that the site's
    downloads/data-dictionary.csv states, and with the same row counts as
    `scorecard query` gives;
  * every file in queries/examples/ runs in DuckDB and returns the same rows,
    in the same order, as `scorecard query` (floats to 1e-9 relative).
"""

import csv
import math
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

# Polars type names (as the dictionary gives them) -> DuckDB's.
TYPES = {
    "str": "VARCHAR",
    "f64": "DOUBLE",
    "i64": "BIGINT",
    "i32": "INTEGER",
    "u32": "UINTEGER",
    "bool": "BOOLEAN",
    "date": "DATE",
    "datetime[μs, UTC]": "TIMESTAMP WITH TIME ZONE",
}

ROOT = Path(__file__).resolve().parents[2]


def scorecard_query(scorecard, out, sql, dest):
    subprocess.run(
        [scorecard, "query", "--out", str(out), "--output", str(dest), sql],
        check=True,
        capture_output=True,
    )


def same(a, b):
    if isinstance(a, float) or isinstance(b, float):
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
            return False
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b


def main():
    out, scorecard = Path(sys.argv[1]), sys.argv[2]
    failures = []
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")

    dictionary = {}
    with open(out / "site" / "downloads" / "data-dictionary.csv", newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            dictionary.setdefault(row["dataset"], []).append((row["column"], row["type"]))

    # Register every dataset under the name `scorecard query` uses.
    for dataset in dictionary:
        kind, _, name = dataset.partition("/")
        if dataset == "rejects":
            name, source = "rejects", f"read_parquet('{out}/rejects/rejects.parquet')"
        elif kind == "lake" and (out / "lake" / name).is_dir():
            source = f"read_parquet('{out}/lake/{name}/*/*.parquet', hive_partitioning = true)"
        elif kind == "lake":
            source = f"read_parquet('{out}/lake/{name}.parquet')"
        else:
            source = f"read_parquet('{out}/marts/{name}.parquet')"
        con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM {source}')

        got = [(r[0], r[1]) for r in con.execute(f'DESCRIBE "{name}"').fetchall()]
        want = [(c, TYPES.get(t, f"unmapped polars type {t}")) for c, t in dictionary[dataset]]
        if got != want:
            failures.append(f"{dataset}: DuckDB reads columns {got}, the dictionary states {want}")
        (n_duck,) = con.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "n.parquet"
            scorecard_query(scorecard, out, f"SELECT COUNT(*) AS n FROM {name}", dest)
            (n_ours,) = con.execute(f"SELECT n FROM read_parquet('{dest}')").fetchone()
        if n_duck != n_ours:
            failures.append(f"{dataset}: DuckDB counts {n_duck} rows, scorecard query {n_ours}")
        print(f"{dataset}: {len(got)} columns, {n_duck} rows")

    examples = sorted((ROOT / "queries" / "examples").glob("*.sql"))
    for path in examples:
        sql = path.read_text(encoding="utf-8")
        try:
            duck = con.execute(sql)
            cols = [d[0] for d in duck.description]
            rows = duck.fetchall()
        except duckdb.Error as e:
            failures.append(f"{path.name}: DuckDB cannot run it: {e}")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            dest = Path(tmp) / "result.parquet"
            try:
                scorecard_query(scorecard, out, str(path), dest)
            except subprocess.CalledProcessError as e:
                failures.append(f"{path.name}: scorecard query failed: {e.stderr.decode()}")
                continue
            ours = con.execute(f"SELECT * FROM read_parquet('{dest}')")
            our_cols = [d[0] for d in ours.description]
            our_rows = ours.fetchall()
        if cols != our_cols:
            failures.append(f"{path.name}: columns {cols} in DuckDB, {our_cols} in scorecard query")
        elif len(rows) != len(our_rows):
            failures.append(f"{path.name}: {len(rows)} rows in DuckDB, {len(our_rows)} in scorecard query")
        else:
            for i, (a, b) in enumerate(zip(rows, our_rows)):
                if not all(same(x, y) for x, y in zip(a, b)):
                    failures.append(f"{path.name}: row {i + 1} is {a} in DuckDB, {b} in scorecard query")
                    break
        print(f"{path.name}: {len(rows)} rows, same in both")

    if not examples:
        failures.append("queries/examples/ holds no .sql files")
    for f in failures:
        print(f"FAIL {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
