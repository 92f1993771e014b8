-- 服务之星 of the latest month with stars: department, person, composite,
-- ratings, fair mean and the reason, by department and rank.
WITH latest AS (
    SELECT MAX(period_start) AS period_start
    FROM service_stars
)
SELECT
    s.period,
    d.name AS department,
    s.rank,
    s.staff_id,
    s.name,
    s.composite,
    s.ratings,
    s.fair_mean,
    s.run_months,
    s.reason_zh
FROM service_stars AS s
JOIN latest AS l
  ON s.period_start = l.period_start
JOIN departments AS d
  ON s.dept_id = d.dept_id
ORDER BY d.dept_id, s.rank
