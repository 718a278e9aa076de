"""WaguardFunction: the one place the Lambda defaults live.

Every function: Python 3.13 on arm64, the `lambdas/` asset, its handler from `constants.HANDLERS`, the
AWS-managed Powertools layer (version from cdk.json, ARN from AWS's public SSM parameter), JSON logs in
its own KMS-encrypted log group with retention, X-Ray active tracing, reserved concurrency, the tag
`waguard:function=<name>`, and its own role. The role has no AWS-managed policy and no inline policy:
one customer-managed policy per function holds explicit statements (its log group, X-Ray, then what
the function is granted with `allow`). L2 `grant*` calls on the function are deliberately ignored
(`without_policy_updates`) so nothing reaches the role that was not written here.
"""

from __future__ import annotations

import re

from aws_cdk import Duration, RemovalPolicy, Stack, Tags
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from infra import nag
from infra.config import ROOT, WaguardConfig
from infra.keys import log_group_name, log_retention
from lambdas.shared import constants as c

ASSET_DIR = ROOT / "lambdas"
ASSET_EXCLUDE = ["**/__pycache__", "**/*.pyc"]
RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
POWERTOOLS_PARAMETER = "/aws/service/powertools/python/arm64/python3.13/{version}"

XRAY_REASON = (
    "AWS X-Ray's PutTraceSegments and PutTelemetryRecords do not support resource-level permissions, so "
    "the service requires Resource '*' for active tracing."
)


class _Shared(Construct):
    """Holds the asset and the Powertools layer reference, created once per stack."""

    ID = "LambdaShared"

    @classmethod
    def of(cls, scope: Construct, powertools_version: str) -> _Shared:
        stack = Stack.of(scope)
        found = stack.node.try_find_child(cls.ID)
        if isinstance(found, _Shared):
            return found
        return cls(stack, cls.ID, powertools_version=powertools_version)

    def __init__(self, scope: Construct, construct_id: str, *, powertools_version: str) -> None:
        super().__init__(scope, construct_id)
        self.code = lambda_.Code.from_asset(str(ASSET_DIR), exclude=ASSET_EXCLUDE)
        layer_arn = ssm.StringParameter.value_for_string_parameter(
            self, POWERTOOLS_PARAMETER.format(version=powertools_version)
        )
        self.powertools = lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", layer_arn)


class WaguardFunction(Construct):
    """One Lambda function with the project defaults and its own least-privilege role."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        cfg: WaguardConfig,
        logs_key: kms.IKey,
        environment: dict[str, str],
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        if name not in c.HANDLERS:
            raise ValueError(f"unknown function {name!r}")
        self.name = name
        sizing = cfg.function(name)
        shared = _Shared.of(self, cfg.powertools_version)

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name(cfg, "lambda", name),
            encryption_key=logs_key,
            retention=log_retention(cfg),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"waguard {name} function",
        )
        self.policy = iam.ManagedPolicy(
            self,
            "Policy",
            description=f"waguard {name} function: least privilege",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteOwnLogGroup",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                ),
                iam.PolicyStatement(
                    sid="XRay",
                    actions=["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                    resources=["*"],
                ),
            ],
        )
        env = {
            "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
            "POWERTOOLS_METRICS_NAMESPACE": c.METRICS_NAMESPACE,
            "POWERTOOLS_LOG_LEVEL": cfg.log_level,
            # Traces must not carry personal data: no handler responses or exception payloads in X-Ray.
            "POWERTOOLS_TRACER_CAPTURE_RESPONSE": "false",
            "POWERTOOLS_TRACER_CAPTURE_ERROR": "false",
            "POWERTOOLS_LOGGER_LOG_EVENT": "false",
            c.ENV_SETTINGS: cfg.settings_json(),
            **environment,
        }
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=shared.code,
            handler=c.HANDLERS[name],
            layers=[shared.powertools],
            memory_size=sizing.memory_mb,
            timeout=Duration.seconds(sizing.timeout_seconds),
            reserved_concurrent_executions=sizing.reserved_concurrency,
            tracing=lambda_.Tracing.ACTIVE,
            logging_format=lambda_.LoggingFormat.JSON,
            application_log_level_v2=lambda_.ApplicationLogLevel(_lambda_level(cfg.log_level)),
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            log_group=self.log_group,
            role=self.role.without_policy_updates(),
            environment=env,
        )
        self.function.node.add_dependency(self.policy)
        Tags.of(self.function).add(c.FUNCTION_TAG, name)
        self._reasons: dict[str, str] = {"XRay": XRAY_REASON}
        self._sids: set[str] = {"WriteOwnLogGroup", "XRay"}

    def allow(
        self,
        sid: str,
        actions: list[str],
        resources: list[str],
        *,
        conditions: dict[str, dict[str, object]] | None = None,
        wildcard_reason: str | None = None,
        read_only_any_resource: bool = False,
    ) -> None:
        """Add one explicit statement to the function's policy (a Sid per statement, unique).

        Resource '*' only with `read_only_any_resource` and a `wildcard_reason`, and only for List/Get
        actions (IAM's ListRoles and ListUsers have no resource to name)."""
        if sid in self._sids:
            raise ValueError(f"duplicate statement {sid} on {self.name}")
        read_only = all(re.fullmatch(r"[a-z0-9-]+:(List|Get|Describe)[A-Za-z]+", a) for a in actions)
        star_allowed = read_only_any_resource and read_only and wildcard_reason is not None
        if any(a == "*" or a.endswith(":*") for a in actions) or ("*" in resources and not star_allowed):
            raise ValueError(f"{self.name}.{sid}: no service-wide actions and no Resource '*'")
        self._sids.add(sid)
        self.policy.add_statements(
            iam.PolicyStatement(sid=sid, actions=actions, resources=resources, conditions=conditions)
        )
        if wildcard_reason:
            self._reasons[sid] = wildcard_reason

    def finish(self) -> None:
        """Acknowledge the wildcards that were given a reason (call once every statement is added)."""
        nag.acknowledge_wildcards(self.policy, self._reasons)
        nag.acknowledge(
            self.function,
            "The functions call only AWS APIs and Meta's public Graph API over TLS; a VPC would add NAT "
            "gateways and VPC endpoints without reducing the exposure of any data, so they run outside one.",
            "NIST.800.53.R5-LambdaInsideVPC",
            "HIPAA.Security-LambdaInsideVPC",
            "PCI.DSS.321-LambdaInsideVPC",
        )
        nag.acknowledge(
            self.function,
            "Python 3.13 is pinned by design: it must match the AWS-managed Powertools layer parameter "
            "(python3.13) and the runtime the code is tested on, and is upgraded deliberately, not by synth.",
            "AwsSolutions-L1",
        )
        nag.acknowledge(
            self.function,
            "No function is invoked asynchronously: API functions answer their caller synchronously and the "
            "queue consumers' failures go to the SQS dead-letter queues through the redrive policy, so a "
            "Lambda on-failure dead-letter queue would never receive anything.",
            "NIST.800.53.R5-LambdaDLQ",
            "HIPAA.Security-LambdaDLQ",
        )


def _lambda_level(level: str) -> str:
    return "WARN" if level == "WARNING" else level
