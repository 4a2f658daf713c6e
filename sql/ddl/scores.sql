-- Athena/Glue table over `score` output scores/run_date=D/ (Hive DDL, Athena dialect): one row per
-- open anchor. Columns: repurchase_score::output_schema(), checked by tests/integration/athena.rs.
-- `decile` is UInt32 in the Parquet files, declared BIGINT here (a widening Athena's Parquet reader
-- allows; not exercised by the tests, which have no real Athena).
-- ${data_root} (s3://bucket/prefix, no trailing slash) is the one placeholder, filled in when the
-- table is created; ${run_date} in storage.location.template is Athena's projection variable and
-- stays as written.
CREATE EXTERNAL TABLE IF NOT EXISTS scores (
    `user_id`               BIGINT,
    `anchor_order_id`       BIGINT,
    `anchor_time`           TIMESTAMP,
    `status`                STRING,
    `days_elapsed`          DOUBLE,
    `probability`           DOUBLE,
    `probability_at_anchor` DOUBLE,
    `decile`                BIGINT,
    `predicted_repurchase`  BOOLEAN,
    `model_version`         STRING,
    `log_odds`              DOUBLE,
    `reason_up_1`           STRING,
    `reason_up_1_value`     STRING,
    `reason_up_1_log_odds`  DOUBLE,
    `reason_up_2`           STRING,
    `reason_up_2_value`     STRING,
    `reason_up_2_log_odds`  DOUBLE,
    `reason_up_3`           STRING,
    `reason_up_3_value`     STRING,
    `reason_up_3_log_odds`  DOUBLE,
    `reason_down`           STRING,
    `reason_down_value`     STRING,
    `reason_down_log_odds`  DOUBLE
)
PARTITIONED BY (`run_date` DATE)
STORED AS PARQUET
LOCATION '${data_root}/scores/'
TBLPROPERTIES (
    'projection.enabled' = 'true',
    'projection.run_date.type' = 'date',
    'projection.run_date.format' = 'yyyy-MM-dd',
    'projection.run_date.range' = '2019-01-01,NOW',
    'projection.run_date.interval' = '1',
    'projection.run_date.interval.unit' = 'DAYS',
    'storage.location.template' = '${data_root}/scores/run_date=${run_date}/'
)
