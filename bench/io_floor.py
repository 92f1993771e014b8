#!/usr/bin/env python3
"""The I/O floor: polars itself reading an input folder's CSV files and
writing each table as Parquet, with no validation, typing or deduplication.

Usage: io_floor.py INPUT OUT

Prints one JSON object: seconds, rows and input bytes. What `scorecard run`
costs beyond this is the price of checking, typing, scoring and rendering.
"""

import json
import sys
import time
from pathlib import Path

import polars as pl


def main():
    src, dst = Path(sys.argv[1]), Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    rows = 0
    size = 0
    tables = sorted({p.stem for p in src.glob("*.csv")} | {p.name for p in src.iterdir() if p.is_dir()})
    for table in tables:
        files = sorted(src.glob(f"{table}/**/*.csv")) + sorted(src.glob(f"{table}.csv"))
        if not files:
            continue
        size += sum(f.stat().st_size for f in files)
        # Every column as text: reading and writing only.
        lf = pl.scan_csv([str(f) for f in files], infer_schema=False)
        lf.sink_parquet(dst / f"{table}.parquet")
        rows += pl.scan_parquet(dst / f"{table}.parquet").select(pl.len()).collect().item()
    print(json.dumps({"seconds": time.perf_counter() - start, "rows": rows, "bytes": size}))


if __name__ == "__main__":
    main()
