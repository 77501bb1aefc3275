# The bucket recaudo reads and writes (RECAUDO_OBJECT_STORE): operators' files under
# incoming/, bank statements under bank/, reports under reports/, reconciliation items, the
# field's hotlists. Encrypted with the key by default, never public, versioned, TLS only.
resource "aws_s3_bucket" "recaudo" {
  bucket = "${local.name}-${local.account_id}"
}

# What both buckets (this one and its access logs' below) share: owned by the account (no
# ACLs), never public, versioned, TLS only.
locals {
  buckets = {
    recaudo     = aws_s3_bucket.recaudo
    access_logs = aws_s3_bucket.access_logs
  }
}

resource "aws_s3_bucket_ownership_controls" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "all" {
  for_each                = local.buckets
  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "all" {
  for_each = local.buckets
  bucket   = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

data "aws_iam_policy_document" "tls_only" {
  for_each = local.buckets
  statement {
    sid       = "TlsOnly"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}




resource "aws_s3_bucket_server_side_encryption_configuration" "recaudo" {
  bucket = aws_s3_bucket.recaudo.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.recaudo.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "recaudo" {
  bucket     = aws_s3_bucket.recaudo.id
  depends_on = [aws_s3_bucket_versioning.all]

  # Rejected operator files and bank statements are kept, with their error reports, for as
  # long as someone may ask why; then they go.
  rule {
    id     = "rejected-files"
    status = "Enabled"
    filter {
      prefix = "rejected/"
    }
    transition {
      days          = 30
      storage_class = "STANDARD_IA"
    }
    expiration {
      days = var.rejected_retention_days
    }
  }

  rule {
    id     = "rejected-bank-statements"
    status = "Enabled"
    filter {
      prefix = "bank/rejected/"
    }
    transition {
      days          = 30
      storage_class = "STANDARD_IA"
    }
    expiration {
      days = var.rejected_retention_days
    }
  }

  # Published report versions (reports/{date}/v{n}/) are each their own keys and are kept;
  # what is overwritten (latest.json, provisional/) leaves old versions, which expire.
  rule {
    id     = "old-versions"
    status = "Enabled"
    filter {}
    noncurrent_version_transition {
      noncurrent_days = 30
      storage_class   = "STANDARD_IA"
    }
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_retention_days
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "reports-cold"
    status = "Enabled"
    filter {
      prefix = "reports/"
    }
    transition {
      days          = 90
      storage_class = "STANDARD_IA"
    }
  }
}

resource "aws_s3_bucket_policy" "recaudo" {
  bucket     = aws_s3_bucket.recaudo.id
  policy     = data.aws_iam_policy_document.bucket.json
  depends_on = [aws_s3_bucket_public_access_block.all]
}

data "aws_iam_policy_document" "bucket" {
  source_policy_documents = [data.aws_iam_policy_document.tls_only["recaudo"].json]

  statement {
    sid       = "ObjectsUnderOurKeyOnly"
    effect    = "Deny"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.recaudo.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "StringNotEqualsIfExists"
      variable = "s3:x-amz-server-side-encryption-aws-kms-key-id"
      values   = [aws_kms_key.recaudo.arn]
    }
  }

  # Each operator's uploader writes its own files, and nothing else anywhere.
  dynamic "statement" {
    for_each = var.operator_upload_principals
    content {
      sid       = "Upload${replace(statement.key, "/[^A-Za-z0-9]/", "")}"
      actions   = ["s3:PutObject"]
      resources = ["${aws_s3_bucket.recaudo.arn}/incoming/${statement.key}/*"]
      principals {
        type        = "AWS"
        identifiers = [statement.value]
      }
    }
  }
}

# Access logs of the bucket, in a bucket of their own (which logs nothing itself).
resource "aws_s3_bucket" "access_logs" {
  bucket = "${local.name}-access-logs-${local.account_id}"
}




# S3 server access logging delivers only to SSE-S3 buckets.
resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  bucket = aws_s3_bucket.access_logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  bucket     = aws_s3_bucket.access_logs.id
  depends_on = [aws_s3_bucket_versioning.all]
  rule {
    id     = "expire"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

resource "aws_s3_bucket_policy" "access_logs" {
  bucket     = aws_s3_bucket.access_logs.id
  policy     = data.aws_iam_policy_document.access_logs.json
  depends_on = [aws_s3_bucket_public_access_block.all]
}

data "aws_iam_policy_document" "access_logs" {
  source_policy_documents = [data.aws_iam_policy_document.tls_only["access_logs"].json]

  statement {
    sid       = "S3LogDelivery"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs.arn}/*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.recaudo.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_s3_bucket_logging" "recaudo" {
  bucket        = aws_s3_bucket.recaudo.id
  target_bucket = aws_s3_bucket.access_logs.id
  target_prefix = "recaudo/"
}
