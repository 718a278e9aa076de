"""Materialize: the template's keys, tables, queues and secret on moto, with SSE/TTL/PITR as declared."""

from __future__ import annotations

import json

import pytest

from waguard import aws, materialize
from waguard.cfn import Resolver

pytestmark = pytest.mark.xdist_group("local")

SECRETS = {
    "WA_APP_SECRET": "app",
    "WA_VERIFY_TOKEN": "verify",
    "WA_ACCESS_TOKEN": "access",
    "WG_CONTACT_KEY": "ck",
}


@pytest.fixture
def made(tpl, endpoint):
    physical = materialize.materialize(tpl, endpoint, SECRETS)
    return physical, endpoint


def test_tables_have_the_templates_keys_indexes_sse_ttl_pitr_and_protection(tpl, made) -> None:
    physical, endpoint = made
    ddb = aws.client("dynamodb", endpoint, tpl.region)
    key_arn = physical["DataKey1A2B3C4D"].attrs["Arn"]
    messages = ddb.describe_table(TableName=physical["MessagesTable0C1D2E3F"].ref)["Table"]
    assert messages["SSEDescription"] == {"Status": "ENABLED", "SSEType": "KMS", "KMSMasterKeyArn": key_arn}
    assert messages["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert messages["DeletionProtectionEnabled"] is True
    assert [k["AttributeName"] for k in messages["KeySchema"]] == ["pk", "sk"]
    assert [ix["IndexName"] for ix in messages["GlobalSecondaryIndexes"]] == ["by_msg_id"]
    for lid, pitr in (("MessagesTable0C1D2E3F", "ENABLED"), ("KeysTable4A5B6C7D", "DISABLED")):
        name = physical[lid].ref
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == pitr
    assert "NeverTable" not in physical  # its Condition is false


def test_key_rotation_and_alias(tpl, made) -> None:
    physical, endpoint = made
    kms = aws.client("kms", endpoint, tpl.region)
    key_id = physical["DataKey1A2B3C4D"].ref
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"] is True
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/waguard-data"] == key_id


def test_queues_are_encrypted_with_the_dlq_redrive_of_the_template(tpl, made) -> None:
    physical, endpoint = made
    sqs = aws.client("sqs", endpoint, tpl.region)
    attrs = sqs.get_queue_attributes(QueueUrl=physical["InboundQueue1B2C3D4E"].ref, AttributeNames=["All"])[
        "Attributes"
    ]
    assert attrs["KmsMasterKeyId"] == physical["DataKey1A2B3C4D"].attrs["Arn"]
    assert (attrs["VisibilityTimeout"], attrs["MessageRetentionPeriod"]) == ("2", "345600")
    assert json.loads(attrs["RedrivePolicy"]) == {
        "deadLetterTargetArn": physical["InboundDlq9A8B7C6D"].attrs["Arn"],
        "maxReceiveCount": 3,
    }
    assert "aws:SecureTransport" in attrs["Policy"]


def test_moto_moves_a_message_to_the_dlq_after_max_receives(tpl, made) -> None:
    physical, endpoint = made
    sqs = aws.client("sqs", endpoint, tpl.region)
    queue, dlq = physical["InboundQueue1B2C3D4E"].ref, physical["InboundDlq9A8B7C6D"].ref
    sqs.send_message(QueueUrl=queue, MessageBody="poison")
    counts = []
    for _ in range(4):
        got = sqs.receive_message(QueueUrl=queue, VisibilityTimeout=0, AttributeNames=["All"]).get(
            "Messages", []
        )
        counts += [m["Attributes"]["ApproximateReceiveCount"] for m in got]
    assert counts == ["1", "2", "3"]  # the 4th receive found it gone
    (moved,) = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1)["Messages"]
    assert moved["Body"] == "poison"


def test_each_secret_holds_only_the_local_values_of_the_fields_it_declares(tpl, made) -> None:
    physical, endpoint = made
    sm = aws.client("secretsmanager", endpoint, tpl.region)
    secret = sm.get_secret_value(SecretId=physical["Secret3E4F5A6B"].ref)
    assert json.loads(secret["SecretString"]) == {  # the generator's template, only contact_key filled
        "app_secret": "REPLACE",
        "verify_token": "REPLACE",
        "access_token": "REPLACE",
        "contact_key": "ck",
        "extra": "kept",
    }
    webhook = sm.get_secret_value(SecretId=physical["WebhookSecret4F5A6B7C"].ref)
    assert json.loads(webhook["SecretString"]) == {"app_secret": "app", "verify_token": "verify"}
    assert (
        sm.describe_secret(SecretId=physical["Secret3E4F5A6B"].ref)["KmsKeyId"]
        == physical["DataKey1A2B3C4D"].attrs["Arn"]
    )


def test_unset_secrets_are_generated() -> None:
    values = materialize.local_secrets({"WA_APP_SECRET": "mine"})
    assert values["WA_APP_SECRET"] == "mine"
    assert len(values["WA_VERIFY_TOKEN"]) >= 24 and values["WA_VERIFY_TOKEN"] != values["WA_ACCESS_TOKEN"]


def test_check_finds_drift_from_the_template(tpl, made) -> None:
    physical, endpoint = made
    assert materialize.check(tpl, endpoint, physical) == []
    ddb = aws.client("dynamodb", endpoint, tpl.region)
    ddb.update_time_to_live(
        TableName=physical["KeysTable4A5B6C7D"].ref,
        TimeToLiveSpecification={"Enabled": False, "AttributeName": "expires_at"},
    )
    ddb.update_continuous_backups(
        TableName=physical["KeysTable4A5B6C7D"].ref,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    problems = materialize.check(tpl, endpoint, physical)
    assert any("KeysTable4A5B6C7D: TTL" in p for p in problems)
    assert any("KeysTable4A5B6C7D: point-in-time recovery" in p for p in problems)


def test_discover_finds_what_serve_created(tpl, made) -> None:
    physical, endpoint = made
    found = materialize.discover(tpl, endpoint)
    for lid, phys in found.items():
        assert phys.ref == physical[lid].ref, lid
    res = Resolver(tpl, found)
    assert res.resolve({"Fn::GetAtt": ["DataKey1A2B3C4D", "Arn"]}) == physical["DataKey1A2B3C4D"].attrs["Arn"]


def test_discover_on_an_empty_endpoint_says_what_is_missing(tpl, endpoint) -> None:
    with pytest.raises(materialize.MaterializeError, match="is `waguard serve` running"):
        materialize.discover(tpl, endpoint)
