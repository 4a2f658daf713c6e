-- TheLook's `order_items` for `extract --source athena` (Athena engine 3 / Trino dialect).
--
-- Run as UNLOAD (<this query>) TO '<data root>/staging/athena/order_items/run_date=D/'
-- WITH (format = 'PARQUET', compression = 'SNAPPY') in the configured database; extract then
-- validates the staged files and publishes raw/order_items/run_date=D/ as the files source does.
-- Columns: TheLook's exact names; the casts pin TheLook's types whatever the source table declares.
-- `?`: exclusive end of the run date, bound through ExecutionParameters as a TIMESTAMP literal
-- built from the parsed run date. NULL created_at rows are kept so that validation rejects them.
SELECT
    CAST(id AS BIGINT)                AS id,
    CAST(order_id AS BIGINT)          AS order_id,
    CAST(user_id AS BIGINT)           AS user_id,
    CAST(product_id AS BIGINT)        AS product_id,
    CAST(inventory_item_id AS BIGINT) AS inventory_item_id,
    CAST(status AS VARCHAR)           AS status,
    CAST(created_at AS TIMESTAMP)     AS created_at,
    CAST(shipped_at AS TIMESTAMP)     AS shipped_at,
    CAST(delivered_at AS TIMESTAMP)   AS delivered_at,
    CAST(returned_at AS TIMESTAMP)    AS returned_at,
    CAST(sale_price AS DOUBLE)        AS sale_price
FROM order_items
WHERE created_at < ? OR created_at IS NULL
