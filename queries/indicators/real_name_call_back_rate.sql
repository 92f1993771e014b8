-- id: real_name_call_back_rate
-- name_zh: 实名差评回访率
-- name_en: Real-name bad reviews called back
-- unit: %
-- category: process
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 1
--
-- Bad reviews owed a call-back (by default those of raters who gave their
-- name) whose rater was called back by the deadline
-- (followups.call_back_working_days working days), among those decided at
-- as-of (called back, or deadline passed). By the month of the rating.
SELECT
    dept_id,
    received_at AS at,
    CASE WHEN call_back_status = 'on_time' THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM followup_status
WHERE subject_kind = 'rating' AND call_back_required AND call_back_status <> 'open'
