# The workers need no inbound traffic. Outbound they reach S3, Athena, Glue, ECR, CloudWatch Logs
# and STS over HTTPS only, through a NAT gateway or VPC endpoints in var.subnet_ids (not created
# here: the VPC is an input).
resource "aws_security_group" "workers" {
  # checkov:skip=CKV2_AWS_5: attached at run time: the Airflow DAG passes this group in each RunTask's awsvpcConfiguration (Variable repurchase_security_groups, output airflow_variables), so no Terraform resource references it
  name        = "${var.name_prefix}-workers"
  description = "repurchase batch workers (ECS Fargate): no ingress, HTTPS egress only"
  vpc_id      = var.vpc_id
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.workers.id
  description       = "HTTPS to AWS APIs (S3, Athena, Glue, ECR, CloudWatch Logs, STS)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = var.egress_cidr
}
