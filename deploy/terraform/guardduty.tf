# GuardDuty watching the cluster (audit logs and runtime) and the bucket (data events).
resource "aws_guardduty_detector" "this" {
  count  = var.create_guardduty_detector ? 1 : 0
  enable = true
}

locals {
  guardduty_detector_id = var.create_guardduty_detector ? aws_guardduty_detector.this[0].id : var.guardduty_detector_id
}

resource "aws_guardduty_detector_feature" "s3" {
  detector_id = local.guardduty_detector_id
  name        = "S3_DATA_EVENTS"
  status      = "ENABLED"
}

resource "aws_guardduty_detector_feature" "eks_audit" {
  detector_id = local.guardduty_detector_id
  name        = "EKS_AUDIT_LOGS"
  status      = "ENABLED"
}

resource "aws_guardduty_detector_feature" "runtime" {
  detector_id = local.guardduty_detector_id
  name        = "RUNTIME_MONITORING"
  status      = "ENABLED"
  additional_configuration {
    name   = "EKS_ADDON_MANAGEMENT"
    status = "ENABLED"
  }
}
