-- id: p90_resolution_hours
-- name_zh: 办理时长（90分位）
-- name_en: Resolution time, 90th percentile
-- unit: hours
-- category: result
-- direction: lower
-- aggregate: quantile
-- quantile: 0.9
-- min_n: 10
--
-- 90th percentile of resolution hours over resolved cases, computed per
-- period from the cases themselves (percentiles do not add up).
SELECT
    dept_id,
    received_at AS at,
    resolution_hours AS value
FROM cases
WHERE status = 'resolved'
