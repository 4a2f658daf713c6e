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

locals {
  # The deployed tag first, so it gets rulePriority 1; then the extra protected tags.
  ecr_protected_tags = distinct(concat([var.image_tag], var.ecr_protected_tags))
}

# ECR evaluates rules by rulePriority, lowest first, and an image matched by the tag selection of a
# higher-priority rule is never expired by a lower-priority one. So each protected tag gets its own
# rule (a tagPatternList with several entries selects only images carrying all of them) whose count
# cannot be exceeded: a tag names at most one image, and the tags are immutable. The keep-newest rule
# (tagStatus any, which ECR requires to have the highest priority) still counts the protected images
# among the newest it keeps, but cannot expire them: the running task definitions never point at a
# deleted image, however many builds are pushed.
resource "aws_ecr_lifecycle_policy" "workers" {
  repository = aws_ecr_repository.workers.name
  policy = jsonencode({
    rules = concat(
      [
        for i, tag in local.ecr_protected_tags : {
          rulePriority = i + 1
          description  = "never expire ${tag}"
          selection = {
            tagStatus      = "tagged"
            tagPatternList = [tag]
            countType      = "imageCountMoreThan"
            countNumber    = 1
          }
          action = { type = "expire" }
        }
      ],
      [
        {
          rulePriority = length(local.ecr_protected_tags) + 1
          description  = "keep the newest ${var.ecr_keep_images} images"
          selection = {
            tagStatus   = "any"
            countType   = "imageCountMoreThan"
            countNumber = var.ecr_keep_images
          }
          action = { type = "expire" }
        }
      ]
    )
  })
}
