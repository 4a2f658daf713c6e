resource "aws_ecs_cluster" "main" {
  name = var.name_prefix

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  # ECS Exec is not enabled on the tasks; if someone enables it, its session logs are encrypted.
  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.main.arn
      logging    = "OVERRIDE"
      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.workers.name
      }
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# One JSON log line per event (REPURCHASE_LOG_FORMAT=json). Streams are
# <name_prefix>/<worker>/<task id> (awslogs names them <stream prefix>/<container>/<task id> and each
# container is named after its worker), which is what the DAG's EcsRunTaskOperator reads back with
# its single Variable repurchase_awslogs_stream_prefix.
resource "aws_cloudwatch_log_group" "workers" {
  name              = var.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

locals {
  common_env = {
    REPURCHASE_DATA_ROOT  = local.data_root
    AWS_REGION            = var.region
    REPURCHASE_LOG_FORMAT = "json"
    RUST_LOG              = var.rust_log
  }
  # Per worker, so that a conditional does not have to unify two different object types.
  worker_extra_env = {
    extract = {
      REPURCHASE_SOURCE              = var.extract_source
      REPURCHASE_ATHENA_DATABASE     = var.athena_source_database
      REPURCHASE_ATHENA_WORKGROUP    = aws_athena_workgroup.main.name
      REPURCHASE_ATHENA_TIMEOUT_SECS = tostring(var.athena_timeout_secs)
    }
    "build-features" = {
      REPURCHASE_FEATURES_ENGINE     = var.features_engine
      REPURCHASE_LAKE_DATABASE       = aws_glue_catalog_database.lake.name
      REPURCHASE_ATHENA_WORKGROUP    = aws_athena_workgroup.main.name
      REPURCHASE_ATHENA_TIMEOUT_SECS = tostring(var.athena_timeout_secs)
    }
    train = {}
    calibrate        = {}
    score            = {}
  }
}

resource "aws_ecs_task_definition" "worker" {
  for_each = local.workers

  family                   = each.value.family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(each.value.cpu)
  memory                   = tostring(each.value.memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.worker[each.key].arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  # Fargate's task storage (20 GiB by default) mounted at /tmp, the one writable path: the root
  # filesystem is read-only and the workers write their outputs to S3 only. The image declares
  # VOLUME /tmp, so ECS copies its 1777 mode into the mount and UID 10001 can write there.
  volume {
    name = "tmp"
  }

  # Inconsistent inputs fail the plan here, on the task definition that would carry them. Each
  # condition is true for the workers it does not concern, so a failure is reported once. Written
  # with functions check_hcl.py can evaluate offline (join(...) != "" for a non-empty list of
  # non-empty strings; contains(..., true) for "any"; trimprefix for "starts with").
  lifecycle {
    # extract --source athena reads TheLook's tables through Athena, which reads their S3 data with
    # extract's own role: that role may read only source_s3_paths.
    precondition {
      condition     = each.key != "extract" || var.extract_source != "athena" || join("", var.source_s3_paths) != ""
      error_message = "extract_source = \"athena\" needs source_s3_paths: list the S3 location(s) of the data behind TheLook's Athena tables in ${var.athena_source_database} (\"bucket\" or \"bucket/prefix\", the LOCATION of each table in SHOW CREATE TABLE), or extract cannot read them."
    }
    # An s3:// source is read directly, so one entry of source_s3_paths (same bucket, a prefix of
    # the folder at a '/' boundary, or the whole bucket) must cover it.
    precondition {
      condition = each.key != "extract" || var.extract_source == "athena" || contains([
        for p in var.source_s3_paths :
        trimprefix("${trimsuffix(trimprefix(var.extract_source, "s3://"), "/")}/", "${trimsuffix(p, "/")}/") != "${trimsuffix(trimprefix(var.extract_source, "s3://"), "/")}/"
      ], true)
      error_message = "extract_source = ${var.extract_source} is not covered by source_s3_paths: add \"${trimsuffix(trimprefix(var.extract_source, "s3://"), "/")}\" (or its bucket, or a parent prefix), which grants extract read access to it."
    }
    # build-features --engine athena passes the lake's Glue database to Athena under the same name
    # rule extract enforces for its database (docs/S3_AND_ATHENA.md "Athena"); the workgroup, the raw_* tables and
    # the grants come with features_engine itself.
    precondition {
      condition     = each.key != "build-features" || var.features_engine != "athena" || can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.glue_database_name))
      error_message = "features_engine = \"athena\" needs glue_database_name to match ^[A-Za-z_][A-Za-z0-9_]*$ (build-features refuses other database names)."
    }
  }

  container_definitions = jsonencode([
    {
      name                   = each.key
      image                  = local.ecr_image
      essential              = true
      entryPoint             = each.value.entry_point
      user                   = "10001:10001"
      readonlyRootFilesystem = true
      privileged             = false
      stopTimeout            = 120
      mountPoints = [
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }
      ]
      environment = [
        for k, v in merge(local.common_env, local.worker_extra_env[each.key]) : { name = k, value = v }
      ]
      logConfiguration = {
        logDriver = "awslogs"
        options = {
          awslogs-group         = aws_cloudwatch_log_group.workers.name
          awslogs-region        = var.region
          awslogs-stream-prefix = var.name_prefix
        }
      }
    }
  ])
}
