-- id: bad_review_rate
-- name_zh: 差评率
-- name_en: Bad-review rate
-- unit: %
-- category: result
-- direction: lower
-- aggregate: ratio
-- scale: 100
-- min_n: 5
--
-- Share of service objects' responses whose overall rating is in the
-- bottom two of five levels (不满意, 非常不满意). Ratings removed on appeal
-- are not in scored_ratings. One row per response.
WITH overall AS (
    SELECT dept_id, rated_at, score_100
    FROM scored_ratings
    WHERE item = 'overall'
      AND (rater_group = 'client_internal' OR rater_group = 'client_external')
)
SELECT
    dept_id,
    rated_at AS at,
    CASE WHEN score_100 <= 25 THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM overall
