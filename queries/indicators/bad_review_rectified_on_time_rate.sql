-- id: bad_review_rectified_on_time_rate
-- name_zh: 差评整改按期率
-- name_en: Bad reviews rectified on time
-- unit: %
-- category: process
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 1
--
-- Bad reviews rectified or explained by their deadline
-- (followups.rectify_working_days working days), among those decided at
-- as-of (done, or deadline passed). By the month of the rating.
SELECT
    dept_id,
    received_at AS at,
    CASE WHEN rectify_status = 'on_time' THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM followup_status
WHERE subject_kind = 'rating' AND rectify_status <> 'open'
