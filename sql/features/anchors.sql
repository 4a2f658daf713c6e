-- Anchors, labels and point-in-time features for the 60-day repurchase model.
--
-- Parameters (bound as typed values, never pasted):
--   $run_end_us  BIGINT   exclusive end of the run date, microseconds since the epoch (UTC)
--   $horizon_us  BIGINT   label horizon (60 days) in microseconds
--   $first_only  BOOLEAN  true: anchor = each customer's first completed order;
--                         false: every completed order is an anchor
--
-- One row per anchor. Meta columns (never model features): user_id, order_id, anchor_time,
-- window_closed, label, repurchased_so_far. Every feature uses only rows strictly before the
-- anchor time, except the basket, which is the anchor order itself (known at that moment).
-- Timestamps are handled as BIGINT microseconds so all comparisons are exact; money is summed in
-- integer cents so that results do not depend on the order of parallel aggregation.
WITH
o AS (
    SELECT order_id, user_id, status, created_at,
           CAST(created_at AS BIGINT)   AS created_us,
           CAST(delivered_at AS BIGINT) AS delivered_us,
           CAST(returned_at AS BIGINT)  AS returned_us
    FROM orders
),
complete AS (
    SELECT order_id, user_id, created_at, created_us,
           ROW_NUMBER() OVER (PARTITION BY user_id ORDER BY created_us, order_id) AS nth
    FROM o
    WHERE status = 'Complete'
),
anchors AS (
    SELECT order_id, user_id, created_at AS anchor_time, created_us AS anchor_us
    FROM complete
    WHERE nth = 1 OR NOT $first_only
),
-- Another completed order strictly after the anchor and at most 60 days later. Only orders in
-- the extract (created before the run end) can be seen, hence window_closed below.
labels AS (
    SELECT a.order_id,
           MAX(CASE WHEN c.created_us > a.anchor_us AND c.created_us <= a.anchor_us + $horizon_us
                    THEN 1 ELSE 0 END) AS repurchased
    FROM anchors a
    LEFT JOIN complete c ON c.user_id = a.user_id AND c.order_id <> a.order_id
    GROUP BY a.order_id
),
-- The customer's orders before the anchor, as they stood at the anchor time: an order counts as
-- completed if it was delivered before the anchor and as returned if it was returned before it.
-- TheLook records no cancellation time, so a cancelled order created before the anchor counts
-- as an earlier cancellation.
history AS (
    SELECT a.order_id,
           COUNT(p.order_id) AS prev_orders,
           SUM(CASE WHEN p.delivered_us < a.anchor_us THEN 1 ELSE 0 END) AS prev_completed,
           SUM(CASE WHEN p.status = 'Cancelled' THEN 1 ELSE 0 END) AS prev_cancelled,
           SUM(CASE WHEN p.returned_us < a.anchor_us THEN 1 ELSE 0 END) AS prev_returned,
           MAX(p.created_us) AS last_order_us,
           MAX(CASE WHEN p.delivered_us < a.anchor_us THEN p.created_us END) AS last_completed_us
    FROM anchors a
    LEFT JOIN o p ON p.user_id = a.user_id AND p.created_us < a.anchor_us
    GROUP BY a.order_id
),
items AS (
    SELECT a.order_id, oi.id AS item_id,
           CAST(ROUND(oi.sale_price * 100) AS BIGINT) AS sale_cents,
           CAST(ROUND(pr.retail_price * 100) AS BIGINT) AS retail_cents,
           pr.category, pr.department, pr.brand, dc.name AS dc_name
    FROM anchors a
    JOIN order_items oi ON oi.order_id = a.order_id
    LEFT JOIN products pr ON pr.id = oi.product_id
    LEFT JOIN distribution_centers dc ON dc.id = pr.distribution_center_id
),
basket AS (
    SELECT order_id,
           COUNT(*) AS basket_items,
           SUM(sale_cents) AS basket_cents,
           SUM(retail_cents) AS basket_retail_cents,
           COUNT(DISTINCT category) AS basket_categories
    FROM items
    GROUP BY order_id
),
-- Category, department, brand and distribution centre of the basket's most expensive item.
main_item AS (
    SELECT order_id, category, department, brand, dc_name
    FROM (
        SELECT order_id, category, department, brand, dc_name,
               ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY sale_cents DESC, item_id) AS rn
        FROM items
    ) ranked
    WHERE rn = 1
),
-- Web events of the customer in the 30 days before the anchor (anonymous events have no user).
ev AS (
    SELECT a.order_id,
           SUM(CASE WHEN e.ts >= a.anchor_us - 604800000000 THEN 1 ELSE 0 END) AS events_7d,
           SUM(CASE WHEN e.ts >= a.anchor_us - 1209600000000 THEN 1 ELSE 0 END) AS events_14d,
           COUNT(*) AS events_30d,
           SUM(CASE WHEN e.ts >= a.anchor_us - 604800000000 AND e.traffic_source = 'Email' THEN 1 ELSE 0 END) AS email_events_7d,
           SUM(CASE WHEN e.ts >= a.anchor_us - 1209600000000 AND e.traffic_source = 'Email' THEN 1 ELSE 0 END) AS email_events_14d,
           SUM(CASE WHEN e.traffic_source = 'Email' THEN 1 ELSE 0 END) AS email_events_30d,
           SUM(CASE WHEN e.ts >= a.anchor_us - 604800000000 AND e.traffic_source = 'Adwords' THEN 1 ELSE 0 END) AS ads_events_7d,
           SUM(CASE WHEN e.ts >= a.anchor_us - 1209600000000 AND e.traffic_source = 'Adwords' THEN 1 ELSE 0 END) AS ads_events_14d,
           SUM(CASE WHEN e.traffic_source = 'Adwords' THEN 1 ELSE 0 END) AS ads_events_30d,
           SUM(CASE WHEN e.ts >= a.anchor_us - 604800000000 AND e.traffic_source IN ('Facebook', 'YouTube') THEN 1 ELSE 0 END) AS social_events_7d,
           SUM(CASE WHEN e.ts >= a.anchor_us - 1209600000000 AND e.traffic_source IN ('Facebook', 'YouTube') THEN 1 ELSE 0 END) AS social_events_14d,
           SUM(CASE WHEN e.traffic_source IN ('Facebook', 'YouTube') THEN 1 ELSE 0 END) AS social_events_30d,
           SUM(CASE WHEN e.ts >= a.anchor_us - 604800000000 AND e.traffic_source = 'Organic' THEN 1 ELSE 0 END) AS organic_events_7d,
           SUM(CASE WHEN e.ts >= a.anchor_us - 1209600000000 AND e.traffic_source = 'Organic' THEN 1 ELSE 0 END) AS organic_events_14d,
           SUM(CASE WHEN e.traffic_source = 'Organic' THEN 1 ELSE 0 END) AS organic_events_30d,
           COUNT(DISTINCT CASE WHEN e.ts >= a.anchor_us - 1209600000000 THEN e.session_id END) AS sessions_14d,
           COUNT(DISTINCT e.session_id) AS sessions_30d,
           SUM(CASE WHEN e.event_type = 'cart' THEN 1 ELSE 0 END) AS cart_events_30d
    FROM anchors a
    JOIN (
        SELECT user_id, session_id, traffic_source, event_type, CAST(created_at AS BIGINT) AS ts
        FROM events
        WHERE user_id IS NOT NULL
    ) e ON e.user_id = a.user_id
    WHERE e.ts < a.anchor_us AND e.ts >= a.anchor_us - 2592000000000
    GROUP BY a.order_id
)
SELECT
    a.user_id,
    a.order_id,
    a.anchor_time,
    a.anchor_us + $horizon_us < $run_end_us AS window_closed,
    CAST(l.repurchased AS BIGINT) AS label,
    -- features: the customer
    CAST(u.age AS DOUBLE) AS age,
    u.gender,
    u.country,
    u.traffic_source AS user_traffic_source,
    CAST(a.anchor_us - CAST(u.created_at AS BIGINT) AS DOUBLE) / 86400000000.0 AS tenure_days,
    -- features: the anchor moment
    CAST(date_part('hour', a.anchor_time) AS DOUBLE) AS anchor_hour,
    CAST(date_part('dow', a.anchor_time) AS DOUBLE) AS anchor_dow,
    -- features: the basket
    CAST(b.basket_items AS DOUBLE) AS basket_items,
    CAST(b.basket_cents AS DOUBLE) / 100.0 AS basket_value,
    CAST(b.basket_retail_cents AS DOUBLE) / 100.0 AS basket_retail_value,
    CAST(b.basket_categories AS DOUBLE) AS basket_categories,
    m.category AS main_category,
    m.department AS main_department,
    m.brand AS main_brand,
    m.dc_name AS main_distribution_center,
    -- features: order history before the anchor
    CAST(h.prev_orders AS DOUBLE) AS prev_orders,
    CAST(COALESCE(h.prev_completed, 0) AS DOUBLE) AS prev_completed,
    CAST(COALESCE(h.prev_cancelled, 0) AS DOUBLE) AS prev_cancelled,
    CAST(COALESCE(h.prev_returned, 0) AS DOUBLE) AS prev_returned,
    CAST(a.anchor_us - h.last_order_us AS DOUBLE) / 86400000000.0 AS days_since_prev_order,
    CAST(a.anchor_us - h.last_completed_us AS DOUBLE) / 86400000000.0 AS days_since_prev_completed,
    -- features: web events before the anchor
    CAST(COALESCE(ev.events_7d, 0) AS DOUBLE) AS events_7d,
    CAST(COALESCE(ev.events_14d, 0) AS DOUBLE) AS events_14d,
    CAST(COALESCE(ev.events_30d, 0) AS DOUBLE) AS events_30d,
    CAST(COALESCE(ev.email_events_7d, 0) AS DOUBLE) AS email_events_7d,
    CAST(COALESCE(ev.email_events_14d, 0) AS DOUBLE) AS email_events_14d,
    CAST(COALESCE(ev.email_events_30d, 0) AS DOUBLE) AS email_events_30d,
    CAST(COALESCE(ev.ads_events_7d, 0) AS DOUBLE) AS ads_events_7d,
    CAST(COALESCE(ev.ads_events_14d, 0) AS DOUBLE) AS ads_events_14d,
    CAST(COALESCE(ev.ads_events_30d, 0) AS DOUBLE) AS ads_events_30d,
    CAST(COALESCE(ev.social_events_7d, 0) AS DOUBLE) AS social_events_7d,
    CAST(COALESCE(ev.social_events_14d, 0) AS DOUBLE) AS social_events_14d,
    CAST(COALESCE(ev.social_events_30d, 0) AS DOUBLE) AS social_events_30d,
    CAST(COALESCE(ev.organic_events_7d, 0) AS DOUBLE) AS organic_events_7d,
    CAST(COALESCE(ev.organic_events_14d, 0) AS DOUBLE) AS organic_events_14d,
    CAST(COALESCE(ev.organic_events_30d, 0) AS DOUBLE) AS organic_events_30d,
    CAST(COALESCE(ev.sessions_14d, 0) AS DOUBLE) AS sessions_14d,
    CAST(COALESCE(ev.sessions_30d, 0) AS DOUBLE) AS sessions_30d,
    CAST(COALESCE(ev.cart_events_30d, 0) AS DOUBLE) AS cart_events_30d
FROM anchors a
JOIN labels l ON l.order_id = a.order_id
LEFT JOIN users u ON u.id = a.user_id
LEFT JOIN basket b ON b.order_id = a.order_id
LEFT JOIN main_item m ON m.order_id = a.order_id
LEFT JOIN history h ON h.order_id = a.order_id
LEFT JOIN ev ON ev.order_id = a.order_id
ORDER BY a.anchor_us, a.order_id
