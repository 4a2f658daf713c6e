-- Orders, customers, items and money per calendar month (UTC) of the orders' creation, every
-- status included: the store's volume and the "items per order" and "basket value" trends of the
-- original analysis.
--
-- Tables: `orders`, `order_items` (the raw partitions of the run date). No parameters.
-- `month` is year * 100 + month (202406). Money is summed in integer cents so that the result does
-- not depend on the order of parallel aggregation; an order without items counts 0 items, 0 cents.
WITH basket AS (
    SELECT order_id,
           COUNT(*) AS items,
           SUM(CAST(ROUND(sale_price * 100) AS BIGINT)) AS cents
    FROM order_items
    GROUP BY order_id
),
dated AS (
    SELECT CAST(date_part('year', o.created_at) * 100 + date_part('month', o.created_at) AS BIGINT) AS month,
           o.user_id,
           COALESCE(b.items, 0) AS items,
           COALESCE(b.cents, 0) AS cents
    FROM orders o
    LEFT JOIN basket b ON b.order_id = o.order_id
)
SELECT month,
       COUNT(*)                           AS orders,
       COUNT(DISTINCT user_id)            AS customers,
       CAST(SUM(items) AS BIGINT)         AS items,
       CAST(SUM(cents) AS BIGINT)         AS cents
FROM dated
GROUP BY month
ORDER BY month
