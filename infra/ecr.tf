# The workers' image (docker/Dockerfile). Tags are immutable: push a new tag per build (e.g. the git
# commit) and set var.image_tag to roll the task definitions forward.
resource "aws_ecr_repository" "workers" {
  name                 = var.name_prefix
  image_tag_mutability = "IMMUTABLE"
  force_delete         = false

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "workers" {
  repository = aws_ecr_repository.workers.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "keep the newest ${var.ecr_keep_images} images"
        selection = {
          tagStatus   = "any"
          countType   = "imageCountMoreThan"
          countNumber = var.ecr_keep_images
        }
        action = { type = "expire" }
      }
    ]
  })
}
