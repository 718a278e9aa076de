"""The self-audit (docs/design.md "Audits"): the auditor function's read-only permissions on the stack's
resources, and its run after each deploy.

It may describe, never change: every statement below is Describe/Get/List, each on the resources of this
stack (IAM's ListRoles and ListUsers have no resource to name: `*`, read-only). What it writes is its own
output only: the run in the audit table (`append`) and `audit.finding` events on the stack's bus
(infra/functions.py `NEEDS`).

After each deploy: an EventBridge rule on the default bus matches CloudFormation's "CloudFormation Stack
Status Change" for this stack reaching CREATE_COMPLETE or UPDATE_COMPLETE and invokes the auditor: no
custom resource (whose failure would fail the deploy, and which would run before the last resources
settle), and a run that sees what the deploy left.
"""

from __future__ import annotations

from collections.abc import Iterable

from aws_cdk import Aws, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.function_factory import WaguardFunction

DEPLOYED = ["CREATE_COMPLETE", "UPDATE_COMPLETE"]
FUNCTION_READS = ["lambda:GetFunctionConfiguration", "lambda:GetFunctionConcurrency"]
IAM_READS = [
    "iam:ListRoles",
    "iam:ListUsers",
    "iam:ListAttachedRolePolicies",
    "iam:ListRolePolicies",
    "iam:GetRolePolicy",
    "iam:ListAttachedUserPolicies",
    "iam:ListUserPolicies",
    "iam:GetUserPolicy",
    "iam:GetPolicy",
    "iam:GetPolicyVersion",
]
IAM_REASON = (
    "The audit must find any principal of the account, not only this stack's, that may decrypt with the "
    "stack's keys or read its tables: IAM's ListRoles and ListUsers name no resource, so the statement "
    "is Resource '*' and holds only List/Get actions (read-only)."
)
STACK_REASON = (
    "CloudFormation stack ARNs end with a generated id: the statement names this stack by its name, any id, "
    "with read-only GetTemplate and ListStackResources."
)


class Audits(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        auditor: WaguardFunction,
        table_arns: Iterable[str],
        key_arns: Iterable[str],
        queues: Iterable[sqs.IQueue],
        buckets: Iterable[s3.IBucket],
        trail_arn: str,
        bus_arn: str,
        function_arns: Iterable[str],
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        fn = auditor
        fn.allow(
            "AuditReadStack",
            ["cloudformation:GetTemplate", "cloudformation:ListStackResources"],
            [f"arn:{Aws.PARTITION}:cloudformation:{stack.region}:{stack.account}:stack/{stack.stack_name}/*"],
            wildcard_reason=STACK_REASON,
        )
        fn.allow(
            "AuditDescribeTables",
            ["dynamodb:DescribeTable", "dynamodb:DescribeContinuousBackups", "dynamodb:DescribeTimeToLive"],
            list(table_arns),
        )
        fn.allow(
            "AuditDescribeKeys",
            ["kms:DescribeKey", "kms:GetKeyRotationStatus", "kms:GetKeyPolicy"],
            list(key_arns),
        )
        fn.allow("AuditDescribeQueues", ["sqs:GetQueueAttributes"], [q.queue_arn for q in queues])
        fn.allow(
            "AuditDescribeBuckets",
            [
                "s3:GetBucketPublicAccessBlock",
                "s3:GetEncryptionConfiguration",
                "s3:GetBucketPolicy",
                "s3:GetBucketVersioning",
                "s3:GetLifecycleConfiguration",
            ],
            [b.bucket_arn for b in buckets],
        )
        fn.allow("AuditDescribeTrail", ["cloudtrail:GetTrail", "cloudtrail:GetTrailStatus"], [trail_arn])
        fn.allow("AuditDescribeBus", ["events:DescribeEventBus"], [bus_arn])
        others = [arn for arn in function_arns if arn != fn.function.function_arn]
        fn.allow("AuditDescribeFunctions", FUNCTION_READS, others)
        # Its own configuration in a policy of its own: the function depends on its main policy, which
        # therefore cannot name the function's ARN.
        self.own_policy = iam.ManagedPolicy(
            self,
            "ReadOwnConfiguration",
            description="waguard auditor function: read its own configuration (the audit checks it too)",
            roles=[fn.role],
            statements=[
                iam.PolicyStatement(
                    sid="AuditDescribeItself", actions=FUNCTION_READS, resources=[fn.function.function_arn]
                )
            ],
        )
        fn.allow("AuditReadIam", IAM_READS, ["*"], wildcard_reason=IAM_REASON, read_only_any_resource=True)
        self.after_deploy = events.Rule(
            self,
            "AfterDeploy",
            description="waguard: after each deploy of this stack, the self-audit and the template sync",
            event_pattern=events.EventPattern(
                source=["aws.cloudformation"],
                detail_type=["CloudFormation Stack Status Change"],
                detail={"stack-id": [stack.stack_id], "status-details": {"status": DEPLOYED}},
            ),
            targets=[targets.LambdaFunction(fn.function, retry_attempts=2)],
        )
