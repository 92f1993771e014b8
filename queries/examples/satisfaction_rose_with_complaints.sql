-- Departments whose satisfaction rose from one complete month to the next
-- while their valid complaint rate rose too: the source document's audit
-- trigger (满意度上升而投诉不降). One row per department x month.
-- (CTE names must not repeat a table's name: `satisfaction` is a mart.)
WITH monthly AS (
    SELECT dept_id, period, period_start, indicator_id, value
    FROM indicator_values
    WHERE grain = 'month'
      AND NOT is_partial
      AND (indicator_id = 'satisfaction' OR indicator_id = 'valid_complaint_rate')
),
satisfaction_by_month AS (
    SELECT
        dept_id,
        period,
        value AS satisfaction,
        LAG(value) OVER (PARTITION BY dept_id ORDER BY period_start) AS satisfaction_before
    FROM monthly
    WHERE indicator_id = 'satisfaction'
),
complaints_by_month AS (
    SELECT
        dept_id,
        period,
        value AS complaint_rate,
        LAG(value) OVER (PARTITION BY dept_id ORDER BY period_start) AS complaint_rate_before
    FROM monthly
    WHERE indicator_id = 'valid_complaint_rate'
)
SELECT
    s.dept_id,
    s.period,
    s.satisfaction_before,
    s.satisfaction,
    c.complaint_rate_before AS complaints_per_1000_before,
    c.complaint_rate AS complaints_per_1000
FROM satisfaction_by_month AS s
JOIN complaints_by_month AS c
  ON s.dept_id = c.dept_id AND s.period = c.period
WHERE s.satisfaction > s.satisfaction_before
  AND c.complaint_rate > c.complaint_rate_before
ORDER BY s.dept_id, s.period
