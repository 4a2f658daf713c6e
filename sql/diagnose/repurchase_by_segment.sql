-- The repurchase rate of customers whose window has closed, by sign-up channel, by the category
-- of their first purchase and by age band.
--
-- Table: `cohort` (cohort.sql). No parameters. One row per (dimension, value); the rate is
-- `repurchased / closed`.
SELECT dimension, value,
       COUNT(*)                                                   AS closed,
       CAST(SUM(CASE WHEN repurchased THEN 1 ELSE 0 END) AS BIGINT) AS repurchased
FROM (
    SELECT 'sign-up channel' AS dimension, signup_channel AS value, repurchased FROM cohort WHERE closed
    UNION ALL
    SELECT 'category of first purchase' AS dimension, first_category AS value, repurchased FROM cohort WHERE closed
    UNION ALL
    SELECT 'age band' AS dimension, age_band AS value, repurchased FROM cohort WHERE closed
) segments
GROUP BY dimension, value
ORDER BY dimension, value
