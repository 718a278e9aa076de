"""Audits (contract: Audits): the local stack as `waguard serve` made it has no finding; each drift applied
through boto3 to its AWS endpoint is found by the next run, and `waguard audit` exits 1.

The stack is shared by the scenario tests: every drift is undone in a `finally`, and a clean run after
the module's tests on a worker proves it was.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from waguard import audit, paths
from waguard.cfn import ensure_synthesized, load

OUTSIDER_ROLE = "outsider-analytics"
OUTSIDER_POLICY = "outsider-read"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


@pytest.fixture(scope="module")
def tpl() -> Any:
    return load(ensure_synthesized())


@pytest.fixture
def findings(stack, tpl) -> Callable[[], list[dict[str, str]]]:
    return lambda: audit.run_local(tpl, stack.aws)


@pytest.fixture(scope="module")
def exp(stack, tpl) -> dict[str, Any]:
    return audit.expectation(tpl, audit.local_physical(tpl, stack.aws))


@pytest.fixture(scope="module")
def audited(stack, tpl) -> Iterator[None]:
    """No finding before this worker's first drift test (so that the finding each test expects is its own
    drift's), and none after its last (every drift undone). Each drift has its own check and resource, so a
    drift left behind cannot stand for another test's; the closing run names it."""
    assert audit.run_local(tpl, stack.aws) == [], "the shared stack had drifted before the audit tests"
    yield
    left = audit.run_local(tpl, stack.aws)
    assert left == [], f"a drift was not undone: {left}"


@pytest.fixture
def clean(audited) -> Iterator[None]:
    yield


def _cli(stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(paths.ROOT / ".venv" / "bin" / "waguard"), "audit", "--aws-endpoint", stack.aws, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _one(exp: dict[str, Any], kind: str, contains: str) -> dict[str, Any]:
    return next(item for item in exp[kind] if contains in item["id"])


def test_clean_stack_has_no_finding_and_exit_0(stack, findings) -> None:
    assert findings() == []
    done = _cli(stack)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "0 findings"
    as_json = _cli(stack, "--format", "json")
    assert json.loads(as_json.stdout) == {"findings": []}


# Each drift: (name, fn(aws, exp, on): applies the drift when `on`, undoes it otherwise, the check that
# must find it, a fragment of the resource's logical id).
def _pitr(aws, exp, on: bool) -> None:
    table = _one(exp, "tables", "Consent")["name"]
    aws.client("dynamodb").update_continuous_backups(
        TableName=table, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": not on}
    )


def _rotation(aws, exp, on: bool) -> None:
    key = _one(exp, "keys", "DataKey")["key_id"]
    kms = aws.client("kms")
    (kms.disable_key_rotation if on else kms.enable_key_rotation)(KeyId=key)


def _deletion(aws, exp, on: bool) -> None:
    key = _one(exp, "keys", "LogsKey")["key_id"]
    kms = aws.client("kms")
    if on:
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    else:
        kms.cancel_key_deletion(KeyId=key)
        kms.enable_key(KeyId=key)


def _key_policy(aws, exp, on: bool) -> None:
    key = _one(exp, "keys", "TrailKey")
    policy = json.loads(json.dumps(key["policy"]))
    if on:
        policy["Statement"].append(
            {
                "Sid": "Outsider",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                "Action": "kms:Decrypt",
                "Resource": "*",
            }
        )
    aws.client("kms").put_key_policy(KeyId=key["key_id"], PolicyName="default", Policy=json.dumps(policy))


def _queue_policy(aws, exp, on: bool) -> None:
    queue = _one(exp, "queues", "QueuesSend")
    sqs = aws.client("sqs")
    if on:
        sqs.set_queue_attributes(QueueUrl=queue["url"], Attributes={"Policy": ""})
    else:
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "sqs:*",
                    "Resource": queue["arn"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                }
            ],
        }
        sqs.set_queue_attributes(QueueUrl=queue["url"], Attributes={"Policy": json.dumps(policy)})


def _redrive(aws, exp, on: bool) -> None:
    queue = next(q for q in exp["queues"] if q["dlq"] and "Inbound" in q["id"])
    sqs = aws.client("sqs")
    redrive = {"deadLetterTargetArn": queue["dlq"], "maxReceiveCount": 1000 if on else queue["max_receive"]}
    # moto forgets the queue policy when other attributes are set: it is set again with them
    policy = sqs.get_queue_attributes(QueueUrl=queue["url"], AttributeNames=["Policy"])["Attributes"][
        "Policy"
    ]
    sqs.set_queue_attributes(
        QueueUrl=queue["url"], Attributes={"RedrivePolicy": json.dumps(redrive), "Policy": policy}
    )


def _public_access(aws, exp, on: bool) -> None:
    bucket = _one(exp, "buckets", "Media")["name"]
    flag = not on
    block = {
        k: flag for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")
    }
    aws.client("s3").put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=block)


def _versioning(aws, exp, on: bool) -> None:
    bucket = _one(exp, "buckets", "TrailBucket")["name"]
    status = "Suspended" if on else "Enabled"
    aws.client("s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def _trail(aws, exp, on: bool) -> None:
    trail = exp["trails"][0]["name"]
    ct = aws.client("cloudtrail")
    (ct.stop_logging if on else ct.start_logging)(Name=trail)


def _memory(aws, exp, on: bool) -> None:
    fn = _one(exp, "functions", "Sender")
    memory = 3008 if on else fn["memory"]
    aws.client("lambda").update_function_configuration(FunctionName=fn["name"], MemorySize=memory)


def _secret_env(aws, exp, on: bool) -> None:
    fn = _one(exp, "functions", "Webhook")
    variables = dict(fn["environment"])
    if on:
        variables["META_APP_SECRET"] = "5f4dcc3b5aa765d61d8327deb882cf99"
    aws.client("lambda").update_function_configuration(
        FunctionName=fn["name"], Environment={"Variables": variables}
    )


def _outsider(aws, exp, on: bool) -> None:
    iam = aws.client("iam")
    arn = f"arn:aws:iam::{exp['account']}:policy/{OUTSIDER_POLICY}"
    if on:
        iam.create_role(RoleName=OUTSIDER_ROLE, AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST))
        document = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["dynamodb:Query"],
                    "Resource": _one(exp, "tables", "Messages")["arn"],
                }
            ],
        }
        iam.create_policy(PolicyName=OUTSIDER_POLICY, PolicyDocument=json.dumps(document))
        iam.attach_role_policy(RoleName=OUTSIDER_ROLE, PolicyArn=arn)
    else:
        iam.detach_role_policy(RoleName=OUTSIDER_ROLE, PolicyArn=arn)
        iam.delete_policy(PolicyArn=arn)
        iam.delete_role(RoleName=OUTSIDER_ROLE)


DRIFTS = [
    ("pitr-off", _pitr, "table-pitr", "DataConsent"),
    ("key-rotation-off", _rotation, "key-rotation", "DataKey"),
    ("key-deletion", _deletion, "key-deletion", "LogsKey"),
    ("key-policy-outsider", _key_policy, "key-policy", "TrailKey"),
    ("queue-policy-removed", _queue_policy, "queue-ssl-only", "QueuesSend"),
    ("queue-redrive-changed", _redrive, "queue-redrive", "QueuesInbound"),
    ("bucket-opened", _public_access, "bucket-public-access", "MediaMediaBucket"),
    ("versioning-suspended", _versioning, "bucket-versioning", "TrailBucket"),
    ("trail-stopped", _trail, "trail-logging", "AuditTrail"),
    ("function-memory", _memory, "function-memory", "Sender"),
    ("secret-env", _secret_env, "function-secret-env", "Webhook"),
    ("outsider-reads-table", _outsider, "iam", "DataMessages"),
]


@pytest.mark.parametrize(("name", "drift", "check", "resource"), DRIFTS, ids=[d[0] for d in DRIFTS])
def test_each_drift_is_found(stack, aws, exp, clean, findings, name, drift, check, resource) -> None:
    drift(aws, exp, True)
    try:
        found = findings()
        assert any(f["check"] == check and resource in f["resource"] for f in found), found
    finally:
        drift(aws, exp, False)


def test_key_policy_outsider_is_also_an_iam_finding(stack, aws, exp, clean, findings) -> None:
    _key_policy(aws, exp, True)
    try:
        found = findings()
        iam = [f for f in found if f["check"] == "iam"]
        assert iam and "210987654321" in iam[0]["detail"], found
    finally:
        _key_policy(aws, exp, False)


def test_cli_prints_the_finding_and_exits_1(stack, aws, exp, clean) -> None:
    _trail(aws, exp, True)
    try:
        done = _cli(stack)
        lines = done.stdout.strip().splitlines()
        assert done.returncode == 1, done.stderr
        assert any(line.startswith("FINDING trail-logging AuditTrail") for line in lines), lines
        assert lines[-1] == "1 finding"
        as_json = json.loads(_cli(stack, "--format", "json").stdout)
        assert as_json["findings"][0]["check"] == "trail-logging"
    finally:
        _trail(aws, exp, False)


# ---- the auditor function behind the API (serve runs it once when ready) ------------------------------


def test_serve_ran_the_audit_when_ready_and_the_roles_read_it(stack, client) -> None:
    for role in ("auditor", "privacy-officer"):
        reply = client.request("GET", "/audit/findings", key=stack.roles[role])
        assert reply.status == 200, (role, reply.text)
        assert reply.json()["findings"] == [] and reply.json()["run_at"].endswith("Z")
    for role in ("sender", "agent"):
        assert client.request("GET", "/audit/findings", key=stack.roles[role]).status == 403, role
        assert client.request("POST", "/audit/run", key=stack.roles[role]).status == 403, role


def test_post_run_finds_a_drift_and_get_answers_that_run(stack, client, aws, exp, clean) -> None:
    auditor = stack.roles["auditor"]
    _versioning(aws, exp, True)
    try:
        ran = client.request("POST", "/audit/run", key=auditor)
        assert ran.status == 200, ran.text
        found = ran.json()["findings"]
        assert [f["check"] for f in found] == ["bucket-versioning"] and "TrailBucket" in found[0]["resource"]
        assert client.request("GET", "/audit/findings", key=auditor).json() == ran.json()
    finally:
        _versioning(aws, exp, False)
    again = client.request("POST", "/audit/run", key=stack.roles["privacy-officer"])
    assert again.status == 200 and again.json()["findings"] == []


def test_the_report_shows_the_last_run(stack, client, aws, exp, clean) -> None:
    _memory(aws, exp, True)
    try:
        ran = client.request("POST", "/audit/run", key=stack.roles["auditor"]).json()
        done = subprocess.run(
            [str(paths.ROOT / ".venv" / "bin" / "waguard"), "report", "--aws-endpoint", stack.aws],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        section = done.stdout.split("Self-audit", 1)[1]
        assert f"Last run {ran['run_at']}" in section
        (finding,) = ran["findings"]
        assert f"| function-memory | {finding['resource']} |" in section
    finally:
        _memory(aws, exp, False)
    client.request("POST", "/audit/run", key=stack.roles["auditor"])  # leaves a clean last run
