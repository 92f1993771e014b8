-- id: satisfaction
-- name_zh: 服务对象满意度
-- name_en: Satisfaction
-- unit: points (0-100)
-- category: result
-- direction: higher
-- aggregate: per_period
-- min_n: 5
--
-- The satisfaction mart's `all` row: rater groups weighted by the policy.
-- One row per department x period; n is the number of responses.
SELECT
    dept_id,
    grain,
    period_start,
    value,
    n_ratings AS n
FROM satisfaction
WHERE rater_group = 'all'
