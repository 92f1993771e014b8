-- Rejected input records per table and reason: what to fix in the exports.
SELECT
    "table",
    reason,
    COUNT(*) AS records
FROM rejects
GROUP BY "table", reason
ORDER BY "table", reason
