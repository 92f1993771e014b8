-- Scored ratings per department and month, with the mean normalised score
-- (0-100). One row per department x month. Runs unchanged in
-- `scorecard query` and in DuckDB over the same lake (see queries/README.md).
WITH ratings_scaled AS (
    SELECT
        dept_id,
        month,
        rating_id,
        (score - scale_min) / (scale_max - scale_min) * 100 AS score_100
    FROM ratings
)
SELECT
    dept_id,
    month,
    COUNT(DISTINCT rating_id) AS responses,
    COUNT(*) AS items,
    AVG(score_100) AS mean_score_100
FROM ratings_scaled
GROUP BY dept_id, month
ORDER BY dept_id, month
