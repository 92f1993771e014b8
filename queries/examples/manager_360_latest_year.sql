-- Managers' 360 of the latest closed year: each published row by rater
-- group (rolled-up groups in `groups`, withheld means with the reason).
WITH latest AS (
    SELECT MAX(period_start) AS period_start
    FROM manager_feedback
    WHERE grain = 'year'
)
SELECT
    f.period,
    d.name AS department,
    f.staff_id,
    f.rater_group,
    f.groups,
    f.raters,
    f.ratings,
    f.mean,
    f.withheld
FROM manager_feedback AS f
JOIN latest AS l
  ON f.period_start = l.period_start
JOIN departments AS d
  ON f.dept_id = d.dept_id
WHERE f.grain = 'year'
ORDER BY d.dept_id, f.staff_id, f.rater_group
