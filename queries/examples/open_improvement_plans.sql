-- Improvement plans still carried on their departments' scorecards at
-- as-of: owner, due date, completion and verification, the earliest due
-- first.
SELECT
    p.dept_id,
    d.name,
    p.plan_id,
    p.reason,
    p.indicator,
    p.owner,
    p.due_on,
    p.completion,
    p.verification
FROM plan_status AS p
JOIN departments AS d
  ON p.dept_id = d.dept_id
WHERE p.carried = true
ORDER BY p.due_on, p.plan_id
