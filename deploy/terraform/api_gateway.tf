# The operators' entry: an HTTP API whose JWT authorizer checks issuer, audience and expiry
# before a request reaches recaudo (which verifies the token again, with its scopes). The
# VPC link carries requests, over TLS, to the API's internal load balancer; the WAF is on
# that load balancer (a WAF cannot be attached to an HTTP API).
resource "aws_apigatewayv2_api" "recaudo" {
  name                         = "${local.name}-api"
  protocol_type                = "HTTP"
  disable_execute_api_endpoint = false
  description                  = "recaudo online API for recharge operators"
}

resource "aws_apigatewayv2_authorizer" "jwt" {
  api_id           = aws_apigatewayv2_api.recaudo.id
  name             = "operators-jwt"
  authorizer_type  = "JWT"
  identity_sources = ["$request.header.Authorization"]
  jwt_configuration {
    issuer   = var.jwt_issuer
    audience = var.jwt_audience
  }
}

resource "aws_apigatewayv2_vpc_link" "recaudo" {
  name               = "${local.name}-api"
  subnet_ids         = var.vpc_link_subnet_ids
  security_group_ids = var.vpc_link_security_group_ids
}

resource "aws_apigatewayv2_integration" "recaudo" {
  api_id                 = aws_apigatewayv2_api.recaudo.id
  integration_type       = "HTTP_PROXY"
  integration_method     = "ANY"
  connection_type        = "VPC_LINK"
  connection_id          = aws_apigatewayv2_vpc_link.recaudo.id
  integration_uri        = var.api_listener_arn
  payload_format_version = "1.0"
  timeout_milliseconds   = 15000
  tls_config {
    server_name_to_verify = var.api_internal_hostname
  }
}

# Every route needs a token; health and metrics are not exposed through the gateway
# (Kubernetes probes and Prometheus reach the pods directly).
resource "aws_apigatewayv2_route" "recaudo" {
  for_each           = toset(["ANY /v1/{proxy+}", "GET /openapi.json"])
  api_id             = aws_apigatewayv2_api.recaudo.id
  route_key          = each.key
  target             = "integrations/${aws_apigatewayv2_integration.recaudo.id}"
  authorization_type = "JWT"
  authorizer_id      = aws_apigatewayv2_authorizer.jwt.id
}

resource "aws_apigatewayv2_stage" "default" {
  api_id      = aws_apigatewayv2_api.recaudo.id
  name        = "$default"
  auto_deploy = true
  default_route_settings {
    throttling_rate_limit  = var.api_throttle_rate
    throttling_burst_limit = var.api_throttle_burst
  }
  # No authorization header or body is logged: the format names only what ops need.
  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.gateway.arn
    format = jsonencode({
      requestId      = "$context.requestId"
      time           = "$context.requestTime"
      ip             = "$context.identity.sourceIp"
      method         = "$context.httpMethod"
      route          = "$context.routeKey"
      status         = "$context.status"
      latencyMs      = "$context.responseLatency"
      integrationMs  = "$context.integrationLatency"
      authorizerErr  = "$context.authorizer.error"
      integrationErr = "$context.integrationErrorMessage"
      subject        = "$context.authorizer.claims.sub"
    })
  }
}
