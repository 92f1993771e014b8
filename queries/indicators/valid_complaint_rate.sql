-- id: valid_complaint_rate
-- name_zh: 有效投诉率（每千件）
-- name_en: Valid complaints per 1,000 cases
-- unit: per 1,000 cases
-- category: result
-- direction: lower
-- aggregate: ratio
-- scale: 1000
-- min_n: 10
--
-- Valid complaints received, per 1,000 cases received (cancelled cases
-- excluded). Complaint rows add to the numerator, case rows to the
-- denominator, each in the period it was received.
WITH valid_complaints AS (
    SELECT dept_id, received_at AS at, 1 AS numerator, 0 AS denominator
    FROM complaints
    WHERE valid
),
received_cases AS (
    SELECT dept_id, received_at AS at, 0 AS numerator, 1 AS denominator
    FROM cases
    WHERE status <> 'cancelled'
)
SELECT * FROM valid_complaints
UNION ALL
SELECT * FROM received_cases
