variable "region" {
  description = "AWS region for every resource (and AWS_REGION in the workers' environment)."
  type        = string
  default     = "us-east-1"
  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as us-east-1."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name. The task definition families are <name_prefix>-<worker> (the DAG runs repurchase-extract, ...), so keep the default unless the DAG is told otherwise."
  type        = string
  default     = "repurchase"
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,28}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix: 3-30 characters, lower-case letters, digits and '-', starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource (merged into the provider's default_tags)."
  type        = map(string)
  default     = {}
}

variable "lake_bucket_name" {
  description = "Name of the lake bucket; null = <name_prefix>-lake-<account id>-<region>. The access-log bucket is <name>-logs."
  type        = string
  default     = null
  validation {
    # Letters, digits, '.', '-' only: extract builds the UNLOAD location from it (docs/S3_AND_ATHENA.md "Athena").
    condition     = var.lake_bucket_name == null || can(regex("^[a-z0-9][a-z0-9.-]{1,56}[a-z0-9]$", var.lake_bucket_name))
    error_message = "lake_bucket_name: 3-58 characters (room for the -logs suffix), lower-case letters, digits, '.' and '-'."
  }
}

variable "data_prefix" {
  description = "Key prefix of the data root inside the lake bucket: REPURCHASE_DATA_ROOT = s3://<bucket>/<data_prefix> (no trailing slash)."
  type        = string
  default     = "prod"
  validation {
    # extract accepts only letters, digits and . _ = - in the data root's key (docs/S3_AND_ATHENA.md "Athena").
    condition     = can(regex("^[A-Za-z0-9._=-]+(/[A-Za-z0-9._=-]+)*$", var.data_prefix))
    error_message = "data_prefix: non-empty, segments of letters, digits, '.', '_', '=', '-' separated by '/', no leading or trailing '/'."
  }
}

variable "vpc_id" {
  description = "VPC the Fargate tasks run in (security group home)."
  type        = string
  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the tasks (awsvpc). They need HTTPS egress to S3, Athena, Glue, ECR, CloudWatch Logs and STS through a NAT gateway or VPC endpoints; the DAG runs tasks without public IPs."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) > 0 && alltrue([for s in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "subnet_ids: at least one subnet id like subnet-0123456789abcdef0."
  }
}

variable "egress_cidr" {
  description = "Destination of the workers' only egress rule (TCP 443). Narrow it when all AWS APIs are reached through VPC endpoints."
  type        = string
  default     = "0.0.0.0/0"
  validation {
    condition     = can(cidrhost(var.egress_cidr, 0))
    error_message = "egress_cidr must be an IPv4 CIDR block."
  }
}

variable "image_tag" {
  description = "Tag of the worker image in the ECR repository (tags are immutable: use the git commit, e.g. the value passed as REPURCHASE_GIT_SHA)."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag: a Docker tag (letters, digits, '_', '.', '-'; at most 128), not 'latest' (the repository's tags are immutable)."
  }
}

variable "worker_sizes" {
  description = "Fargate cpu units and memory (MiB) per worker. extract and build-features hold whole tables in DataFusion; train fits the GBDT; calibrate and score are small."
  type = map(object({
    cpu    = number
    memory = number
  }))
  default = {
    extract          = { cpu = 2048, memory = 8192 }
    "build-features" = { cpu = 2048, memory = 8192 }
    train            = { cpu = 2048, memory = 4096 }
    calibrate        = { cpu = 1024, memory = 2048 }
    score            = { cpu = 512, memory = 2048 }
  }
  validation {
    condition     = length(setsymmetricdifference(keys(var.worker_sizes), ["extract", "build-features", "train", "calibrate", "score"])) == 0
    error_message = "worker_sizes needs exactly the keys extract, build-features, train, calibrate, score."
  }
  validation {
    # Fargate's valid combinations (memory in MiB; 1024-MiB steps above 2 GiB).
    condition = alltrue([
      for s in values(var.worker_sizes) : (
        (s.cpu == 256 && contains([512, 1024, 2048], s.memory)) ||
        (s.cpu == 512 && s.memory >= 1024 && s.memory <= 4096 && s.memory % 1024 == 0) ||
        (s.cpu == 1024 && s.memory >= 2048 && s.memory <= 8192 && s.memory % 1024 == 0) ||
        (s.cpu == 2048 && s.memory >= 4096 && s.memory <= 16384 && s.memory % 1024 == 0) ||
        (s.cpu == 4096 && s.memory >= 8192 && s.memory <= 30720 && s.memory % 1024 == 0) ||
        (s.cpu == 8192 && s.memory >= 16384 && s.memory <= 61440 && s.memory % 4096 == 0) ||
        (s.cpu == 16384 && s.memory >= 32768 && s.memory <= 122880 && s.memory % 8192 == 0)
      )
    ])
    error_message = "worker_sizes: each cpu/memory pair must be a valid Fargate combination (e.g. 1024 cpu with 2048-8192 MiB)."
  }
}

variable "rust_log" {
  description = "RUST_LOG for the workers (log level)."
  type        = string
  default     = "info"
  validation {
    condition     = length(var.rust_log) > 0
    error_message = "rust_log must not be empty."
  }
}

variable "log_group_name" {
  description = "CloudWatch log group of the workers; each worker's streams start with its name."
  type        = string
  default     = "/ecs/repurchase"
  validation {
    condition     = can(regex("^[A-Za-z0-9_./#-]{1,512}$", var.log_group_name))
    error_message = "log_group_name: 1-512 characters of letters, digits, '_', '-', '/', '.', '#'."
  }
}

variable "log_retention_days" {
  description = "Retention of the workers' logs, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be one of CloudWatch Logs' retention values (1, 3, 5, 7, 14, 30, ..., 365, ..., 3653)."
  }
}

# --- retention of the lake -------------------------------------------------------------------------

variable "lake_expiration_days" {
  description = <<-EOT
    Days after which the objects under each prefix of <data_prefix>/ expire, counted from their last write; null = never (raw, features, scores and backtests only). Give every key:
      raw          raw/, a full TheLook export per run date (at least 7). build-features reads only its own run date's raw partitions, and a rerun of an older date reruns extract first.
      features     features/train and features/score (at least 90). train and calibrate of a date read its features/train, a backtest reads the labels in features/train of an outcome date at least 60 + 14 days after its score date, and the quality gates compare with the latest earlier run.
      scores       scores/ (at least 90). A backtest judges a run date's scores once its 60-day windows have closed and settled (60 + 14 days).
      score_shards score_shards/, the input of score --merge-shards (at least 3). Once merged into scores/ nothing reads them; a failed merge is rerun from them.
      backtests    backtests/, rolling_backtests/, monitoring/, monitoring_pages/ and diagnostics/, the small JSON and HTML reports of `repurchase backtest`, score's drift reports, `repurchase monitor`'s pages and `repurchase diagnose`'s figures and pages (at least 30; default never: the record of how the served model and its population moved). score compares each day's population with the latest earlier report.
      staging      staging/, Athena UNLOAD output and query results, read back within the task that wrote them (at least 1).
      locks        _locks/<stage>/run_date=D.json lock leases (1 to 30). A held lock is rewritten every two minutes (10-minute lease), so expiry only removes leases of finished or dead runs.
    models/ (models, calibrations and the champion decisions in calibration/promotion.json) has no key: it never expires (s3.tf, local.lake_never_expire).
  EOT
  type        = map(number)
  default = {
    raw          = 400
    features     = 400
    scores       = 400
    score_shards = 7
    backtests    = null
    staging      = 14
    locks        = 3
  }
  validation {
    condition     = sort(keys(var.lake_expiration_days)) == sort(["raw", "features", "scores", "score_shards", "backtests", "staging", "locks"])
    error_message = "lake_expiration_days needs exactly the keys raw, features, scores, score_shards, backtests, staging, locks (got ${join(", ", keys(var.lake_expiration_days))})."
  }
  validation {
    condition     = !contains([for k, days in var.lake_expiration_days : days == null && contains(["score_shards", "staging", "locks"], k)], true)
    error_message = "lake_expiration_days: score_shards, staging and locks need a number of days; null (never expire) is for raw, features, scores and backtests only."
  }
  validation {
    # Each key's minimum; a null or missing value is left to the rules above.
    condition     = !contains([for k, min in { raw = 7, features = 90, scores = 90, score_shards = 3, backtests = 30, staging = 1, locks = 1 } : try(var.lake_expiration_days[k] < min, false)], true)
    error_message = "lake_expiration_days ${jsonencode(var.lake_expiration_days)} is below a minimum: raw 7 (room to rerun build-features on a recent date without re-extracting), features and scores 90 (the 60-day label horizon plus the 14 settle days, with margin for reruns and backtests), score_shards 3 (a failed merge can still be rerun after a weekend), backtests 30, staging and locks 1."
  }
  validation {
    condition     = try(var.lake_expiration_days.locks <= 30, true)
    error_message = "lake_expiration_days.locks must be at most 30 (a lease lasts 10 minutes; older lock files are only litter)."
  }
}

variable "noncurrent_version_expiration_days" {
  description = "Days a replaced or deleted object version (e.g. after a rerun) is kept in the lake bucket."
  type        = number
  default     = 30
  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "access_log_expiration_days" {
  description = "Days S3 server access logs of the lake are kept."
  type        = number
  default     = 365
  validation {
    condition     = var.access_log_expiration_days >= 1
    error_message = "access_log_expiration_days must be at least 1."
  }
}

variable "glue_database_name" {
  description = "Glue/Athena database for the lake tables of sql/ddl (raw_*, features_train, features_score, scores)."
  type        = string
  default     = "repurchase"
  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,254}$", var.glue_database_name))
    error_message = "glue_database_name: lower-case letters, digits and '_', not starting with a digit."
  }
}

variable "athena_source_database" {
  description = "Athena/Glue database holding TheLook's seven tables, read by extract --source athena (REPURCHASE_ATHENA_DATABASE)."
  type        = string
  default     = "thelook_ecommerce"
  validation {
    # The pattern extract itself enforces (docs/S3_AND_ATHENA.md "Athena").
    condition     = can(regex("^[A-Za-z_][A-Za-z0-9_]*$", var.athena_source_database))
    error_message = "athena_source_database must match ^[A-Za-z_][A-Za-z0-9_]*$."
  }
}

variable "athena_timeout_secs" {
  description = "REPURCHASE_ATHENA_TIMEOUT_SECS: how long extract waits for its UNLOAD queries before stopping them (exit 75)."
  type        = number
  default     = 1800
  validation {
    condition     = var.athena_timeout_secs >= 60
    error_message = "athena_timeout_secs must be at least 60."
  }
}

variable "athena_bytes_scanned_cutoff" {
  description = "Per-query scan limit of the workgroup, in bytes (guards against runaway analyst queries)."
  type        = number
  default     = 107374182400 # 100 GiB
  validation {
    condition     = var.athena_bytes_scanned_cutoff >= 10485760
    error_message = "athena_bytes_scanned_cutoff must be at least 10 MiB (Athena's minimum)."
  }
}

variable "extract_source" {
  description = "REPURCHASE_SOURCE for extract: \"athena\", or an s3:// folder with TheLook's tables as CSV/Parquet (then list it in source_s3_paths too)."
  type        = string
  default     = "athena"
  validation {
    condition     = var.extract_source == "athena" || can(regex("^s3://[a-z0-9][a-z0-9.-]+[a-z0-9](/.*)?$", var.extract_source))
    error_message = "extract_source must be \"athena\" or an s3://bucket/prefix URL."
  }
}

variable "features_engine" {
  description = "REPURCHASE_FEATURES_ENGINE for build-features: \"datafusion\" (in the task) or \"athena\" (the feature query as an Athena UNLOAD over the lake's Glue tables, for data that outgrows one task; grants build-features Athena and Glue read on the lake database)."
  type        = string
  default     = "datafusion"
  validation {
    condition     = contains(["datafusion", "athena"], var.features_engine)
    error_message = "features_engine must be \"datafusion\" or \"athena\"."
  }
}

variable "source_s3_paths" {
  description = "Where extract reads its source: \"bucket\" or \"bucket/prefix\" entries (the S3 data behind TheLook's Athena tables, or the CSV/Parquet folder of extract_source). Read-only access is granted to extract's role only."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for p in var.source_s3_paths : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^*]*)?$", p))])
    error_message = "source_s3_paths: entries like my-bucket or my-bucket/some/prefix (no s3:// and no '*')."
  }
}

variable "source_kms_key_arns" {
  description = "KMS keys that encrypt the source data in source_s3_paths, if any (kms:Decrypt for extract)."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for k in var.source_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", k))])
    error_message = "source_kms_key_arns: KMS key ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID)."
  }
}

variable "ecr_keep_images" {
  description = "How many images the ECR lifecycle policy keeps."
  type        = number
  default     = 50
  validation {
    condition     = var.ecr_keep_images >= 5
    error_message = "ecr_keep_images must be at least 5 (room to roll back)."
  }
}

variable "ecr_protected_tags" {
  description = "Image tags the ECR lifecycle policy never expires, besides image_tag (which is always protected): e.g. the previously deployed tag, to roll back to."
  type        = list(string)
  default     = []
  validation {
    # contains(..., false) rather than alltrue: the form check_hcl.py can evaluate offline.
    condition     = !contains([for t in var.ecr_protected_tags : can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", t)) && t != "latest"], false)
    error_message = "ecr_protected_tags: exact Docker tags (letters, digits, '_', '.', '-'; no '*'), not 'latest'."
  }
}

# --- Airflow --------------------------------------------------------------------------------------

variable "airflow_assume_role_principals" {
  description = "Self-hosted Airflow: who may assume the role <name_prefix>-airflow (created only when this is non-empty, with the Airflow policy attached): service principals (e.g. ecs-tasks.amazonaws.com or ec2.amazonaws.com for Airflow running on ECS or EC2) and/or IAM ARNs (the role or user behind the aws_default connection, or arn:aws:iam::ACCOUNT:root). IAM refuses ARNs that do not exist."
  type        = list(string)
  default     = []
  validation {
    condition = !contains([
      for p in var.airflow_assume_role_principals :
      can(regex("^[a-z0-9-]+(\\.[a-z0-9-]+)*\\.amazonaws\\.com(\\.cn)?$", p)) || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:(root|role/[A-Za-z0-9+=,.@_/-]+|user/[A-Za-z0-9+=,.@_/-]+)$", p))
    ], false)
    error_message = "airflow_assume_role_principals: service principals like ecs-tasks.amazonaws.com, or IAM ARNs like arn:aws:iam::123456789012:role/airflow (no wildcards)."
  }
}

variable "airflow_mwaa_execution_role_name" {
  description = "Amazon MWAA: name (not ARN) of the environment's existing execution role; the Airflow policy is attached to it. null = no MWAA."
  type        = string
  default     = null
  validation {
    condition     = var.airflow_mwaa_execution_role_name == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.airflow_mwaa_execution_role_name))
    error_message = "airflow_mwaa_execution_role_name: an IAM role name (1-64 of letters, digits and +=,.@_-), not an ARN."
  }
}

# --- alerts ---------------------------------------------------------------------------------------

variable "alert_email_addresses" {
  description = "Email addresses subscribed to the alerts topic (each must confirm the subscription). Other subscriptions (chat, paging) can be added outside Terraform, with a filter policy on the message attribute route."
  type        = list(string)
  default     = []
  validation {
    condition     = !contains([for a in var.alert_email_addresses : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", a))], false)
    error_message = "alert_email_addresses: email addresses like data-team@example.com."
  }
}

variable "alert_ignored_exit_codes" {
  description = "Worker exit codes that do not raise the ECS task alarm (besides 0), e.g. [75] to stay quiet about transient failures the DAG retries. The DAG's own failure messages are not affected."
  type        = list(number)
  default     = []
  validation {
    condition     = !contains([for c in var.alert_ignored_exit_codes : c >= 1 && c <= 255 && floor(c) == c], false)
    error_message = "alert_ignored_exit_codes: whole numbers from 1 to 255 (0, success, never alerts)."
  }
}
