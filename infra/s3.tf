# The lake: every worker's input and output under s3://<bucket>/<data_prefix>/ (docs/WORKERS.md "Data layout and manifests").

resource "aws_s3_bucket" "lake" {
  # checkov:skip=CKV_AWS_144: cross-region replication is a disaster-recovery choice per deployment; every partition can be rebuilt from the source by rerunning the DAG for its run date, and versioning covers accidental deletes
  # checkov:skip=CKV2_AWS_62: nothing consumes bucket events: Airflow sequences the workers and readers wait for _manifest.json
  bucket        = local.bucket_name
  force_destroy = false
}

resource "aws_s3_bucket_server_side_encryption_configuration" "lake" {
  bucket = aws_s3_bucket.lake.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.main.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_policy" "lake" {
  bucket     = aws_s3_bucket.lake.id
  policy     = data.aws_iam_policy_document.tls_only["lake"].json
  depends_on = [aws_s3_bucket_public_access_block.bucket]
}

locals {
  # Retention per prefix under the data root (docs/WORKERS.md "Data layout and manifests"), in days after an
  # object's last write; null = kept. A partition's files and its _manifest.json are written
  # together, so they expire together; a rerun rewrites both and restarts the clock.
  lake_retention = {
    "raw/"               = { days = var.lake_expiration_days.raw, noncurrent_days = null }
    "features/"          = { days = var.lake_expiration_days.features, noncurrent_days = null }
    "scores/"            = { days = var.lake_expiration_days.scores, noncurrent_days = null }
    "score_shards/"      = { days = var.lake_expiration_days.score_shards, noncurrent_days = 1 }
    "backtests/"         = { days = var.lake_expiration_days.backtests, noncurrent_days = null }
    "rolling_backtests/" = { days = var.lake_expiration_days.backtests, noncurrent_days = null }
    "monitoring/"        = { days = var.lake_expiration_days.backtests, noncurrent_days = null }
    "monitoring_pages/"  = { days = var.lake_expiration_days.backtests, noncurrent_days = null }
    "diagnostics/"       = { days = var.lake_expiration_days.backtests, noncurrent_days = null }
    # Athena's UNLOAD output and result files, read back by the task that wrote them.
    "staging/" = { days = var.lake_expiration_days.staging, noncurrent_days = 1 }
    # Lock leases: renewed every two minutes while held, so each held lock leaves ~720 noncurrent
    # versions a day; those go after one day instead of the lake's noncurrent_version_expiration_days.
    "_locks/" = { days = var.lake_expiration_days.locks, noncurrent_days = 1 }
  }

  # Never expired, and deliberately without a variable: the models, their calibrations and the
  # champion decisions (models/run_date=D/calibration/promotion.json). score serves the champion
  # named by the latest decision, however old that model is, and calibrate compares every new
  # model with the last champions (--promotion-history), reading their models back.
  lake_never_expire = ["models/"]

  lake_expiring = { for prefix, r in local.lake_retention : prefix => r if r.days != null }
}

resource "aws_s3_bucket_lifecycle_configuration" "lake" {
  bucket     = aws_s3_bucket.lake.id
  depends_on = [aws_s3_bucket_versioning.bucket]

  # One rule per prefix with a retention (local.lake_retention); ids expire-raw, expire-features,
  # expire-scores, expire-score_shards, expire-backtests, expire-rolling_backtests,
  # expire-monitoring, expire-monitoring_pages, expire-diagnostics, expire-staging, expire-locks.
  dynamic "rule" {
    for_each = local.lake_expiring
    content {
      id     = "expire-${trimsuffix(trimprefix(rule.key, "_"), "/")}"
      status = "Enabled"
      filter {
        prefix = "${local.data_prefix}/${rule.key}"
      }
      expiration {
        days = rule.value.days
      }
      dynamic "noncurrent_version_expiration" {
        for_each = rule.value.noncurrent_days == null ? [] : [rule.value.noncurrent_days]
        content {
          noncurrent_days = noncurrent_version_expiration.value
        }
      }
    }
  }

  # Everywhere: overwritten or deleted objects (reruns) and failed multipart uploads.
  rule {
    id     = "noncurrent-and-multipart"
    status = "Enabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_expiration_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
    expiration {
      expired_object_delete_marker = true
    }
  }
}

resource "aws_s3_bucket_logging" "lake" {
  bucket        = aws_s3_bucket.lake.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = "s3-access/${local.bucket_name}/"
}

# Server access logs of the lake bucket.
resource "aws_s3_bucket" "logs" {
  # checkov:skip=CKV_AWS_18: this is the access-log target; logging it into itself would loop and logging it elsewhere needs a third bucket with the same question
  # checkov:skip=CKV_AWS_144: access logs are audit data of one region; replication is a per-deployment choice
  # checkov:skip=CKV2_AWS_62: nothing consumes events of the log bucket
  # checkov:skip=CKV_AWS_145: S3 server access logging can only deliver to a bucket with SSE-S3 (AES256) default encryption, not SSE-KMS
  bucket        = local.log_bucket
  force_destroy = false
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket     = aws_s3_bucket.logs.id
  policy     = data.aws_iam_policy_document.logs_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.bucket]
}

data "aws_iam_policy_document" "logs_bucket" {
  statement {
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/s3-access/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.lake.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  # DenyInsecureTransport (below), appended after the statement above.
  override_policy_documents = [data.aws_iam_policy_document.tls_only["logs"].json]
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket     = aws_s3_bucket.logs.id
  depends_on = [aws_s3_bucket_versioning.bucket]

  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.access_log_expiration_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

# --- what both buckets have: versioning, no public access, objects owned by the bucket owner (and
# a policy that refuses plain HTTP, below) ----------------------------------------------------------

locals {
  buckets = {
    lake = aws_s3_bucket.lake
    logs = aws_s3_bucket.logs
  }
}

resource "aws_s3_bucket_versioning" "bucket" {
  for_each = local.buckets

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_public_access_block" "bucket" {
  for_each = local.buckets

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "bucket" {
  for_each = local.buckets

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# Each bucket had its own resource of these types before: states move to the instances above
# instead of destroying and recreating them.
moved {
  from = aws_s3_bucket_versioning.lake
  to   = aws_s3_bucket_versioning.bucket["lake"]
}

moved {
  from = aws_s3_bucket_versioning.logs
  to   = aws_s3_bucket_versioning.bucket["logs"]
}

moved {
  from = aws_s3_bucket_public_access_block.lake
  to   = aws_s3_bucket_public_access_block.bucket["lake"]
}

moved {
  from = aws_s3_bucket_public_access_block.logs
  to   = aws_s3_bucket_public_access_block.bucket["logs"]
}

moved {
  from = aws_s3_bucket_ownership_controls.lake
  to   = aws_s3_bucket_ownership_controls.bucket["lake"]
}

moved {
  from = aws_s3_bucket_ownership_controls.logs
  to   = aws_s3_bucket_ownership_controls.bucket["logs"]
}

# --- TLS only: both buckets and the alerts topic (alerts.tf) refuse requests over plain HTTP -------

locals {
  tls_only = merge(
    { for k, b in local.buckets : k => { actions = ["s3:*"], resources = [b.arn, "${b.arn}/*"] } },
    { alerts = { actions = ["sns:Publish"], resources = [aws_sns_topic.alerts.arn] } },
  )
}

data "aws_iam_policy_document" "tls_only" {
  for_each = local.tls_only

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = each.value.actions
    resources = each.value.resources
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
