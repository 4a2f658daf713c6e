-- The browse → cart → purchase funnel of web sessions per calendar year (UTC) of their first
-- event.
--
-- Tables: `events` (the raw partition of the run date). No parameters. Each step is nested in the
-- one before: `browse` sessions viewed a product, `cart` sessions viewed a product and added to
-- the cart, `purchase` sessions did both and bought. Anonymous sessions count (they never buy).
WITH sessions AS (
    SELECT session_id,
           MIN(created_at) AS started_at,
           MAX(CASE WHEN event_type = 'product' THEN 1 ELSE 0 END)  AS browsed,
           MAX(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END)     AS carted,
           MAX(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS purchased
    FROM events
    GROUP BY session_id
)
SELECT CAST(date_part('year', started_at) AS BIGINT) AS year,
       COUNT(*)                                                                           AS sessions,
       CAST(SUM(browsed) AS BIGINT)                                                       AS browse,
       CAST(SUM(CASE WHEN browsed = 1 AND carted = 1 THEN 1 ELSE 0 END) AS BIGINT)        AS cart,
       CAST(SUM(CASE WHEN browsed = 1 AND carted = 1 AND purchased = 1 THEN 1 ELSE 0 END) AS BIGINT) AS purchase
FROM sessions
GROUP BY 1
ORDER BY 1
