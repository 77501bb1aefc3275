# What deploy/k8s/overlays/production needs (README, Production, says where each goes).
data "aws_rds_cluster" "recaudo" {
  cluster_identifier = var.rds_cluster_identifier
}

data "aws_msk_bootstrap_brokers" "recaudo" {
  cluster_arn = var.msk_cluster_arn
}

output "bucket" {
  description = "RECAUDO_OBJECT_STORE is s3://{this}/"
  value       = aws_s3_bucket.recaudo.bucket
}

output "kms_key_arn" {
  description = "RECAUDO_S3_SSE_KMS_KEY_ID (the ARN: the bucket policy compares ARNs)"
  value       = aws_kms_key.recaudo.arn
}

output "api_role_arn" {
  description = "ServiceAccount recaudo-api's eks.amazonaws.com/role-arn"
  value       = aws_iam_role.api.arn
}

output "jobs_role_arn" {
  description = "ServiceAccount recaudo-jobs's eks.amazonaws.com/role-arn"
  value       = aws_iam_role.jobs.arn
}

output "read_secrets_policy_arn" {
  description = "Attach to the External Secrets Operator's role"
  value       = aws_iam_policy.read_secrets.arn
}

output "waf_acl_arn" {
  description = "The Ingress's alb.ingress.kubernetes.io/wafv2-acl-arn"
  value       = aws_wafv2_web_acl.api.arn
}

output "api_endpoint" {
  description = "Where operators call the API (put a custom domain in front for production)"
  value       = aws_apigatewayv2_api.recaudo.api_endpoint
}

output "database_endpoint" {
  description = "Host of RECAUDO_DATABASE_URL (the secret recaudo/database-url)"
  value       = data.aws_rds_cluster.recaudo.endpoint
}

output "kafka_brokers" {
  description = "RECAUDO_KAFKA_BROKERS (SASL/SCRAM)"
  value       = data.aws_msk_bootstrap_brokers.recaudo.bootstrap_brokers_sasl_scram
}

output "image_repository" {
  description = "The production overlay's images[0].newName"
  value       = aws_ecr_repository.recaudo.repository_url
}
