-- id: on_time_response_rate
-- name_zh: 响应及时率
-- name_en: On-time response rate
-- unit: %
-- category: result
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 5
--
-- Cases first responded to by their response deadline, among cases whose
-- response is decided at as-of (responded, or deadline passed). By intake.
SELECT
    dept_id,
    received_at AS at,
    CASE WHEN response_on_time THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM cases
WHERE response_on_time IS NOT NULL
