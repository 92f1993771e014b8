-- id: good_review_rate
-- name_zh: 好评率
-- name_en: Good-review rate
-- unit: %
-- category: result
-- direction: higher
-- aggregate: ratio
-- scale: 100
-- min_n: 5
--
-- Share of service objects' responses whose overall rating is in the top
-- two of five levels (非常满意, 满意), as the 好差评 system counts good
-- reviews. One row per response.
WITH overall AS (
    SELECT dept_id, rated_at, score_100
    FROM scored_ratings
    WHERE item = 'overall'
      AND (rater_group = 'client_internal' OR rater_group = 'client_external')
)
SELECT
    dept_id,
    rated_at AS at,
    CASE WHEN score_100 >= 75 THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM overall
