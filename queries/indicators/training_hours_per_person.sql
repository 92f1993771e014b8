-- id: training_hours_per_person
-- name_zh: 人均服务培训时长（月）
-- name_en: Training hours per person per month
-- unit: hours per person-month
-- category: development
-- direction: higher
-- aggregate: ratio
-- min_n: 1
--
-- Service training hours divided by headcount, month by month: over a
-- quarter or year it is the average monthly hours per person (the
-- document's 20 hours a year is about 1.7 a month).
WITH hours AS (
    SELECT dept_id, period_start, period_end, value AS numerator, 0 AS denominator
    FROM measurements
    WHERE metric = 'training_hours'
),
headcount AS (
    SELECT dept_id, period_start, period_end, 0 AS numerator, value AS denominator
    FROM measurements
    WHERE metric = 'headcount'
)
SELECT * FROM hours
UNION ALL
SELECT * FROM headcount
