-- DuckDB translation of sql/features/anchors.sql, for bench/scale (the benchmark only: the
-- workers never run this file). Same anchors, labels, 71 feature columns, names and point-in-time
-- semantics; bench/duckdb/check.py compares its output with build-features' every time the
-- benchmark runs, so a drift between the two files fails the benchmark instead of skewing it.
--
-- Variables (SET VARIABLE before running the file; bench/duckdb/features.py does this):
--   data_root   VARCHAR  local path of the data root (holds raw/<table>/run_date=D/*.parquet)
--   run_date    VARCHAR  YYYY-MM-DD
--   run_end_us  BIGINT   exclusive end of the run date, microseconds since the epoch (UTC)
--   horizon_us  BIGINT   label horizon (60 days) in microseconds
--   first_only  BOOLEAN  true: anchor = each customer's first completed order; false: every one
--
-- Leaves the result in the temporary table `features` (with window_closed; the runner splits it
-- into features/train and features/score as build-features does).
--
-- Translation notes (DataFusion → DuckDB):
--   CAST(ts AS BIGINT)         → epoch_us(ts)        (DuckDB does not cast TIMESTAMPTZ to BIGINT)
--   decimal literals (100.0)   → 100.0::DOUBLE        (DuckDB types 100.0 as DECIMAL, DataFusion as
--                                                      DOUBLE; the cast keeps DOUBLE arithmetic)
--   $param                     → getvariable('param')
--   SUM of integers is HUGEINT in DuckDB, BIGINT in DataFusion; both are cast to DOUBLE in the
--   output, so the values are equal. Strings come out as VARCHAR (DataFusion: Utf8View).
-- The raw timestamps are timestamp[us, tz=UTC]; with TimeZone = 'UTC' date_part reads UTC hours,
-- days of week (Sunday = 0, as DataFusion) and months.
SET TimeZone = 'UTC';

CREATE OR REPLACE TEMP VIEW users AS
    SELECT * FROM read_parquet(getvariable('data_root') || '/raw/users/run_date=' || getvariable('run_date') || '/*.parquet');
CREATE OR REPLACE TEMP VIEW orders AS
    SELECT * FROM read_parquet(getvariable('data_root') || '/raw/orders/run_date=' || getvariable('run_date') || '/*.parquet');
CREATE OR REPLACE TEMP VIEW order_items AS
    SELECT * FROM read_parquet(getvariable('data_root') || '/raw/order_items/run_date=' || getvariable('run_date') || '/*.parquet');
CREATE OR REPLACE TEMP VIEW products AS
    SELECT * FROM read_parquet(getvariable('data_root') || '/raw/products/run_date=' || getvariable('run_date') || '/*.parquet');
CREATE OR REPLACE TEMP VIEW events AS
    SELECT * FROM read_parquet(getvariable('data_root') || '/raw/events/run_date=' || getvariable('run_date') || '/*.parquet');
CREATE OR REPLACE TEMP VIEW distribution_centers AS
    SELECT * FROM read_parquet(getvariable('data_root') || '/raw/distribution_centers/run_date=' || getvariable('run_date') || '/*.parquet');

CREATE OR REPLACE TEMP TABLE features AS
WITH
o AS (
    SELECT order_id, user_id, status, created_at,
           epoch_us(created_at)   AS created_us,
           epoch_us(delivered_at) AS delivered_us,
           epoch_us(returned_at)  AS returned_us
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
    WHERE nth = 1 OR NOT getvariable('first_only')
),
labels AS (
    SELECT a.order_id,
           MIN(CASE WHEN c.created_us > a.anchor_us AND c.created_us <= a.anchor_us + getvariable('horizon_us')
                    THEN c.created_us END) AS next_us
    FROM anchors a
    LEFT JOIN complete c ON c.user_id = a.user_id AND c.order_id <> a.order_id
    GROUP BY a.order_id
),
in_transit AS (
    SELECT a.order_id, COUNT(*) AS orders_in_transit
    FROM anchors a
    JOIN o p ON p.user_id = a.user_id
    WHERE p.status IN ('Processing', 'Shipped')
      AND p.created_us > a.anchor_us AND p.created_us <= a.anchor_us + getvariable('horizon_us')
    GROUP BY a.order_id
),
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
items AS (
    SELECT a.order_id, oi.id AS item_id,
           CAST(ROUND(oi.sale_price * 100) AS BIGINT) AS sale_cents,
           CAST(ROUND(pr.retail_price * 100) AS BIGINT) AS retail_cents,
           pr.category, pr.department, pr.brand, pr.name AS product_name, dc.name AS dc_name
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
           MAX(sale_cents) AS basket_max_cents,
           COUNT(DISTINCT category) AS basket_categories,
           COUNT(DISTINCT brand) AS basket_brands,
           COUNT(DISTINCT dc_name) AS basket_distribution_centers
    FROM items
    GROUP BY order_id
),
main_item AS (
    SELECT order_id, category, department, brand, product_name, dc_name
    FROM (
        SELECT order_id, category, department, brand, product_name, dc_name,
               ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY sale_cents DESC, item_id) AS rn
        FROM items
    ) ranked
    WHERE rn = 1
),
prev_items AS (
    SELECT a.order_id,
           COUNT(*) AS prev_items,
           SUM(CAST(ROUND(oi.sale_price * 100) AS BIGINT)) AS prev_item_cents,
           SUM(CASE WHEN epoch_us(oi.delivered_at) < a.anchor_us
                    THEN CAST(ROUND(oi.sale_price * 100) AS BIGINT) ELSE 0 END) AS prev_delivered_cents,
           SUM(CASE WHEN epoch_us(oi.returned_at) < a.anchor_us THEN 1 ELSE 0 END) AS prev_items_returned,
           COUNT(DISTINCT pr.category) AS prev_categories,
           COUNT(DISTINCT pr.brand) AS prev_brands,
           SUM(CASE WHEN pr.category = m.category THEN 1 ELSE 0 END) AS prev_items_same_category,
           SUM(CASE WHEN pr.brand = m.brand THEN 1 ELSE 0 END) AS prev_items_same_brand
    FROM anchors a
    JOIN order_items oi ON oi.user_id = a.user_id AND epoch_us(oi.created_at) < a.anchor_us
    LEFT JOIN products pr ON pr.id = oi.product_id
    LEFT JOIN main_item m ON m.order_id = a.order_id
    GROUP BY a.order_id
),
ev_rows AS (
    SELECT a.order_id, a.anchor_us, e.session_id, e.traffic_source, e.event_type, e.ts, e.hour
    FROM anchors a
    JOIN (
        SELECT user_id, session_id, traffic_source, event_type,
               epoch_us(created_at) AS ts,
               CAST(date_part('hour', created_at) AS DOUBLE) AS hour
        FROM events
        WHERE user_id IS NOT NULL
    ) e ON e.user_id = a.user_id
    WHERE e.ts < a.anchor_us
),
ev AS (
    SELECT order_id,
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
           COUNT(*) AS events_all,
           MIN(ts) AS first_event_us,
           AVG(hour) AS event_hour_mean,
           AVG(CASE WHEN hour >= 18 OR hour < 6 THEN 1.0::DOUBLE ELSE 0.0::DOUBLE END) AS event_evening_share
    FROM ev_rows
    GROUP BY order_id
),
sess AS (
    SELECT order_id, anchor_us, session_id,
           MIN(ts) AS start_us,
           MAX(ts) AS end_us,
           COUNT(*) AS events,
           MAX(CASE WHEN event_type = 'cart' THEN 1 ELSE 0 END) AS has_cart,
           MAX(CASE WHEN event_type = 'purchase' THEN 1 ELSE 0 END) AS has_purchase
    FROM ev_rows
    GROUP BY order_id, anchor_us, session_id
),
sess_agg AS (
    SELECT order_id,
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
    a.anchor_us + getvariable('horizon_us') < getvariable('run_end_us') AS window_closed,
    CAST(CASE WHEN l.next_us IS NULL THEN 0 ELSE 1 END AS BIGINT) AS label,
    CAST(l.next_us - a.anchor_us AS DOUBLE) / 86400000000.0::DOUBLE AS days_to_repurchase,
    CAST(CASE WHEN t.order_id IS NULL THEN 0 ELSE 1 END AS BIGINT) AS repurchase_pending,
    -- features: the customer
    CAST(u.age AS DOUBLE) AS age,
    u.gender,
    u.country,
    u.state,
    u.city,
    u.traffic_source AS user_traffic_source,
    CAST(a.anchor_us - epoch_us(u.created_at) AS DOUBLE) / 86400000000.0::DOUBLE AS tenure_days,
    -- features: the anchor moment
    CAST(date_part('hour', a.anchor_time) AS DOUBLE) AS anchor_hour,
    CAST(date_part('dow', a.anchor_time) AS DOUBLE) AS anchor_dow,
    CAST(date_part('month', a.anchor_time) AS DOUBLE) AS anchor_month,
    -- features: the basket
    CAST(b.basket_items AS DOUBLE) AS basket_items,
    CAST(b.basket_cents AS DOUBLE) / 100.0::DOUBLE AS basket_value,
    CAST(b.basket_retail_cents AS DOUBLE) / 100.0::DOUBLE AS basket_retail_value,
    CAST(b.basket_max_cents AS DOUBLE) / 100.0::DOUBLE AS basket_max_item_value,
    CASE WHEN b.basket_retail_cents > 0
         THEN 1.0::DOUBLE - CAST(b.basket_cents AS DOUBLE) / CAST(b.basket_retail_cents AS DOUBLE) END AS basket_discount,
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
    CAST(a.anchor_us - h.first_order_us AS DOUBLE) / 86400000000.0::DOUBLE AS days_since_first_order,
    CAST(a.anchor_us - h.last_order_us AS DOUBLE) / 86400000000.0::DOUBLE AS days_since_prev_order,
    CAST(a.anchor_us - h.last_completed_us AS DOUBLE) / 86400000000.0::DOUBLE AS days_since_prev_completed,
    h.prev_order_hour_mean,
    CAST(COALESCE(pi.prev_items, 0) AS DOUBLE) AS prev_items,
    CAST(COALESCE(pi.prev_item_cents, 0) AS DOUBLE) / 100.0::DOUBLE AS prev_item_value,
    CAST(COALESCE(pi.prev_delivered_cents, 0) AS DOUBLE) / 100.0::DOUBLE AS prev_delivered_value,
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
    CAST(a.anchor_us - ev.first_event_us AS DOUBLE) / 86400000000.0::DOUBLE AS days_since_first_visit,
    ev.event_hour_mean,
    ev.event_evening_share,
    CAST(COALESCE(sa.sessions_14d, 0) AS DOUBLE) AS sessions_14d,
    CAST(COALESCE(sa.sessions_30d, 0) AS DOUBLE) AS sessions_30d,
    CAST(COALESCE(sa.sessions_90d, 0) AS DOUBLE) AS sessions_90d,
    CAST(COALESCE(sa.sessions_all, 0) AS DOUBLE) AS sessions_all,
    CAST(COALESCE(sa.browse_sessions_7d, 0) AS DOUBLE) AS browse_sessions_7d,
    CAST(COALESCE(sa.browse_sessions_14d, 0) AS DOUBLE) AS browse_sessions_14d,
    CAST(COALESCE(sa.browse_sessions_30d, 0) AS DOUBLE) AS browse_sessions_30d,
    CAST(COALESCE(sa.browse_sessions_all, 0) AS DOUBLE) AS browse_sessions_all,
    CAST(COALESCE(sa.cart_abandon_sessions_30d, 0) AS DOUBLE) AS cart_abandon_sessions_30d,
    CAST(COALESCE(sa.cart_abandon_sessions_all, 0) AS DOUBLE) AS cart_abandon_sessions_all,
    sa.events_per_session,
    CAST(a.anchor_us - sa.last_browse_us AS DOUBLE) / 86400000000.0::DOUBLE AS days_since_last_browse
FROM anchors a
JOIN labels l ON l.order_id = a.order_id
LEFT JOIN users u ON u.id = a.user_id
LEFT JOIN basket b ON b.order_id = a.order_id
LEFT JOIN main_item m ON m.order_id = a.order_id
LEFT JOIN history h ON h.order_id = a.order_id
LEFT JOIN prev_items pi ON pi.order_id = a.order_id
LEFT JOIN ev ON ev.order_id = a.order_id
LEFT JOIN in_transit t ON t.order_id = a.order_id
LEFT JOIN sess_agg sa ON sa.order_id = a.order_id
ORDER BY a.anchor_us, a.order_id;
