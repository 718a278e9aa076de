"""The access matrix: every IAM principal with what its identity policies grant, and the API routes each
personnel role may call, decided by the one IAM evaluator (`waguard.cfn.iam`) as the local API decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from waguard import model, roles
from waguard.cfn import Resolver, Resource, Template, as_list, canonical
from waguard.report.common import ROLE_METADATA, function_name, policy_statements
from waguard.report.packs import Ack

# ---- access matrix ----------------------------------------------------------------------------------

IDENTITY_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")
PRINCIPAL_TYPES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")


@dataclass(frozen=True)
class Grant:
    """One (action, resource) pair of one identity-policy statement, for one principal."""

    principal: str  # logical id of the role/user/group, or of an unattached personnel policy
    policy: str  # logical id of the policy resource, or "<role>:inline:<name>"
    effect: str
    action: str
    resource: str  # rendered
    resource_key: str  # canonical JSON of the template value (for comparisons)
    condition: str
    flags: tuple[str, ...]
    acknowledged: str | None = None  # reason of the rule-pack acknowledgement covering a wildcard


@dataclass
class Principal:
    logical_id: str
    kind: str  # "function role", "personnel role", "service role", "user", "group"
    label: str
    assumed_by: list[str]
    personnel_role: str | None
    aws_managed: list[str]
    grants: list[Grant] = field(default_factory=list)
    routes: list[str] = field(default_factory=list)  # personnel: "METHOD /path" it may call

    @property
    def allows(self) -> list[Grant]:
        return [g for g in self.grants if g.effect == "Allow"]


def wildcard_flags(action: str, resource: str) -> tuple[str, ...]:
    flags = []
    if action == "*" or action.endswith(":*"):
        flags.append("all actions")
    elif "*" in action:
        flags.append("action wildcard")
    if resource == "*":
        flags.append("any resource")
    elif "*" in resource:
        flags.append("resource wildcard")
    return tuple(flags)


def _attachments(tpl: Template) -> dict[str, list[tuple[str, list[dict[str, Any]]]]]:
    """principal logical id -> [(policy label, statements)]; unattached personnel policies map to
    themselves."""
    out: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {}
    for p in tpl.of_type(*PRINCIPAL_TYPES):
        for inline in as_list(p.prop("Policies")):
            if isinstance(inline, dict):
                label = f"{p.logical_id}:inline:{inline.get('PolicyName')}"
                out.setdefault(p.logical_id, []).append(
                    (label, policy_statements(inline.get("PolicyDocument")))
                )
        for arn in as_list(p.prop("ManagedPolicyArns")):
            lid = tpl.target(arn)
            if lid and tpl.resources[lid].type == "AWS::IAM::ManagedPolicy":
                mp = tpl.resources[lid]
                out.setdefault(p.logical_id, []).append((lid, policy_statements(mp.prop("PolicyDocument"))))
    for pol in tpl.of_type(*IDENTITY_POLICY_TYPES):
        holders: list[str] = []
        for key in ("Roles", "Users", "Groups"):
            for ref in as_list(pol.prop(key)):
                lid = tpl.target(ref)
                if lid:
                    holders.append(lid)
        role_name = pol.prop("RoleName")
        if role_name is not None and tpl.target(role_name):
            holders.append(str(tpl.target(role_name)))
        statements = policy_statements(pol.prop("PolicyDocument"))
        if not holders and ROLE_METADATA in pol.metadata:
            holders = [pol.logical_id]
        for holder in dict.fromkeys(holders):
            entries = out.setdefault(holder, [])
            if all(label != pol.logical_id for label, _ in entries):
                entries.append((pol.logical_id, statements))
    return out


def _aws_managed(tpl: Template, p: Resource) -> list[str]:
    names = []
    for arn in as_list(p.prop("ManagedPolicyArns")):
        if tpl.target(arn) is None:
            text = tpl.render(arn)
            names.append(text.split(":policy/", 1)[-1] if ":policy/" in text else text)
    return names


def _service_users(tpl: Template) -> dict[str, str]:
    """Role logical id -> the AWS service that assumes it for the stack (CloudTrail, API Gateway logs)."""
    users: dict[str, str] = {}
    for trail in tpl.of_type("AWS::CloudTrail::Trail"):
        lid = tpl.target(trail.prop("CloudWatchLogsRoleArn"))
        if lid:
            users[lid] = f"CloudTrail {trail.logical_id} -> CloudWatch Logs"
    for acc in tpl.of_type("AWS::ApiGateway::Account"):
        lid = tpl.target(acc.prop("CloudWatchRoleArn"))
        if lid:
            users[lid] = "API Gateway -> CloudWatch Logs (account setting)"
    return users


def _personnel_of(tpl: Template, attachments: dict[str, list[tuple[str, Any]]]) -> dict[str, str]:
    """Logical id (policy or principal) -> the personnel role it belongs to (metadata `waguard:role`)."""
    personnel_of: dict[str, str] = {}
    for pol in tpl.of_type("AWS::IAM::ManagedPolicy"):
        role = pol.metadata.get(ROLE_METADATA)
        if role:
            personnel_of[pol.logical_id] = str(role)
            for ref in as_list(pol.prop("Roles")):
                lid = tpl.target(ref)
                if lid:
                    personnel_of[lid] = str(role)
    for holder, entries in attachments.items():
        for label, _statements in entries:
            role = personnel_of.get(label) if label in tpl.resources else None
            if role and holder != label:
                personnel_of.setdefault(holder, role)
    return personnel_of


def _assumed_by(tpl: Template, res: Resource) -> list[str]:
    assumed: list[str] = []
    for st in policy_statements(res.prop("AssumeRolePolicyDocument")):
        principal = st.get("Principal")
        if isinstance(principal, dict):
            for kind, values in principal.items():
                assumed += [f"{kind}:{tpl.render(v)}" for v in as_list(values)]
        elif principal is not None:
            assumed.append(tpl.render(principal))
    return assumed


def access_matrix(tpl: Template, acks: list[Ack] | None = None) -> list[Principal]:
    """Every IAM principal of the template with every action it may (or may not) take on which
    resources, from the identity policies attached to it."""
    attachments = _attachments(tpl)
    fn_by_role: dict[str, list[str]] = {}
    for fn in tpl.of_type("AWS::Lambda::Function"):
        lid = tpl.target(fn.prop("Role"))
        if lid:
            fn_by_role.setdefault(lid, []).append(function_name(fn))
    users = _service_users(tpl)
    personnel_of = _personnel_of(tpl, attachments)
    principals: list[Principal] = []
    candidates = [p.logical_id for p in tpl.of_type(*PRINCIPAL_TYPES)]
    candidates += [lid for lid in attachments if lid not in candidates]
    for lid in candidates:
        res = tpl.resources[lid]
        personnel = personnel_of.get(lid)
        if lid in fn_by_role:
            kind, label = "function role", "function " + ", ".join(fn_by_role[lid])
        elif personnel:
            kind, label = "personnel role", f"personnel role {personnel}"
        elif res.type == "AWS::IAM::User":
            kind, label = "user", f"user {lid}"
        elif res.type == "AWS::IAM::Group":
            kind, label = "group", f"group {lid}"
        else:
            kind, label = "service role", users.get(lid) or _custom_resource_label(tpl, lid) or f"role {lid}"
        principal = Principal(
            logical_id=lid,
            kind=kind,
            label=label,
            assumed_by=_assumed_by(tpl, res),
            personnel_role=personnel,
            aws_managed=_aws_managed(tpl, res) if res.type in PRINCIPAL_TYPES else [],
        )
        for policy_label, statements in attachments.get(lid, []):
            for st in statements:
                principal.grants.extend(_grants(tpl, lid, policy_label, st, acks or []))
        principals.append(principal)
    by_role = role_routes(tpl, api_routes(tpl))
    for p in principals:
        if p.personnel_role:
            p.routes = by_role.get(p.personnel_role, [])
    order = {"function role": 0, "personnel role": 1, "service role": 2, "user": 3, "group": 4}
    principals.sort(key=lambda p: (order.get(p.kind, 9), p.label))
    return principals


def _custom_resource_label(tpl: Template, role_lid: str) -> str | None:
    for fn in tpl.of_type("AWS::Lambda::Function", "AWS::Lambda::SingletonFunction"):
        if tpl.target(fn.prop("Role")) == role_lid:
            return f"provider function {fn.logical_id} (CDK custom resource)"
    return None


def _grants(tpl: Template, principal: str, policy: str, st: dict[str, Any], acks: list[Ack]) -> list[Grant]:
    effect = str(st.get("Effect", "Allow"))
    actions = [str(a) for a in as_list(st.get("Action"))] or [
        "NOT " + ", ".join(str(a) for a in as_list(st.get("NotAction")))
    ]
    resources = as_list(st.get("Resource")) or [{"NotResource": st.get("NotResource")}]
    condition = condition_text(tpl, st["Condition"]) if st.get("Condition") else ""
    policy_res = tpl.get(policy)
    out = []
    for action in actions:
        for resource in resources:
            text = (
                tpl.render(resource)
                if not (isinstance(resource, dict) and "NotResource" in resource)
                else ("NOT " + tpl.render(resource["NotResource"]))
            )
            flags = wildcard_flags(action, text) if effect == "Allow" else ()
            ack = None
            if flags and policy_res is not None:
                ack = _wildcard_ack(tpl, policy_res, action, resource, acks)
            out.append(
                Grant(
                    principal=principal,
                    policy=policy,
                    effect=effect,
                    action=action,
                    resource=text,
                    resource_key=canonical(resource),
                    condition=condition,
                    flags=flags,
                    acknowledged=ack,
                )
            )
    return out


def condition_text(tpl: Template, condition: Any) -> str:
    """`{"StringEquals": {"kms:ViaService": "sqs..."}}` -> `kms:ViaService StringEquals sqs...`."""
    if not isinstance(condition, dict):
        return tpl.render(condition)
    parts = []
    for op, body in condition.items():
        if isinstance(body, dict):
            for key, value in body.items():
                parts.append(f"{key} {op} {', '.join(tpl.render(v) for v in as_list(value))}")
        else:
            parts.append(f"{op} {tpl.render(body)}")
    return "; ".join(parts)


def _wildcard_ack(tpl: Template, policy: Resource, action: str, resource: Any, acks: list[Ack]) -> str | None:
    """The reason of an acknowledgement (cdk-nag IAM5 finding) that covers this wildcard, if any."""
    findings = {f"Action::{action}", f"Resource::{tpl.render(resource, style='nag')}"}
    for ack in acks:
        m = re.match(r"^(?:[^:]+::)?[A-Za-z0-9.]+-IAM5\[(.+)\]$", ack.id)
        if not m or m.group(1) not in findings:
            continue
        path = tpl.path_of(policy)
        if ack.at_path and not (path == ack.at_path or path.startswith(ack.at_path + "/")):
            continue
        return ack.reason
    return None


@dataclass(frozen=True)
class Route:
    api: str
    method: str
    path: str
    authorization: str
    api_key_required: bool
    validator: str | None
    integration: str
    resource_id: str


def api_routes(tpl: Template) -> list[Route]:
    """Every REST API method (API Gateway v1) and HTTP API route (v2)."""
    resources = {r.logical_id: r for r in tpl.of_type("AWS::ApiGateway::Resource")}

    def path_of(ref: Any) -> str:
        parts: list[str] = []
        lid = tpl.target(ref)
        seen = set()
        while lid in resources and lid not in seen:
            seen.add(lid)
            res = resources[lid]
            parts.append(str(res.prop("PathPart")))
            lid = tpl.target(res.prop("ParentId"))
        return "/" + "/".join(reversed(parts))

    fn_names = {fn.logical_id: function_name(fn) for fn in tpl.of_type("AWS::Lambda::Function")}
    routes = []
    for m in tpl.of_type("AWS::ApiGateway::Method"):
        method = str(m.prop("HttpMethod"))
        if method == "OPTIONS" and m.prop("AuthorizationType", default="NONE") == "NONE":
            kind = m.prop("Integration", "Type")
            if kind == "MOCK":
                continue  # CORS preflight
        uri = m.prop("Integration", "Uri")
        targets = [fn_names[x] for x in tpl.refs(uri) if x in fn_names]
        integration = ", ".join(targets) or str(m.prop("Integration", "Type", default="none"))
        routes.append(
            Route(
                api=str(tpl.target(m.prop("RestApiId"))),
                method=method,
                path=path_of(m.prop("ResourceId")),
                authorization=str(m.prop("AuthorizationType", default="NONE")),
                api_key_required=bool(m.prop("ApiKeyRequired", default=False)),
                validator=tpl.target(m.prop("RequestValidatorId")),
                integration=integration,
                resource_id=m.logical_id,
            )
        )
    for r in tpl.of_type("AWS::ApiGatewayV2::Route"):
        key = str(r.prop("RouteKey", default="$default"))
        method, _, path = key.partition(" ")
        target = [fn_names[x] for x in tpl.refs(r.prop("Target")) if x in fn_names]
        routes.append(
            Route(
                api=str(tpl.target(r.prop("ApiId"))),
                method=method if path else "ANY",
                path=path or key,
                authorization=str(r.prop("AuthorizationType", default="NONE")),
                api_key_required=bool(r.prop("ApiKeyRequired", default=False)),
                validator=None,
                integration=", ".join(target) or "integration",
                resource_id=r.logical_id,
            )
        )
    routes.sort(key=lambda r: (r.path, r.method))
    return routes


def _stage_names(tpl: Template, res: Resolver) -> dict[str, str]:
    """API logical id -> the name of its (first) stage."""
    out: dict[str, str] = {}
    for stage in tpl.of_type("AWS::ApiGateway::Stage"):
        api = tpl.target(stage.prop("RestApiId"))
        if api and api not in out:
            out[api] = str(res.resolve(stage.prop("StageName")))
    return out


def sample_path(path: str) -> str:
    """A concrete request path for a route (`/contacts/{contact}` -> `/contacts/x`)."""
    return re.sub(r"\{[^}]+\}", "x", path)


def role_routes(tpl: Template, routes: list[Route]) -> dict[str, list[str]]:
    """Personnel role -> `METHOD /path` of the IAM-authorized routes it may invoke, decided as the local API
    decides (`waguard.roles.allowed`: the role's resolved policies through the one IAM evaluator)."""
    res = Resolver(tpl)
    stages = _stage_names(tpl, res)
    out: dict[str, list[str]] = {}
    for role, spec in model.roles(tpl, res).items():
        principal = roles.role_principal(spec)
        out[role] = [
            f"{r.method} {r.path}"
            for r in routes
            if r.authorization == "AWS_IAM"
            and roles.allowed(
                principal,
                roles.execute_api_arn(
                    tpl.region, str(res.ref(r.api)), stages.get(r.api, "prod"), r.method, sample_path(r.path)
                ),
            )
        ]
    return out
