-- Where the time of transferred cases went: hours held per department,
-- over cases transferred at least once (suspended time excluded).
WITH transferred AS (
    SELECT case_id, dept_id AS intake_dept
    FROM cases
    WHERE transfer_count > 0
)
SELECT
    t.intake_dept,
    ct.dept_id AS holding_dept,
    COUNT(*) AS cases,
    SUM(ct.hours) AS hours
FROM case_time AS ct
JOIN transferred AS t
  ON ct.case_id = t.case_id
GROUP BY t.intake_dept, ct.dept_id
ORDER BY t.intake_dept, hours DESC, ct.dept_id
