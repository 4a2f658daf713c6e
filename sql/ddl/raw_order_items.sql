-- Athena/Glue table over the raw `order_items` partitions that `extract` publishes (Hive DDL, Athena
-- dialect): Parquet in ${data_root}/raw/order_items/run_date=YYYY-MM-DD/, one partition per run date,
-- found by partition projection (no MSCK REPAIR, no crawler).
-- ${data_root} (s3://bucket/prefix, no trailing slash) is the one placeholder, filled in when the
-- table is created; ${run_date} in storage.location.template is Athena's projection variable and
-- stays as written. Columns: crates/core/src/schema.rs; tests/integration/athena.rs checks both.
CREATE EXTERNAL TABLE IF NOT EXISTS raw_order_items (
    `id`                BIGINT,
    `order_id`          BIGINT,
    `user_id`           BIGINT,
    `product_id`        BIGINT,
    `inventory_item_id` BIGINT,
    `status`            STRING,
    `created_at`        TIMESTAMP,
    `shipped_at`        TIMESTAMP,
    `delivered_at`      TIMESTAMP,
    `returned_at`       TIMESTAMP,
    `sale_price`        DOUBLE
)
PARTITIONED BY (`run_date` DATE)
STORED AS PARQUET
LOCATION '${data_root}/raw/order_items/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.run_date.type' = 'date',
    'projection.run_date.format' = 'yyyy-MM-dd',
    'projection.run_date.range' = '2019-01-01,NOW',
    'projection.run_date.interval' = '1',
    'projection.run_date.interval.unit' = 'DAYS',
    'storage.location.template' = '${data_root}/raw/order_items/run_date=${run_date}/'
)
