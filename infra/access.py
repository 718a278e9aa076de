"""Personnel access (issue #8): four roles with separation of duties, one customer-managed policy each.

- sender: `POST /messages`, `GET /messages/{id}`, `POST /media`, `GET /templates`, `POST /templates/sync`.
- agent: converse by contact reference: `POST /messages`, `GET /messages/{id}`,
  `POST /messages/{id}/read`, `GET /contacts/{contact}/messages`, `GET /media/{id}`, `POST /media`,
  `GET /templates`.
- privacy-officer: `PUT`/`GET /contacts/{contact}/consent`, `GET /contacts/{contact}/export`,
  `DELETE /contacts/{contact}`, `GET /media/{id}`.
- privacy-officer also, and auditor: `GET /audit/findings`, `POST /audit/run` (the self-audit).
- auditor: read the trail bucket and the trail/API/function log groups; decrypt with
  the trail and logs keys.

Each role can be assumed only by principals of this account that signed in with MFA. Each
`AWS::IAM::ManagedPolicy` carries Metadata `{"waguard:role": ROLE}` (the local runtime enforces the same
policies on requests signed with a role's key). No role may both send and export (the agent converses
but never exports, erases or changes consent); nothing grants
`execute-api:*` or `Resource: *`.

Exact routes (issue #21). An execute-api ARN names a path parameter with `*` (`.../GET/media/*`), and in
IAM `*` matches any characters, `/` included: alone, `GET/media/*` would also grant a later
`GET /media/{id}/thumbnail`, and `GET/contacts/*/export` would grant `GET /contacts/a/b/export`. So each
policy pairs its Allow with a Deny (sid `DenyDeeperPaths`) of `execute-api:Invoke` on the same routes with
one parameter spanning two or more segments (`GET/media/*/*`, `GET/contacts/*/*/export`;
`Route.deeper_arn_paths`): an explicit Deny wins over any Allow, so a parameter is one segment and the
policy grants exactly its routes, whatever routes are added later. IAM has no one-segment wildcard and
execute-api no condition key on the path, so an Allow cannot say it alone; a role's grant per concrete
resource is impossible (the ids are data), and a resource policy on the API would split the roles' rights
over two documents. A Deny of one route must not hit another route of the same role (`GET/contacts/*/*`
would deny `GET /contacts/{contact}/export`): `_invoke_statements` refuses such a pair at synth, and
then that role needs the routes reorganized.
"""

from __future__ import annotations

import itertools
import re

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
SENDER_ROUTES = [
    "POST /messages",
    "GET /messages/{id}",
    "POST /media",
    "GET /templates",
    "POST /templates/sync",
    "POST /campaigns",
    "GET /campaigns",
    "GET /campaigns/{id}",
    "GET /campaigns/{id}/recipients",
    "POST /campaigns/{id}/cancel",
    "POST /campaigns/{id}/resume",
]
AGENT_ROUTES = [
    "POST /messages",
    "GET /messages/{id}",
    "POST /messages/{id}/read",
    "GET /contacts/{contact}/messages",
    "GET /media/{id}",
    "POST /media",
    "GET /templates",
]
AUDIT_ROUTES = ["GET /audit/findings", "POST /audit/run"]
PRIVACY_OFFICER_ROUTES = [
    "PUT /contacts/{contact}/consent",
    "GET /contacts/{contact}/consent",
    "GET /contacts/{contact}/export",
    "DELETE /contacts/{contact}",
    "GET /media/{id}",
    *AUDIT_ROUTES,
    # Privacy operations (issue 24)
    "PUT /contacts/{contact}/restriction",
    "POST /privacy/requests",
    "GET /privacy/requests",
    "GET /privacy/requests/{id}",
    "GET /privacy/requests/{id}/export",
    "POST /privacy/requests/{id}/extend",
    "POST /privacy/requests/{id}/complete",
    "POST /privacy/requests/{id}/reject",
]
DENY_DEEPER_PATHS = "DenyDeeperPaths"
INVOKE = "execute-api:Invoke"
PATH_PARAMETER_REASON = (
    "The wildcard stands for the path parameter of one route ({id} or {contact}) in this API's stage "
    "ARN, with the method and the rest of the path fixed. The statement DenyDeeperPaths of the same "
    "policy denies that parameter spanning more than one path segment, so the policy grants exactly "
    "that route and no sub-route added later."
)


def _iam_like(pattern: str, text: str) -> bool:
    """IAM resource matching: `*` matches any characters, `/` included."""
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), text, re.DOTALL) is not None


def _shadowed(api: Api, keys: list[str]) -> list[tuple[str, str]]:
    """(route, deeper-path pattern) pairs where a Deny of one allowed route would also deny another allowed
    route: tried with every one-segment value that could line up with a literal of the pattern."""
    found = []
    for denied in keys:
        route = api.route(denied)
        for deeper in route.deeper_arn_paths:
            pattern = f"{route.method}{deeper}"
            samples = ["x", *(p for p in deeper.split("/") if p and p != "*")]
            for key in keys:
                other = api.route(key)
                parts = other.path.split("/")
                slots = [i for i, p in enumerate(parts) if p.startswith("{")]
                for values in itertools.product(samples, repeat=len(slots)):
                    concrete = dict(zip(slots, values, strict=True))
                    path = "/".join(concrete.get(i, p) for i, p in enumerate(parts))
                    if _iam_like(pattern, f"{other.method}{path}"):
                        found.append((key, pattern))
                        break
    return found


def _sample_paths(route_path: str) -> list[str]:
    """Concrete one-segment-per-parameter paths of a route (`/a/{x}/b` -> `/a/x/b`)."""
    return ["/".join("x" if p.startswith("{") else p for p in route_path.split("/"))]


def _narrowed(api: Api, keys: list[str]) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """Each route's deeper-path patterns (method + ARN path). A pattern that would deny another allowed
    route (`GET/privacy/requests/*/*` holds `GET /privacy/requests/{id}/export`) is narrowed to the
    parameter spanning three or more segments; what is left uncovered (a two-segment parameter) is
    checked against every route of the API in `_granted_beyond`. Also the clashes narrowing did not fix."""
    clashing = {pattern for _, pattern in _shadowed(api, keys)}
    patterns: dict[str, list[str]] = {}
    unfixed = []
    for key in keys:
        route = api.route(key)
        out = []
        for deeper in route.deeper_arn_paths:
            pattern = f"{route.method}{deeper}"
            if pattern in clashing:
                pattern = pattern.replace("*/*", "*/*/*", 1)
                allowed_paths = [
                    f"{api.route(k).method}{s}"
                    for k in keys
                    if k != key
                    for s in _sample_paths(api.route(k).path)
                ]
                unfixed += [(key, pattern) for path in allowed_paths if _iam_like(pattern, path)]
            out.append(pattern)
        patterns[key] = out
    return patterns, unfixed


def _granted_beyond(api: Api, keys: list[str], patterns: dict[str, list[str]]) -> list[str]:
    """Routes of the API, not the role's, that its Allow matches and its Deny does not."""
    from infra.api import ROUTES

    allows = [f"{api.route(k).method}{api.route(k).arn_path}" for k in keys]
    denies = [p for k in keys for p in patterns[k]]
    found = []
    for route in ROUTES:
        if route.key in keys or not route.iam:
            continue
        for path in _sample_paths(route.path):
            text = f"{route.method}{path}"
            if any(_iam_like(a, text) for a in allows) and not any(_iam_like(d, text) for d in denies):
                found.append(route.key)
    return found


def _invoke_statements(api: Api, sid: str, routes: list[str]) -> list[iam.PolicyStatement]:
    """Allow `execute-api:Invoke` on the routes this API has (a route of a capability not deployed is
    skipped), and Deny it on their deeper paths so each path parameter is one segment (narrowed where
    that would deny another route of the role, `_narrowed`; then no other route of the API may be left
    granted)."""
    keys = [k for k in routes if api.has(k)]
    patterns, unfixed = _narrowed(api, keys)
    beyond = _granted_beyond(api, keys, patterns)
    if unfixed or beyond:
        raise ValueError(
            f"a Deny of deeper paths would also deny an allowed route: {_shadowed(api, keys)}; "
            f"narrowed, it leaves other routes granted: {sorted(set(beyond))} {unfixed}"
        )
    statements = [iam.PolicyStatement(sid=sid, actions=[INVOKE], resources=[api.arn_for(k) for k in keys])]
    deeper = [arn for k in keys for arn in api.deeper_arns_for(k, patterns[k])]
    if deeper:
        statements.append(
            iam.PolicyStatement(
                sid=DENY_DEEPER_PATHS, effect=iam.Effect.DENY, actions=[INVOKE], resources=deeper
            )
        )
    return statements


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
            _invoke_statements(api, "InvokeSendRoutes", SENDER_ROUTES),
            {"InvokeSendRoutes": PATH_PARAMETER_REASON},
        )
        self._role(
            c.ROLE_AGENT,
            "Converse with contacts by reference: send, read conversations and media; no export or erasure",
            _invoke_statements(api, "InvokeConversationRoutes", AGENT_ROUTES),
            {"InvokeConversationRoutes": PATH_PARAMETER_REASON},
        )
        self._role(
            c.ROLE_PRIVACY_OFFICER,
            "Record consent, answer data-subject export and erasure requests",
            _invoke_statements(api, "InvokePrivacyRoutes", PRIVACY_OFFICER_ROUTES),
            {"InvokePrivacyRoutes": PATH_PARAMETER_REASON},
        )
        self._role(
            c.ROLE_AUDITOR,
            "Read the audit trail, the logs and the self-audit's findings",
            [
                *_invoke_statements(api, "InvokeAuditRoutes", AUDIT_ROUTES),
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
