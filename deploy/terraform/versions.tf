# recaudo's AWS resources around an existing EKS cluster, RDS database and MSK cluster
# (given by variables): the bucket and its key, the workloads' IAM roles, the API gateway
# with its JWT authorizer, the WAF, the secrets, the log groups and GuardDuty's protection.
# README, Production, says how to apply it and in which order with deploy/k8s.
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
  }
}

provider "aws" {
  region = var.region
  default_tags {
    tags = {
      Application = "recaudo"
      Environment = var.environment
    }
  }
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  name       = "recaudo-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
}
