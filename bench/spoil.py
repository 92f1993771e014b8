"""Copies an input folder with a share of its ratings and process-event
records spoiled, for timing ingest on bad input against the clean set.

    python3 bench/spoil.py INPUT OUTPUT [--share 0.01]

Every 1/share-th data line of each CSV file under `ratings/` and
`process_events/` is spoiled in one of six ways, in turn: a timestamp that
is not one, a department that does not exist, a score that is not a number
(events: an unknown event), a required field emptied, a field too many, a
line cut short. Other files are linked unchanged. Each spoiled line is one
reject, so ingest must report about `share` of the records as rejected.
"""

import argparse
import os
import sys


def spoil(line: str, kind: int, columns: list) -> str:
    fields = line.split(",")
    if len(fields) != len(columns):
        return line  # quoted commas: leave the line alone
    def at(name):
        return columns.index(name) if name in columns else None
    time_col = at("rated_at") if at("rated_at") is not None else at("at")
    if kind == 0:
        fields[time_col] = "yesterday at noon"
    elif kind == 1:
        fields[at("dept_id")] = "no-such-department"
    elif kind == 2:
        if at("score") is not None:
            fields[at("score")] = "five"
        else:
            fields[at("event")] = "escalated"
    elif kind == 3:
        fields[at("dept_id")] = ""
    elif kind == 4:
        fields.append("extra")
    else:
        fields = fields[: len(fields) // 2]
    return ",".join(fields)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--share", type=float, default=0.01)
    args = ap.parse_args()
    every = max(1, round(1 / args.share))
    spoiled = total = 0
    for root, _, files in os.walk(args.input):
        rel = os.path.relpath(root, args.input)
        target = os.path.join(args.output, rel)
        os.makedirs(target, exist_ok=True)
        for name in sorted(files):
            src, dst = os.path.join(root, name), os.path.join(target, name)
            table = rel.split(os.sep)[0]
            if table not in ("ratings", "process_events") or not name.endswith(".csv"):
                if not os.path.exists(dst):
                    os.link(src, dst)
                continue
            with open(src, encoding="utf-8", newline="") as f:
                lines = f.read().split("\n")
            columns = lines[0].strip().split(",")
            for i in range(1, len(lines)):
                if lines[i] and i % every == 0:
                    lines[i] = spoil(lines[i], (i // every) % 6, columns)
                    spoiled += 1
                total += bool(lines[i])
            with open(dst, "w", encoding="utf-8", newline="") as f:
                f.write("\n".join(lines))
    print(f"spoiled {spoiled} of {total} records ({spoiled / max(total, 1):.2%})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
