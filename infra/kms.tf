# One customer-managed key for the lake bucket, Athena results, the ECR repository, the CloudWatch
# log group and the alerts topic. The workers' task roles and Airflow's policy get kms:Decrypt /
# GenerateDataKey through their IAM policies.
resource "aws_kms_key" "main" {
  description             = "${var.name_prefix}: lake bucket, Athena results, ECR, CloudWatch Logs, alerts topic"
  enable_key_rotation     = true # yearly
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.main.key_id
}

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_111: this is a KMS key policy, where resources = "*" means this one key only; write access is limited to the account (IAM decides), to CloudWatch Logs for this log group and to EventBridge's data keys for the alerts topic
  # checkov:skip=CKV_AWS_356: in a key policy "*" is the key the policy is attached to, the only resource it can name
  # checkov:skip=CKV_AWS_109: key administration stays with the account root (AWS's default key policy), which delegates to IAM; without it the key becomes unmanageable
  # The account administers the key and delegates use to IAM policies (the task roles).
  statement {
    sid       = "AccountRoot"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy "*" means this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # CloudWatch Logs encrypts the workers' log group with this key.
  statement {
    sid = "CloudWatchLogs"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:${var.log_group_name}"]
    }
  }

  # EventBridge publishes failed-task events to the alerts topic, which this key encrypts; SNS
  # requires a publishing AWS service to be allowed the key in the key policy (a service principal
  # has no IAM policy). This is the statement SNS documents for EventBridge; no condition is added
  # because whether EventBridge's calls carry kms:ViaService or aws:SourceArn here is not documented,
  # and a condition that never matches would drop every alert silently.
  statement {
    sid       = "EventBridgeToAlertsTopic"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["events.amazonaws.com"]
    }
  }
}
