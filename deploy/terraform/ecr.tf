# The image repository (scripts/image builds the image; CI pushes it here). Tags are
# immutable, so a tag names one image for ever and deploy/k8s can deploy by tag.
resource "aws_ecr_repository" "recaudo" {
  name                 = "recaudo"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.recaudo.arn
  }
}

resource "aws_ecr_lifecycle_policy" "recaudo" {
  repository = aws_ecr_repository.recaudo.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Untagged images go after two weeks; tagged releases stay (rollback)."
      selection = {
        tagStatus   = "untagged"
        countType   = "sinceImagePushed"
        countUnit   = "days"
        countNumber = 14
      }
      action = { type = "expire" }
    }]
  })
}
