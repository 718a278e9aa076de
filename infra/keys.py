"""Customer-managed KMS keys, each with yearly rotation and a key policy scoped to its one use.

- data: tables, queues, the secret, the alarm topic, the backup vault, and the wrapping of the
  field-encryption branch keys (store/crypto.py, EncryptionContext `waguard=branch`).
- logs: CloudWatch Logs encryption, usable by the Logs service only for this stack's log groups
  (every log group of the stack is named under `/<prefix>/` or `aws-waf-logs-<prefix>`).
- trail: CloudTrail log files, with the conditions of the CloudTrail documentation.
"""

from __future__ import annotations

from aws_cdk import Aws, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import LOG_RETENTION_DAYS, WaguardConfig

_RETENTION = {
    days: member
    for days, member in zip(
        LOG_RETENTION_DAYS, [m for m in logs.RetentionDays if m.name != "INFINITE"], strict=True
    )
}


def log_retention(cfg: WaguardConfig) -> logs.RetentionDays:
    """The retention of every log group of the stack (cdk.json logRetentionDays)."""
    return _RETENTION[cfg.log_retention_days]


def log_group_name(cfg: WaguardConfig, *parts: str) -> str:
    """The name of a log group of this stack (covered by the logs key policy)."""
    return "/" + "/".join((cfg.name_prefix, *parts))


def waf_log_group_name(cfg: WaguardConfig) -> str:
    return f"aws-waf-logs-{cfg.name_prefix}"


def trail_name(cfg: WaguardConfig) -> str:
    return f"{cfg.name_prefix}-trail"


class Keys(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: WaguardConfig) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.data_key = kms.Key(
            self,
            "DataKey",
            description="waguard data: tables, queues, secret, alarm topic, backups, field-encryption keys",
            alias=f"alias/{cfg.name_prefix}-data",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        # CloudWatch alarms publish to the KMS-encrypted alarm topic.
        self.data_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublishToEncryptedTopic",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=["*"],
            )
        )

        self.logs_key = kms.Key(
            self,
            "LogsKey",
            description="waguard CloudWatch Logs: function, API access, WAF and trail log groups",
            alias=f"alias/{cfg.name_prefix}-logs",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        log_group_arn = f"arn:{Aws.PARTITION}:logs:{stack.region}:{stack.account}:log-group:"
        self.logs_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsForThisStacksLogGroupsOnly",
                principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
                actions=["kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo",
                         "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey"],
                resources=["*"],
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": [
                            f"{log_group_arn}{log_group_name(cfg)}/*",
                            f"{log_group_arn}{waf_log_group_name(cfg)}*",
                        ]
                    }
                },
            )
        )  # fmt: skip

        self.trail_key = kms.Key(
            self,
            "TrailKey",
            description="waguard CloudTrail log files",
            alias=f"alias/{cfg.name_prefix}-trail",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        trail_arn = f"arn:{Aws.PARTITION}:cloudtrail:{stack.region}:{stack.account}:trail/{trail_name(cfg)}"
        trail_context = f"arn:{Aws.PARTITION}:cloudtrail:*:{stack.account}:trail/*"
        cloudtrail = iam.ServicePrincipal("cloudtrail.amazonaws.com")
        self.trail_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudTrailToEncryptLogs",
                principals=[cloudtrail],
                actions=["kms:GenerateDataKey"],
                resources=["*"],
                conditions={
                    "StringEquals": {"aws:SourceArn": trail_arn},
                    "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_context},
                },
            )
        )
        self.trail_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudTrailToDescribeKey",
                principals=[cloudtrail],
                actions=["kms:DescribeKey"],
                resources=["*"],
                conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
            )
        )
        self.trail_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowPrincipalsInTheAccountToDecryptLogFiles",
                principals=[iam.AccountRootPrincipal()],
                actions=["kms:Decrypt", "kms:ReEncryptFrom"],
                resources=["*"],
                conditions={
                    "StringEquals": {"kms:CallerAccount": stack.account},
                    "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trail_context},
                },
            )
        )
