-- id: instant_handled_share
-- name_zh: 即办件占比
-- name_en: Instant-handled share
-- unit: %
-- category: result
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 5
--
-- Cases handled on the spot (即办件), among cases not cancelled whose
-- export says whether they were. By intake.
SELECT
    dept_id,
    received_at AS at,
    CASE WHEN instant THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM cases
WHERE status <> 'cancelled' AND instant IS NOT NULL
