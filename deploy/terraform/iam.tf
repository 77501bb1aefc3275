# The workloads' IAM roles, assumed through the EKS cluster's OIDC provider (IRSA) by
# exactly one service account each (deploy/k8s/base/serviceaccounts.yaml).
data "aws_eks_cluster" "this" {
  name = var.eks_cluster_name
}

data "aws_iam_openid_connect_provider" "eks" {
  url = data.aws_eks_cluster.this.identity[0].oidc[0].issuer
}

locals {
  oidc_issuer = replace(data.aws_eks_cluster.this.identity[0].oidc[0].issuer, "https://", "")
}

data "aws_iam_policy_document" "assume" {
  for_each = toset(["api", "jobs"])
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [data.aws_iam_openid_connect_provider.eks.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${var.kubernetes_namespace}:recaudo-${each.key}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

# The API and the migration Job: the database and the JWKS are all they reach, neither
# through AWS. The role grants nothing; it exists so that no pod uses the node's role.
resource "aws_iam_role" "api" {
  name                 = "${local.name}-api"
  assume_role_policy   = data.aws_iam_policy_document.assume["api"].json
  max_session_duration = 3600
}

# The scheduler's jobs: the bucket, through the key.
resource "aws_iam_role" "jobs" {
  name                 = "${local.name}-jobs"
  assume_role_policy   = data.aws_iam_policy_document.assume["jobs"].json
  max_session_duration = 3600
}

data "aws_iam_policy_document" "jobs" {
  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.recaudo.arn]
  }
  # Ingest moves files (copy, then delete) from incoming/ to processed/ or rejected/;
  # reports and reconciliation write their own prefixes.
  statement {
    sid       = "ReadWriteObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.recaudo.arn}/*"]
  }
  statement {
    sid       = "UseTheKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.recaudo.arn]
  }
}

resource "aws_iam_role_policy" "jobs" {
  name   = "bucket"
  role   = aws_iam_role.jobs.id
  policy = data.aws_iam_policy_document.jobs.json
}

# For the External Secrets Operator's role (the platform's): read recaudo's secrets only.
data "aws_iam_policy_document" "read_secrets" {
  statement {
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [for s in aws_secretsmanager_secret.recaudo : s.arn]
  }
  statement {
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.recaudo.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_policy" "read_secrets" {
  name        = "${local.name}-read-secrets"
  description = "Attach to the External Secrets Operator's role: reads recaudo's secrets only."
  policy      = data.aws_iam_policy_document.read_secrets.json
}
