terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.0"
    }
  }

  # State: configure a backend for a shared deployment (e.g. `backend "s3" {}` with
  # `terraform init -backend-config=...`); see README.md.
}
