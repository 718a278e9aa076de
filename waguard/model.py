"""What the local runtime needs from the template: functions, event source mappings, API methods, roles.

Everything is read from the synthesized template through a `Resolver`, so local names and ARNs are
the ones the materialized resources really have.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from waguard import paths
from waguard.cfn import Resolver, Resource, Template, TemplateError


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # logical name (tag waguard:function): webhook, processor, ...
    logical_id: str
    handler: str
    function_name: str
    arn: str
    timeout: int
    memory: int
    environment: dict[str, str]


@dataclass(frozen=True)
class MappingSpec:
    logical_id: str
    function: str  # logical function name
    queue_arn: str
    queue_url: str
    batch_size: int
    batching_window: int
    report_batch_item_failures: bool
    enabled: bool


@dataclass(frozen=True)
class ScheduleSpec:
    """An EventBridge schedule (`rate(...)`) invoking a function of the stack."""

    logical_id: str
    function: str
    every_seconds: int
    enabled: bool


@dataclass(frozen=True)
class MethodSpec:
    path: str  # the resource path template, e.g. /contacts/{contact}/consent
    http_method: str  # GET, POST, ..., or ANY
    authorization: str  # NONE, AWS_IAM, ...
    integration: str  # AWS_PROXY, MOCK, ...
    function: str | None  # logical function name of an AWS_PROXY integration
    mock_status: int = 200
    mock_headers: dict[str, str] = field(default_factory=dict)
    body_schema: dict[str, Any] | None = None  # request validation (a validator with ValidateRequestBody)


@dataclass(frozen=True)
class GatewayResponse:
    """An `AWS::ApiGateway::GatewayResponse`: how API Gateway answers its own errors of one type."""

    status: int | None
    template: str | None  # the application/json response template
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiSpec:
    logical_id: str
    api_id: str
    stage: str
    methods: tuple[MethodSpec, ...]
    gateway_responses: dict[str, GatewayResponse] = field(default_factory=dict)


@dataclass(frozen=True)
class RoleSpec:
    role: str  # sender, privacy-officer, auditor
    statements: tuple[dict[str, Any], ...]


def _tags(props: dict[str, Any]) -> dict[str, str]:
    tags = props.get("Tags") or []
    if isinstance(tags, dict):
        return {str(k): str(v) for k, v in tags.items()}
    return {str(t.get("Key")): str(t.get("Value")) for t in tags if isinstance(t, dict)}


def functions(tpl: Template, res: Resolver) -> dict[str, FunctionSpec]:
    """Every `AWS::Lambda::Function` tagged `waguard:function`, by its logical name."""
    tag = paths.constants().FUNCTION_TAG
    out: dict[str, FunctionSpec] = {}
    for lid, resource in tpl.by_id("AWS::Lambda::Function").items():
        props = resource.properties
        name = _tags({"Tags": res.resolve(props.get("Tags") or [])}).get(tag)
        if not name:
            continue
        env = res.resolve(props.get("Environment", {}).get("Variables", {})) or {}
        out[name] = FunctionSpec(
            name=name,
            logical_id=lid,
            handler=str(res.resolve(props.get("Handler", ""))),
            function_name=str(res.ref(lid)),
            arn=str(res.get_att(lid, "Arn")),
            timeout=int(res.resolve(props.get("Timeout", 3))),
            memory=int(res.resolve(props.get("MemorySize", 128))),
            environment={str(k): _env_text(v) for k, v in env.items()},
        )
    return out


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def function_by_target(fns: dict[str, FunctionSpec], target: str) -> str | None:
    """The logical function a name, ARN, alias ARN or `.../functions/ARN/invocations` URI points to."""
    for spec in fns.values():
        if target in (spec.function_name, spec.arn):
            return spec.name
        if target.startswith(spec.arn + ":") or f"/functions/{spec.arn}/" in target:
            return spec.name
        if f"/functions/{spec.arn}:" in target:
            return spec.name
    return None


def mappings(tpl: Template, res: Resolver, fns: dict[str, FunctionSpec]) -> list[MappingSpec]:
    """Every SQS `AWS::Lambda::EventSourceMapping` onto a known function."""
    queues = {str(res.get_att(lid, "Arn")): str(res.ref(lid)) for lid in tpl.by_id("AWS::SQS::Queue")}
    out: list[MappingSpec] = []
    for lid, resource in tpl.by_id("AWS::Lambda::EventSourceMapping").items():
        props = res.resolve(resource.properties) or {}
        source = str(props.get("EventSourceArn", ""))
        function = function_by_target(fns, str(props.get("FunctionName", "")))
        if function is None:
            raise TemplateError(f"event source mapping {lid} targets no known function")
        if source not in queues:
            continue  # not an SQS queue of this stack (streams etc. are not run locally)
        out.append(
            MappingSpec(
                logical_id=lid,
                function=function,
                queue_arn=source,
                queue_url=queues[source],
                batch_size=min(int(props.get("BatchSize", 10)), 10),
                batching_window=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                report_batch_item_failures="ReportBatchItemFailures"
                in (props.get("FunctionResponseTypes") or []),
                enabled=bool(props.get("Enabled", True)),
            )
        )
    return out


_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_RATE_UNIT = {"minute": 60, "hour": 3600, "day": 86400}


def schedules(tpl: Template, res: Resolver, fns: dict[str, FunctionSpec]) -> list[ScheduleSpec]:
    """Every `AWS::Events::Rule` with a `rate(...)` ScheduleExpression and its function targets."""
    out: list[ScheduleSpec] = []
    for lid, resource in tpl.by_id("AWS::Events::Rule").items():
        props = resource.properties
        expression = res.resolve(props.get("ScheduleExpression"))
        if not expression:
            continue
        found = _RATE.match(str(expression))
        if found is None:
            raise TemplateError(f"rule {lid}: only rate(...) schedules run locally, not {expression!r}")
        every = int(found.group(1)) * _RATE_UNIT[found.group(2).rstrip("s")]
        enabled = str(res.resolve(props.get("State", "ENABLED"))) == "ENABLED"
        for target in props.get("Targets") or []:
            function = function_by_target(fns, str(res.resolve(target.get("Arn", ""))))
            if function is None:
                raise TemplateError(f"schedule {lid} targets no known function")
            out.append(ScheduleSpec(lid, function, every, enabled))
    return out


def _resource_paths(tpl: Template, res: Resolver) -> dict[str, str]:
    """Physical API resource id -> its path (the root resource of each API -> "/")."""
    by_id: dict[str, str] = {}
    for api_lid in tpl.by_id("AWS::ApiGateway::RestApi"):
        by_id[str(res.get_att(api_lid, "RootResourceId"))] = "/"
    resources = tpl.by_id("AWS::ApiGateway::Resource")
    pending = dict(resources)
    while pending:
        progressed = False
        for lid, resource in list(pending.items()):
            props = resource.properties
            parent = str(res.resolve(props.get("ParentId")))
            if parent not in by_id:
                continue
            base = by_id[parent].rstrip("/")
            by_id[str(res.ref(lid))] = f"{base}/{res.resolve(props.get('PathPart'))}"
            del pending[lid]
            progressed = True
        if not progressed:
            raise TemplateError(f"API resources with unknown parents: {sorted(pending)}")
    return by_id


def apis(tpl: Template, res: Resolver, fns: dict[str, FunctionSpec]) -> list[ApiSpec]:
    """Every REST API with its stage and methods."""
    resource_paths = _resource_paths(tpl, res)
    out: list[ApiSpec] = []
    for api_lid in tpl.by_id("AWS::ApiGateway::RestApi"):
        api_id = str(res.ref(api_lid))
        stages = [
            str(res.resolve(s.properties.get("StageName")))
            for s in tpl.by_id("AWS::ApiGateway::Stage").values()
            if str(res.resolve(s.properties.get("RestApiId"))) == api_id
        ]
        schemas = _body_schemas(tpl, res, api_id)
        methods: list[MethodSpec] = []
        for resource in tpl.by_id("AWS::ApiGateway::Method").values():
            props = resource.properties
            if str(res.resolve(props.get("RestApiId"))) != api_id:
                continue
            methods.append(_method(resource, res, resource_paths, fns, schemas))
        out.append(
            ApiSpec(
                api_lid,
                api_id,
                stages[0] if stages else "prod",
                tuple(methods),
                _gateway_responses(tpl, res, api_id),
            )
        )
    return out


def _body_schemas(tpl: Template, res: Resolver, api_id: str) -> tuple[set[str], dict[str, dict[str, Any]]]:
    """Ids of the validators that validate bodies, and each model's JSON schema by model name."""
    validators = set()
    for lid, resource in tpl.by_id("AWS::ApiGateway::RequestValidator").items():
        props = res.resolve(resource.properties) or {}
        if str(props.get("RestApiId")) == api_id and props.get("ValidateRequestBody") in (True, "true"):
            validators.add(str(res.ref(lid)))
    models = {}
    for lid, resource in tpl.by_id("AWS::ApiGateway::Model").items():
        props = res.resolve(resource.properties) or {}
        schema = props.get("Schema")
        if isinstance(schema, str):
            schema = json.loads(schema)
        if str(props.get("RestApiId")) == api_id and isinstance(schema, dict):
            models[str(res.ref(lid))] = schema
    return validators, models


def _gateway_responses(tpl: Template, res: Resolver, api_id: str) -> dict[str, GatewayResponse]:
    out = {}
    for resource in tpl.by_id("AWS::ApiGateway::GatewayResponse").values():
        props = res.resolve(resource.properties) or {}
        if str(props.get("RestApiId")) != api_id:
            continue
        headers = {
            k.removeprefix("gatewayresponse.header."): str(v).strip("'")
            for k, v in (props.get("ResponseParameters") or {}).items()
            if k.startswith("gatewayresponse.header.")
        }
        templates = props.get("ResponseTemplates") or {}
        out[str(props["ResponseType"])] = GatewayResponse(
            status=int(props["StatusCode"]) if props.get("StatusCode") else None,
            template=templates.get("application/json"),
            headers=headers,
        )
    return out


def _method(
    resource: Resource,
    res: Resolver,
    resource_paths: dict[str, str],
    fns: dict[str, FunctionSpec],
    schemas: tuple[set[str], dict[str, dict[str, Any]]],
) -> MethodSpec:
    props = resource.properties
    resource_id = str(res.resolve(props.get("ResourceId")))
    if resource_id not in resource_paths:
        raise TemplateError(f"API method on unknown resource {resource_id}")
    integration = res.resolve(props.get("Integration") or {}) or {}
    kind = str(integration.get("Type", "MOCK"))
    function = None
    if kind in ("AWS_PROXY", "AWS"):
        function = function_by_target(fns, str(integration.get("Uri", "")))
        tagged = resource.metadata.get(paths.constants().FUNCTION_TAG)
        function = function or (tagged if tagged in fns else None)
    validators, models = schemas
    body_schema = None
    if str(res.resolve(props.get("RequestValidatorId"))) in validators:
        model = (res.resolve(props.get("RequestModels")) or {}).get("application/json")
        body_schema = models.get(str(model)) if model else None
    status, headers = 200, {}
    responses = integration.get("IntegrationResponses") or []
    if kind == "MOCK" and responses:
        status = int(responses[0].get("StatusCode", 200))
        for key, value in (responses[0].get("ResponseParameters") or {}).items():
            if key.startswith("method.response.header."):
                headers[key.removeprefix("method.response.header.")] = str(value).strip("'")
    return MethodSpec(
        path=resource_paths[resource_id],
        http_method=str(res.resolve(props.get("HttpMethod", "ANY"))).upper(),
        authorization=str(res.resolve(props.get("AuthorizationType", "NONE"))).upper(),
        integration=kind,
        function=function,
        mock_status=status,
        mock_headers=headers,
        body_schema=body_schema,
    )


def roles(tpl: Template, res: Resolver) -> dict[str, RoleSpec]:
    """Personnel roles: `AWS::IAM::ManagedPolicy` (or `AWS::IAM::Role`) with Metadata `waguard:role`."""
    statements: dict[str, list[dict[str, Any]]] = {}
    for resource in tpl.by_id("AWS::IAM::ManagedPolicy").values():
        role = resource.metadata.get("waguard:role")
        if role:
            doc = res.resolve(resource.properties.get("PolicyDocument") or {})
            statements.setdefault(str(role), []).extend(_statements(doc))
    policy_docs = {
        str(res.ref(lid)): res.resolve(r.properties.get("PolicyDocument") or {})
        for lid, r in tpl.by_id("AWS::IAM::ManagedPolicy").items()
    }
    for resource in tpl.by_id("AWS::IAM::Role").values():
        role = resource.metadata.get("waguard:role")
        if not role:
            continue
        props = res.resolve(resource.properties) or {}
        for policy in props.get("Policies") or []:
            statements.setdefault(str(role), []).extend(_statements(policy.get("PolicyDocument") or {}))
        for arn in props.get("ManagedPolicyArns") or []:
            statements.setdefault(str(role), []).extend(_statements(policy_docs.get(str(arn), {})))
    return {role: RoleSpec(role, tuple(items)) for role, items in statements.items()}


def _statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    items = doc.get("Statement") or []
    return [items] if isinstance(items, dict) else list(items)


def secret_fields(metadata: dict[str, Any]) -> list[str]:
    """The fields a secret serves (its `waguard:secret-fields` template metadata); [] when undeclared."""
    declared = metadata.get(paths.constants().SECRET_FIELDS_METADATA) or {}
    return [str(f) for f in declared.get("fields") or []] if isinstance(declared, dict) else []
