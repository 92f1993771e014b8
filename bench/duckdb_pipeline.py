#!/usr/bin/env python3
"""The comparison for bench/README.md: the pipeline's stages as a plain
DuckDB-SQL-plus-Jinja2 script, the way an analyst would write it.

    python3 bench/duckdb_pipeline.py INPUT OUT --as-of YYYY-MM-DD [--policy FILE]

Stages, each timed on stderr:
1. ingest: every CSV read as text, fields typed with TRY_CAST, a record
   with a required field that does not parse set aside as a reject,
   duplicates dropped by key (the last file's wins), one Parquet file per
   table and month;
2. cases: one row per case from its process events up to as-of (first
   response, resolution after the last reopening, suspended time taken
   out, deadlines from the event or the policy's service limits, status);
3. raters: per rater and year, an additive leniency (the mean of its
   scores' residuals from the department x item mean, on 0-100) with a
   t statistic, flagged at |t| >= 2 with 5 ratings or more; fair means;
4. indicators per department and month, quarter and year: satisfaction
   (rater groups weighted by the policy), good and bad review rates, valid
   complaints per 1,000 cases, on-time response and resolution,
   first-time resolution, mean and p90 resolution hours, visits per case,
   results notified, complaints rectified on time, and the measurements;
5. scores: each indicator's points against its department type's target
   (the policy's linear, ratio and levels rules), the total and the grade;
6. trends: per department, indicator and grain, the OLS slope and XmR
   limits over the last 12 periods;
7. render: one Jinja2 page per department and period and one overview per
   period, with a sparkline of the total.

What it does not do (so it does less work than `scorecard run`): no
per-line reject messages with line and column, no GB18030, no ingest log
or incremental reuse, an additive model fitted in one pass rather than
the backfitted one, no reliability (rwg, ICC), no appeals or closed
periods, no cross-checks, no run rules or Mann-Kendall test, no downloads
or data dictionary.
"""
import argparse
import os
import sys
import time
import tomllib

import duckdb
import jinja2

GRAINS = ("month", "quarter", "year")

started = time.perf_counter()


def step(name, t0):
    secs = time.perf_counter() - t0
    print(f"[{time.perf_counter() - started:6.1f}s] {name}: {secs:.1f} s", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("out")
    ap.add_argument("--as-of", required=True)
    ap.add_argument("--policy", default=os.path.join(os.path.dirname(__file__), "..", "pipeline", "policy", "default.toml"))
    a = ap.parse_args()
    policy = tomllib.load(open(a.policy, "rb"))
    os.makedirs(a.out, exist_ok=True)
    db = duckdb.connect()
    db.execute(f"SET threads = {os.cpu_count()}")
    end = f"TIMESTAMP '{a.as_of} 23:59:59.999999'"
    lake = os.path.join(a.out, "lake")
    os.makedirs(lake, exist_ok=True)

    # 1. ingest
    t0 = time.perf_counter()
    src = lambda name: os.path.join(a.input, name)
    def read(glob):
        return f"read_csv('{src(glob)}', all_varchar = true, header = true, filename = true, quote = '\"', escape = '\"', strict_mode = false, null_padding = true)"
    ts = lambda c: f"TRY_CAST({c} AS TIMESTAMP)"
    tables = {
        "ratings": (read("ratings/*.csv"), f"""
            rating_id, {ts('rated_at')} AS rated_at, dept_id, staff_id, rater_id, rater_group, item,
            TRY_CAST(score AS DOUBLE) AS score, TRY_CAST(scale_min AS DOUBLE) AS scale_min,
            TRY_CAST(scale_max AS DOUBLE) AS scale_max, case_id, channel, comment, filename""",
            "rating_id IS NOT NULL AND rated_at IS NOT NULL AND dept_id IS NOT NULL AND rater_id IS NOT NULL AND item IS NOT NULL AND score IS NOT NULL AND isfinite(score)",
            "rating_id, item", "rated_at"),
        "process_events": (read("process_events/*.csv"), f"""
            case_id, event, {ts('"at"')} AS event_at, dept_id, staff_id, service_type, {ts('due_at')} AS due_at,
            {ts('response_due_at')} AS response_due_at, TRY_CAST(instant AS BOOLEAN) AS instant, event_id, filename""",
            "case_id IS NOT NULL AND event IN ('received','visit','responded','transferred','suspended','resumed','resolved','reopened','notified','cancelled') AND event_at IS NOT NULL AND dept_id IS NOT NULL",
            "case_id, event, event_at", "event_at"),
        "complaints": (read("complaints.csv"), f"""
            complaint_id, {ts('received_at')} AS received_at, dept_id, severity, TRY_CAST(valid AS BOOLEAN) AS valid,
            case_id, root_cause, {ts('due_at')} AS due_at, {ts('rectified_at')} AS rectified_at, filename""",
            "complaint_id IS NOT NULL AND received_at IS NOT NULL AND dept_id IS NOT NULL",
            "complaint_id", "received_at"),
        "measurements": (read("measurements.csv"), """
            dept_id, metric, TRY_CAST(period_start AS DATE) AS period_start, TRY_CAST(period_end AS DATE) AS period_end,
            TRY_CAST(value AS DOUBLE) AS value, TRY_CAST(numerator AS DOUBLE) AS numerator,
            TRY_CAST(denominator AS DOUBLE) AS denominator, filename""",
            "dept_id IS NOT NULL AND metric IS NOT NULL AND period_start IS NOT NULL",
            "dept_id, metric, period_start", "period_start"),
    }
    db.execute(f"CREATE TABLE departments AS SELECT * FROM {read('departments.csv')}")
    rejects = 0
    for name, (source, typed, valid, key, month) in tables.items():
        db.execute(f"CREATE TEMP TABLE raw_{name} AS SELECT {typed} FROM {source}")
        rejects += db.execute(f"SELECT count(*) FROM raw_{name} WHERE NOT ({valid})").fetchone()[0]
        db.execute(f"""CREATE TABLE {name} AS SELECT * EXCLUDE (filename) FROM raw_{name} WHERE {valid}
                       QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY filename DESC) = 1""")
        db.execute(f"DROP TABLE raw_{name}")
        db.execute(f"""COPY (SELECT *, strftime({month}, '%Y-%m') AS month FROM {name})
                       TO '{lake}/{name}' (FORMAT parquet, PARTITION_BY (month), OVERWRITE_OR_IGNORE)""")
    step(f"ingest ({rejects} rejects)", t0)

    # 2. cases
    t0 = time.perf_counter()
    limits = policy.get("service_limits", {})
    default_hours = limits.get("default", {}).get("hours", 72)
    resp_hours = limits.get("default", {}).get("response_hours", 24)
    db.execute(f"""
    CREATE TABLE ev AS SELECT * FROM process_events WHERE event_at <= {end};
    CREATE TABLE suspended AS
      SELECT case_id, sum(date_diff('second', event_at, coalesce(next_at, {end}))) / 3600.0 AS hours
      FROM (SELECT case_id, event, event_at, lead(event_at) OVER (PARTITION BY case_id ORDER BY event_at) AS next_at
            FROM ev WHERE event IN ('suspended', 'resumed'))
      WHERE event = 'suspended' GROUP BY case_id;
    CREATE TABLE cases AS
    WITH c AS (
      SELECT case_id,
        arg_min(dept_id, event_at) FILTER (event = 'received') AS dept_id,
        min(event_at) FILTER (event = 'received') AS received_at,
        first(service_type ORDER BY event_at) FILTER (service_type IS NOT NULL) AS service_type,
        bool_or(instant) AS instant,
        min(event_at) FILTER (event = 'responded') AS first_response_at,
        min(due_at) AS given_due, min(response_due_at) AS given_response_due,
        max(event_at) FILTER (event = 'reopened') AS last_reopen,
        max(event_at) FILTER (event = 'resolved') AS last_resolved,
        max(event_at) FILTER (event = 'cancelled') AS cancelled_at,
        max(event_at) FILTER (event = 'notified') AS notified_at,
        count(*) FILTER (event = 'reopened') AS reopen_count,
        count(*) FILTER (event = 'visit') AS visit_count,
        count(*) FILTER (event = 'transferred') AS transfer_count
      FROM ev GROUP BY case_id)
    SELECT c.*, coalesce(given_due, received_at + INTERVAL {default_hours} HOUR) AS due_at,
      coalesce(given_response_due, received_at + INTERVAL {resp_hours} HOUR) AS response_due_at,
      CASE WHEN last_resolved IS NOT NULL AND (last_reopen IS NULL OR last_resolved > last_reopen) THEN last_resolved END AS resolved_at,
      coalesce(s.hours, 0) AS suspended_hours
    FROM c LEFT JOIN suspended s USING (case_id) WHERE received_at IS NOT NULL;
    CREATE OR REPLACE TABLE cases AS SELECT *,
      CASE WHEN resolved_at IS NOT NULL THEN 'resolved' WHEN cancelled_at IS NOT NULL THEN 'cancelled'
           WHEN due_at < {end} THEN 'overdue' ELSE 'pending' END AS status,
      CASE WHEN resolved_at IS NOT NULL THEN greatest(date_diff('second', received_at, resolved_at) / 3600.0 - suspended_hours, 0) END AS resolution_hours,
      CASE WHEN first_response_at IS NOT NULL THEN first_response_at <= response_due_at WHEN response_due_at < {end} THEN false END AS response_on_time,
      CASE WHEN resolved_at IS NOT NULL THEN resolved_at <= due_at WHEN cancelled_at IS NULL AND due_at < {end} THEN false END AS on_time
    FROM cases;
    COPY cases TO '{a.out}/cases.parquet' (FORMAT parquet);
    """)
    step("cases", t0)

    # 3. raters
    t0 = time.perf_counter()
    db.execute(f"""
    CREATE TABLE r AS SELECT *, year(rated_at) AS year,
      100 * (score - coalesce(scale_min, 1)) / (coalesce(scale_max, 5) - coalesce(scale_min, 1)) AS s100
    FROM ratings WHERE rated_at <= {end};
    CREATE TABLE r2 AS SELECT *, s100 - avg(s100) OVER (PARTITION BY dept_id, item, year) AS resid FROM r;
    CREATE TABLE rater_effects AS
      SELECT rater_id, year, count(*) AS n, avg(resid) AS effect,
        avg(resid) / nullif(stddev_samp(resid) / sqrt(count(*)), 0) AS t
      FROM r2 GROUP BY rater_id, year;
    CREATE TABLE rating_flags AS
      SELECT rater_id, year, CASE WHEN t > 0 THEN 'lenient' ELSE 'severe' END AS flag, effect, t
      FROM rater_effects WHERE abs(t) >= 2 AND n >= 5;
    CREATE TABLE rated AS SELECT r2.*, r2.s100 - coalesce(e.effect, 0) AS fair
      FROM r2 LEFT JOIN rater_effects e USING (rater_id, year);
    COPY rater_effects TO '{a.out}/rater_effects.parquet' (FORMAT parquet);
    COPY rating_flags TO '{a.out}/rating_flags.parquet' (FORMAT parquet);
    """)
    step("raters", t0)

    # 4. indicators
    t0 = time.perf_counter()
    weights = policy["versions"][-1]["group_weights"]
    wcase = " ".join(f"WHEN '{g}' THEN {w}" for g, w in weights.items() if g != "client")
    client = weights.get("client", 0)
    per = lambda g, col: f"date_trunc('{g}', {col})"
    parts = []
    for g in GRAINS:
        parts.append(f"""
        SELECT dept_id, '{g}' AS grain, {per(g, 'rated_at')} AS period, 'satisfaction' AS indicator,
               sum(m * w) / sum(w) AS value, sum(n) AS n FROM (
          SELECT dept_id, rated_at, rater_group, avg(fair) OVER (PARTITION BY dept_id, {per(g, 'rated_at')}, rater_group) AS m,
                 CASE rater_group {wcase} ELSE {client} END AS w, 1 AS n FROM rated) GROUP BY ALL
        UNION ALL
        SELECT dept_id, '{g}', {per(g, 'rated_at')}, 'good_review_rate', 100 * avg((s100 >= 75)::INT), count(*) FROM rated GROUP BY ALL
        UNION ALL
        SELECT dept_id, '{g}', {per(g, 'rated_at')}, 'bad_review_rate', 100 * avg((s100 <= 25)::INT), count(*) FROM rated GROUP BY ALL
        UNION ALL
        SELECT dept_id, '{g}', {per(g, 'received_at')}, unnest(['on_time_response_rate', 'on_time_resolution_rate', 'first_time_resolution_rate', 'mean_resolution_hours', 'p90_resolution_hours', 'visits_per_case', 'instant_handled_share', 'result_notified_rate']),
               unnest([100 * avg(response_on_time::INT), 100 * avg(on_time::INT), 100 * avg((reopen_count = 0)::INT) FILTER (status = 'resolved'),
                       avg(resolution_hours), quantile_cont(resolution_hours, 0.9), avg(visit_count), 100 * avg(instant::INT),
                       100 * avg((notified_at IS NOT NULL)::INT) FILTER (status = 'resolved')]), count(*)
        FROM cases GROUP BY ALL
        UNION ALL
        SELECT k.dept_id, '{g}', k.period, 'valid_complaint_rate', 1000.0 * k.n / nullif(c.n, 0), c.n FROM
          (SELECT dept_id, {per(g, 'received_at')} AS period, count(*) FILTER (valid) AS n FROM complaints GROUP BY ALL) k
          JOIN (SELECT dept_id, {per(g, 'received_at')} AS period, count(*) AS n FROM cases GROUP BY ALL) c USING (dept_id, period)
        UNION ALL
        SELECT dept_id, '{g}', {per(g, 'received_at')}, 'complaint_rectified_on_time_rate', 100 * avg((rectified_at <= due_at)::INT) FILTER (valid), count(*) FROM complaints GROUP BY ALL
        UNION ALL
        SELECT dept_id, '{g}', {per(g, 'period_start')}, metric || '_rate', coalesce(100 * sum(numerator) / nullif(sum(denominator), 0), sum(value)), count(*) FROM measurements GROUP BY ALL
        """)
    db.execute("CREATE TABLE indicator_values AS " + " UNION ALL ".join(parts))
    db.execute(f"COPY indicator_values TO '{a.out}/indicator_values.parquet' (FORMAT parquet)")
    step("indicators", t0)

    # 5. scores
    t0 = time.perf_counter()
    rules = []
    for dtype, inds in policy["versions"][-1]["indicators"].items():
        for ind, r in inds.items():
            rules.append((dtype, ind, float(r["target"]), float(r["weight"]), r.get("rule", "linear"),
                          float(r.get("per", 1)), float(r.get("deduct", 1))))
    db.execute("CREATE TABLE rules (dept_type TEXT, indicator TEXT, target DOUBLE, weight DOUBLE, rule TEXT, per DOUBLE, deduct DOUBLE)")
    db.executemany("INSERT INTO rules VALUES (?, ?, ?, ?, ?, ?, ?)", rules)
    lower = ("valid_complaint_rate", "bad_review_rate", "mean_resolution_hours", "p90_resolution_hours", "visits_per_case")
    low = ", ".join(f"'{x}'" for x in lower)
    db.execute(f"""
    CREATE TABLE points AS SELECT v.dept_id, v.grain, v.period, v.indicator, v.value, r.weight,
      CASE WHEN v.value IS NULL THEN NULL
           WHEN r.rule = 'ratio' THEN least(r.weight, r.weight * v.value / nullif(r.target, 0))
           ELSE greatest(0, r.weight - r.deduct * ceil(greatest(0, CASE WHEN v.indicator IN ({low}) THEN v.value - r.target ELSE r.target - v.value END) / r.per))
      END AS points
    FROM indicator_values v JOIN departments d USING (dept_id) JOIN rules r ON r.dept_type = d.dept_type AND r.indicator = v.indicator;
    CREATE TABLE scores AS SELECT dept_id, grain, period, sum(points) AS total,
      CASE WHEN sum(points) >= 90 THEN 'excellent' WHEN sum(points) >= 80 THEN 'good' WHEN sum(points) >= 60 THEN 'pass' ELSE 'fail' END AS grade
    FROM points GROUP BY ALL;
    COPY scores TO '{a.out}/scores.parquet' (FORMAT parquet);
    """)
    step("scores", t0)

    # 6. trends
    t0 = time.perf_counter()
    db.execute(f"""
    CREATE TABLE series AS SELECT *, row_number() OVER (PARTITION BY dept_id, indicator, grain ORDER BY period DESC) AS back
    FROM (SELECT dept_id, grain, period, indicator, value FROM indicator_values UNION ALL
          SELECT dept_id, grain, period, 'total', total FROM scores);
    CREATE TABLE trends AS SELECT dept_id, indicator, grain, regr_slope(value, back * -1.0) AS slope,
      avg(value) AS centre, avg(mr) AS mean_mr, avg(value) + 2.66 * avg(mr) AS ucl, avg(value) - 2.66 * avg(mr) AS lcl
    FROM (SELECT *, abs(value - lag(value) OVER (PARTITION BY dept_id, indicator, grain ORDER BY period)) AS mr
          FROM series WHERE back <= 12) GROUP BY ALL;
    COPY trends TO '{a.out}/trends.parquet' (FORMAT parquet);
    """)
    step("trends", t0)

    # 7. render
    t0 = time.perf_counter()
    env = jinja2.Environment(autoescape=True)
    page = env.from_string(PAGE)
    overview = env.from_string(OVERVIEW)
    names = dict(db.execute("SELECT dept_id, name FROM departments").fetchall())
    rows = db.execute("""SELECT p.dept_id, p.grain, strftime(p.period, '%Y-%m') AS period, p.indicator, p.value, p.points, p.weight
                         FROM points p ORDER BY ALL""").fetchall()
    by_page = {}
    for dept, grain, period, ind, value, pts, weight in rows:
        by_page.setdefault((dept, grain, period), []).append((ind, value, pts, weight))
    totals = {}
    for dept, grain, period, total, grade in db.execute("SELECT dept_id, grain, strftime(period, '%Y-%m'), total, grade FROM scores ORDER BY ALL").fetchall():
        totals.setdefault((dept, grain), []).append((period, total, grade))
    trends = {(d, i, g): (s, u, l) for d, i, g, s, u, l in db.execute("SELECT dept_id, indicator, grain, slope, ucl, lcl FROM trends").fetchall()}
    site = os.path.join(a.out, "site")
    pages = 0
    for (dept, grain), series in totals.items():
        os.makedirs(os.path.join(site, "departments", dept), exist_ok=True)
        for i, (period, total, grade) in enumerate(series):
            window = [t for _, t, _ in series[max(0, i - 11): i + 1]]
            html = page.render(name=names.get(dept, dept), dept=dept, grain=grain, period=period, total=total, grade=grade,
                               rows=[(ind, v, p, w, trends.get((dept, ind, grain))) for ind, v, p, w in by_page.get((dept, grain, period), [])],
                               spark=sparkline(window))
            with open(os.path.join(site, "departments", dept, f"{grain}-{period}.html"), "w") as f:
                f.write(html)
            pages += 1
    league = {}
    for (dept, grain), series in totals.items():
        for period, total, grade in series:
            league.setdefault((grain, period), []).append((total or 0, dept, grade))
    os.makedirs(os.path.join(site, "periods"), exist_ok=True)
    for (grain, period), rows in league.items():
        rows.sort(reverse=True)
        with open(os.path.join(site, "periods", f"{grain}-{period}.html"), "w") as f:
            f.write(overview.render(grain=grain, period=period, rows=[(names.get(d, d), d, t, g) for t, d, g in rows]))
        pages += 1
    step(f"render ({pages} pages)", t0)
    total = time.perf_counter() - started
    print(f"total: {total:.1f} s", file=sys.stderr)


def sparkline(values):
    pts = [v for v in values if v is not None]
    if len(pts) < 2:
        return ""
    lo, hi = min(pts), max(pts)
    span = (hi - lo) or 1
    coords = " ".join(f"{i * 100 / (len(pts) - 1):.1f},{30 - 30 * (v - lo) / span:.1f}" for i, v in enumerate(pts))
    return f'<svg viewBox="0 0 100 30" width="200" height="60"><polyline fill="none" stroke="black" points="{coords}"/></svg>'


PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{{ name }} · {{ period }}</title></head><body>
<h1>{{ name }} <small>{{ grain }} {{ period }}</small></h1>
<p>Total {{ '%.1f' % total if total is not none else '–' }} · {{ grade }}</p>{{ spark | safe }}
<table><thead><tr><th>Indicator</th><th>Value</th><th>Points</th><th>Weight</th><th>Slope</th><th>Limits</th></tr></thead><tbody>
{% for ind, v, p, w, t in rows %}<tr><td>{{ ind }}</td><td>{{ '%.2f' % v if v is not none else '–' }}</td><td>{{ '%.1f' % p if p is not none else '–' }}</td><td>{{ w }}</td>
<td>{{ '%.3f' % t[0] if t and t[0] is not none else '' }}</td><td>{{ '%.1f–%.1f' % (t[2], t[1]) if t and t[1] is not none else '' }}</td></tr>
{% endfor %}</tbody></table></body></html>"""

OVERVIEW = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{{ grain }} {{ period }}</title></head><body>
<h1>{{ grain }} {{ period }}</h1><table><tbody>
{% for name, d, t, g in rows %}<tr><td>{{ loop.index }}</td><td><a href="../departments/{{ d }}/{{ grain }}-{{ period }}.html">{{ name }}</a></td><td>{{ '%.1f' % t }}</td><td>{{ g }}</td></tr>
{% endfor %}</tbody></table></body></html>"""

if __name__ == "__main__":
    main()
