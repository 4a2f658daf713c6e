# Roles: one execution role (ECS pulls the image and writes logs with it) and one task role per
# worker, scoped to the worker's own prefixes under the data root (docs/WORKERS.md).

locals {
  # Each worker's S3 access to the lake, declared once in worker_access.json (object-key patterns
  # relative to the data root, and the actions each kind of access grants): rendered here into the
  # task roles' policies, and by tests/integration/permissions.rs into IAM users on the moto server
  # that run the whole pipeline, sharded scoring included.
  worker_access    = jsondecode(file("${path.module}/worker_access.json"))
  worker_s3_access = local.worker_access.workers
  s3_actions       = local.worker_access.actions

  lake_object_arn = "${aws_s3_bucket.lake.arn}/${local.data_prefix}"

  # Workers that run Athena queries.
  athena_workers = var.features_engine == "athena" ? ["extract", "build-features"] : ["extract"]

  # The Glue database each of them reads: TheLook's for extract, the lake's for build-features.
  glue_read = {
    for worker, g in {
      extract          = { sid = "GlueReadSource", database = var.athena_source_database }
      "build-features" = { sid = "GlueReadLake", database = aws_glue_catalog_database.lake.name }
    } : worker => g if contains(local.athena_workers, worker)
  }

  # var.source_s3_paths ("bucket" or "bucket/prefix"): the data extract reads (TheLook's tables
  # behind Athena, or a folder of CSV/Parquet files).
  source_buckets = distinct([for p in var.source_s3_paths : split("/", p)[0]])
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:*"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# --- execution role -------------------------------------------------------------------------------

resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-execution"
  description        = "ECS task execution role for the repurchase workers: pull the image, write logs"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "EcrAuth"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # GetAuthorizationToken has no resource-level permissions
  }
  statement {
    sid = "EcrPull"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:GetDownloadUrlForLayer",
    ]
    resources = [aws_ecr_repository.workers.arn]
  }
  statement {
    sid       = "EcrKms"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.workers.arn}:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-and-log"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- task roles, one per worker ----------------------------------------------------------------

resource "aws_iam_role" "worker" {
  for_each = local.workers

  name               = "${var.name_prefix}-${each.key}-task"
  description        = "repurchase ${each.key} worker: its own prefixes under ${local.data_root}"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "worker" {
  for_each = local.workers

  statement {
    sid       = "ListOwnPrefixes"
    actions   = local.s3_actions.list
    resources = [aws_s3_bucket.lake.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = distinct(flatten([
        for p in concat(local.worker_s3_access[each.key].read, local.worker_s3_access[each.key].write) : [
          "${local.data_prefix}/${p}",
          "${local.data_prefix}/${trimsuffix(p, "/*")}",
        ]
      ]))
    }
  }

  statement {
    sid       = "ReadOwnInputs"
    actions   = local.s3_actions.read
    resources = [for p in local.worker_s3_access[each.key].read : "${local.lake_object_arn}/${p}"]
  }

  statement {
    sid       = "WriteOwnOutputs"
    actions   = local.s3_actions.write
    resources = [for p in local.worker_s3_access[each.key].write : "${local.lake_object_arn}/${p}"]
  }

  statement {
    sid = "LakeKey"
    actions = [
      "kms:Decrypt",
      "kms:GenerateDataKey",
    ]
    resources = [aws_kms_key.main.arn]
  }

  # extract (and build-features with features_engine = "athena"): Athena in the workgroup, Glue
  # read on TheLook's (extract) or the lake's (build-features) database, the source data and the
  # bucket location lookups Athena makes for UNLOAD and query results.
  dynamic "statement" {
    for_each = contains(local.athena_workers, each.key) ? [1] : []
    content {
      sid = "AthenaWorkgroup"
      actions = [
        "athena:StartQueryExecution",
        "athena:GetQueryExecution",
        "athena:StopQueryExecution",
        "athena:GetWorkGroup",
      ]
      resources = [aws_athena_workgroup.main.arn]
    }
  }

  dynamic "statement" {
    for_each = { for k, g in local.glue_read : k => g if k == each.key }
    content {
      sid = statement.value.sid
      actions = [
        "glue:GetDatabase",
        "glue:GetTable",
        "glue:GetTables",
        "glue:GetPartition",
        "glue:GetPartitions",
      ]
      resources = [
        "arn:${local.partition}:glue:${var.region}:${local.account_id}:catalog",
        "arn:${local.partition}:glue:${var.region}:${local.account_id}:database/${statement.value.database}",
        "arn:${local.partition}:glue:${var.region}:${local.account_id}:table/${statement.value.database}/*",
      ]
    }
  }

  dynamic "statement" {
    for_each = contains(local.athena_workers, each.key) ? [1] : []
    content {
      sid       = "AthenaResultBucket" # what Athena checks on the UNLOAD and result locations
      actions   = ["s3:GetBucketLocation", "s3:ListBucketMultipartUploads"]
      resources = [aws_s3_bucket.lake.arn]
    }
  }

  dynamic "statement" {
    for_each = each.key == "extract" && length(var.source_s3_paths) > 0 ? [1] : []
    content {
      sid       = "SourceBuckets"
      actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
      resources = [for b in local.source_buckets : "arn:${local.partition}:s3:::${b}"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "extract" && length(var.source_s3_paths) > 0 ? [1] : []
    content {
      sid       = "SourceObjects"
      actions   = ["s3:GetObject"]
      resources = [for p in var.source_s3_paths : "arn:${local.partition}:s3:::${trimsuffix(p, "/")}/*"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "extract" && length(var.source_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "SourceKeys"
      actions   = ["kms:Decrypt"]
      resources = var.source_kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "worker" {
  for_each = local.workers

  name   = "${each.key}-data"
  role   = aws_iam_role.worker[each.key].id
  policy = data.aws_iam_policy_document.worker[each.key].json
}

# --- Airflow ---------------------------------------------------------------------------------------

# What the DAG does, and no more: resolve each family's current revision once per run and pin it
# (DescribeTaskDefinition), run that revision on this cluster (launch type FARGATE or a capacity
# provider strategy with FARGATE / FARGATE_SPOT), watch, stop and reattach to its tasks, pass their
# roles, read their logs (the ECS operator copies them into the Airflow task log) and publish
# failures to the alerts topic.
data "aws_iam_policy_document" "airflow" {
  statement {
    sid     = "RunWorkers"
    actions = ["ecs:RunTask"]
    resources = [
      for w in local.workers : "arn:${local.partition}:ecs:${var.region}:${local.account_id}:task-definition/${w.family}:*"
    ]
    # Only on this cluster. Capacity providers need no condition of their own: a strategy may only
    # name providers associated with the cluster, and this one has FARGATE and FARGATE_SPOT only
    # (aws_ecs_cluster_capacity_providers.main).
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }
  statement {
    sid       = "FindRunningWorkers" # the operator's reattach lists the cluster's tasks
    actions   = ["ecs:ListTasks"]
    resources = ["*"] # ListTasks is scoped by the ecs:cluster condition, not by resource
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = [aws_ecs_cluster.main.arn]
    }
  }
  statement {
    sid       = "WatchWorkers"
    actions   = ["ecs:DescribeTasks", "ecs:StopTask"]
    resources = ["arn:${local.partition}:ecs:${var.region}:${local.account_id}:task/${aws_ecs_cluster.main.name}/*"]
  }
  statement {
    sid       = "PinTaskDefinitions"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"] # DescribeTaskDefinition supports no resource-level permissions nor condition keys
  }
  statement {
    sid       = "PassWorkerRoles"
    actions   = ["iam:PassRole"]
    resources = concat([aws_iam_role.execution.arn], [for r in aws_iam_role.worker : r.arn])
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  statement {
    sid       = "ReadWorkerLogs"
    actions   = ["logs:GetLogEvents", "logs:FilterLogEvents", "logs:DescribeLogStreams"]
    resources = [aws_cloudwatch_log_group.workers.arn, "${aws_cloudwatch_log_group.workers.arn}:*"]
  }
  statement {
    sid       = "PublishAlerts" # on_failure_callback, Variable repurchase_alerts_topic_arn
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
  }
  statement {
    # The topic is encrypted with the main key: SNS uses it on the publisher's behalf.
    sid       = "AlertsTopicKey"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "airflow" {
  name        = "${var.name_prefix}-airflow"
  description = "Lets Airflow run the repurchase workers on ECS, read their logs and publish alerts"
  policy      = data.aws_iam_policy_document.airflow.json
}

# Self-hosted Airflow: a role for it to run as (the aws_default connection's role_arn, or the role of
# the ECS tasks / instances Airflow runs on), created when var.airflow_assume_role_principals lists
# who may assume it.
locals {
  # var.airflow_assume_role_principals by principal type, one statement per type present.
  airflow_principals = [
    for s in [
      { sid = "AirflowService", type = "Service", identifiers = [for p in var.airflow_assume_role_principals : p if !startswith(p, "arn:")] },
      { sid = "AirflowPrincipals", type = "AWS", identifiers = [for p in var.airflow_assume_role_principals : p if startswith(p, "arn:")] },
    ] : s if length(s.identifiers) > 0
  ]
}

data "aws_iam_policy_document" "airflow_assume" {
  # No aws:SourceAccount condition on the services: not every service sets it when assuming a role
  # (EC2 instance profiles), and a service can only assume this role once someone allowed to
  # iam:PassRole it in this account has handed it over.
  dynamic "statement" {
    for_each = local.airflow_principals
    content {
      sid     = statement.value.sid
      actions = ["sts:AssumeRole"]
      principals {
        type        = statement.value.type
        identifiers = statement.value.identifiers
      }
    }
  }
}

resource "aws_iam_role" "airflow" {
  count = length(var.airflow_assume_role_principals) > 0 ? 1 : 0

  name               = "${var.name_prefix}-airflow"
  description        = "Self-hosted Airflow running the repurchase DAG"
  assume_role_policy = data.aws_iam_policy_document.airflow_assume.json
}

resource "aws_iam_role_policy_attachment" "airflow" {
  count = length(var.airflow_assume_role_principals) > 0 ? 1 : 0

  role       = aws_iam_role.airflow[0].name
  policy_arn = aws_iam_policy.airflow.arn
}

# Amazon MWAA: the environment's execution role exists already; attach the same policy to it.
resource "aws_iam_role_policy_attachment" "airflow_mwaa" {
  count = var.airflow_mwaa_execution_role_name == null ? 0 : 1

  role       = var.airflow_mwaa_execution_role_name
  policy_arn = aws_iam_policy.airflow.arn
}

# A warning, not an error: the policy can also be attached outside Terraform.
check "airflow_policy_attached" {
  assert {
    condition     = length(var.airflow_assume_role_principals) > 0 || var.airflow_mwaa_execution_role_name != null
    error_message = "The Airflow policy ${aws_iam_policy.airflow.name} is attached to no role: set airflow_assume_role_principals (self-hosted Airflow) or airflow_mwaa_execution_role_name (MWAA), or attach it yourself."
  }
}
