"""Shared fixtures: an AWS account on moto (mock_aws, in-process) with the stack's data resources.

`aws_stack` creates the tables, queues, key and secret the way the synthesized template declares them
(see docs/design.md); handlers and store modules then run against it unchanged.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Property tests share two CPUs with `waguard serve` and moto under -n 3: a slow example is not a failure
# (Hypothesis' 200 ms deadline and its too-slow check would report one as "unreliable"); each test that
# needs fewer or more examples still says so.
settings.register_profile("waguard", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("waguard")

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
if str(LAMBDAS) not in sys.path:
    sys.path.insert(0, str(LAMBDAS))

from shared import constants as c  # noqa: E402
from tests import factory as f  # noqa: E402

REGION = "eu-central-1"
SECRETS = {
    c.SECRET_APP_SECRET: "test-app-secret",
    c.SECRET_VERIFY_TOKEN: "test-verify-token",
    c.SECRET_ACCESS_TOKEN: "test-access-token",
    c.SECRET_CONTACT_KEY: "test-contact-key-0123456789abcdef",
}


def settings_json() -> str:
    """WG_SETTINGS exactly as the stack builds it from cdk.json (one source of truth)."""
    from infra.config import WaguardConfig

    return WaguardConfig.from_cdk_json(ROOT / "cdk.json").settings_json()


def reset_runtime_caches() -> None:
    from domain import campaign_steps
    from shared import secrets, settings
    from store import crypto, events, media, ratelimit, tables, templates

    campaign_steps.reset()
    templates.reset()
    settings.reset()
    ratelimit.reset()
    media.reset()
    tables.reset()
    crypto.reset()
    events.reset()
    secrets.reset()


@dataclass
class AwsStack:
    region: str
    tables: dict[str, str]
    queues: dict[str, str]
    dlqs: dict[str, str]
    secret_arns: dict[str, str]  # constants.SECRETS name -> ARN
    key_arn: str
    env: dict[str, str] = field(default_factory=dict)
    events_queue: str = ""
    seeded: dict[str, Any] = field(default_factory=dict)  # moto's items of each table right after seeding

    def events(self) -> list[dict[str, Any]]:
        """Every business event published since the last call (EventBridge envelopes, oldest first)."""
        sqs = self.client("sqs")
        out: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.events_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            msgs = got.get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.events_queue, ReceiptHandle=m["ReceiptHandle"])

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, region_name=self.region)

    def items(self, logical: str) -> list[dict[str, Any]]:
        """Every item of a table (test inspection only; the product never scans)."""
        import boto3

        table = boto3.resource("dynamodb", region_name=self.region).Table(self.tables[logical])
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = table.scan(**kwargs)
            out.extend(page["Items"])
            if "LastEvaluatedKey" not in page:
                return out
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def queue_messages(self, url: str) -> list[dict[str, Any]]:
        sqs = self.client("sqs")
        got = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
        )
        return got.get("Messages", [])


def _create_stack() -> AwsStack:
    import boto3

    kms = boto3.client("kms", region_name=REGION)
    key_arn = kms.create_key(Description="waguard data key")["KeyMetadata"]["Arn"]
    ddb = boto3.client("dynamodb", region_name=REGION)
    names: dict[str, str] = {}
    for spec in c.TABLE_SPECS:
        logical = spec.name
        name = f"waguard-{logical}"
        args: dict[str, Any] = {
            "TableName": name,
            "KeySchema": [
                {"AttributeName": c.PK, "KeyType": "HASH"},
                {"AttributeName": c.SK, "KeyType": "RANGE"},
            ],
            "AttributeDefinitions": [
                {"AttributeName": c.PK, "AttributeType": "S"},
                {"AttributeName": c.SK, "AttributeType": "S"},
                *({"AttributeName": attr, "AttributeType": "S"} for _, attr in spec.indexes),
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "SSESpecification": {"Enabled": True, "SSEType": "KMS", "KMSMasterKeyId": key_arn},
        }
        if spec.indexes:
            args["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index,
                    "KeySchema": [{"AttributeName": attr, "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index, attr in spec.indexes
            ]
        ddb.create_table(**args)
        ddb.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": c.TTL_ATTRIBUTE}
        )
        names[logical] = name
    sqs = boto3.client("sqs", region_name=REGION)
    queues: dict[str, str] = {}
    dlqs: dict[str, str] = {}
    for name, receives in (("inbound", 5), ("send", 6), ("media", 5)):
        dlq = sqs.create_queue(QueueName=f"waguard-{name}-dlq", Attributes={"KmsMasterKeyId": key_arn})[
            "QueueUrl"
        ]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        queues[name] = sqs.create_queue(
            QueueName=f"waguard-{name}",
            Attributes={
                "KmsMasterKeyId": key_arn,
                "VisibilityTimeout": "60",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": receives}),
            },
        )["QueueUrl"]
        dlqs[name] = dlq
    bus, captured = _create_bus(key_arn)
    media_bucket = "waguard-media"
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=media_bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_encryption(
        Bucket=media_bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [
                {
                    "ApplyServerSideEncryptionByDefault": {
                        "SSEAlgorithm": "aws:kms",
                        "KMSMasterKeyID": key_arn,
                    },
                    "BucketKeyEnabled": True,
                }
            ]
        },
    )
    sm = boto3.client("secretsmanager", region_name=REGION)
    secret_arns = {  # one secret per need, as the stack splits them
        name: sm.create_secret(
            Name=f"waguard-{name}",
            SecretString=json.dumps({k: SECRETS[k] for k in fields}),
            KmsKeyId=key_arn,
        )["ARN"]
        for name, fields in c.SECRETS.items()
    }
    env = {c.ENV_TABLE[logical]: name for logical, name in names.items()}
    env.update(
        {
            c.ENV_INBOUND_QUEUE_URL: queues["inbound"],
            c.ENV_SEND_QUEUE_URL: queues["send"],
            c.ENV_MEDIA_QUEUE_URL: queues["media"],
            c.ENV_MEDIA_BUCKET: media_bucket,
            **{c.ENV_SECRET_ID[name]: arn for name, arn in secret_arns.items()},
            c.ENV_DATA_KEY_ARN: key_arn,
            c.ENV_SETTINGS: settings_json(),
            c.ENV_PHONE_NUMBER_ID: ",".join(f.SERVED_NUMBERS),
            c.ENV_BUSINESS_ACCOUNT_ID: f.WABA_ID,
            c.ENV_EVENT_BUS_NAME: bus,
        }
    )
    return AwsStack(REGION, names, queues, dlqs, secret_arns, key_arn, env, events_queue=captured)


def _create_bus(key_arn: str) -> tuple[str, str]:
    """The stack's event bus and, for the tests to read what was published, a rule that copies every
    waguard event to a queue (as the local runtime routes the forwarding rule)."""
    import boto3

    bus = "waguard-events"
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=bus)
    url = sqs.create_queue(QueueName="waguard-events-capture")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="capture", EventBusName=bus, EventPattern=json.dumps({"source": [c.EVENT_SOURCE]}))
    events.put_targets(Rule="capture", EventBusName=bus, Targets=[{"Id": "capture", "Arn": arn}])
    return bus, url


_ACCOUNT: AwsStack | None = None  # this worker's moto account, built on first use and reset per test
_SESSION: Any = None  # this worker's boto3 session, kept across tests (see aws_stack)


_CLIENT_ENV = ("AWS_DEFAULT_REGION", "AWS_REGION", "AWS_ENDPOINT_URL")


def _keeping_clients(session: Any) -> Any:
    """The worker's session, keeping each client and resource it builds for the same arguments and
    environment.

    The product builds its clients again after every `reset_runtime_caches` (as a new container would),
    and the tests' helpers build their own: some ten clients per test at about 15 ms of CPU each, a
    sixth of an integration test. A client holds nothing of a test but what it was built from: the
    arguments (only plain values are kept by; a Config object always gets a new client), the region and
    endpoint in the environment (part of the key), and this session's credentials (the same for every
    test). Handlers that count or fake calls (bench/meter.py) are registered on every session's
    clients from botocore's built-in list, not on one client."""
    session.client = _kept(session.client)
    session.resource = _kept(session.resource)
    return session


def _kept(build: Any) -> Any:
    kept: dict[Any, Any] = {}

    def get(*args: Any, **kwargs: Any) -> Any:
        if not all(isinstance(v, str | bool | int | None) for v in (*args, *kwargs.values())):
            return build(*args, **kwargs)
        env = tuple(os.environ.get(k) for k in _CLIENT_ENV)
        endpoints = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("AWS_ENDPOINT_URL_")))
        key = (args, tuple(sorted(kwargs.items())), env, endpoints)
        if key not in kept:
            kept[key] = build(*args, **kwargs)
        return kept[key]

    return get


def _routes_added_once(mock: Any) -> Any:
    """`mock_aws` whose routes for the `requests` library are added once per worker.

    Each start adds some 2,400 of them (every HTTP method for every service's URL pattern), and a start
    that keeps the account (`reset=False`, as here) never removes the earlier ones: the list grew by that
    much for every test, and building it was a few percent of the suite. A start finding them in place
    only turns moto on again; a reset (moto's own, or the rebuild after a local test reset moto) empties
    the list, and the next start adds them again."""
    from moto.core import models

    real = mock._enable_patching

    def enable(reset: bool = True) -> None:
        if reset or not models.responses_mock.registered():
            real(reset)
            return
        models.botocore_stubber.enabled = True
        models.responses_mock.start()

    mock._enable_patching = enable
    return mock


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION)  # kept by the worker's session (_keeping_clients)


def _tables(stack: AwsStack) -> dict[str, Any] | None:
    """moto's in-process tables of the account (name -> moto Table), None when one is gone."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    held = dynamodb_backends[DEFAULT_ACCOUNT_ID][stack.region].tables
    found = {name: held.get(name) for name in stack.tables.values()}
    return None if None in found.values() else found


def _reset_account(stack: AwsStack) -> bool:
    """Put the account back as it was after it was built and seeded: the tables hold the seeded items only
    (restored in moto's own backend: emptying them through the API cost a Scan and deletes per table, and
    seeding again a write per template, for every test), the queues and media bucket are empty and the
    secrets hold their values. False when the account is gone (a local test's moto server shares moto's
    backends and resets them all): build it again then.

    The queues are emptied in moto's backend too (what its PurgeQueue does, without a call per queue), a
    secret is written only when a test changed it, and the bucket is listed only when it holds objects."""
    import copy

    from botocore.exceptions import ClientError
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.secretsmanager.models import secretsmanager_backends
    from moto.sqs.models import sqs_backends

    tables = _tables(stack)
    queues = sqs_backends[DEFAULT_ACCOUNT_ID][stack.region].queues
    names = [
        url.rsplit("/", 1)[-1] for url in (*stack.queues.values(), *stack.dlqs.values(), stack.events_queue)
    ]
    bucket = s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets.get(stack.env[c.ENV_MEDIA_BUCKET])
    if tables is None or bucket is None or any(name not in queues for name in names):
        return False
    secrets = secretsmanager_backends[DEFAULT_ACCOUNT_ID][stack.region]
    s3, sm = _client("s3"), _client("secretsmanager")
    try:
        for name, arn in stack.secret_arns.items():  # a test may have changed a value
            value = json.dumps({k: SECRETS[k] for k in c.SECRETS[name]})
            try:
                held = secrets.get_secret_value(arn, None, None).get("SecretString")  # type: ignore[arg-type]
            except Exception:  # deleted, or no value: written again below
                held = None
            if held != value:
                sm.put_secret_value(SecretId=arn, SecretString=value)
        if len(bucket.keys):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket.name):
                objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if objects:
                    s3.delete_objects(Bucket=bucket.name, Delete={"Objects": objects})
    except ClientError:
        return False
    for name in names:
        queues[name]._messages = []
        queues[name]._pending_messages = set()
    for name, table in tables.items():
        table.items = copy.deepcopy(stack.seeded[name])
    return True


def seed_templates() -> None:
    """The registry holds the Graph fake's WABA (waguard.graph_fake_templates.DEFAULT_TEMPLATES), all
    APPROVED, as after the first sync of `waguard serve`."""
    import time

    from domain import templates
    from store import templates as registry
    from waguard.graph_fake_templates import DEFAULT_TEMPLATES

    now = int(time.time())
    for index, doc in enumerate(DEFAULT_TEMPLATES):
        entry = templates.of_meta({"id": str(10**15 + index), "status": "APPROVED", **doc}, now)
        assert entry is not None
        registry.put(entry.record(), now)


@pytest.fixture
def aws_stack(monkeypatch: pytest.MonkeyPatch):
    """A moto account holding the stack's data resources, with the functions' environment set: built once
    per worker from the table declarations (constants.TABLE_SPECS) and put back as seeded before each
    test, which costs a fraction of building it again. moto corrected as the local runtime's is
    (waguard/moto_fixes.py: item operations one at a time, as DynamoDB applies them, for code that calls
    it from several threads; item-level transaction rollback). The mock is active only during the test:
    local tests talk to moto servers through the same botocore."""
    from moto import mock_aws

    from waguard import moto_fixes

    global _ACCOUNT  # noqa: PLW0603 - one account per worker process
    moto_fixes.install()

    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", *c.ENV_TABLE.values()):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")
    # Emptying the queues per test purges them more often than SQS's once a minute (a test-harness switch).
    monkeypatch.setenv("MOTO_SQS_ENFORCE_STRICT_QUEUE_PURGE_BEHAVIOUR", "false")
    mock = _routes_added_once(mock_aws())
    mock.start(reset=False)
    # moto gives each mock a fresh boto3 default session, and a fresh session parses every service's model
    # again for each client the product (after reset_runtime_caches) and the test build: about half of an
    # integration test's time. One session per worker keeps the parsed models; its credentials and region
    # are the ones set above, the same for every test.
    global _SESSION  # noqa: PLW0603 - one session per worker process
    import boto3

    if _SESSION is None:
        _SESSION = _keeping_clients(boto3.session.Session())
    boto3.DEFAULT_SESSION = _SESSION  # moto's patch puts its own value back when the mock stops
    try:
        fresh = _ACCOUNT is None or not _reset_account(_ACCOUNT)
        if fresh:
            mock.reset()
            _ACCOUNT = _create_stack()
        stack = _ACCOUNT
        for key, value in stack.env.items():
            monkeypatch.setenv(key, value)
        reset_runtime_caches()
        if fresh:
            import copy

            seed_templates()
            stack.seeded = {name: copy.deepcopy(t.items) for name, t in (_tables(stack) or {}).items()}
        yield stack
    finally:
        mock.stop(remove_data=False)
        reset_runtime_caches()


@pytest.fixture(scope="module")
def graph_api():
    """The strict Graph API fake (waguard.graph_fake) on a free port, for the sender's calls."""
    from waguard import graph_fake

    server, _ = graph_fake.start()
    yield server
    server.shutdown()


@pytest.fixture
def contact_key() -> str:
    return SECRETS[c.SECRET_CONTACT_KEY]


# The xdist groups' rough cost in seconds on two cores (measured with `--durations`; only the order
# matters). `--dist loadgroup` hands out work in collection order, so a long group collected last would run
# alone at the end of the suite: the longest go first, then the single tests fill in around them.
GROUP_SECONDS = {
    "local": 55,
    "reliability-faults": 35,
    "soak": 31,
    "infra": 25,
    "scenario-campaigns": 22,
    "scenario-console_browser": 16,
    "scenario-events": 14,
    "scenario-privacy": 14,
    "scenario-numbers": 13,
    "reliability-webhook-fuzz": 13,
    "scenario-console": 12,
    "reliability-pii-logs": 11,
    "reliability-api": 7,
    "reliability-cold-import": 4,
}


def _group_seconds(item: pytest.Item) -> int:
    marker = item.get_closest_marker("xdist_group")
    if marker is None:
        return 0
    name = marker.args[0] if marker.args else marker.kwargs.get("name", "")
    return GROUP_SECONDS.get(name, 1)


@pytest.hookimpl(trylast=True)  # after the scenario conftest has marked its groups, before xdist reads them
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Keep child processes (the local stack) from inheriting a developer's real AWS profile.
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    items.sort(key=lambda item: -_group_seconds(item))  # stable: each group keeps its own order
