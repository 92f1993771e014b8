-- id: plan_completed_on_time_rate
-- name_zh: 改进计划按期完成率
-- name_en: Improvement plans completed on time
-- unit: %
-- category: development
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 1
--
-- Improvement plans whose measures were done by the due date in force
-- (extensions made before it count), among those due by as-of. By the
-- month of the due date.
SELECT
    dept_id,
    due_on AS period_start,
    due_on AS period_end,
    CASE WHEN completion = 'on_time' THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM plan_status
WHERE completion <> 'open'
