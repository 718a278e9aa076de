"""The media bucket, queue and worker: encryption, TLS-only policy, lifecycle and least privilege."""

from __future__ import annotations

import json
from typing import Any

import pytest

from lambdas.shared import constants as c
from tests.infra.support import Synth
from tests.infra.test_infra_stack import ref, refs_in, statements

pytestmark = pytest.mark.xdist_group("infra")


def _bucket(synth: Synth) -> tuple[str, dict[str, Any]]:
    (lid,) = [k for k in synth.of_type("AWS::S3::Bucket") if k.startswith("MediaMediaBucket")]
    return lid, synth.resources[lid]["Properties"]


def _policy_of(synth: Synth, fn: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for lid, res in synth.of_type("AWS::IAM::ManagedPolicy").items():
        if lid.startswith("Functions" + "".join(p.title() for p in fn.split("-"))):
            out += statements(res)
    return out


def test_media_bucket_encryption_public_access_and_no_replication(synth: Synth) -> None:
    _, props = _bucket(synth)
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    data_key = ref(synth.env("processor")[c.ENV_DATA_KEY_ARN])
    assert rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": [data_key, "Arn"]}
    assert rule["BucketKeyEnabled"] is True
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "ReplicationConfiguration" not in props
    assert props["LoggingConfiguration"]["LogFilePrefix"] == "media-bucket/"


def test_media_bucket_is_tls_only(synth: Synth) -> None:
    lid, _ = _bucket(synth)
    (policy,) = [
        p for p in synth.of_type("AWS::S3::BucketPolicy").values() if ref(p["Properties"]["Bucket"]) == lid
    ]
    denies = [s for s in statements(policy) if s["Effect"] == "Deny"]
    assert any(s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)
    assert not [s for s in statements(policy) if s["Effect"] == "Allow"]


def test_media_lifecycle_follows_the_media_retention_class(synth: Synth) -> None:
    _, props = _bucket(synth)
    rules = {r["Id"]: r for r in props["LifecycleConfiguration"]["Rules"]}
    retention = rules["MediaRetention"]
    assert retention["Status"] == "Enabled"
    assert retention["Prefix"] == c.MEDIA_PREFIX
    assert retention["ExpirationInDays"] == synth.cfg.retention_days[c.CLASS_MEDIA]
    assert retention["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
    assert retention["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert synth.cfg.settings().retention_days[c.CLASS_MEDIA] == synth.cfg.retention_days[c.CLASS_MEDIA]


def test_media_worker_has_least_privilege(synth: Synth) -> None:
    lid, _ = _bucket(synth)
    worker = {s["Sid"]: s for s in _policy_of(synth, c.FN_MEDIA_WORKER)}
    assert set(worker) == {
        "WriteOwnLogGroup",
        "XRay",
        "ReadSecrets",
        "DecryptSecret",
        "TablesWrite",
        "DataKeyForTables",
        "FieldEncryptionBranchKeys",
        "ConsumeQueue",
        "DataKeyForQueues",
        "MediaObjects",
        "DataKeyForMedia",
    }
    objects = worker["MediaObjects"]
    assert sorted(objects["Action"]) == ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"]
    assert "s3:GetObject" not in objects["Action"]  # the worker writes media, it never reads it back
    resource = objects["Resource"]["Fn::Join"][1]
    assert {"Fn::GetAtt": [lid, "Arn"]} in resource and resource[-1] == "/media/*"
    assert worker["DataKeyForMedia"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{synth.cfg.region}.amazonaws.com"}
    }
    assert ref(worker["DataKeyForMedia"]["Resource"]) == ref(synth.env("processor")[c.ENV_DATA_KEY_ARN])
    env = synth.env(c.FN_MEDIA_WORKER)
    assert refs_in(worker["TablesWrite"]["Resource"]) == {
        ref(env[c.ENV_TABLE[c.TABLE_CONTACTS]]),
        ref(env[c.ENV_TABLE[c.TABLE_KEYS]]),
    }
    media_queue = ref(synth.env("processor")[c.ENV_MEDIA_QUEUE_URL])
    assert worker["ConsumeQueue"]["Resource"] == {"Fn::GetAtt": [media_queue, "Arn"]}
    assert not any("Delete" in a for a in _as_list(worker["TablesWrite"]["Action"]))


def test_who_may_touch_media_objects(synth: Synth) -> None:
    grants = {}
    for fn in c.HANDLERS:
        got = [s for s in _policy_of(synth, fn) if s.get("Sid") == "MediaObjects"]
        grants[fn] = sorted(_as_list(got[0]["Action"])) if got else []
    assert grants == {
        c.FN_WEBHOOK: [],
        c.FN_PROCESSOR: [],
        c.FN_SENDER: ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
        c.FN_MESSAGES_API: ["s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject"],
        c.FN_CONTACTS_API: ["s3:DeleteObject"],
        c.FN_MEDIA_WORKER: ["s3:AbortMultipartUpload", "s3:DeleteObject", "s3:PutObject"],
        c.FN_TEMPLATES: [],
        c.FN_AUDITOR: [],
        c.FN_CAMPAIGNS: [],
    }


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_messages_api_writes_the_contacts_table_only_for_uploads(synth: Synth) -> None:
    """POST /media records an upload: PutItem on the uploads' partitions, never a contact's."""
    puts = {}
    for fn in c.HANDLERS:
        for s in _policy_of(synth, fn):
            if "dynamodb:PutItem" in _as_list(s["Action"]) and s.get("Sid") == "PutOwnPartitions":
                puts[fn] = s
    assert list(puts) == [c.FN_MESSAGES_API]
    statement = puts[c.FN_MESSAGES_API]
    assert _as_list(statement["Action"]) == ["dynamodb:PutItem"]
    assert statement["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [c.MEDIA_UPLOADS_PK, "MEDIAREF#*"]}
    }
    table_writes = [s for s in _policy_of(synth, c.FN_MESSAGES_API) if s.get("Sid") == "TablesWrite"]
    assert all("Contacts" not in json.dumps(s["Resource"]) for s in table_writes)


def _web_acl(synth: Synth) -> dict[str, Any]:
    (acl,) = synth.of_type("AWS::WAFv2::WebACL").values()
    return acl["Properties"]


def test_uploads_the_function_cannot_receive_are_413_from_waf(synth: Synth) -> None:
    import re

    from infra.api import CONTENT_LENGTH_FROM_BLOCK, MEDIA_UPLOAD_BLOCK_BYTES

    props = _web_acl(synth)
    (rule,) = [r for r in props["Rules"] if r["Name"] == "MediaUploadTooLarge"]
    block = rule["Action"]["Block"]["CustomResponse"]
    assert block["ResponseCode"] == 413
    body = json.loads(props["CustomResponseBodies"][block["CustomResponseBodyKey"]]["Content"])
    assert body["error"] == "too_large"
    path, size = rule["Statement"]["AndStatement"]["Statements"]
    assert path["ByteMatchStatement"]["SearchString"] == "/media"
    regex = size["RegexMatchStatement"]
    assert regex["FieldToMatch"] == {"SingleHeader": {"Name": "content-length"}}
    blocked = re.compile(regex["RegexString"])
    # Base64 of the block size still fits a synchronous Lambda's 6 MB event; the function answers below it.
    assert MEDIA_UPLOAD_BLOCK_BYTES * 4 / 3 < 6_291_456 - 64 * 1024
    for n in (MEDIA_UPLOAD_BLOCK_BYTES, 4_999_999, 5_000_000, 9_999_999, 10_000_000, 123_456_789_012):
        assert blocked.match(str(n)), n
    for n in (0, 1, 4_194_305, MEDIA_UPLOAD_BLOCK_BYTES - 1, 999_999):
        assert not blocked.match(str(n)), n
    assert CONTENT_LENGTH_FROM_BLOCK == regex["RegexString"]


def test_body_rule_sets_skip_the_webhook_and_media_uploads(synth: Synth) -> None:
    props = _web_acl(synth)
    scoped = [r for r in props["Rules"] if "ScopeDownStatement" in json.dumps(r)]
    assert {r["Name"] for r in scoped} == {
        "AWSManagedRulesCommonRuleSet",
        "AWSManagedRulesKnownBadInputsRuleSet",
    }
    for rule in scoped:
        down = rule["Statement"]["ManagedRuleGroupStatement"]["ScopeDownStatement"]
        either = down["NotStatement"]["Statement"]["OrStatement"]["Statements"]
        assert {s["ByteMatchStatement"]["SearchString"] for s in either} == {"/webhook", "/media"}
