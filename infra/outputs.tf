# Grouped by who reads them: the lake (analysts, backtests, roles granted read access), running a
# worker by hand (ecs, workers), the image (ecr_repository_url), Airflow (airflow_*, alerts_topic_arn).

output "lake" {
  description = "The lake: bucket, data root (REPURCHASE_DATA_ROOT of every worker, s3://bucket/prefix), the bucket of its S3 server access logs, the Glue database and Athena workgroup to query its tables (sql/ddl), and the customer-managed key that encrypts it (a role reading the lake needs kms:Decrypt on it; it also encrypts Athena results, ECR, the log group and the alerts topic)."
  value = {
    bucket            = aws_s3_bucket.lake.bucket
    data_root         = local.data_root
    access_log_bucket = aws_s3_bucket.logs.bucket
    glue_database     = aws_glue_catalog_database.lake.name
    athena_workgroup  = aws_athena_workgroup.main.name
    kms_key_arn       = aws_kms_key.main.arn
  }
}

output "ecs" {
  description = "What a RunTask of a worker needs besides the worker's own entries (output workers): the cluster, the awsvpcConfiguration the DAG passes (private subnets, the workers' security group, no public IP), the shared execution role, and where the logs go (streams <awslogs_stream_prefix>/<worker>/<task id>). The DAG reads the same values from airflow_variables."
  value = {
    cluster_name          = aws_ecs_cluster.main.name
    cluster_arn           = aws_ecs_cluster.main.arn
    subnet_ids            = var.subnet_ids
    security_group_ids    = [aws_security_group.workers.id]
    execution_role_arn    = aws_iam_role.execution.arn
    log_group_name        = aws_cloudwatch_log_group.workers.name
    awslogs_stream_prefix = var.name_prefix
  }
}

output "workers" {
  description = "Per worker: its task definition family (<name_prefix>-<worker>; RunTask with the family runs its latest ACTIVE revision) and current revision's ARN, the container name inside it (the name in RunTask containerOverrides; its entry point is /usr/local/bin/<worker>, so a command override holds only the arguments), and its task role."
  value = {
    for k, td in aws_ecs_task_definition.worker : k => {
      family              = td.family
      task_definition_arn = td.arn
      container_name      = k
      task_role_arn       = aws_iam_role.worker[k].arn
    }
  }
}

output "ecr_repository_url" {
  description = "Push the worker image here (docker/Dockerfile), tagged with var.image_tag."
  value       = aws_ecr_repository.workers.repository_url
}

output "airflow_variables" {
  description = "The Airflow Variables dags/repurchase.py reads, ready for `airflow variables import` (see README.md)."
  value = {
    repurchase_data_root              = local.data_root
    repurchase_ecs_cluster            = aws_ecs_cluster.main.name
    repurchase_task_definition_prefix = var.name_prefix
    repurchase_subnets                = join(",", var.subnet_ids)
    repurchase_security_groups        = aws_security_group.workers.id
    repurchase_assign_public_ip       = "DISABLED"
    repurchase_awslogs_group          = aws_cloudwatch_log_group.workers.name
    repurchase_awslogs_stream_prefix  = var.name_prefix
    repurchase_alerts_topic_arn       = aws_sns_topic.alerts.arn
  }
}

output "airflow_policy_arn" {
  description = "IAM policy for the role Airflow runs as; attached to airflow_role_arn and/or var.airflow_mwaa_execution_role_name."
  value       = aws_iam_policy.airflow.arn
}

output "airflow_role_arn" {
  description = "Role for self-hosted Airflow (the aws_default connection's role_arn, or the role of the tasks/instances Airflow runs on); null unless airflow_assume_role_principals is set."
  value       = one(aws_iam_role.airflow[*].arn)
}

output "airflow_policy_attached_to" {
  description = "Roles the Airflow policy is attached to by this configuration (empty: attach airflow_policy_arn yourself)."
  value       = concat(aws_iam_role_policy_attachment.airflow[*].role, aws_iam_role_policy_attachment.airflow_mwaa[*].role)
}

output "alerts_topic_arn" {
  description = "SNS topic for failures (the DAG's, with message attribute route = data | platform, and ECS tasks that stopped with a non-zero exit code); also Airflow Variable repurchase_alerts_topic_arn, and REPURCHASE_ALERTS_TOPIC_ARN in the Airflow environment for the deadline alert."
  value       = aws_sns_topic.alerts.arn
}
