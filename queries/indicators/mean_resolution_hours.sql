-- id: mean_resolution_hours
-- name_zh: 平均办理时长
-- name_en: Mean resolution time
-- unit: hours
-- category: result
-- direction: lower
-- aggregate: mean
-- min_n: 5
--
-- Hours from receipt to final resolution, suspended time excluded, over
-- resolved cases. By intake.
SELECT
    dept_id,
    received_at AS at,
    resolution_hours AS value
FROM cases
WHERE status = 'resolved'
