-- The repurchase rate by calendar month (UTC) of the customers' first completed order.
--
-- Table: `cohort` (cohort.sql). No parameters. `closed` customers are those whose window had
-- closed by the end of the run date; the rate is `repurchased / closed` (the months of the last
-- horizon are not yet, or only partly, known).
SELECT month,
       COUNT(*)                                                             AS first_orders,
       CAST(SUM(CASE WHEN closed THEN 1 ELSE 0 END) AS BIGINT)                AS closed,
       CAST(SUM(CASE WHEN closed AND repurchased THEN 1 ELSE 0 END) AS BIGINT) AS repurchased
FROM cohort
GROUP BY month
ORDER BY month
