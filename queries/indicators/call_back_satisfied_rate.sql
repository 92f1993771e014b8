-- id: call_back_satisfied_rate
-- name_zh: 回访满意率
-- name_en: Call-backs satisfied
-- unit: %
-- category: result
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 1
--
-- Bad reviews and complaints called back with an outcome whose outcome
-- (of the last call-back that gave one) is satisfied; partly satisfied
-- counts as not satisfied. By the month of the rating or complaint.
SELECT
    dept_id,
    received_at AS at,
    CASE WHEN call_back_outcome = 'satisfied' THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM followup_status
WHERE call_back_outcome IS NOT NULL
