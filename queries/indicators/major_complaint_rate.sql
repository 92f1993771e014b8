-- id: major_complaint_rate
-- name_zh: 重大投诉率（每千件）
-- name_en: Major complaints per 1,000 cases
-- unit: per 1,000 cases
-- category: result
-- direction: lower
-- aggregate: ratio
-- scale: 1000
-- min_n: 10
--
-- Valid complaints of severity `major`, per 1,000 cases received.
WITH major_complaints AS (
    SELECT dept_id, received_at AS at, 1 AS numerator, 0 AS denominator
    FROM complaints
    WHERE valid AND severity = 'major'
),
received_cases AS (
    SELECT dept_id, received_at AS at, 0 AS numerator, 1 AS denominator
    FROM cases
    WHERE status <> 'cancelled'
)
SELECT * FROM major_complaints
UNION ALL
SELECT * FROM received_cases
