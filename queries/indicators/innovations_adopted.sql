-- id: innovations_adopted
-- name_zh: 服务创新
-- name_en: Service innovation
-- unit: level (0/10/20)
-- category: development
-- direction: higher
-- aggregate: mean
-- min_n: 1
--
-- Behaviour-anchored level of service innovation reported each quarter:
-- 20 = proposed and implemented with clear effect, 10 = took part and made
-- reasonable suggestions, 0 = did not take part. Over a year, the mean.
SELECT
    dept_id,
    period_start,
    period_end,
    value
FROM measurements
WHERE metric = 'innovation_level'
