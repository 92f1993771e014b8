-- The league table of the latest complete month: one row per department,
-- ranked within its type, with grade and bonus coefficient.
WITH latest AS (
    SELECT MAX(period_start) AS period_start
    FROM department_scores
    WHERE grain = 'month' AND NOT is_partial
)
SELECT
    s.period,
    s.dept_type,
    s.rank_in_type,
    s.dept_id,
    d.name,
    s.total_score,
    s.grade,
    s.bonus_coefficient,
    s.veto
FROM department_scores AS s
JOIN latest AS l
  ON s.period_start = l.period_start
JOIN departments AS d
  ON s.dept_id = d.dept_id
WHERE s.grain = 'month'
ORDER BY s.dept_type, s.rank_in_type, s.dept_id
