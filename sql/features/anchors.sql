-- Anchors, labels and point-in-time features for the 60-day repurchase model.
--
-- This is the one source of the feature logic: the Athena and DuckDB versions are generated from
-- this file by scripts/gen-sql (sql/features/anchors_athena.sql, bench/duckdb/anchors.sql), and so
-- are the column lists of sql/ddl/features_{train,score}.sql. Edit here, then run scripts/gen-sql;
-- tests/integration/sql_source.rs fails while a generated file is out of date.
--
-- Parameters (bound as typed values, never pasted):
--   $run_end_us  BIGINT   exclusive end of the run date, microseconds since the epoch (UTC)
--   $horizon_us  BIGINT   label horizon (60 days) in microseconds
-- Table `anchors` (order_id, user_id, anchor_time, anchor_us) comes from
-- sql/features/anchor_set.sql, materialised once before this query: each customer's first
-- completed order, or every completed order. Table `items` (the anchor baskets' items with their
-- product and distribution centre) comes from sql/features/anchor_items.sql, materialised after it.
--
-- One row per anchor. Meta columns (never model features): user_id, order_id, anchor_time,
-- window_closed, label (repurchased_so_far in the score partition), days_to_repurchase (days
-- from the anchor to the repurchase, for the elapsed-time adjustment of scores) and
-- repurchase_pending (an order inside the window that had not reached the customer by the end of
-- the run date: a repurchase under way, or a label that may still turn). Every feature
-- uses only rows strictly before the anchor time, except the basket, which is the anchor order
-- itself (known at that moment). A timestamp of a row (delivery, return) counts only when it is
-- before the anchor: statuses are re-derived as they stood at the anchor.
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
    SELECT order_id, user_id, created_at, created_us
    FROM o
    WHERE status = 'Complete'
),
-- Another completed order strictly after the anchor and at most 60 days later. Only orders in
-- the extract (created before the run end) can be seen, hence window_closed below.
labels AS (
    SELECT a.order_id,
           MIN(CASE WHEN c.created_us > a.anchor_us AND c.created_us <= a.anchor_us + $horizon_us
                    THEN c.created_us END) AS next_us
    FROM anchors a
    LEFT JOIN complete c ON c.user_id = a.user_id AND c.order_id <> a.order_id
    GROUP BY a.order_id
),
-- Orders inside the window still on their way at the end of the run date (Processing or Shipped):
-- they become Complete (a repurchase) days after they were created.
in_transit AS (
    SELECT a.order_id, COUNT(*) AS orders_in_transit
    FROM anchors a
    JOIN o p ON p.user_id = a.user_id
    WHERE p.status IN ('Processing', 'Shipped')
      AND p.created_us > a.anchor_us AND p.created_us <= a.anchor_us + $horizon_us
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
           MIN(p.created_us) AS first_order_us,
           MAX(p.created_us) AS last_order_us,
           MAX(CASE WHEN p.delivered_us < a.anchor_us THEN p.created_us END) AS last_completed_us,
           AVG(CAST(date_part('hour', p.created_at) AS DOUBLE)) AS prev_order_hour_mean
    FROM anchors a
    LEFT JOIN o p ON p.user_id = a.user_id AND p.created_us < a.anchor_us
    GROUP BY a.order_id
),
-- Distinct counts are taken in two steps, distinct values per group through grouping sets and
-- then COUNT (which skips NULL, like COUNT(DISTINCT)): DataFusion's COUNT(DISTINCT) on strings
-- keeps a preallocated hash set of several KiB per group and accumulator, so its memory grew with
-- the number of anchors (gigabytes at 1M customers).
basket_distinct AS (
    SELECT order_id,
           COUNT(category) AS basket_categories,
           COUNT(brand) AS basket_brands,
           COUNT(dc_name) AS basket_distribution_centers
    FROM (
        SELECT order_id, category, brand, dc_name
        FROM items
        GROUP BY GROUPING SETS ((order_id, category), (order_id, brand), (order_id, dc_name))
    ) d
    GROUP BY order_id
),
basket AS (
    SELECT s.*, d.basket_categories, d.basket_brands, d.basket_distribution_centers
    FROM (
        SELECT order_id,
               COUNT(*) AS basket_items,
               SUM(sale_cents) AS basket_cents,
               SUM(retail_cents) AS basket_retail_cents,
               MAX(sale_cents) AS basket_max_cents
        FROM items
        GROUP BY order_id
    ) s
    JOIN basket_distinct d ON d.order_id = s.order_id
),
-- Category, department, brand, product and distribution centre of the basket's most expensive item
-- (and its rank, 1, which nothing reads).
main_item AS (
    SELECT *
    FROM (
        SELECT order_id, category, department, brand, product_name, dc_name,
               ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY sale_cents DESC, item_id) AS rn
        FROM items
    ) ranked
    WHERE rn = 1
),
-- Items the customer ordered before the anchor: monetary value, returns as they stood at the
-- anchor, and affinity to the anchor basket's main category and brand.
prev_rows AS (
    SELECT a.order_id, a.anchor_us, oi.sale_price, oi.delivered_at, oi.returned_at,
           pr.category, pr.brand
    FROM anchors a
    JOIN order_items oi ON oi.user_id = a.user_id AND CAST(oi.created_at AS BIGINT) < a.anchor_us
    LEFT JOIN products pr ON pr.id = oi.product_id
),
prev_distinct AS (
    SELECT order_id,
           COUNT(category) AS prev_categories,
           COUNT(brand) AS prev_brands
    FROM (
        SELECT order_id, category, brand
        FROM prev_rows
        GROUP BY GROUPING SETS ((order_id, category), (order_id, brand))
    ) d
    GROUP BY order_id
),
prev_items AS (
    SELECT s.*, d.prev_categories, d.prev_brands
    FROM (
        SELECT p.order_id,
               COUNT(*) AS prev_items,
               SUM(CAST(ROUND(p.sale_price * 100) AS BIGINT)) AS prev_item_cents,
               SUM(CASE WHEN CAST(p.delivered_at AS BIGINT) < p.anchor_us
                        THEN CAST(ROUND(p.sale_price * 100) AS BIGINT) ELSE 0 END) AS prev_delivered_cents,
               SUM(CASE WHEN CAST(p.returned_at AS BIGINT) < p.anchor_us THEN 1 ELSE 0 END) AS prev_items_returned,
               SUM(CASE WHEN p.category = m.category THEN 1 ELSE 0 END) AS prev_items_same_category,
               SUM(CASE WHEN p.brand = m.brand THEN 1 ELSE 0 END) AS prev_items_same_brand
        FROM prev_rows p
        LEFT JOIN main_item m ON m.order_id = p.order_id
        GROUP BY p.order_id
    ) s
    JOIN prev_distinct d ON d.order_id = s.order_id
),
-- The customer's web events before the anchor (anonymous events have no user).
ev_rows AS (
    SELECT a.order_id, a.anchor_us, e.session_id, e.traffic_source, e.event_type, e.ts, e.hour
    FROM anchors a
    JOIN (
        SELECT user_id, session_id, traffic_source, event_type,
               CAST(created_at AS BIGINT) AS ts,
               CAST(date_part('hour', created_at) AS DOUBLE) AS hour
        FROM events
        WHERE user_id IS NOT NULL
    ) e ON e.user_id = a.user_id
    WHERE e.ts < a.anchor_us
),
-- Sessions before the anchor, each seen only through its events before the anchor. A browse
-- session is one without a purchase event; a cart abandonment reached the cart but not a purchase.
-- The event counters are summed per session first and then per anchor, so the events are scanned
-- and joined once. Sums of integer-valued doubles (hours, 0/1) are exact, so the means below equal
-- AVG over the events bit for bit.
sess AS (
    SELECT order_id, anchor_us, session_id,
           MIN(ts) AS start_us,
           MAX(ts) AS end_us,
           COUNT(*) AS events,
           MAX(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS has_cart,
           MAX(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS has_purchase,
           SUM(CASE WHEN ts >= anchor_us - 604800000000 THEN 1 ELSE 0 END) AS events_7d,
           SUM(CASE WHEN ts >= anchor_us - 1209600000000 THEN 1 ELSE 0 END) AS events_14d,
           SUM(CASE WHEN ts >= anchor_us - 2592000000000 THEN 1 ELSE 0 END) AS events_30d,
           SUM(CASE WHEN ts >= anchor_us - 604800000000 AND traffic_source = 'Email' THEN 1 ELSE 0 END) AS email_events_7d,
           SUM(CASE WHEN ts >= anchor_us - 1209600000000 AND traffic_source = 'Email' THEN 1 ELSE 0 END) AS email_events_14d,
           SUM(CASE WHEN ts >= anchor_us - 2592000000000 AND traffic_source = 'Email' THEN 1 ELSE 0 END) AS email_events_30d,
           SUM(CASE WHEN ts >= anchor_us - 604800000000 AND traffic_source = 'Adwords' THEN 1 ELSE 0 END) AS ads_events_7d,
           SUM(CASE WHEN ts >= anchor_us - 1209600000000 AND traffic_source = 'Adwords' THEN 1 ELSE 0 END) AS ads_events_14d,
           SUM(CASE WHEN ts >= anchor_us - 2592000000000 AND traffic_source = 'Adwords' THEN 1 ELSE 0 END) AS ads_events_30d,
           SUM(CASE WHEN ts >= anchor_us - 604800000000 AND traffic_source IN ('Facebook', 'YouTube') THEN 1 ELSE 0 END) AS social_events_7d,
           SUM(CASE WHEN ts >= anchor_us - 1209600000000 AND traffic_source IN ('Facebook', 'YouTube') THEN 1 ELSE 0 END) AS social_events_14d,
           SUM(CASE WHEN ts >= anchor_us - 2592000000000 AND traffic_source IN ('Facebook', 'YouTube') THEN 1 ELSE 0 END) AS social_events_30d,
           SUM(CASE WHEN ts >= anchor_us - 604800000000 AND traffic_source = 'Organic' THEN 1 ELSE 0 END) AS organic_events_7d,
           SUM(CASE WHEN ts >= anchor_us - 1209600000000 AND traffic_source = 'Organic' THEN 1 ELSE 0 END) AS organic_events_14d,
           SUM(CASE WHEN ts >= anchor_us - 2592000000000 AND traffic_source = 'Organic' THEN 1 ELSE 0 END) AS organic_events_30d,
           SUM(CASE WHEN ts >= anchor_us - 2592000000000 AND event_type = 'cart' THEN 1 ELSE 0 END) AS cart_events_30d,
           SUM(hour) AS hour_sum,
           SUM(CASE WHEN hour >= 18 OR hour < 6 THEN 1.0 ELSE 0.0 END) AS evening_sum
    FROM ev_rows
    GROUP BY order_id, anchor_us, session_id
),
ev AS (
    SELECT order_id,
           SUM(events_7d) AS events_7d,
           SUM(events_14d) AS events_14d,
           SUM(events_30d) AS events_30d,
           SUM(email_events_7d) AS email_events_7d,
           SUM(email_events_14d) AS email_events_14d,
           SUM(email_events_30d) AS email_events_30d,
           SUM(ads_events_7d) AS ads_events_7d,
           SUM(ads_events_14d) AS ads_events_14d,
           SUM(ads_events_30d) AS ads_events_30d,
           SUM(social_events_7d) AS social_events_7d,
           SUM(social_events_14d) AS social_events_14d,
           SUM(social_events_30d) AS social_events_30d,
           SUM(organic_events_7d) AS organic_events_7d,
           SUM(organic_events_14d) AS organic_events_14d,
           SUM(organic_events_30d) AS organic_events_30d,
           SUM(cart_events_30d) AS cart_events_30d,
           SUM(events) AS events_all,
           MIN(start_us) AS first_event_us,
           SUM(hour_sum) / CAST(SUM(events) AS DOUBLE) AS event_hour_mean,
           SUM(evening_sum) / CAST(SUM(events) AS DOUBLE) AS event_evening_share,
           SUM(CASE WHEN start_us >= anchor_us - 1209600000000 THEN 1 ELSE 0 END) AS sessions_14d,
           SUM(CASE WHEN start_us >= anchor_us - 2592000000000 THEN 1 ELSE 0 END) AS sessions_30d,
           SUM(CASE WHEN start_us >= anchor_us - 7776000000000 THEN 1 ELSE 0 END) AS sessions_90d,
           COUNT(*) AS sessions_all,
           SUM(CASE WHEN has_purchase = 0 THEN 1 ELSE 0 END) AS browse_sessions_all,
           SUM(CASE WHEN has_purchase = 0 AND start_us >= anchor_us - 604800000000 THEN 1 ELSE 0 END) AS browse_sessions_7d,
           SUM(CASE WHEN has_purchase = 0 AND start_us >= anchor_us - 1209600000000 THEN 1 ELSE 0 END) AS browse_sessions_14d,
           SUM(CASE WHEN has_purchase = 0 AND start_us >= anchor_us - 2592000000000 THEN 1 ELSE 0 END) AS browse_sessions_30d,
           SUM(CASE WHEN has_cart = 1 AND has_purchase = 0 THEN 1 ELSE 0 END) AS cart_abandon_sessions_all,
           SUM(CASE WHEN has_cart = 1 AND has_purchase = 0 AND start_us >= anchor_us - 2592000000000 THEN 1 ELSE 0 END) AS cart_abandon_sessions_30d,
           AVG(CAST(events AS DOUBLE)) AS events_per_session,
           MAX(CASE WHEN has_purchase = 0 THEN end_us END) AS last_browse_us
    FROM sess
    GROUP BY order_id
)
SELECT
    a.user_id,
    a.order_id,
    a.anchor_time,
    a.anchor_us + $horizon_us < $run_end_us AS window_closed,
    CAST(CASE WHEN l.next_us IS NULL THEN 0 ELSE 1 END AS BIGINT) AS label,
    CAST(l.next_us - a.anchor_us AS DOUBLE) / 86400000000.0 AS days_to_repurchase,
    CAST(CASE WHEN t.order_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS repurchase_pending,
    -- features: the customer
    CAST(u.age AS DOUBLE) AS age,
    u.gender,
    u.country,
    u.state,
    u.city,
    u.traffic_source AS user_traffic_source,
    CAST(a.anchor_us - CAST(u.created_at AS BIGINT) AS DOUBLE) / 86400000000.0 AS tenure_days,
    -- features: the anchor moment
    CAST(date_part('hour', a.anchor_time) AS DOUBLE) AS anchor_hour,
    CAST(date_part('dow', a.anchor_time) AS DOUBLE) AS anchor_dow,
    CAST(date_part('month', a.anchor_time) AS DOUBLE) AS anchor_month,
    -- features: the basket
    CAST(b.basket_items AS DOUBLE) AS basket_items,
    CAST(b.basket_cents AS DOUBLE) / 100.0 AS basket_value,
    CAST(b.basket_retail_cents AS DOUBLE) / 100.0 AS basket_retail_value,
    CAST(b.basket_max_cents AS DOUBLE) / 100.0 AS basket_max_item_value,
    CASE WHEN b.basket_retail_cents > 0
         THEN 1.0 - CAST(b.basket_cents AS DOUBLE) / CAST(b.basket_retail_cents AS DOUBLE) END AS basket_discount,
    CAST(b.basket_categories AS DOUBLE) AS basket_categories,
    CAST(b.basket_brands AS DOUBLE) AS basket_brands,
    CAST(b.basket_distribution_centers AS DOUBLE) AS basket_distribution_centers,
    m.category AS main_category,
    m.department AS main_department,
    m.brand AS main_brand,
    m.product_name AS main_product_name,
    m.dc_name AS main_distribution_center,
    -- features: order history before the anchor (recency, frequency, monetary, returns)
    CAST(h.prev_orders AS DOUBLE) AS prev_orders,
    CAST(COALESCE(h.prev_completed, 0) AS DOUBLE) AS prev_completed,
    CAST(COALESCE(h.prev_cancelled, 0) AS DOUBLE) AS prev_cancelled,
    CAST(COALESCE(h.prev_returned, 0) AS DOUBLE) AS prev_returned,
    CAST(a.anchor_us - h.first_order_us AS DOUBLE) / 86400000000.0 AS days_since_first_order,
    CAST(a.anchor_us - h.last_order_us AS DOUBLE) / 86400000000.0 AS days_since_prev_order,
    CAST(a.anchor_us - h.last_completed_us AS DOUBLE) / 86400000000.0 AS days_since_prev_completed,
    h.prev_order_hour_mean,
    CAST(COALESCE(pi.prev_items, 0) AS DOUBLE) AS prev_items,
    CAST(COALESCE(pi.prev_item_cents, 0) AS DOUBLE) / 100.0 AS prev_item_value,
    CAST(COALESCE(pi.prev_delivered_cents, 0) AS DOUBLE) / 100.0 AS prev_delivered_value,
    CASE WHEN pi.prev_items > 0
         THEN CAST(pi.prev_items_returned AS DOUBLE) / CAST(pi.prev_items AS DOUBLE) END AS prev_item_return_rate,
    CAST(COALESCE(pi.prev_categories, 0) AS DOUBLE) AS prev_categories,
    CAST(COALESCE(pi.prev_brands, 0) AS DOUBLE) AS prev_brands,
    CASE WHEN pi.prev_items > 0
         THEN CAST(pi.prev_items_same_category AS DOUBLE) / CAST(pi.prev_items AS DOUBLE) END AS prev_same_category_share,
    CASE WHEN pi.prev_items > 0
         THEN CAST(pi.prev_items_same_brand AS DOUBLE) / CAST(pi.prev_items AS DOUBLE) END AS prev_same_brand_share,
    -- features: web events and sessions before the anchor
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
    CAST(COALESCE(ev.cart_events_30d, 0) AS DOUBLE) AS cart_events_30d,
    CAST(COALESCE(ev.events_all, 0) AS DOUBLE) AS events_all,
    CAST(a.anchor_us - ev.first_event_us AS DOUBLE) / 86400000000.0 AS days_since_first_visit,
    ev.event_hour_mean,
    ev.event_evening_share,
    CAST(COALESCE(ev.sessions_14d, 0) AS DOUBLE) AS sessions_14d,
    CAST(COALESCE(ev.sessions_30d, 0) AS DOUBLE) AS sessions_30d,
    CAST(COALESCE(ev.sessions_90d, 0) AS DOUBLE) AS sessions_90d,
    CAST(COALESCE(ev.sessions_all, 0) AS DOUBLE) AS sessions_all,
    CAST(COALESCE(ev.browse_sessions_7d, 0) AS DOUBLE) AS browse_sessions_7d,
    CAST(COALESCE(ev.browse_sessions_14d, 0) AS DOUBLE) AS browse_sessions_14d,
    CAST(COALESCE(ev.browse_sessions_30d, 0) AS DOUBLE) AS browse_sessions_30d,
    CAST(COALESCE(ev.browse_sessions_all, 0) AS DOUBLE) AS browse_sessions_all,
    CAST(COALESCE(ev.cart_abandon_sessions_30d, 0) AS DOUBLE) AS cart_abandon_sessions_30d,
    CAST(COALESCE(ev.cart_abandon_sessions_all, 0) AS DOUBLE) AS cart_abandon_sessions_all,
    ev.events_per_session,
    CAST(a.anchor_us - ev.last_browse_us AS DOUBLE) / 86400000000.0 AS days_since_last_browse
FROM anchors a
JOIN labels l ON l.order_id = a.order_id
LEFT JOIN basket b ON b.order_id = a.order_id
LEFT JOIN main_item m ON m.order_id = a.order_id
LEFT JOIN history h ON h.order_id = a.order_id
LEFT JOIN prev_items pi ON pi.order_id = a.order_id
LEFT JOIN ev ON ev.order_id = a.order_id
LEFT JOIN in_transit t ON t.order_id = a.order_id
-- last: the only join not on order_id, so the wide rows are repartitioned once, not twice
LEFT JOIN users u ON u.id = a.user_id
ORDER BY a.anchor_us, a.order_id
