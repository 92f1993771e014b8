-- id: process_compliance_rate
-- name_zh: 流程合规率
-- name_en: Process compliance rate
-- unit: %
-- category: process
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 10
--
-- Audit sampling: sampled cases that followed the process, from the
-- `process_compliance` measurement. A measurement counts towards a period
-- only if it lies wholly inside it (a month's audit says nothing of weeks).
SELECT
    dept_id,
    period_start,
    period_end,
    numerator,
    denominator
FROM measurements
WHERE metric = 'process_compliance'
