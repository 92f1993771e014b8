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
-- Share of bad reviews among the ratings that can be one
-- (`followups.bad_review` in the policy: by default service objects'
-- overall ratings, bad in the bottom two of five levels, 不满意 and
-- 非常不满意). Ratings removed on appeal are not in scored_ratings. One
-- row per response.
SELECT
    dept_id,
    rated_at AS at,
    CASE WHEN bad_review THEN 1 ELSE 0 END AS numerator,
    1 AS denominator
FROM scored_ratings
WHERE bad_review IS NOT NULL
