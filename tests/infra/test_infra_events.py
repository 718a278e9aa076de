"""The business event bus (issue 14): its key, dead-letter queue, policy, outputs and the forwarding path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.application import build_app
from lambdas.shared import constants as c
from tests.infra.support import Synth

pytestmark = pytest.mark.xdist_group("infra")
ENDPOINT = "https://crm.example.com/waguard/events"
# The functions that put events on the bus (messages-api: template.changed of a miss's sync).
PUBLISHERS = {
    c.FN_PROCESSOR,
    c.FN_CONTACTS_API,
    c.FN_SENDER,
    c.FN_MESSAGES_API,
    c.FN_TEMPLATES,
    c.FN_AUDITOR,
    c.FN_CAMPAIGNS,
}


def _one(synth: Synth, cfn_type: str) -> tuple[str, dict[str, Any]]:
    (item,) = synth.of_type(cfn_type).items()
    return item


def test_the_bus_is_encrypted_with_the_stack_key_and_dead_letters_to_an_alarmed_queue(synth: Synth) -> None:
    bus_id, bus = _one(synth, "AWS::Events::EventBus")
    props = bus["Properties"]
    key_ids = set(synth.of_type("AWS::KMS::Key"))
    assert props["KmsKeyIdentifier"]["Fn::GetAtt"][0] in key_ids
    dlq_id = props["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0]
    dlq = synth.resources[dlq_id]["Properties"]
    assert dlq["KmsMasterKeyId"]["Fn::GetAtt"][0] in key_ids
    alarms = [
        a["Properties"]
        for a in synth.of_type("AWS::CloudWatch::Alarm").values()
        if dlq_id in json.dumps(a["Properties"].get("Dimensions", []))
    ]
    assert alarms, "the events DLQ has no alarm"
    outputs = synth.data["Outputs"]
    values = [json.dumps(o["Value"]) for name, o in outputs.items() if "EventBus" in name]
    assert any(bus_id in v and "Arn" in v for v in values) and any(
        v == json.dumps({"Ref": bus_id}) for v in values
    )


def test_only_the_publishing_functions_may_put_events(synth: Synth) -> None:
    _, policy = _one(synth, "AWS::Events::EventBusPolicy")
    statement = policy["Properties"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Action"] == "events:PutEvents"
    allowed = statement["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    fns = synth.function_ids()
    roles = {synth.resources[fns[n]]["Properties"]["Role"]["Fn::GetAtt"][0] for n in PUBLISHERS}
    assert {a["Fn::GetAtt"][0] for a in allowed} == roles
    for name in PUBLISHERS:
        assert c.ENV_EVENT_BUS_NAME in synth.env(name)
    for name in set(c.HANDLERS) - PUBLISHERS:
        assert c.ENV_EVENT_BUS_NAME not in synth.env(name)


def test_without_an_endpoint_the_forwarding_rule_has_no_target(synth: Synth) -> None:
    (rule,) = [
        r for r in synth.of_type("AWS::Events::Rule").values() if "waguard:forward" in r.get("Metadata", {})
    ]
    assert rule["Properties"]["EventPattern"] == {"source": [c.EVENT_SOURCE]}
    assert "waguard:forward" in rule["Metadata"]
    assert not rule["Properties"].get("Targets")
    assert not synth.of_type("AWS::Events::ApiDestination")


@pytest.fixture(scope="module")
def forwarding(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, dict[str, Any], Path]:
    outdir = tmp_path_factory.mktemp("cdk-out-events")
    app, stack, _ = build_app(str(outdir), {"eventsEndpoint": ENDPOINT, "eventsRatePerSecond": 25})
    app.synth()  # the four rule packs run: unacknowledged findings fail here
    report = json.loads((outdir / "validation-report.json").read_text())
    return Template.from_stack(stack), report, outdir


def test_an_endpoint_adds_an_api_destination_with_a_secret_key_retries_and_the_dlq(forwarding) -> None:
    template, _, outdir = forwarding
    template.has_resource_properties(
        "AWS::Events::ApiDestination",
        {"InvocationEndpoint": ENDPOINT, "HttpMethod": "POST", "InvocationRateLimitPerSecond": 25},
    )
    template.has_resource_properties(
        "AWS::Events::Connection",
        {
            "AuthorizationType": "API_KEY",
            "AuthParameters": {
                "ApiKeyAuthParameters": {
                    "ApiKeyName": c.EVENTS_HEADER,
                    "ApiKeyValue": {"Fn::Join": ["", Match.array_with(["{{resolve:secretsmanager:"])]},
                }
            },
        },
    )
    template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "Targets": [
                Match.object_like(
                    {
                        "DeadLetterConfig": {"Arn": Match.any_value()},
                        "RetryPolicy": {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 86400},
                    }
                )
            ]
        },
    )
    text = (outdir / "Waguard.template.json").read_text()
    assert "resolve:secretsmanager" in text  # the key is a dynamic reference, never a literal


def test_the_forwarding_path_keeps_the_rule_packs_clean(forwarding) -> None:
    _, report, _ = forwarding
    assert len(report["pluginReports"]) >= 4
    for pack in report["pluginReports"]:
        assert pack.get("violations", []) == [] and pack["conclusion"] == "success", pack["pluginName"]
