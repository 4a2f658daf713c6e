# Athena workgroup for `extract --source athena` and for analysts, and the Glue tables over the
# workers' outputs.

resource "aws_athena_workgroup" "main" {
  name          = var.name_prefix
  description   = "repurchase: extract's UNLOAD queries and queries over the lake"
  force_destroy = false

  configuration {
    # Query results go to the lake's staging prefix, which the lifecycle rule expires; clients
    # cannot override it (extract then uses this location instead of its own default).
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location = "${local.data_root}/staging/athena/_query_results/"
      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.main.arn
      }
    }
  }
}

resource "aws_glue_catalog_database" "lake" {
  name        = var.glue_database_name
  description = "repurchase lake tables (sql/ddl): raw TheLook partitions, features and scores"
}

locals {
  # Tables and where their partitions live under the data root. The columns are read from the DDL
  # in sql/ddl/<table>.sql (the files the integration tests check against the workers' output), so
  # the Glue tables and the DDL cannot drift apart: each "`name` TYPE" line inside the column list
  # becomes a Glue column with the type in lower case.
  glue_tables = {
    raw_distribution_centers = "raw/distribution_centers"
    raw_events               = "raw/events"
    raw_inventory_items      = "raw/inventory_items"
    raw_order_items          = "raw/order_items"
    raw_orders               = "raw/orders"
    raw_products             = "raw/products"
    raw_users                = "raw/users"
    features_train           = "features/train"
    features_score           = "features/score"
    scores                   = "scores"
  }

  glue_columns = {
    for table, _ in local.glue_tables : table => [
      for m in regexall("`(\\w+)`\\s+([A-Z]\\w*)", regex("(?s)CREATE EXTERNAL TABLE IF NOT EXISTS \\w+ \\((.*?)\\n\\)\\s*PARTITIONED BY", file("${path.module}/../sql/ddl/${table}.sql"))[0]) :
      { name = m[0], type = lower(m[1]) }
    ]
  }
}

resource "aws_glue_catalog_table" "lake" {
  for_each = local.glue_tables

  name          = each.key
  database_name = aws_glue_catalog_database.lake.name
  table_type    = "EXTERNAL_TABLE"
  description   = "sql/ddl/${each.key}.sql: ${local.data_root}/${each.value}/run_date=D/"

  # Partition projection, as in the DDL: one partition a day from 2019-01-01 to today, no crawler
  # and no MSCK REPAIR. `$${run_date}` is Athena's projection variable, kept literally.
  parameters = {
    "EXTERNAL"                          = "TRUE"
    "classification"                    = "parquet"
    "projection.enabled"                = "true"
    "projection.run_date.type"          = "date"
    "projection.run_date.format"        = "yyyy-MM-dd"
    "projection.run_date.range"         = "2019-01-01,NOW"
    "projection.run_date.interval"      = "1"
    "projection.run_date.interval.unit" = "DAYS"
    "storage.location.template"         = "${local.data_root}/${each.value}/run_date=$${run_date}/"
  }

  partition_keys {
    name = "run_date"
    type = "date"
  }

  storage_descriptor {
    location      = "${local.data_root}/${each.value}/"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      name                  = "parquet"
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
      parameters = {
        "serialization.format" = "1"
      }
    }

    dynamic "columns" {
      for_each = local.glue_columns[each.key]
      content {
        name = columns.value.name
        type = columns.value.type
      }
    }
  }
}
