"""Personnel roles (issue #8) and the four cdk-nag packs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from infra import access, nag
from infra import api as api_module
from infra.api import ROUTES
from lambdas.shared import constants as c
from tests.infra.support import Synth
from waguard import cfn, model, roles
from waguard.cfn import iam

pytestmark = pytest.mark.xdist_group("infra")

PACKS = {"AwsSolutions", "NIST.800.53.R5", "HIPAA.Security", "PCI.DSS.321"}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_policies(synth: Synth) -> dict[str, dict[str, Any]]:
    out = {}
    for logical_id, policy in synth.of_type("AWS::IAM::ManagedPolicy").items():
        role = policy.get("Metadata", {}).get("waguard:role")
        if role:
            assert role not in out, f"two policies for {role}"
            out[role] = {"id": logical_id, **policy}
    return out


def invoked_routes(synth: Synth, policy: dict[str, Any], effect: str = "Allow") -> set[str]:
    """`METHOD /path` of every execute-api resource the policy grants (or denies; path params as `*`)."""
    routes = set()
    (api,) = synth.of_type("AWS::ApiGateway::RestApi")
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if not any(a.startswith("execute-api:") for a in as_list(statement["Action"])):
            continue
        assert as_list(statement["Action"]) == ["execute-api:Invoke"]
        assert statement["Effect"] in ("Allow", "Deny")
        assert statement["Effect"] == "Allow" or statement["Sid"] == access.DENY_DEEPER_PATHS
        if statement["Effect"] != effect:
            continue
        for resource in as_list(statement["Resource"]):
            parts = resource["Fn::Join"][1]
            tail = parts[-1]
            assert {"Ref": api} in parts, "not this stack's API"
            assert ":execute-api:" in json.dumps(parts)
            prefix = f"/{synth.cfg.stage}/"
            assert tail.startswith(prefix), tail
            method, _, path = tail[len(prefix) :].partition("/")
            routes.add(f"{method} /{path}")
    return routes


def test_three_personnel_policies_with_role_metadata(synth: Synth) -> None:
    policies = role_policies(synth)
    assert set(policies) == set(c.ROLES)
    outputs = synth.data["Outputs"]
    roles = synth.of_type("AWS::IAM::Role")
    for name, policy in policies.items():
        (role_ref,) = policy["Properties"]["Roles"]
        role = roles[role_ref["Ref"]]
        assert role["Metadata"]["waguard:role"] == name
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Condition"] == {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
        principal = json.dumps(trust["Principal"])
        assert ":root" in principal and "AWS::AccountId" in principal
        assert "ManagedPolicyArns" not in role["Properties"] and "Policies" not in role["Properties"]
        assert any(o["Value"] == {"Fn::GetAtt": [role_ref["Ref"], "Arn"]} for o in outputs.values()), name


def test_sender_may_only_send_upload_and_read_status(synth: Synth) -> None:
    policy = role_policies(synth)[c.ROLE_SENDER]
    assert invoked_routes(synth, policy) == {
        "POST /messages",
        "GET /messages/*",
        "POST /media",
        "GET /templates",
        "POST /templates/sync",
        "POST /campaigns",  # contract (role table): the campaign routes
        "GET /campaigns",
        "GET /campaigns/*",
        "GET /campaigns/*/recipients",
        "POST /campaigns/*/cancel",
        "POST /campaigns/*/resume",
    }
    assert {s["Sid"] for s in policy["Properties"]["PolicyDocument"]["Statement"]} == {
        "InvokeSendRoutes",
        access.DENY_DEEPER_PATHS,
    }


def test_privacy_officer_may_only_use_the_privacy_routes(synth: Synth) -> None:
    policy = role_policies(synth)[c.ROLE_PRIVACY_OFFICER]
    assert invoked_routes(synth, policy) == {
        "PUT /contacts/*/consent",
        "GET /contacts/*/consent",
        "GET /contacts/*/export",
        "DELETE /contacts/*",
        "GET /media/*",  # contract: the privacy officer reads media (an access request, an erasure check)
        "GET /audit/findings",  # contract: the audit routes (role table)
        "POST /audit/run",
        "PUT /contacts/*/restriction",
        "POST /privacy/requests",
        "GET /privacy/requests",
        "GET /privacy/requests/*",
        "GET /privacy/requests/*/export",
        "POST /privacy/requests/*/extend",
        "POST /privacy/requests/*/complete",
        "POST /privacy/requests/*/reject",
    }
    assert len(policy["Properties"]["PolicyDocument"]["Statement"]) == 2  # the Allow and its DenyDeeperPaths


def test_auditor_reads_trail_logs_and_findings_only(synth: Synth) -> None:
    policy = role_policies(synth)[c.ROLE_AUDITOR]
    assert invoked_routes(synth, policy) == {"GET /audit/findings", "POST /audit/run"}
    granted = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    actions = {a for s in granted.values() for a in as_list(s["Action"])}
    assert actions == {
        "execute-api:Invoke",
        "s3:ListBucket",
        "s3:GetObject",
        "logs:DescribeLogStreams",
        "logs:GetLogEvents",
        "logs:FilterLogEvents",
        "kms:Decrypt",
    }
    (trail,) = synth.of_type("AWS::CloudTrail::Trail").values()
    bucket = trail["Properties"]["S3BucketName"]["Ref"]
    assert granted["ListTrailBucket"]["Resource"] == {"Fn::GetAtt": [bucket, "Arn"]}
    assert bucket in json.dumps(granted["ReadTrailObjects"]["Resource"])
    keys = {r["Fn::GetAtt"][0] for r in granted["DecryptTrailAndLogs"]["Resource"]}
    descriptions = {synth.resources[k]["Properties"]["Description"] for k in keys}
    assert descriptions == {
        "waguard CloudTrail log files",
        "waguard CloudWatch Logs: function, API access, WAF and trail log groups",
    }
    groups = {r["Fn::GetAtt"][0] for r in granted["ReadLogGroups"]["Resource"]}
    names = {synth.resources[g]["Properties"]["LogGroupName"] for g in groups}
    assert names == {"/waguard/cloudtrail", "/waguard/api/access"} | {
        f"/waguard/lambda/{f}" for f in c.HANDLERS
    }


def test_separation_of_duties_and_no_broad_grants(synth: Synth) -> None:
    policies = role_policies(synth)
    for name, policy in policies.items():
        text = json.dumps(policy["Properties"]["PolicyDocument"])
        assert "execute-api:*" not in text and '"Resource": "*"' not in text, name
        routes = invoked_routes(synth, policy)
        assert not ({"POST /messages"} <= routes and "GET /contacts/*/export" in routes), name


def deeper(route: str) -> set[str]:
    """`GET /contacts/*/export` -> {`GET /contacts/*/*/export`}: one pattern per path parameter (`*`)."""
    method, _, path = route.partition(" ")
    parts = path.split("/")
    return {
        f"{method} " + "/".join("*/*" if j == i else q for j, q in enumerate(parts))
        for i, p in enumerate(parts)
        if p == "*"
    }


def test_each_role_denies_the_deeper_paths_of_its_parameterized_routes(synth: Synth) -> None:
    """Issue #21: IAM's `*` crosses `/`, so every parameterized route a role may invoke comes with a Deny of
    the same route with the parameter spanning more segments, in the role's own policy; nothing else is
    denied, and no execute-api Allow ends in (or holds) a `*` without its Deny."""
    routed = {c.ROLE_SENDER: 5, c.ROLE_AGENT: 4, c.ROLE_PRIVACY_OFFICER: 11}  # parameterized routes per role
    # `GET /privacy/requests/{id}` beside `GET /privacy/requests/{id}/export`: its Deny is narrowed to three
    # segments (two would deny the export), and no other route of the API is left granted (access._narrowed).
    narrowed = {
        "GET /privacy/requests/*": {"GET /privacy/requests/*/*/*"},
        "GET /campaigns/*": {"GET /campaigns/*/*/*"},  # beside GET /campaigns/{id}/recipients
    }
    for name, policy in role_policies(synth).items():
        found = synth.template.find_resources("AWS::IAM::ManagedPolicy", {"Metadata": {"waguard:role": name}})
        assert list(found) == [policy["id"]]
        allowed = invoked_routes(synth, policy)
        denied = invoked_routes(synth, policy, effect="Deny")
        parameterized = {r for r in allowed if "*" in r}
        assert len(parameterized) == routed.get(name, 0), (name, parameterized)
        assert denied == {d for r in parameterized for d in narrowed.get(r, deeper(r))}, name
        for route in allowed:
            if route.endswith("*"):
                assert route + "/*" in denied or route + "/*/*" in denied, (name, route)
            assert narrowed.get(route, deeper(route)) <= denied, (name, route)
        statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
        if denied:
            deny = statements[access.DENY_DEEPER_PATHS]
            assert deny["Effect"] == "Deny" and deny["Action"] == "execute-api:Invoke"
            assert "Condition" not in deny
    agent = role_policies(synth)[c.ROLE_AGENT]
    assert {"GET /media/*/*", "GET /contacts/*/*/messages"} <= invoked_routes(synth, agent, effect="Deny")
    officer = role_policies(synth)[c.ROLE_PRIVACY_OFFICER]
    assert "GET /contacts/*/*/export" in invoked_routes(synth, officer, effect="Deny")


@pytest.fixture(scope="module")
def decide(synth: Synth) -> Callable[[str, str, str], str]:
    """The one IAM evaluator on a role's policies as synthesized (resolved as the local runtime resolves
    them): `decide(role, method, path)` -> ALLOW / EXPLICIT_DENY / IMPLICIT_DENY."""
    tpl = cfn.Template(synth.data, region=synth.stack.region)
    res = cfn.Resolver(tpl)
    specs = model.roles(tpl, res)
    (api,) = synth.of_type("AWS::ApiGateway::RestApi")
    api_id = str(res.ref(api))

    def run(role: str, method: str, path: str) -> str:
        arn = iam.execute_api_arn(tpl.region, cfn.ACCOUNT, api_id, synth.cfg.stage, method, path)
        context = iam.api_context(cfn.ACCOUNT, roles.role_arn(role))
        return iam.decide(specs[role].statements, iam.Request(iam.INVOKE, arn, context))

    return run


def test_a_path_parameter_is_one_segment_for_the_iam_evaluator(
    decide: Callable[[str, str, str], str],
) -> None:
    agent, officer = c.ROLE_AGENT, c.ROLE_PRIVACY_OFFICER
    assert decide(agent, "GET", "/contacts/ct_x/messages") == iam.ALLOW
    assert decide(agent, "GET", "/media/med_x") == iam.ALLOW
    assert decide(agent, "GET", "/contacts/ct_x/extra/messages") == iam.EXPLICIT_DENY
    assert decide(agent, "GET", "/media/med_x/extra") == iam.EXPLICIT_DENY
    assert decide(officer, "GET", "/contacts/a/export") == iam.ALLOW
    assert decide(officer, "GET", "/contacts/a/b/export") == iam.EXPLICIT_DENY
    assert decide(officer, "DELETE", "/contacts/a") == iam.ALLOW
    assert decide(officer, "DELETE", "/contacts/a/b") == iam.EXPLICIT_DENY
    assert decide(agent, "POST", "/messages/m1/read") == iam.ALLOW
    assert decide(agent, "POST", "/messages/m1/m2/read") == iam.EXPLICIT_DENY
    assert decide(c.ROLE_SENDER, "GET", "/messages/m1/extra") == iam.EXPLICIT_DENY


@pytest.mark.parametrize("role", [c.ROLE_SENDER, c.ROLE_AGENT, c.ROLE_PRIVACY_OFFICER, c.ROLE_AUDITOR])
def test_each_role_may_invoke_exactly_its_routes_and_no_deeper_path(
    decide: Callable[[str, str, str], str], role: str
) -> None:
    """Every route of the API: allowed with one-segment parameters exactly when the role lists it (the Deny
    never hits a route of the role), and explicitly denied with a parameter of two segments when it does."""
    granted = {
        c.ROLE_SENDER: access.SENDER_ROUTES,
        c.ROLE_AGENT: access.AGENT_ROUTES,
        c.ROLE_PRIVACY_OFFICER: access.PRIVACY_OFFICER_ROUTES,
        c.ROLE_AUDITOR: access.AUDIT_ROUTES,
    }[role]
    for route in ROUTES:
        path = re.sub(r"\{[^}]+\}", "p1", route.path)
        expected = iam.ALLOW if route.key in granted else iam.IMPLICIT_DENY
        assert decide(role, route.method, path) == expected, (role, route.key)
        if route.key in granted and "{" in route.path:
            two = re.sub(r"\{[^}]+\}", "p1/p2", route.path)
            if route.key in ("GET /privacy/requests/{id}", "GET /campaigns/{id}"):  # narrowed: p1/p2 could
                # be `{id}/export` or `{id}/recipients`
                two = re.sub(r"\{[^}]+\}", "p1/p2/p3", route.path)
            assert decide(role, route.method, two) == iam.EXPLICIT_DENY, (role, route.key)


def test_a_deny_of_deeper_paths_may_not_shadow_another_route_of_the_role(monkeypatch: Any) -> None:
    """`GET /contacts/{contact}` would deny `GET/contacts/*/*`, which holds `GET /contacts/{contact}/export`:
    such a pair is refused at synth (the role's routes need reorganizing), not silently denied."""
    extra = api_module.Route("GET", "/contacts/{contact}", c.FN_CONTACTS_API)
    monkeypatch.setattr(api_module, "ROUTES", (*ROUTES, extra))
    both = ["GET /contacts/{contact}", "GET /contacts/{contact}/export"]
    assert access._shadowed(api_module.Api, both) == [("GET /contacts/{contact}/export", "GET/contacts/*/*")]
    assert access._shadowed(api_module.Api, access.AGENT_ROUTES) == []
    assert access._shadowed(api_module.Api, access.PRIVACY_OFFICER_ROUTES) == [  # narrowed: see below
        ("GET /privacy/requests/{id}/export", "GET/privacy/requests/*/*")
    ]
    with pytest.raises(ValueError, match="would also deny an allowed route"):
        access._invoke_statements(api_module.Api, "Sid", both)  # type: ignore[arg-type]


def test_a_narrowed_deny_leaves_no_other_route_of_the_api_granted(
    decide: Callable[[str, str, str], str],
) -> None:
    """The privacy officer's `GET /privacy/requests/{id}` and `.../{id}/export`: the export stays allowed,
    three segments are denied, and synth would refuse a narrowing that left another route granted."""
    officer = c.ROLE_PRIVACY_OFFICER
    assert decide(officer, "GET", "/privacy/requests/dsr_1/export") == iam.ALLOW
    assert decide(officer, "GET", "/privacy/requests/dsr_1") == iam.ALLOW
    assert decide(officer, "GET", "/privacy/requests/a/b/c") == iam.EXPLICIT_DENY
    assert decide(officer, "GET", "/privacy/requests/a/b/export") == iam.EXPLICIT_DENY
    patterns, unfixed = access._narrowed(api_module.Api, access.PRIVACY_OFFICER_ROUTES)  # type: ignore[arg-type]
    assert unfixed == [] and patterns["GET /privacy/requests/{id}"] == ["GET/privacy/requests/*/*/*"]
    assert access._granted_beyond(api_module.Api, ["GET /privacy/requests/{id}"], patterns) == [  # type: ignore[arg-type]
        "GET /privacy/requests/{id}/export"
    ]


# ---- cdk-nag ---------------------------------------------------------------------------------------


def test_synth_passes_the_four_rule_packs(synth: Synth) -> None:
    assert synth.error is None, synth.error
    assert synth.report is not None, "no validation-report.json: the rule packs did not run"
    plugins = {p["pluginName"]: p for p in synth.report["pluginReports"]}
    assert set(plugins) >= PACKS  # each pack reports (at least its acknowledged findings)
    for name in PACKS:
        report = plugins[name]
        unacknowledged = [(v["ruleName"], [x["constructPath"] for x in v["violatingConstructs"]])
                          for v in report.get("violations", [])]  # fmt: skip
        assert unacknowledged == [], name
        assert report["conclusion"] == "success"


def test_every_acknowledgement_is_on_one_resource_with_a_reason(synth: Synth) -> None:
    assert synth.report is not None
    for report in synth.report["pluginReports"]:
        for suppressed in report.get("suppressedViolations") or []:
            reason = suppressed["reason"]
            assert len(reason) >= nag.MIN_REASON_CHARS and reason.endswith("."), suppressed["ruleName"]
            at = suppressed["acknowledgedAt"]
            paths = [v["constructPath"] for v in suppressed["violatingConstructs"]]
            assert at != "Waguard" and at.endswith("/Resource"), (suppressed["ruleName"], at)
            assert paths == [at], (suppressed["ruleName"], paths)


def test_rule_packs_catch_a_noncompliant_resource(tmp_path: Any) -> None:
    """The wiring works: an unencrypted, unlogged bucket fails synth and lands in the report."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    s3.Bucket(stack, "Naked")
    nag.attach_packs(app)
    with pytest.raises(RuntimeError, match="AwsSolutions-S1"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    rules = {v["ruleName"] for p in report["pluginReports"] for v in p.get("violations", [])}
    assert {
        "AwsSolutions-S1",
        "NIST.800.53.R5-S3BucketLoggingEnabled",
        "PCI.DSS.321-S3DefaultEncryptionKMS",
    } <= rules


def test_acknowledgements_need_a_known_rule_and_a_real_reason(tmp_path: Any) -> None:
    stack = Stack(App(outdir=str(tmp_path)), "Probe")
    bucket = s3.Bucket(stack, "Bucket")
    with pytest.raises(ValueError, match="full sentence"):
        nag.acknowledge(bucket, "not needed", "AwsSolutions-S1")
    with pytest.raises(ValueError, match="not a rule id"):
        nag.acknowledge(bucket, "A reason that is long enough to be a sentence here.", "S1")


def test_app_fails_on_a_failed_pack_report(tmp_path: Any) -> None:
    import app as entry

    report = {
        "pluginReports": [
            {"pluginName": "AwsSolutions", "conclusion": "success"},
            {"pluginName": "PCI.DSS.321", "conclusion": "failure"},
        ]
    }
    (tmp_path / "validation-report.json").write_text(json.dumps(report))
    assert entry.failed_plugins(str(tmp_path)) == ["PCI.DSS.321"]
    assert entry.failed_plugins(str(tmp_path / "missing")) == []
