# The secrets deploy/k8s's ExternalSecrets read. Terraform creates the containers only: the
# values are put by ops (`aws secretsmanager put-secret-value`), so they never enter
# Terraform's state or this repository.
locals {
  secrets = {
    # postgres://recaudo:…@host:5432/recaudo?sslmode=verify-full&sslrootcert=…
    database = { name = "recaudo/database-url", description = "RECAUDO_DATABASE_URL" }
    # {"issuer": …, "audience": …, "jwks_url": …}
    jwt = { name = "recaudo/jwt", description = "RECAUDO_JWT_ISSUER, RECAUDO_JWT_AUDIENCE, RECAUDO_JWT_JWKS" }
    # {"username": …, "password": …}; MSK's SCRAM secrets must be named AmazonMSK_….
    kafka = { name = "AmazonMSK_${local.name}", description = "SASL/SCRAM credentials for MSK" }
  }
}

resource "aws_secretsmanager_secret" "recaudo" {
  for_each                = local.secrets
  name                    = each.value.name
  description             = each.value.description
  kms_key_id              = aws_kms_key.recaudo.arn
  recovery_window_in_days = 30
}

resource "aws_msk_scram_secret_association" "recaudo" {
  cluster_arn     = var.msk_cluster_arn
  secret_arn_list = [aws_secretsmanager_secret.recaudo["kafka"].arn]
}
