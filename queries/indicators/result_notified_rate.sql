-- id: result_notified_rate
-- name_zh: 结果告知率
-- name_en: Result-notified rate
-- unit: %
-- category: result
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 5
--
-- Resolved cases whose applicant was notified of the result. By intake.
SELECT
    dept_id,
    received_at AS at,
    CASE WHEN notified THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM cases
WHERE status = 'resolved'
