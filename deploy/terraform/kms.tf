# One customer-managed key for recaudo's data at rest: the bucket (SSE-KMS, every object,
# RECAUDO_S3_SSE_KMS_KEY_ID), the secrets, the log groups and the image repository.
resource "aws_kms_key" "recaudo" {
  description             = "${local.name}: objects, secrets, logs and images"
  enable_key_rotation     = true
  rotation_period_in_days = 365
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "recaudo" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.recaudo.key_id
}

data "aws_iam_policy_document" "kms" {
  # The account administers the key through IAM (no principal is locked out).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  # The jobs encrypt and decrypt objects, and only through S3.
  statement {
    sid       = "JobsUseThroughS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.jobs.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  # Operators' upload principals encrypt what they put under their own prefix, through S3.
  dynamic "statement" {
    for_each = length(var.operator_upload_principals) > 0 ? [1] : []
    content {
      sid       = "OperatorsUploadThroughS3"
      actions   = ["kms:GenerateDataKey"]
      resources = ["*"]
      principals {
        type        = "AWS"
        identifiers = values(var.operator_upload_principals)
      }
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${var.region}.amazonaws.com"]
      }
    }
  }

  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }
}
