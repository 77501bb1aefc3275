# CloudWatch log groups, encrypted with the key and kept var.log_retention_days. recaudo
# logs JSON to stdout (RECAUDO_LOG_FORMAT=json); the cluster's log agent (Fluent Bit or
# the CloudWatch Observability add-on) ships the namespace's container logs to the
# application group.
resource "aws_cloudwatch_log_group" "application" {
  name              = "/recaudo/${var.environment}/application"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.recaudo.arn
}

resource "aws_cloudwatch_log_group" "gateway" {
  name              = "/recaudo/${var.environment}/api-gateway"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.recaudo.arn
}

# WAF requires its log group's name to start with aws-waf-logs-.
resource "aws_cloudwatch_log_group" "waf" {
  name              = "aws-waf-logs-${local.name}-api"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.recaudo.arn
}
