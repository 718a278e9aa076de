"""CloudTrail: multi-region management events plus DynamoDB data events on the six tables.

Log files: S3 (trail CMK, versioned, SSL-only, no public access, server access logs to a separate
bucket, expiring after `trailRetentionDays`), validated (digest files), and delivered to a KMS-encrypted
CloudWatch log group. The trail is the L1 `AWS::CloudTrail::Trail` so that the advanced event selectors
and the delivery role are explicit (the L2 creates an inline-policy role for CloudWatch delivery).
"""

from __future__ import annotations

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_cloudtrail as cloudtrail
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import nag
from infra.buckets import private_bucket
from infra.config import WaguardConfig
from infra.keys import log_group_name, log_retention, trail_name

NONCURRENT_VERSION_DAYS = 30


class AuditTrail(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cfg: WaguardConfig,
        trail_key: kms.IKey,
        logs_key: kms.IKey,
        tables: dict[str, dynamodb.Table],
    ) -> None:
        super().__init__(scope, construct_id)
        cloudtrail_principal = iam.ServicePrincipal("cloudtrail.amazonaws.com")
        name = trail_name(cfg)
        self._build_buckets(cfg, trail_key)
        self._build_bucket_policy(name, cloudtrail_principal)
        self._build_delivery(cfg, logs_key, cloudtrail_principal)
        self._build_trail(name, trail_key, tables)
        self._acknowledge()

    def _build_buckets(self, cfg: WaguardConfig, trail_key: kms.IKey) -> None:
        """The trail bucket (trail CMK) and the bucket of its server access logs (SSE-S3)."""
        lifecycle = [
            s3.LifecycleRule(
                id="Retention",
                expiration=Duration.days(cfg.trail_retention_days),
                noncurrent_version_expiration=Duration.days(NONCURRENT_VERSION_DAYS),
                abort_incomplete_multipart_upload_after=Duration.days(1),
            ),
        ]
        # S3 server access log delivery supports only SSE-S3 on the target bucket.
        self.access_log_bucket = private_bucket(self, "AccessLogBucket", key=None, lifecycle_rules=lifecycle)
        self.bucket = private_bucket(
            self,
            "TrailBucket",
            key=trail_key,
            lifecycle_rules=lifecycle,
            access_logs=(self.access_log_bucket, "trail-bucket/"),
        )

    def _build_bucket_policy(self, name: str, cloudtrail_principal: iam.ServicePrincipal) -> None:
        """CloudTrail may check the bucket's ACL and write its log files, for this trail only."""
        stack = Stack.of(self)
        trail_arn = f"arn:{Aws.PARTITION}:cloudtrail:{stack.region}:{stack.account}:trail/{name}"
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailAclCheck",
                principals=[cloudtrail_principal],
                actions=["s3:GetBucketAcl"],
                resources=[self.bucket.bucket_arn],
                conditions={"StringEquals": {"aws:SourceArn": trail_arn}},
            )
        )
        self.bucket.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudTrailWrite",
                principals=[cloudtrail_principal],
                actions=["s3:PutObject"],
                resources=[self.bucket.arn_for_objects(f"AWSLogs/{stack.account}/*")],
                conditions={
                    "StringEquals": {"aws:SourceArn": trail_arn, "s3:x-amz-acl": "bucket-owner-full-control"}
                },
            )
        )

    def _build_delivery(
        self, cfg: WaguardConfig, logs_key: kms.IKey, cloudtrail_principal: iam.ServicePrincipal
    ) -> None:
        """The CloudWatch log group the trail also delivers to, and the role that writes it."""
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name(cfg, "cloudtrail"),
            encryption_key=logs_key,
            retention=log_retention(cfg),
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.delivery_role = iam.Role(
            self,
            "DeliveryRole",
            assumed_by=cloudtrail_principal,
            description="CloudTrail delivery of the waguard trail to CloudWatch Logs",
        )
        self.delivery_policy = iam.ManagedPolicy(
            self,
            "DeliveryPolicy",
            description="CloudTrail: write the trail's own log group only",
            roles=[self.delivery_role],
            statements=[
                iam.PolicyStatement(
                    sid="WriteTrailLogGroup",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                )
            ],
        )

    def _build_trail(self, name: str, trail_key: kms.IKey, tables: dict[str, dynamodb.Table]) -> None:
        """The trail: management events everywhere, data events on the waguard tables."""
        table_arns = [t.table_arn for t in tables.values()]
        self.trail = cloudtrail.CfnTrail(
            self,
            "Trail",
            trail_name=name,
            is_logging=True,
            is_multi_region_trail=True,
            include_global_service_events=True,
            enable_log_file_validation=True,
            kms_key_id=trail_key.key_arn,
            s3_bucket_name=self.bucket.bucket_name,
            cloud_watch_logs_log_group_arn=self.log_group.log_group_arn,
            cloud_watch_logs_role_arn=self.delivery_role.role_arn,
            advanced_event_selectors=[
                cloudtrail.CfnTrail.AdvancedEventSelectorProperty(
                    name="Management events",
                    field_selectors=[
                        cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(
                            field="eventCategory", equal_to=["Management"]
                        )
                    ],
                ),
                cloudtrail.CfnTrail.AdvancedEventSelectorProperty(
                    name="DynamoDB data events on the waguard tables",
                    field_selectors=[
                        cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(
                            field="eventCategory", equal_to=["Data"]
                        ),
                        cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(
                            field="resources.type", equal_to=["AWS::DynamoDB::Table"]
                        ),
                        cloudtrail.CfnTrail.AdvancedFieldSelectorProperty(
                            field="resources.ARN", equal_to=table_arns
                        ),
                    ],
                ),
            ],
        )
        policy = self.bucket.policy
        assert policy is not None
        self.trail.node.add_dependency(policy, self.delivery_policy)

    def _acknowledge(self) -> None:
        nag.acknowledge(
            self.access_log_bucket,
            "S3 server access log delivery supports only SSE-S3 on its target bucket, so this bucket is "
            "encrypted with S3-managed keys; it holds request metadata on the trail bucket, not trail data.",
            "NIST.800.53.R5-S3DefaultEncryptionKMS",
            "HIPAA.Security-S3DefaultEncryptionKMS",
            "PCI.DSS.321-S3DefaultEncryptionKMS",
        )
        replication = (
            "Audit logs must stay in the allowed regions, and a same-region replica would need replication "
            "itself; durability comes from S3, versioning, log-file validation digests and the copy in "
            "CloudWatch Logs, so the bucket is not replicated."
        )
        for bucket in (self.bucket, self.access_log_bucket):
            nag.acknowledge(
                bucket,
                replication,
                "NIST.800.53.R5-S3BucketReplicationEnabled",
                "HIPAA.Security-S3BucketReplicationEnabled",
                "PCI.DSS.321-S3BucketReplicationEnabled",
            )
