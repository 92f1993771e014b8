-- id: complaint_rectified_on_time_rate
-- name_zh: 投诉整改按时率
-- name_en: Complaints rectified on time
-- unit: %
-- category: development
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 1
--
-- Valid complaints rectified by their deadline, among those decided at
-- as-of (rectified, or deadline passed). By the month received.
SELECT
    dept_id,
    received_at AS at,
    CASE WHEN rectification = 'on_time' THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM complaints
WHERE valid AND rectification <> 'open'
