"""The self-audit in AWS (contract: Audits): the auditor runs on its schedule and after each deploy, may
describe and never change, and its findings are alarmed on."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk.assertions import Match

from lambdas.shared import constants as c
from tests.infra.support import Synth

pytestmark = pytest.mark.xdist_group("infra")  # one synthesis per suite (conftest.py)

READ_ONLY = re.compile(r"^[a-z0-9-]+:(Describe|Get|BatchGet|List|Query|ConditionCheck)[A-Za-z]*$")


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _auditor(synth: Synth) -> tuple[str, dict[str, Any]]:
    logical_id = synth.function_ids()[c.FN_AUDITOR]
    return logical_id, synth.resources[logical_id]


def _statements(synth: Synth) -> list[dict[str, Any]]:
    _, fn = _auditor(synth)
    role = fn["Properties"]["Role"]["Fn::GetAtt"][0]
    found = []
    for policy in synth.of_type("AWS::IAM::ManagedPolicy").values():
        if {"Ref": role} in policy["Properties"].get("Roles", []):
            found.extend(_as_list(policy["Properties"]["PolicyDocument"]["Statement"]))
    return found


def test_the_auditor_runs_on_its_schedule_and_after_each_deploy(synth: Synth) -> None:
    logical_id, _ = _auditor(synth)
    target = {"Fn::GetAtt": [logical_id, "Arn"]}
    hours = synth.cfg.audit_schedule_hours
    assert hours == 24  # cdk.json auditScheduleHours (default 24)
    synth.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "ScheduleExpression": "rate(1 day)",
            "State": "ENABLED",
            "Targets": [Match.object_like({"Arn": target})],
        },
    )
    synth.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.cloudformation"],
                "detail-type": ["CloudFormation Stack Status Change"],
                "detail": {
                    "stack-id": [{"Ref": "AWS::StackId"}],
                    "status-details": {"status": ["CREATE_COMPLETE", "UPDATE_COMPLETE"]},
                },
            },
            "Targets": Match.array_with([Match.object_like({"Arn": target})]),
        },
    )
    env = synth.env(c.FN_AUDITOR)
    assert env[c.ENV_STACK_NAME] == synth.stack.stack_name
    assert c.ENV_AUDIT_SOURCE not in env  # the local stand-in for CloudFormation never reaches AWS


def test_the_auditor_may_describe_and_never_change(synth: Synth) -> None:
    """Every action is Describe/Get/List, but its own output: the run (PutItem on the audit table), the
    findings (PutEvents on the stack's bus), its logs and traces."""
    writes: dict[str, set[str]] = {}
    for statement in _statements(synth):
        assert statement["Effect"] == "Allow"
        for action in _as_list(statement["Action"]):
            assert "*" not in action
            if not READ_ONLY.match(action):
                writes.setdefault(statement["Sid"], set()).add(action)
    assert writes == {
        "WriteOwnLogGroup": {"logs:CreateLogStream", "logs:PutLogEvents"},
        "XRay": {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
        "TablesAppend": {"dynamodb:PutItem"},
        "DataKeyForTables": {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"},
        "PublishEvents": {"events:PutEvents"},
    }
    by_sid = {s["Sid"]: s for s in _statements(synth)}
    assert by_sid["TablesAppend"]["Resource"] == {"Fn::GetAtt": [synth.table_ids()[c.TABLE_AUDIT], "Arn"]}
    (bus,) = synth.of_type("AWS::Events::EventBus")
    assert by_sid["PublishEvents"]["Resource"] == {"Fn::GetAtt": [bus, "Arn"]}
    assert by_sid["DataKeyForTables"]["Condition"]["StringEquals"]["kms:ViaService"].startswith("dynamodb.")
    for sid in ("AuditDescribeTables", "AuditDescribeKeys", "AuditDescribeQueues", "AuditDescribeBuckets"):
        assert by_sid[sid]["Resource"] != "*", sid
    assert not any("secretsmanager" in str(s["Action"]) for s in _statements(synth))  # no secret at all


def test_the_findings_are_alarmed_on(synth: Synth) -> None:
    alarms = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == c.METRIC_AUDIT_FINDINGS
    ]
    (alarm,) = alarms
    assert alarm["Namespace"] == c.METRICS_NAMESPACE
    assert alarm["Threshold"] == 1 and alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["AlarmActions"] and alarm["Period"] <= 86400


def test_aws_config_rules_are_off_by_default_and_deployed_when_asked(synth: Synth, tmp_path) -> None:
    from aws_cdk.assertions import Template

    from infra.application import build_app
    from infra.config_rules import RULES

    assert synth.cfg.aws_config_rules is False
    assert not synth.of_type("AWS::Config::ConfigRule")
    _app, stack, _ = build_app(str(tmp_path), checks=False, settings_overrides={"awsConfigRules": True})
    rules = Template.from_stack(stack).find_resources("AWS::Config::ConfigRule")
    identifiers = {r["Properties"]["Source"]["SourceIdentifier"] for r in rules.values()}
    assert identifiers == {identifier for _, identifier, _ in RULES}
    assert {"DYNAMODB_PITR_ENABLED", "CMK_BACKING_KEY_ROTATION_ENABLED", "CLOUD_TRAIL_ENABLED"} <= identifiers
    assert "S3_BUCKET_SSL_REQUESTS_ONLY" in identifiers
    for rule in rules.values():
        scope = rule["Properties"].get("Scope")
        assert scope is None or scope == {"TagKey": "project", "TagValue": "waguard"}
