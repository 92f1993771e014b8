-- How often each department missed each indicator's target over the
-- complete months: where improvement work should start.
SELECT
    dept_id,
    indicator_id,
    COUNT(*) AS months_missed
FROM indicator_scores
WHERE grain = 'month'
  AND NOT is_partial
  AND status = 'missed'
GROUP BY dept_id, indicator_id
ORDER BY months_missed DESC, dept_id, indicator_id
