-- id: on_time_resolution_rate
-- name_zh: 按时办结率
-- name_en: On-time resolution rate
-- unit: %
-- category: result
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 5
--
-- Cases resolved by their deadline, among resolved and overdue cases
-- (pending and cancelled cases are not decided yet). By intake.
SELECT
    dept_id,
    received_at AS at,
    CASE WHEN on_time THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM cases
WHERE on_time IS NOT NULL
