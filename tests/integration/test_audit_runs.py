"""The auditor function (contract: Audits) on moto: a run finds what differs from the stack's template,
keeps the run in the audit table, puts one `audit.finding` event per finding on the bus, and the routes
answer the last run (`GET /audit/findings`) or a new one (`POST /audit/run`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lambdas.shared import constants as c
from tests.factory import LambdaContext, rest_event

TABLE_LID = "DataConsentD95B2198"


@pytest.fixture
def source(aws_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A stack of one table whose template promises point-in-time recovery and a TTL attribute; the
    moto table (built from the table declarations) has neither PITR nor what the template says."""
    name = aws_stack.tables[c.TABLE_CONSENT]
    arn = f"arn:aws:dynamodb:{aws_stack.region}:123456789012:table/{name}"
    template = {
        "Resources": {
            TABLE_LID: {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                    "TimeToLiveSpecification": {"AttributeName": c.TTL_ATTRIBUTE, "Enabled": True},
                },
            }
        }
    }
    doc = {
        "template": template,
        "physical": {TABLE_LID: {"Ref": name, "Arn": arn}},
        "region": aws_stack.region,
        "account": "123456789012",
        "stack": "Waguard",
    }
    path = tmp_path / "audit-source.json"
    path.write_text(json.dumps(doc))
    monkeypatch.setenv(c.ENV_AUDIT_SOURCE, str(path))
    from store import stack

    stack.reset()
    aws_stack.client("dynamodb").update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}
    )
    return path


def _handler() -> Any:
    from handlers import auditor

    return auditor.handler


def test_a_scheduled_run_keeps_the_run_and_publishes_each_finding(aws_stack, source) -> None:
    aws_stack.events()  # start from an empty bus
    event = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}
    answer = _handler()(event, LambdaContext())
    assert answer["findings"] >= 1
    runs = [i for i in aws_stack.items(c.TABLE_AUDIT) if i[c.PK] == "AUDITRUN"]
    assert len(runs) == 1 and runs[0]["trigger"] == "schedule" and c.TTL_ATTRIBUTE in runs[0]
    checks = {(f["check"], f["resource"]) for f in runs[0]["findings"]}
    assert ("table-pitr", TABLE_LID) in checks
    published = [e for e in aws_stack.events() if e["detail-type"] == c.EVENT_AUDIT_FINDING]
    assert {(e["detail"]["check"], e["detail"]["resource"]) for e in published} == checks
    assert all(set(e["detail"]) == {"check", "resource", "detail"} for e in published)
    from tests.integration.test_conversations import _validator

    for envelope in published:  # the catalogue's schema (docs/events)
        assert not list(_validator(c.EVENT_AUDIT_FINDING).iter_errors(envelope["detail"]))


def test_the_routes_answer_the_last_run_and_a_new_one(aws_stack, source) -> None:
    handler = _handler()
    none_yet = handler(rest_event("GET", "/audit/findings"), LambdaContext())
    assert none_yet["statusCode"] == 404 and json.loads(none_yet["body"])["error"] == "not_found"
    ran = handler(rest_event("POST", "/audit/run"), LambdaContext())
    assert ran["statusCode"] == 200
    body = json.loads(ran["body"])
    assert set(body) == {"run_at", "findings"}
    assert any(f["check"] == "table-pitr" for f in body["findings"])
    last = handler(rest_event("GET", "/audit/findings"), LambdaContext())
    assert last["statusCode"] == 200 and json.loads(last["body"]) == body
    # fixed: the next run finds nothing and is the last one
    aws_stack.client("dynamodb").update_continuous_backups(
        TableName=aws_stack.tables[c.TABLE_CONSENT],
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    clean = json.loads(handler(rest_event("POST", "/audit/run"), LambdaContext())["body"])
    assert [f for f in clean["findings"] if f["check"] == "table-pitr"] == []
    assert json.loads(handler(rest_event("GET", "/audit/findings"), LambdaContext())["body"]) == clean
