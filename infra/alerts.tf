# Alerts: one SNS topic for every failure, from two sources.
#   - The DAG's on_failure_callback publishes each failed Airflow task (Variable
#     repurchase_alerts_topic_arn), with message attribute route = "data" (exit 65: data refused by
#     a quality gate, for the data's owners) or "platform" (everything else).
#   - The EventBridge rule below publishes every worker task that stops with a non-zero exit code
#     or fails to start, whoever started it (the DAG, a manual RunTask, a backfill) and even when
#     Airflow itself is down. These messages are the raw ECS event and carry no route attribute.

resource "aws_sns_topic" "alerts" {
  name              = "${var.name_prefix}-alerts"
  display_name      = "${var.name_prefix} alerts"
  kms_master_key_id = aws_kms_key.main.arn
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.alerts_topic.json
}

# Publishers in this account (Airflow's role) need only their IAM policy; the topic policy admits
# EventBridge, for this rule only, and refuses plain HTTP.
data "aws_iam_policy_document" "alerts_topic" {
  statement {
    sid       = "EventBridgeTaskFailures"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_cloudwatch_event_rule.task_failed.arn]
    }
  }

  # DenyInsecureTransport (s3.tf), appended after the statement above.
  override_policy_documents = [data.aws_iam_policy_document.tls_only["alerts"].json]
}

resource "aws_sns_topic_subscription" "alert_email" {
  for_each = toset(var.alert_email_addresses)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
}

locals {
  # ECS "Task State Change" of this cluster's tasks once stopped, when a container exited with
  # anything but 0 (and var.alert_ignored_exit_codes), or the task never started (image pull,
  # capacity, network: no container, so no exit code). A pattern on containers.exitCode matches if
  # any container of the task matches; each worker task has one container.
  task_failed_pattern = {
    source        = ["aws.ecs"]
    "detail-type" = ["ECS Task State Change"]
    detail = {
      clusterArn = [aws_ecs_cluster.main.arn]
      lastStatus = ["STOPPED"]
      "$or" = [
        { containers = { exitCode = [{ "anything-but" = concat([0], var.alert_ignored_exit_codes) }] } },
        { stopCode = ["TaskFailedToStart"] },
      ]
    }
  }
}

resource "aws_cloudwatch_event_rule" "task_failed" {
  name          = "${var.name_prefix}-task-failed"
  description   = "repurchase worker tasks that stopped with a non-zero exit code or failed to start"
  event_pattern = jsonencode(local.task_failed_pattern)
}

resource "aws_cloudwatch_event_target" "task_failed_sns" {
  rule      = aws_cloudwatch_event_rule.task_failed.name
  target_id = "alerts-topic"
  arn       = aws_sns_topic.alerts.arn
}
