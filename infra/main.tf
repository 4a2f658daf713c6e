provider "aws" {
  region = var.region

  default_tags {
    tags = merge({ Project = "repurchase", ManagedBy = "terraform" }, var.tags)
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  bucket_name = coalesce(var.lake_bucket_name, "${var.name_prefix}-lake-${local.account_id}-${var.region}")
  log_bucket  = "${local.bucket_name}-logs"

  # The workers' data root (docs/WORKERS.md: "Data layout and manifests"): s3://bucket/prefix, no trailing slash.
  data_prefix = var.data_prefix
  data_root   = "s3://${local.bucket_name}/${local.data_prefix}"

  # One Fargate task per worker. cpu/memory come from var.worker_sizes. The container's entry point
  # is the worker binary, so the DAG's command override is just the arguments
  # (`--run-date D --data-root URL ...`, dags/repurchase.py).
  workers = {
    for name in ["extract", "build-features", "train", "calibrate", "score"] :
    name => {
      family      = "${var.name_prefix}-${name}"
      cpu         = var.worker_sizes[name].cpu
      memory      = var.worker_sizes[name].memory
      entry_point = ["/usr/local/bin/${name}"]
    }
  }

  ecr_image = "${aws_ecr_repository.workers.repository_url}:${var.image_tag}"
}
