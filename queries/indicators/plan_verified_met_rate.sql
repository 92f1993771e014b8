-- id: plan_verified_met_rate
-- name_zh: 改进计划验证达标率
-- name_en: Improvement plans verified as met
-- unit: %
-- category: development
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 1
--
-- Improvement plans verified as met (the quality office's verdict, else
-- the plan's indicator against its target in the first complete period
-- after the due date), among those verified met or not met; plans not
-- measurable are left out. By the day the verification fell on.
SELECT
    dept_id,
    settled_on AS period_start,
    settled_on AS period_end,
    CASE WHEN verification = 'met' THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM plan_status
WHERE verification IN ('met', 'not_met')
