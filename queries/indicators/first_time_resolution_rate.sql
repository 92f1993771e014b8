-- id: first_time_resolution_rate
-- name_zh: 一次性解决率
-- name_en: First-time resolution rate
-- unit: %
-- category: result
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 5
--
-- Resolved cases that were never reopened. By intake.
SELECT
    dept_id,
    received_at AS at,
    CASE WHEN reopen_count = 0 THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM cases
WHERE status = 'resolved'
