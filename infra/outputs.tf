output "lake_bucket" {
  description = "Name of the lake bucket."
  value       = aws_s3_bucket.lake.bucket
}

output "access_log_bucket" {
  description = "Bucket receiving the lake's S3 server access logs."
  value       = aws_s3_bucket.logs.bucket
}

output "data_root" {
  description = "REPURCHASE_DATA_ROOT of every worker (s3://bucket/prefix); Airflow Variable repurchase_data_root."
  value       = local.data_root
}

output "kms_key_arn" {
  description = "The customer-managed key of the bucket, Athena results, ECR and the log group."
  value       = aws_kms_key.main.arn
}

output "cluster_name" {
  description = "ECS cluster name; Airflow Variable repurchase_ecs_cluster (RunTask accepts the name or the ARN)."
  value       = aws_ecs_cluster.main.name
}

output "cluster_arn" {
  description = "ECS cluster ARN."
  value       = aws_ecs_cluster.main.arn
}

output "task_definition_families" {
  description = "Task definition family per worker (<name_prefix>-<worker>; Airflow Variable repurchase_task_definition_prefix = name_prefix); RunTask with the family runs its latest ACTIVE revision."
  value       = { for k, w in local.workers : k => aws_ecs_task_definition.worker[k].family }
}

output "task_definition_arns" {
  description = "Task definition ARN (with revision) per worker."
  value       = { for k, td in aws_ecs_task_definition.worker : k => td.arn }
}

output "container_names" {
  description = "Container name inside each worker's task definition (the name in RunTask containerOverrides): the worker's name. Its entry point is /usr/local/bin/<worker>, so a command override holds only the arguments."
  value       = { for k, _ in local.workers : k => k }
}

output "task_role_arns" {
  description = "Task role per worker."
  value       = { for k, r in aws_iam_role.worker : k => r.arn }
}

output "execution_role_arn" {
  description = "ECS task execution role shared by the workers."
  value       = aws_iam_role.execution.arn
}

output "subnet_ids" {
  description = "Subnets for RunTask's awsvpcConfiguration; Airflow Variable repurchase_subnets (comma-separated)."
  value       = var.subnet_ids
}

output "security_group_ids" {
  description = "Security groups for RunTask's awsvpcConfiguration; Airflow Variable repurchase_security_groups (comma-separated)."
  value       = [aws_security_group.workers.id]
}

output "log_group_name" {
  description = "CloudWatch log group of the workers; Airflow Variable repurchase_awslogs_group."
  value       = aws_cloudwatch_log_group.workers.name
}

output "awslogs_stream_prefix" {
  description = "awslogs stream prefix of every worker: streams are <prefix>/<worker>/<task id>; Airflow Variable repurchase_awslogs_stream_prefix."
  value       = var.name_prefix
}

output "ecr_repository_url" {
  description = "Push the worker image here (docker/Dockerfile), tagged with var.image_tag."
  value       = aws_ecr_repository.workers.repository_url
}

output "athena_workgroup" {
  description = "Athena workgroup (extract's REPURCHASE_ATHENA_WORKGROUP and for querying the lake tables)."
  value       = aws_athena_workgroup.main.name
}

output "glue_database" {
  description = "Glue database with the lake tables of sql/ddl."
  value       = aws_glue_catalog_database.lake.name
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
  description = "SNS topic for failures (the DAG's, with message attribute route = data | platform, and ECS tasks that stopped with a non-zero exit code); Airflow Variable repurchase_alerts_topic_arn."
  value       = aws_sns_topic.alerts.arn
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
