"""Personnel access (issue #8): four roles with separation of duties, one customer-managed policy each.

- sender: `POST /messages`, `GET /messages/{id}`, `POST /media`.
- agent: converse by contact reference: `POST /messages`, `GET /messages/{id}`,
  `POST /messages/{id}/read`, `GET /contacts/{contact}/messages`, `GET /media/{id}`, `POST /media`.
- privacy-officer: `PUT`/`GET /contacts/{contact}/consent`, `GET /contacts/{contact}/export`,
  `DELETE /contacts/{contact}`, `GET /media/{id}`.
- auditor: no API route; read the trail bucket and the trail/API/function log groups; decrypt with
  the trail and logs keys.

Each role can be assumed only by principals of this account that signed in with MFA. Each
`AWS::IAM::ManagedPolicy` carries Metadata `{"waguard:role": ROLE}` (the local runtime enforces the same
policies on requests signed with a role's key). No role may both send and export (the agent converses
but never exports, erases or changes consent); nothing grants
`execute-api:*` or `Resource: *`.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra import nag
from infra.api import Api
from lambdas.shared import constants as c

ROLE_METADATA = "waguard:role"
SENDER_ROUTES = ["POST /messages", "GET /messages/{id}", "POST /media"]
AGENT_ROUTES = [
    "POST /messages",
    "GET /messages/{id}",
    "POST /messages/{id}/read",
    "GET /contacts/{contact}/messages",
    "GET /media/{id}",
    "POST /media",
]
PRIVACY_OFFICER_ROUTES = [
    "PUT /contacts/{contact}/consent",
    "GET /contacts/{contact}/consent",
    "GET /contacts/{contact}/export",
    "DELETE /contacts/{contact}",
    "GET /media/{id}",
]
PATH_PARAMETER_REASON = (
    "The wildcard stands for the path parameter of one route ({id} or {contact}) in this API's stage "
    "ARN; the method and the rest of the path are fixed, so the statement grants exactly that route."
)


def _arns(api: Api, routes: list[str]) -> list[str]:
    """The execute-api ARNs of the routes this API has (a route of a capability not deployed is skipped)."""
    return [api.arn_for(k) for k in routes if api.has(k)]


class PersonnelAccess(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: Api,
        trail_bucket: s3.IBucket,
        log_groups: list[logs.ILogGroup],
        trail_key: kms.IKey,
        logs_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.roles: dict[str, iam.Role] = {}
        self.policies: dict[str, iam.ManagedPolicy] = {}
        self._reasons: dict[str, dict[str, str]] = {}

        self._role(
            c.ROLE_SENDER,
            "Send WhatsApp messages and read their status",
            [iam.PolicyStatement(sid="InvokeSendRoutes", actions=["execute-api:Invoke"],
                                 resources=_arns(api, SENDER_ROUTES))],
            {"InvokeSendRoutes": PATH_PARAMETER_REASON},
        )  # fmt: skip
        self._role(
            c.ROLE_AGENT,
            "Converse with contacts by reference: send, read conversations and media; no export or erasure",
            [iam.PolicyStatement(sid="InvokeConversationRoutes", actions=["execute-api:Invoke"],
                                 resources=_arns(api, AGENT_ROUTES))],
            {"InvokeConversationRoutes": PATH_PARAMETER_REASON},
        )  # fmt: skip
        self._role(
            c.ROLE_PRIVACY_OFFICER,
            "Record consent, answer data-subject export and erasure requests",
            [iam.PolicyStatement(sid="InvokePrivacyRoutes", actions=["execute-api:Invoke"],
                                 resources=_arns(api, PRIVACY_OFFICER_ROUTES))],
            {"InvokePrivacyRoutes": PATH_PARAMETER_REASON},
        )  # fmt: skip
        self._role(
            c.ROLE_AUDITOR,
            "Read the audit trail and the logs; no API route",
            [
                iam.PolicyStatement(
                    sid="ListTrailBucket", actions=["s3:ListBucket"], resources=[trail_bucket.bucket_arn]
                ),
                iam.PolicyStatement(
                    sid="ReadTrailObjects",
                    actions=["s3:GetObject"],
                    resources=[trail_bucket.arn_for_objects("*")],
                ),
                iam.PolicyStatement(
                    sid="ReadLogGroups",
                    actions=["logs:DescribeLogStreams", "logs:GetLogEvents", "logs:FilterLogEvents"],
                    resources=[g.log_group_arn for g in log_groups],
                ),
                iam.PolicyStatement(
                    sid="DecryptTrailAndLogs",
                    actions=["kms:Decrypt"],
                    resources=[trail_key.key_arn, logs_key.key_arn],
                ),
            ],
            {
                "ReadTrailObjects": (
                    "CloudTrail names its log and digest objects by account, region, date and generated id; "
                    "read access covers the objects of the one trail bucket."
                )
            },
        )

    def _role(
        self, name: str, purpose: str, statements: list[iam.PolicyStatement], reasons: dict[str, str]
    ) -> None:
        ident = "".join(p.title() for p in name.split("-"))
        role = iam.Role(
            self,
            f"{ident}Role",
            description=f"waguard personnel role {name}: {purpose}",
            assumed_by=iam.AccountRootPrincipal().with_conditions(
                {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
            ),
            max_session_duration=Duration.hours(1),
        )
        policy = iam.ManagedPolicy(
            self,
            f"{ident}Policy",
            description=f"waguard {name}: {purpose}",
            statements=statements,
            roles=[role],
        )
        for construct in (policy, role):
            cfn = construct.node.default_child
            assert cfn is not None
            cfn.add_metadata(ROLE_METADATA, name)  # type: ignore[attr-defined]
        CfnOutput(self, f"{ident}RoleArn", value=role.role_arn, description=f"Personnel role {name}")
        self.roles[name] = role
        self.policies[name] = policy
        self._reasons[name] = reasons

    def finish(self) -> None:
        for name, policy in self.policies.items():
            nag.acknowledge_wildcards(policy, self._reasons[name])
