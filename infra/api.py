"""The REST API: Meta's webhook (no IAM; the HMAC signature is its authentication) and the business
routes (AWS_IAM / SigV4), Lambda proxy integrations, access logs without paths or query strings,
a regional WAFv2 web ACL with redacted logging, TLS 1.2 minimum.

Each `AWS::ApiGateway::Method` carries Metadata `waguard:route` ("POST /messages") and `waguard:function`
(the logical function name) besides its Integration URI (`...:lambda:path/2015-03-31/functions/
<Fn::GetAtt Function.Arn>/invocations`), so the local runtime can map routes without reverse engineering.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aws_cdk import ArnFormat, CfnOutput, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from infra import nag
from infra.config import WaguardConfig
from infra.keys import log_group_name, log_retention, waf_log_group_name
from lambdas.shared import constants as c

# API Gateway's legacy policy name for "TLS 1.2 minimum" on the execute-api endpoint (no access mode needed).
TLS_POLICY = "TLS_1_2"
WEBHOOK_PATH = "/webhook"

# Access log: who, what route, outcome. `$context.resourcePath` is the route template
# (/contacts/{contact}/export); `$context.path` would carry phone numbers and is never logged,
# and neither is the query string (the webhook handshake's verify token travels there).
ACCESS_LOG_FIELDS = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "requestTime": "$context.requestTimeEpoch",
    "httpMethod": "$context.httpMethod",
    "resourcePath": "$context.resourcePath",
    "status": "$context.status",
    "protocol": "$context.protocol",
    "responseLength": "$context.responseLength",
    "responseLatency": "$context.responseLatency",
    "integrationLatency": "$context.integrationLatency",
    "integrationStatus": "$context.integration.status",
    "errorType": "$context.error.responseType",
    "wafStatus": "$context.waf.status",
    "sourceIp": "$context.identity.sourceIp",
    "caller": "$context.identity.caller",
    "userArn": "$context.identity.userArn",
    "tlsVersion": "$context.tlsVersion",
    "xrayTraceId": "$context.xrayTraceId",
}

# Gateway-generated errors in the contract's shape {"error": CODE, "message": TEXT} (status codes unchanged).
GATEWAY_ERRORS: tuple[tuple[apigw.ResponseType, str], ...] = (
    (apigw.ResponseType.ACCESS_DENIED, "forbidden"),
    (apigw.ResponseType.MISSING_AUTHENTICATION_TOKEN, "forbidden"),
    (apigw.ResponseType.INVALID_SIGNATURE, "forbidden"),
    (apigw.ResponseType.EXPIRED_TOKEN, "forbidden"),
    (apigw.ResponseType.WAF_FILTERED, "forbidden"),
    (apigw.ResponseType.BAD_REQUEST_BODY, "invalid_body"),
    (apigw.ResponseType.BAD_REQUEST_PARAMETERS, "invalid_body"),
    (apigw.ResponseType.RESOURCE_NOT_FOUND, "not_found"),
    (apigw.ResponseType.REQUEST_TOO_LARGE, "payload_too_large"),
    (apigw.ResponseType.THROTTLED, "throttled"),
    (apigw.ResponseType.QUOTA_EXCEEDED, "throttled"),
    (apigw.ResponseType.DEFAULT_4_XX, "bad_request"),
    (apigw.ResponseType.DEFAULT_5_XX, "internal_error"),
)


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # API path template, e.g. /contacts/{contact}/consent
    function: str
    iam: bool = True

    @property
    def key(self) -> str:
        return f"{self.method} {self.path}"

    @property
    def arn_path(self) -> str:
        """The path as it appears in an execute-api ARN (path parameters become `*`)."""
        return "/".join("*" if p.startswith("{") else p for p in self.path.split("/"))

    @property
    def deeper_arn_paths(self) -> list[str]:
        """What the `*` of `arn_path` matches beyond the route: one ARN path per path parameter, with that
        parameter spanning two or more segments (`/media/{id}` -> `/media/*/*`, `/contacts/{contact}/export`
        -> `/contacts/*/*/export`). IAM's `*` also matches `/`; a Deny of these keeps each parameter to one
        segment. Empty for a route without parameters."""
        parts = self.path.split("/")
        return [
            "/".join("*/*" if j == i else "*" if q.startswith("{") else q for j, q in enumerate(parts))
            for i, p in enumerate(parts)
            if p.startswith("{")
        ]


MEDIA_PATH = "/media"
# Media bodies (GET /media/{id} answers, POST /media requests) pass as binary for every type Meta accepts
# (base64 to and from Lambda); JSON routes are unaffected.
# API Gateway converts a Lambda's base64 answer to bytes when the client's Accept names a binary type, so
# the generic `application/octet-stream` is one too.
MEDIA_BINARY_TYPES = tuple(
    sorted({t for types in c.MEDIA_MIME_TYPES.values() for t in types} | {"application/octet-stream"})
)
ROUTES: tuple[Route, ...] = (
    Route("GET", WEBHOOK_PATH, c.FN_WEBHOOK, iam=False),
    Route("POST", WEBHOOK_PATH, c.FN_WEBHOOK, iam=False),
    Route("POST", "/messages", c.FN_MESSAGES_API),
    Route("GET", "/messages/{id}", c.FN_MESSAGES_API),
    Route("POST", "/messages/{id}/read", c.FN_MESSAGES_API),
    Route("PUT", "/contacts/{contact}/consent", c.FN_CONTACTS_API),
    Route("GET", "/contacts/{contact}/consent", c.FN_CONTACTS_API),
    Route("GET", "/contacts/{contact}/export", c.FN_CONTACTS_API),
    Route("DELETE", "/contacts/{contact}", c.FN_CONTACTS_API),
    Route("GET", "/contacts/{contact}/messages", c.FN_CONTACTS_API),
    Route("GET", "/media/{id}", c.FN_MESSAGES_API),
    Route("GET", "/templates", c.FN_TEMPLATES),
    Route("POST", "/templates/sync", c.FN_TEMPLATES),
    Route("POST", "/templates", c.FN_TEMPLATES),
    Route("POST", MEDIA_PATH, c.FN_MESSAGES_API),
    Route("GET", "/audit/findings", c.FN_AUDITOR),
    Route("POST", "/audit/run", c.FN_AUDITOR),
    # Privacy operations (issue 24): requests and restriction, beside export and erasure.
    Route("PUT", "/contacts/{contact}/restriction", c.FN_CONTACTS_API),
    Route("POST", "/privacy/requests", c.FN_CONTACTS_API),
    Route("GET", "/privacy/requests", c.FN_CONTACTS_API),
    Route("GET", "/privacy/requests/{id}", c.FN_CONTACTS_API),
    Route("GET", "/privacy/requests/{id}/export", c.FN_CONTACTS_API),
    Route("POST", "/privacy/requests/{id}/extend", c.FN_CONTACTS_API),
    Route("POST", "/privacy/requests/{id}/complete", c.FN_CONTACTS_API),
    Route("POST", "/privacy/requests/{id}/reject", c.FN_CONTACTS_API),
    # Campaigns (issue 23): one approved template to many contacts (the sender role may call them).
    Route("POST", "/campaigns", c.FN_CAMPAIGNS),
    Route("GET", "/campaigns", c.FN_CAMPAIGNS),
    Route("GET", "/campaigns/{id}", c.FN_CAMPAIGNS),
    Route("GET", "/campaigns/{id}/recipients", c.FN_CAMPAIGNS),
    Route("POST", "/campaigns/{id}/cancel", c.FN_CAMPAIGNS),
    Route("POST", "/campaigns/{id}/resume", c.FN_CAMPAIGNS),
)
BODY_ROUTES = {
    "POST /messages",
    "PUT /contacts/{contact}/consent",
    "PUT /contacts/{contact}/restriction",
    "POST /privacy/requests",
    "POST /privacy/requests/{id}/extend",
    "POST /privacy/requests/{id}/reject",
    "POST /templates",
    "POST /campaigns",
}


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: WaguardConfig,
        logs_key: kms.IKey,
        functions: dict[str, lambda_.IFunction],
    ) -> None:
        super().__init__(scope, construct_id)
        self._cfg = cfg
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            log_group_name=log_group_name(cfg, "api", "access"),
            encryption_key=logs_key,
            retention=log_retention(cfg),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.api = apigw.RestApi(
            self,
            "Api",
            rest_api_name=f"{cfg.name_prefix}-api",
            description="waguard: Meta webhook and IAM-authenticated business routes",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            binary_media_types=list(MEDIA_BINARY_TYPES),
            # Execution logging (ERROR) needs the account-level CloudWatch role of API Gateway.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            fail_on_warnings=True,
            deploy_options=apigw.StageOptions(
                stage_name=cfg.stage,
                access_log_destination=apigw.LogGroupLogDestination(self.access_logs),
                access_log_format=apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FIELDS)),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,
                tracing_enabled=True,
                metrics_enabled=True,
                throttling_rate_limit=cfg.api_throttle.rate_limit,
                throttling_burst_limit=cfg.api_throttle.burst_limit,
            ),
        )
        cfn_api = self.api.node.default_child
        assert isinstance(cfn_api, apigw.CfnRestApi)
        cfn_api.security_policy = TLS_POLICY

        self.validator = self.api.add_request_validator(
            "Validator",
            request_validator_name="body-and-parameters",
            validate_request_body=True,
            validate_request_parameters=True,
        )
        self.object_model = self.api.add_model(
            "JsonObject",
            content_type="application/json",
            model_name="JsonObject",
            schema=apigw.JsonSchema(schema=apigw.JsonSchemaVersion.DRAFT4, type=apigw.JsonSchemaType.OBJECT),
        )
        for response_type, code in GATEWAY_ERRORS:
            self.api.add_gateway_response(
                f"Error{response_type.response_type}",
                type=response_type,
                templates={
                    "application/json": json.dumps({"error": code, "message": "@MSG@"}).replace(
                        '"@MSG@"', "$context.error.messageString"
                    )
                },
            )

        self.methods: dict[str, apigw.Method] = {}
        for route in ROUTES:
            self.methods[route.key] = self._add_route(route, functions[route.function])

        self._waf(cfg, logs_key)
        self._acknowledge()
        CfnOutput(
            self, "WebhookUrl", value=self.api.url_for_path(WEBHOOK_PATH), description="Meta callback URL"
        )
        CfnOutput(self, "ApiUrl", value=self.api.url, description="Base URL of the business routes")

    # ---- routes -------------------------------------------------------------------------------------

    def _add_route(self, route: Route, function: lambda_.IFunction) -> apigw.Method:
        resource = self.api.root.resource_for_path(route.path)
        params = {
            f"method.request.path.{p.strip('{}')}": True for p in route.path.split("/") if p.startswith("{")
        }
        options: dict[str, object] = {}
        if route.iam:
            options = {
                "authorization_type": apigw.AuthorizationType.IAM,
                "request_validator": self.validator,
                "request_parameters": params or None,
            }
            if route.key in BODY_ROUTES:
                options["request_models"] = {"application/json": self.object_model}
        else:
            options = {"authorization_type": apigw.AuthorizationType.NONE}
        method = resource.add_method(
            route.method,
            apigw.LambdaIntegration(function, proxy=True, allow_test_invoke=False),
            **options,  # type: ignore[arg-type]
        )
        cfn = method.node.default_child
        assert isinstance(cfn, apigw.CfnMethod)
        cfn.add_metadata("waguard:route", route.key)
        cfn.add_metadata("waguard:function", route.function)
        return method

    @staticmethod
    def has(route_key: str) -> bool:
        return any(r.key == route_key for r in ROUTES)

    @staticmethod
    def route(route_key: str) -> Route:
        return next(r for r in ROUTES if r.key == route_key)

    def arn_for(self, route_key: str) -> str:
        """execute-api ARN of one route of this API's stage (for personnel policies)."""
        route = self.route(route_key)
        return self.api.arn_for_execute_api(route.method, route.arn_path, self._cfg.stage)

    def deeper_arns_for(self, route_key: str, patterns: list[str] | None = None) -> list[str]:
        """execute-api ARNs of what `arn_for(route_key)` matches beyond the route (`Route.deeper_arn_paths`,
        or `patterns`: method and ARN path each), for the Deny that keeps a personnel grant to that route."""
        route = self.route(route_key)
        paths = [p[len(route.method) :] for p in patterns] if patterns is not None else route.deeper_arn_paths
        return [self.api.arn_for_execute_api(route.method, p, self._cfg.stage) for p in paths]

    # ---- WAF ------------------------------------------------------------------------------------------

    def _waf(self, cfg: WaguardConfig, logs_key: kms.IKey) -> None:
        visibility, managed = _visibility, _managed_rule
        self.web_acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            name=f"{cfg.name_prefix}-api",
            description="waguard API: per-IP rate limit, IP reputation, common and known-bad-input rules",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=visibility(f"{cfg.name_prefix}-api"),
            rules=[
                wafv2.CfnWebACL.RuleProperty(
                    name="RateLimitPerIp",
                    priority=0,
                    action=wafv2.CfnWebACL.RuleActionProperty(block=wafv2.CfnWebACL.BlockActionProperty()),
                    statement=wafv2.CfnWebACL.StatementProperty(
                        rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                            limit=cfg.waf_rate_limit_per5_min,
                            aggregate_key_type="IP",
                            evaluation_window_sec=300,
                        )
                    ),
                    visibility_config=visibility("RateLimitPerIp"),
                ),
                managed("AWSManagedRulesAmazonIpReputationList", 1, scoped=False),
                # SizeRestrictions_BODY blocks bodies over 8 KB; POST /messages templates can exceed it.
                managed("AWSManagedRulesCommonRuleSet", 2, overrides=("SizeRestrictions_BODY",)),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 3),
                _media_upload_size_rule(4),
            ],
            custom_response_bodies={
                TOO_LARGE_BODY_KEY: wafv2.CfnWebACL.CustomResponseBodyProperty(
                    content_type="APPLICATION_JSON",
                    content=json.dumps(
                        {
                            "error": "too_large",
                            "message": f"POST /media carries at most {c.MEDIA_INLINE_MAX_BYTES} bytes: "
                            "send larger media by link",
                        }
                    ),
                )
            },
        )
        self.web_acl_association = wafv2.CfnWebACLAssociation(
            self,
            "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )
        self._waf_logging(cfg, logs_key)

    def _waf_logging(self, cfg: WaguardConfig, logs_key: kms.IKey) -> None:
        """WAF logs to a CMK-encrypted log group, with paths, queries and credentials redacted."""
        self.waf_logs = logs.LogGroup(
            self,
            "WafLogs",
            log_group_name=waf_log_group_name(cfg),
            encryption_key=logs_key,
            retention=log_retention(cfg),
            removal_policy=RemovalPolicy.RETAIN,
        )
        # WAF wants the log group ARN without the trailing ":*" of LogGroup.log_group_arn.
        waf_logs_arn = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=waf_log_group_name(cfg),
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        redact = wafv2.CfnLoggingConfiguration.FieldToMatchProperty
        self.waf_logging = wafv2.CfnLoggingConfiguration(
            self,
            "WafLogging",
            log_destination_configs=[waf_logs_arn],
            resource_arn=self.web_acl.attr_arn,
            redacted_fields=[
                redact(uri_path={}),
                redact(query_string={}),
                redact(single_header={"Name": "authorization"}),
                redact(single_header={"Name": "x-hub-signature-256"}),
                redact(single_header={"Name": "x-amz-security-token"}),
            ],
        )
        self.waf_logging.node.add_dependency(self.waf_logs)

    # ---- acknowledgements -------------------------------------------------------------------------

    def _acknowledge(self) -> None:
        stage = self.api.deployment_stage
        nag.acknowledge(
            stage,
            "Every integration is a Lambda function called by API Gateway through the AWS API; a client "
            "certificate only authenticates API Gateway to HTTP backends, of which there are none.",
            "NIST.800.53.R5-APIGWSSLEnabled",
            "HIPAA.Security-APIGWSSLEnabled",
            "PCI.DSS.321-APIGWSSLEnabled",
        )
        nag.acknowledge(
            stage,
            "Responses carry personal data (exports, consent histories, message status) that must be "
            "erasable on request; an API cache would keep copies outside the tables that erasure cannot "
            "reach, so caching is off by design.",
            "NIST.800.53.R5-APIGWCacheEnabledAndEncrypted",
            "HIPAA.Security-APIGWCacheEnabledAndEncrypted",
            "PCI.DSS.321-APIGWCacheEnabledAndEncrypted",
        )
        role = self.api.node.try_find_child("CloudWatchRole")
        if role is not None:
            nag.acknowledge(
                role,
                "This is API Gateway's account-level CloudWatch role, required for execution logging; "
                "AmazonAPIGatewayPushToCloudWatchLogs is the AWS-maintained policy for it, and the role "
                "can be assumed only by the API Gateway service.",
                "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
            )
        for route in ROUTES:
            method = self.methods[route.key]
            if route.iam:
                nag.acknowledge(
                    method,
                    "Business routes are called by staff systems and personnel roles of this AWS account "
                    "with SigV4 (AWS_IAM), which gives per-role least privilege without a user pool.",
                    "AwsSolutions-COG4",
                )
            else:
                nag.acknowledge(
                    method,
                    "Meta calls the webhook without AWS credentials; every POST is authenticated in the "
                    "function by the HMAC-SHA256 X-Hub-Signature-256 over the raw body with the app "
                    "secret, and the GET handshake by the verify token, before anything is stored.",
                    "AwsSolutions-APIG4",
                    "AwsSolutions-COG4",
                )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    # No sampled requests: samples keep whole requests (paths carry phone numbers) unredacted.
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=False
    )


def _path_ends_with(suffix: str) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
            positional_constraint="ENDS_WITH",
            search_string=suffix,
            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="LOWERCASE")],
        )
    )


def _not_webhook() -> wafv2.CfnWebACL.StatementProperty:
    """Every path except those whose bodies are not text for people: the webhook's and `POST /media`'s.

    Meta's webhook bodies are HMAC-authenticated, up to 3 MB, and carry whatever users type: body
    inspection there would block real messages (Meta retries, then drops them). `POST /media` bodies are
    the bytes of images, audio and documents, where the cross-site-scripting and SQL patterns match by
    chance. The body rule sets therefore apply to every other path; IP reputation and rate limit apply
    to all."""
    return wafv2.CfnWebACL.StatementProperty(
        not_statement=wafv2.CfnWebACL.NotStatementProperty(
            statement=wafv2.CfnWebACL.StatementProperty(
                or_statement=wafv2.CfnWebACL.OrStatementProperty(
                    statements=[_path_ends_with(WEBHOOK_PATH), _path_ends_with(MEDIA_PATH)]
                )
            )
        )
    )


# A synchronous Lambda takes at most 6 MB (6,291,456 bytes) of event, and API Gateway base64-encodes a
# binary body (4/3): bodies from this many bytes on cannot reach the function, so WAF answers them itself
# (a JSON 413, the same error the function gives from 4 MiB up) instead of API Gateway's 5xx.
MEDIA_UPLOAD_BLOCK_BYTES = 4_600_000
CONTENT_LENGTH_FROM_BLOCK = r"^\s*(4[6-9][0-9]{5}|[5-9][0-9]{6}|[1-9][0-9]{7,})\s*$"
TOO_LARGE_BODY_KEY = "too_large"


def _media_upload_size_rule(priority: int) -> wafv2.CfnWebACL.RuleProperty:
    """`POST /media` with a Content-Length the function cannot receive: 413 `too_large` from WAF."""
    return wafv2.CfnWebACL.RuleProperty(
        name="MediaUploadTooLarge",
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(
            block=wafv2.CfnWebACL.BlockActionProperty(
                custom_response=wafv2.CfnWebACL.CustomResponseProperty(
                    response_code=413, custom_response_body_key=TOO_LARGE_BODY_KEY
                )
            )
        ),
        statement=wafv2.CfnWebACL.StatementProperty(
            and_statement=wafv2.CfnWebACL.AndStatementProperty(
                statements=[
                    _path_ends_with(MEDIA_PATH),
                    wafv2.CfnWebACL.StatementProperty(
                        regex_match_statement=wafv2.CfnWebACL.RegexMatchStatementProperty(
                            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                                single_header={"Name": "content-length"}
                            ),
                            regex_string=CONTENT_LENGTH_FROM_BLOCK,
                            text_transformations=[
                                wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
                            ],
                        )
                    ),
                ]
            )
        ),
        visibility_config=_visibility("MediaUploadTooLarge"),
    )


def _managed_rule(
    name: str, priority: int, overrides: tuple[str, ...] = (), scoped: bool = True
) -> wafv2.CfnWebACL.RuleProperty:
    """An AWS managed rule group; `overrides` count instead of block; `scoped`: not on the webhook."""
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                vendor_name="AWS",
                name=name,
                rule_action_overrides=[
                    wafv2.CfnWebACL.RuleActionOverrideProperty(
                        name=rule,
                        action_to_use=wafv2.CfnWebACL.RuleActionProperty(
                            count=wafv2.CfnWebACL.CountActionProperty()
                        ),
                    )
                    for rule in overrides
                ]
                or None,
                scope_down_statement=_not_webhook() if scoped else None,
            )
        ),
        visibility_config=_visibility(name),
    )
