variable "region" {
  description = "AWS region of the EKS cluster, the database and the bucket."
  type        = string
}

variable "environment" {
  description = "Name of the environment (production, staging): part of every resource's name."
  type        = string
  default     = "production"
}

# The platform's existing clusters: recaudo does not create them, it names them.
variable "eks_cluster_name" {
  description = "Name of the existing EKS cluster recaudo runs in (its OIDC provider must be registered in IAM)."
  type        = string
}

variable "rds_cluster_identifier" {
  description = "Identifier of the existing Aurora PostgreSQL cluster (or RDS instance) recaudo's database lives in."
  type        = string
}

variable "msk_cluster_arn" {
  description = "ARN of the existing MSK cluster (SASL/SCRAM enabled) validations come from and events go to."
  type        = string
}

variable "kubernetes_namespace" {
  description = "Namespace of deploy/k8s (the service accounts' roles trust only it)."
  type        = string
  default     = "recaudo"
}

variable "vpc_link_subnet_ids" {
  description = "Private subnets of the API gateway's VPC link (those of the API's internal load balancer)."
  type        = list(string)
}

variable "vpc_link_security_group_ids" {
  description = "Security groups of the VPC link's network interfaces (allowed to reach the internal load balancer on 443)."
  type        = list(string)
}

variable "api_listener_arn" {
  description = "ARN of the HTTPS listener of the API's internal load balancer (made by the AWS Load Balancer Controller from deploy/k8s's Ingress; see README, Production, for the order)."
  type        = string
}

variable "api_internal_hostname" {
  description = "Hostname on the internal load balancer's certificate, verified by the gateway's TLS to it."
  type        = string
}

variable "jwt_issuer" {
  description = "Issuer (iss) of the operators' tokens, the identity provider's URL."
  type        = string
}

variable "jwt_audience" {
  description = "Audiences (aud) the gateway's authorizer accepts."
  type        = list(string)
}

variable "operator_upload_principals" {
  description = "Operator id => IAM principal ARN allowed to write that operator's files, and only under incoming/{operator id}/."
  type        = map(string)
  default     = {}
}

variable "api_rate_limit_per_5min" {
  description = "Requests per 5 minutes from one client address before the WAF blocks it (the API also limits per operator)."
  type        = number
  default     = 3000
}

variable "api_throttle_rate" {
  description = "Gateway steady-state requests per second across all clients."
  type        = number
  default     = 2000
}

variable "api_throttle_burst" {
  description = "Gateway burst of requests across all clients."
  type        = number
  default     = 4000
}

variable "log_retention_days" {
  description = "How long CloudWatch keeps recaudo's and the gateway's logs (one year at least for audit)."
  type        = number
  default     = 400
}

variable "rejected_retention_days" {
  description = "How long rejected operator files and bank statements (with their error reports) are kept."
  type        = number
  default     = 400
}

variable "noncurrent_version_retention_days" {
  description = "How long an object's overwritten or deleted versions are kept (report versions themselves are separate keys, kept for ever)."
  type        = number
  default     = 730
}

variable "create_guardduty_detector" {
  description = "Create the account's GuardDuty detector in this region; false when one exists already (give its id)."
  type        = bool
  default     = true
}

variable "guardduty_detector_id" {
  description = "Id of an existing GuardDuty detector (when create_guardduty_detector is false)."
  type        = string
  default     = ""
}
