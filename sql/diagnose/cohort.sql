-- Every customer's first completed order, whether they repurchased within the horizon, and the
-- segments the repurchase rate is broken down by. Materialised once as table `cohort` for
-- repurchase_by_month.sql and repurchase_by_segment.sql.
--
-- Parameters (bound as typed values, never pasted):
--   $run_end_us  BIGINT  exclusive end of the run date, microseconds since the epoch (UTC)
--   $horizon_us  BIGINT  the repurchase horizon (60 days) in microseconds
-- Tables: `orders`, `order_items`, `products`, `users` (the raw partitions of the run date).
--
-- The definitions are the model's (sql/features/anchor_set.sql and anchors.sql): the anchor is the
-- customer's first order with status Complete (ties: the smaller order id); a repurchase is
-- another Complete order created strictly after it and at most the horizon later; the window is
-- closed when anchor + horizon is before the end of the run date. Statuses are as of the run date.
-- Segments: the customer's sign-up channel (users.traffic_source), the category of the first
-- order's most expensive item (ties: the smallest category name), the age band at sign-up.
WITH complete AS (
    SELECT order_id, user_id, created_at,
           CAST(created_at AS BIGINT) AS created_us,
           ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY CAST(created_at AS BIGINT), order_id) AS nth
    FROM orders
    WHERE status = 'Complete'
),
first_orders AS (
    SELECT order_id, user_id, created_at, created_us FROM complete WHERE nth = 1
),
repurchases AS (
    SELECT f.order_id, MIN(c.created_us) AS next_us
    FROM first_orders f
    JOIN complete c ON c.user_id = f.user_id
                   AND c.created_us > f.created_us
                   AND c.created_us <= f.created_us + $horizon_us
    GROUP BY f.order_id
),
top_price AS (
    SELECT i.order_id, MAX(i.sale_price) AS price
    FROM order_items i
    JOIN first_orders f ON f.order_id = i.order_id
    GROUP BY i.order_id
),
top_category AS (
    SELECT i.order_id, MIN(COALESCE(p.category, '(missing)')) AS category
    FROM order_items i
    JOIN top_price t ON t.order_id = i.order_id AND i.sale_price = t.price
    LEFT JOIN products p ON p.id = i.product_id
    GROUP BY i.order_id
)
SELECT f.user_id,
       CAST(date_part('year', f.created_at) * 100 + date_part('month', f.created_at) AS BIGINT) AS month,
       f.created_us + $horizon_us < $run_end_us       AS closed,
       r.next_us IS NOT NULL                          AS repurchased,
       COALESCE(u.traffic_source, '(missing)')        AS signup_channel,
       COALESCE(t.category, '(no items)')             AS first_category,
       CASE WHEN u.age IS NULL THEN '(missing)'
            WHEN u.age < 18 THEN 'under 18'
            WHEN u.age < 25 THEN '18-24'
            WHEN u.age < 35 THEN '25-34'
            WHEN u.age < 45 THEN '35-44'
            WHEN u.age < 55 THEN '45-54'
            WHEN u.age < 65 THEN '55-64'
            ELSE '65 and over' END                    AS age_band
FROM first_orders f
LEFT JOIN repurchases r ON r.order_id = f.order_id
LEFT JOIN users u ON u.id = f.user_id
LEFT JOIN top_category t ON t.order_id = f.order_id
