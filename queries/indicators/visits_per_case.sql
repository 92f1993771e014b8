-- id: visits_per_case
-- name_zh: 群众跑动次数
-- name_en: Visits per case
-- unit: visits
-- category: result
-- direction: lower
-- aggregate: mean
-- min_n: 5
--
-- In-person visits per case (跑动次数), over cases not cancelled. By intake.
SELECT
    dept_id,
    received_at AS at,
    visit_count AS value
FROM cases
WHERE status <> 'cancelled'
