"""Personnel roles (issue #8) and the four cdk-nag packs."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from infra import nag
from lambdas.shared import constants as c
from tests.infra.support import Synth

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


def invoked_routes(synth: Synth, policy: dict[str, Any]) -> set[str]:
    """`METHOD /path` of every execute-api resource the policy grants (path params as `*`)."""
    routes = set()
    (api,) = synth.of_type("AWS::ApiGateway::RestApi")
    for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
        if not any(a.startswith("execute-api:") for a in as_list(statement["Action"])):
            continue
        assert as_list(statement["Action"]) == ["execute-api:Invoke"]
        assert statement["Effect"] == "Allow"
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
    assert invoked_routes(synth, policy) == {"POST /messages", "GET /messages/*", "POST /media"}
    assert {s["Sid"] for s in policy["Properties"]["PolicyDocument"]["Statement"]} == {"InvokeSendRoutes"}


def test_privacy_officer_may_only_use_the_privacy_routes(synth: Synth) -> None:
    policy = role_policies(synth)[c.ROLE_PRIVACY_OFFICER]
    assert invoked_routes(synth, policy) == {
        "PUT /contacts/*/consent",
        "GET /contacts/*/consent",
        "GET /contacts/*/export",
        "DELETE /contacts/*",
        "GET /media/*",  # contract: the privacy officer reads media (an access request, an erasure check)
    }
    assert len(policy["Properties"]["PolicyDocument"]["Statement"]) == 1


def test_auditor_reads_trail_and_logs_only(synth: Synth) -> None:
    policy = role_policies(synth)[c.ROLE_AUDITOR]
    assert invoked_routes(synth, policy) == set()
    granted = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    actions = {a for s in granted.values() for a in as_list(s["Action"])}
    assert actions == {
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
