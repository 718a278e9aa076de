"""The API exposure: APIs, stages, throttles, WAF web ACLs and routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from waguard.cfn import Template, as_list
from waguard.report.access import Route, api_routes
from waguard.report.common import deployed_settings, policy_statements

# ---- exposure ---------------------------------------------------------------------------------------


@dataclass
class Throttle:
    rate: float | None
    burst: int | None
    source: str


@dataclass
class WafFact:
    logical_id: str
    default_action: str
    rules: list[str]
    logging: bool
    rate_limit: int | None


@dataclass
class StageFact:
    logical_id: str
    api: str
    name: str
    tracing: bool
    access_logs: str | None
    logging_level: str | None
    data_trace: bool
    cache_encrypted: bool | None
    throttle: Throttle | None
    method_throttles: dict[tuple[str, str], Throttle]
    wafs: list[WafFact]


@dataclass
class ApiFact:
    logical_id: str
    name: str
    endpoint: str
    security_policy: str | None
    execute_api_disabled: bool
    resource_policy: list[str]
    stages: list[StageFact]
    min_compression: Any = None


@dataclass
class Exposure:
    apis: list[ApiFact]
    routes: list[Route]
    route_throttle: dict[str, Throttle | None]  # route resource id -> effective throttle
    route_wafs: dict[str, list[str]]  # route resource id -> web ACL logical ids
    domains: list[str]  # custom domain names with their TLS policy
    numbers: list[str]  # the business numbers served ("<phone_number_id> (<label>)"), the default first


def business_numbers(tpl: Template) -> list[str]:
    """The business numbers the functions are configured with (WG_SETTINGS), the default first."""
    settings = deployed_settings(tpl) or {}
    listed = settings.get("phone_numbers")
    if not isinstance(listed, list):  # a template of before several numbers
        return [n.strip() for n in str(settings.get("phone_number_id") or "").split(",") if n.strip()]
    out = []
    for n in listed:
        if isinstance(n, dict) and n.get("id"):
            out.append(f"{n['id']} ({n['label']})" if n.get("label") else str(n["id"]))
    return out


def _waf_facts(tpl: Template) -> dict[str, WafFact]:
    logged = {tpl.target(c.prop("ResourceArn")) for c in tpl.of_type("AWS::WAFv2::LoggingConfiguration")}
    out = {}
    for acl in tpl.of_type("AWS::WAFv2::WebACL"):
        rules = []
        rate = None
        for rule in as_list(acl.prop("Rules")):
            stmt = rule.get("Statement") or {}
            action = next(iter((rule.get("Action") or rule.get("OverrideAction") or {"": ""}).keys()), "")
            if "RateBasedStatement" in stmt:
                limit = stmt["RateBasedStatement"].get("Limit")
                window = stmt["RateBasedStatement"].get("EvaluationWindowSec", 300)
                rate = int(limit) if rate is None else min(rate, int(limit))
                rules.append(f"{rule.get('Name')}: rate limit {limit} per {window}s per IP ({action})")
            elif "ManagedRuleGroupStatement" in stmt:
                g = stmt["ManagedRuleGroupStatement"]
                rules.append(f"{rule.get('Name')}: managed rules {g.get('VendorName')}/{g.get('Name')}")
            else:
                kinds = ", ".join(stmt.keys()) or "statement"
                rules.append(f"{rule.get('Name')}: {kinds} ({action})")
        default = next(iter((acl.prop("DefaultAction") or {}).keys()), "?")
        out[acl.logical_id] = WafFact(
            logical_id=acl.logical_id,
            default_action=default,
            rules=rules,
            logging=acl.logical_id in logged,
            rate_limit=rate,
        )
    return out


def _throttle(settings: dict[str, Any], source: str) -> Throttle | None:
    rate, burst = settings.get("ThrottlingRateLimit"), settings.get("ThrottlingBurstLimit")
    if rate is None and burst is None:
        return None
    return Throttle(rate=rate, burst=burst, source=source)


def _stages(tpl: Template) -> dict[str, list[StageFact]]:
    """API logical id -> its stages (REST and HTTP APIs) with throttles, logging and WAF web ACLs."""
    wafs = _waf_facts(tpl)
    assoc: dict[str, list[str]] = {}  # stage or api logical id -> acl ids
    for a in tpl.of_type("AWS::WAFv2::WebACLAssociation"):
        acl = tpl.target(a.prop("WebACLArn"))
        for lid in tpl.refs(a.prop("ResourceArn")):
            if acl:
                assoc.setdefault(lid, []).append(acl)
    stages_by_api: dict[str, list[StageFact]] = {}
    for s in tpl.of_type("AWS::ApiGateway::Stage"):
        api = str(tpl.target(s.prop("RestApiId")))
        default: Throttle | None = None
        per_method: dict[tuple[str, str], Throttle] = {}
        level, data_trace, cache_enc = None, False, None
        for ms in as_list(s.prop("MethodSettings")):
            path = str(ms.get("ResourcePath", "/*")).replace("~1", "/")
            method = str(ms.get("HttpMethod", "*"))
            th = _throttle(ms, f"stage {s.prop('StageName')} {method} {path}")
            if path == "/*" and method == "*":
                default = th
                level = ms.get("LoggingLevel")
                data_trace = bool(ms.get("DataTraceEnabled"))
                cache_enc = ms.get("CacheDataEncrypted")
            elif th:
                per_method[(method, path)] = th
        acls = [wafs[x] for x in dict.fromkeys(assoc.get(s.logical_id, []) + assoc.get(api, [])) if x in wafs]
        stages_by_api.setdefault(api, []).append(
            StageFact(
                logical_id=s.logical_id,
                api=api,
                name=str(s.prop("StageName")),
                tracing=bool(s.prop("TracingEnabled", default=False)),
                access_logs=tpl.target(s.prop("AccessLogSetting", "DestinationArn")),
                logging_level=level,
                data_trace=data_trace,
                cache_encrypted=cache_enc,
                throttle=default,
                method_throttles=per_method,
                wafs=acls,
            )
        )
    for s in tpl.of_type("AWS::ApiGatewayV2::Stage"):
        api = str(tpl.target(s.prop("ApiId")))
        th = _throttle(s.prop("DefaultRouteSettings") or {}, f"stage {s.prop('StageName')} default")
        stages_by_api.setdefault(api, []).append(
            StageFact(
                s.logical_id,
                api,
                str(s.prop("StageName")),
                False,
                tpl.target(s.prop("AccessLogSettings", "DestinationArn")),
                None,
                False,
                None,
                th,
                {},
                [wafs[x] for x in assoc.get(s.logical_id, []) if x in wafs],
            )
        )
    return stages_by_api


def _apis(tpl: Template, stages_by_api: dict[str, list[StageFact]]) -> list[ApiFact]:
    apis = []
    for api_res in tpl.of_type("AWS::ApiGateway::RestApi", "AWS::ApiGatewayV2::Api"):
        api_policy = [
            f"{ps.get('Effect')} {', '.join(map(str, as_list(ps.get('Action'))))}"
            for ps in policy_statements(api_res.prop("Policy"))
        ]
        if api_res.type == "AWS::ApiGateway::RestApi":
            endpoint = ", ".join(map(str, as_list(api_res.prop("EndpointConfiguration", "Types"))))
            endpoint = endpoint or "EDGE (default)"
        else:
            endpoint = str(api_res.prop("ProtocolType"))
        apis.append(
            ApiFact(
                logical_id=api_res.logical_id,
                name=str(api_res.prop("Name", default=api_res.logical_id)),
                endpoint=endpoint,
                security_policy=api_res.prop("SecurityPolicy"),
                execute_api_disabled=bool(api_res.prop("DisableExecuteApiEndpoint", default=False)),
                resource_policy=api_policy,
                stages=stages_by_api.get(api_res.logical_id, []),
            )
        )
    return apis


def exposure(tpl: Template) -> Exposure:
    stages_by_api = _stages(tpl)
    plans: dict[str, Throttle] = {}
    for plan in tpl.of_type("AWS::ApiGateway::UsagePlan"):
        th = _throttle(plan.prop("Throttle") or {}, f"usage plan {plan.logical_id}")
        for stage in as_list(plan.prop("ApiStages")):
            api_id = tpl.target(stage.get("ApiId"))
            if api_id and th:
                plans[api_id] = th
    apis = _apis(tpl, stages_by_api)
    routes = api_routes(tpl)
    route_throttle: dict[str, Throttle | None] = {}
    route_wafs: dict[str, list[str]] = {}
    for r in routes:
        stages = stages_by_api.get(r.api, [])
        effective: Throttle | None = None
        acl_ids: list[str] = []
        for stage_fact in stages:
            throttles = stage_fact.method_throttles
            specific = throttles.get((r.method, r.path)) or throttles.get(("*", r.path))
            effective = effective or specific or stage_fact.throttle
            acl_ids += [w.logical_id for w in stage_fact.wafs]
        route_throttle[r.resource_id] = effective or plans.get(r.api)
        route_wafs[r.resource_id] = sorted(set(acl_ids))
    domains = []
    for d in tpl.of_type("AWS::ApiGateway::DomainName", "AWS::ApiGatewayV2::DomainName"):
        tls = d.prop("SecurityPolicy") or d.prop("DomainNameConfigurations")
        domains.append(f"{d.logical_id}: {tpl.render(d.prop('DomainName'))} TLS policy {tpl.render(tls)}")
    return Exposure(
        apis=apis,
        routes=routes,
        route_throttle=route_throttle,
        route_wafs=route_wafs,
        domains=domains,
        numbers=business_numbers(tpl),
    )
