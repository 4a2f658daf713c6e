-- Athena/Glue table over the raw `users` partitions that `extract` publishes (Hive DDL, Athena
-- dialect): Parquet in ${data_root}/raw/users/run_date=YYYY-MM-DD/, one partition per run date,
-- found by partition projection (no MSCK REPAIR, no crawler).
-- ${data_root} (s3://bucket/prefix, no trailing slash) is the one placeholder, filled in when the
-- table is created; ${run_date} in storage.location.template is Athena's projection variable and
-- stays as written. Columns: crates/core/src/schema.rs; tests/integration/athena.rs checks both.
CREATE EXTERNAL TABLE IF NOT EXISTS raw_users (
    `id`             BIGINT,
    `first_name`     STRING,
    `last_name`      STRING,
    `email`          STRING,
    `age`            BIGINT,
    `gender`         STRING,
    `state`          STRING,
    `street_address` STRING,
    `postal_code`    STRING,
    `city`           STRING,
    `country`        STRING,
    `latitude`       DOUBLE,
    `longitude`      DOUBLE,
    `traffic_source` STRING,
    `created_at`     TIMESTAMP
)
PARTITIONED BY (`run_date` DATE)
STORED AS PARQUET
LOCATION '${data_root}/raw/users/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.run_date.type' = 'date',
    'projection.run_date.format' = 'yyyy-MM-dd',
    'projection.run_date.range' = '2019-01-01,NOW',
    'projection.run_date.interval' = '1',
    'projection.run_date.interval.unit' = 'DAYS',
    'storage.location.template' = '${data_root}/raw/users/run_date=${run_date}/'
)
