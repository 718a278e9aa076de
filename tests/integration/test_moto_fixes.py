"""moto's corrections (waguard/moto_fixes): the item-level rollback keeps DynamoDB's transaction
semantics (all operations apply, or, when a condition fails, none does, whatever ran before the failing
one); a DynamoDB request, reads included, waits for the one in progress, response and all."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from waguard import moto_fixes


@pytest.fixture
def ddb(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    moto_fixes.install()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-central-1")
        client.create_table(
            TableName="t",
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        client.put_item(TableName="t", Item={"pk": {"S": "a"}, "sk": {"S": "1"}, "x": {"N": "1"}})
        client.put_item(TableName="t", Item={"pk": {"S": "z"}, "sk": {"S": "1"}})
        client.put_item(TableName="t", Item={"pk": {"S": "d"}, "sk": {"S": "1"}, "kept": {"S": "yes"}})
        yield client


def _items(client) -> dict[str, dict]:
    return {i["pk"]["S"]: i for i in client.scan(TableName="t")["Items"]}


def _ops(check_exists: str) -> list[dict]:
    return [
        {
            "Update": {
                "TableName": "t",
                "Key": {"pk": {"S": "a"}, "sk": {"S": "1"}},
                "UpdateExpression": "SET x = :two",
                "ExpressionAttributeValues": {":two": {"N": "2"}},
            }
        },
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "b"}, "sk": {"S": "1"}, "y": {"S": "new"}}}},
        {"Delete": {"TableName": "t", "Key": {"pk": {"S": "d"}, "sk": {"S": "1"}}}},
        {
            "ConditionCheck": {
                "TableName": "t",
                "Key": {"pk": {"S": check_exists}, "sk": {"S": "1"}},
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ]


def test_a_cancelled_transaction_changes_nothing(ddb) -> None:
    before = _items(ddb)
    with pytest.raises(ClientError) as caught:
        ddb.transact_write_items(TransactItems=_ops(check_exists="missing"))
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert _items(ddb) == before  # the update, the put and the delete that ran first are undone


def test_a_transaction_whose_conditions_hold_applies_every_operation(ddb) -> None:
    ddb.transact_write_items(TransactItems=_ops(check_exists="z"))
    items = _items(ddb)
    assert items["a"]["x"] == {"N": "2"} and items["b"]["y"] == {"S": "new"} and "d" not in items


def test_a_failed_put_condition_keeps_the_old_item(ddb) -> None:
    ops = [
        {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "1"}, "x": {"N": "9"}}}},
        {
            "Put": {
                "TableName": "t",
                "Item": {"pk": {"S": "c"}, "sk": {"S": "1"}},
                "ConditionExpression": "attribute_exists(pk)",
            }
        },
    ]
    with pytest.raises(ClientError):
        ddb.transact_write_items(TransactItems=ops)
    assert _items(ddb)["a"]["x"] == {"N": "1"} and "c" not in _items(ddb)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.put_item(TableName="t", Item={"pk": {"S": "p"}, "sk": {"S": "1"}}),
        lambda c: c.update_item(
            TableName="t",
            Key={"pk": {"S": "a"}, "sk": {"S": "1"}},
            UpdateExpression="ADD x :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
        ),
        lambda c: c.query(
            TableName="t", KeyConditionExpression="pk = :a", ExpressionAttributeValues={":a": {"S": "a"}}
        ),
        lambda c: c.scan(TableName="t"),
    ],
    ids=["put", "update", "query", "scan"],
)
def test_an_item_operation_waits_for_the_one_in_progress(ddb, call) -> None:
    import threading

    done = threading.Event()
    with moto_fixes._LOCK:  # another request in progress
        worker = threading.Thread(target=lambda: (call(ddb), done.set()))
        worker.start()
        assert not done.wait(0.3)  # held back, however fast the machine
    worker.join(10)
    assert done.is_set()


def test_reads_beside_writes_see_whole_items(ddb) -> None:
    """moto builds a response from its live item after the operation: without the lock around the whole
    request, a read beside a write that adds and removes attributes fails or sees half an update."""
    import threading
    import time

    key = {"pk": {"S": "a"}, "sk": {"S": "1"}}
    seen: list[str] = []  # what a reader found wrong
    stop = time.monotonic() + 1.5

    def names(n: int) -> list[str]:
        return [f"g{n % 5}_{i}" for i in range(20)]

    def write() -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            ddb.update_item(  # one generation's 20 attributes in, the previous one's out, atomically
                TableName="t",
                Key=key,
                UpdateExpression="SET version = :n, "
                + ", ".join(f"{x} = :n" for x in names(n))
                + " REMOVE "
                + ", ".join(names(n - 1)),
                ExpressionAttributeValues={":n": {"N": str(n)}},
            )

    def read() -> None:
        while time.monotonic() < stop:
            try:
                item = ddb.get_item(TableName="t", Key=key)["Item"]
            except Exception as exc:  # any failure is the finding
                seen.append(type(exc).__name__)
                continue
            values = [v["N"] for k, v in item.items() if k.startswith("g")]
            if "version" in item and (len(values) != 20 or set(values) != {item["version"]["N"]}):
                seen.append("half an update")

    threads = [threading.Thread(target=write), *(threading.Thread(target=read) for _ in range(2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert seen == []


def test_a_tls_only_bucket_policy_lets_local_requests_through_and_an_unconditional_deny_does_not(
    monkeypatch,
) -> None:
    import json

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    moto_fixes.install()
    with mock_aws():
        s3 = boto3.client("s3", region_name="eu-central-1")
        s3.create_bucket(Bucket="tls-only", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
        deny = {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::tls-only", "arn:aws:s3:::tls-only/*"],
        }
        tls_only = {**deny, "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
        s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps({"Statement": [tls_only]}))
        s3.put_object(Bucket="tls-only", Key="media/a", Body=b"x")
        assert json.loads(s3.get_bucket_policy(Bucket="tls-only")["Policy"])["Statement"] == [tls_only]
        s3.put_bucket_policy(Bucket="tls-only", Policy=json.dumps({"Statement": [deny]}))
        with pytest.raises(ClientError):
            s3.put_object(Bucket="tls-only", Key="media/b", Body=b"x")


def test_events_to_a_target_keep_their_content_and_parse_each_input_path_once(monkeypatch) -> None:
    """The kept JSONPath parses and method lists change no answer: events delivered to an SQS target arrive
    whole, and the second event parses nothing again."""
    import jsonpath_ng.ext

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    moto_fixes.install()
    with mock_aws():
        events = boto3.client("events", region_name="eu-central-1")
        sqs = boto3.client("sqs", region_name="eu-central-1")
        url = sqs.create_queue(QueueName="target")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(Name="all", EventPattern=json.dumps({"source": ["waguard"]}))
        events.put_targets(Rule="all", Targets=[{"Id": "q", "Arn": arn}])
        for n in (1, 2):
            entry = {"Source": "waguard", "DetailType": "t", "Detail": json.dumps({"n": n})}
            assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
            if n == 1:
                misses = jsonpath_ng.ext.parse.cache_info().misses
        assert jsonpath_ng.ext.parse.cache_info().misses == misses
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert sorted(json.loads(m["Body"])["detail"]["n"] for m in got) == [1, 2]


def _every_kind_of_value() -> dict:
    return {
        "pk": {"S": "p"},
        "sk": {"S": "s"},
        "blank": {"S": ""},
        "n": {"N": "12.5"},
        "b": {"B": b"\x00\x01binary"},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2"]},
        "bs": {"BS": [b"x", b"\xff"]},
        "yes": {"BOOL": True},
        "no": {"BOOL": False},
        "nil": {"NULL": True},
        "m": {"M": {"a": {"S": "1"}, "deep": {"M": {"l": {"L": [{"N": "1"}, {"S": "s"}, {"M": {}}]}}}}},
        "l": {"L": [{"B": b"\x02"}, {"L": []}, {"NULL": True}]},
        "empty": {"M": {}},
    }


def test_attribute_values_written_directly_answer_what_the_generic_serializer_does(ddb) -> None:
    from moto.core.serialize import BaseJSONSerializer

    item = _every_kind_of_value()
    ddb.put_item(TableName="t", Item=item)
    key = {"pk": {"S": "p"}, "sk": {"S": "s"}}

    def read() -> tuple:
        got = ddb.get_item(TableName="t", Key=key)["Item"]
        page = ddb.query(
            TableName="t",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "p"}},
            ReturnConsumedCapacity="TOTAL",
        )
        return got, page["Items"], page["Count"], page["ConsumedCapacity"]

    fast = read()
    patched = BaseJSONSerializer._serialize_type_structure
    BaseJSONSerializer._serialize_type_structure = patched.__wrapped__  # moto's own, for this comparison
    try:
        generic = read()
    finally:
        BaseJSONSerializer._serialize_type_structure = patched
    assert fast == generic
    assert fast[0] == item  # and both are the item as it was written


def test_queries_read_one_partition_and_answer_what_moto_does(ddb) -> None:
    from moto.dynamodb.models.table import Table

    ddb.create_table(
        TableName="q",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("pk", "sk", "g")],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for p in range(6):
        for s in (9, 3, 7, 1, 5):
            item = {"pk": {"S": f"p{p}"}, "sk": {"S": f"s{s}"}, "n": {"N": str(p * 10 + s)}}
            if s % 2:
                item["g"] = {"S": f"g{(p + s) % 3}"}
            ddb.put_item(TableName="q", Item=item)

    def pages(**kwargs: object) -> list[list[dict]]:
        out, start = [], None
        while True:
            args = {**kwargs, **({"ExclusiveStartKey": start} if start else {})}
            page = ddb.query(**{"TableName": "q", "Limit": 2, **args})
            out.append(page["Items"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return out

    asks = [
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "p3"}}},
        {
            "KeyConditionExpression": "pk = :p AND sk > :s",
            "ExpressionAttributeValues": {":p": {"S": "p1"}, ":s": {"S": "s2"}},
            "ScanIndexForward": False,
        },
        {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "none"}}},
        {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": "p2"}, ":s": {"S": "s"}},
        },
        {
            "KeyConditionExpression": "pk = :p AND sk BETWEEN :a AND :b",
            "ExpressionAttributeValues": {":p": {"S": "p4"}, ":a": {"S": "s3"}, ":b": {"S": "s7"}},
        },
        {
            "KeyConditionExpression": "pk = :p AND sk <= :s",
            "ScanIndexForward": False,
            "FilterExpression": "n > :n",
            "ExpressionAttributeValues": {":p": {"S": "p5"}, ":s": {"S": "s5"}, ":n": {"N": "51"}},
        },
        {
            "KeyConditionExpression": "pk = :p AND begins_with(sk, :s)",
            "ExpressionAttributeValues": {":p": {"S": "p0"}, ":s": {"S": "x"}},
        },
        {
            "IndexName": "by_g",
            "KeyConditionExpression": "g = :g",
            "ExpressionAttributeValues": {":g": {"S": "g1"}},
        },
    ]
    ddb.create_table(  # a number sort key: 10 sorts after 9
        TableName="n",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "at", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for at in (12, 3, 10, 9, 1, 11, 2):
        ddb.put_item(TableName="n", Item={"pk": {"S": "p"}, "at": {"N": str(at)}})
    asks += [
        {
            "TableName": "n",
            "KeyConditionExpression": "pk = :p AND #a BETWEEN :a AND :b",
            "ExpressionAttributeNames": {"#a": "at"},
            "ExpressionAttributeValues": {":p": {"S": "p"}, ":a": {"N": "3"}, ":b": {"N": "11"}},
            "ScanIndexForward": forward,
        }
        for forward in (True, False)
    ]
    fast = [pages(**ask) for ask in asks]
    patched = (Table.query, Table.all_items)
    Table.query, Table.all_items = Table.query.__wrapped__, Table.all_items.__wrapped__  # moto's own
    try:
        generic = [pages(**ask) for ask in asks]
    finally:
        Table.query, Table.all_items = patched
    assert fast == generic
    assert [sum(len(page) for page in f) for f in fast] == [5, 4, 0, 5, 3, 2, 0, 10, 4, 4]


def _updates() -> list[dict]:
    """Update requests of every kind the validators walk (and some they refuse), applied in order."""
    key = {"pk": {"S": "p"}, "sk": {"S": "s"}}
    counting = "SET n = n + :one, #c = if_not_exists(#c, :zero)"
    asks: list[dict] = [
        {"UpdateExpression": counting, "Values": {":one": 1, ":zero": 0}},
        {"UpdateExpression": "SET l = list_append(l, :m), m.deep.x = :s", "Values": {":m": [1], ":s": "x"}},
        {"UpdateExpression": "ADD ss :s, tally :one", "Values": {":s": {"c"}, ":one": 1}},
        {"UpdateExpression": "DELETE ss :s REMOVE blank, m.a", "Values": {":s": {"a"}}},
        {"UpdateExpression": "SET n = n - :one", "Values": {":one": 1}},
        {"UpdateExpression": "SET n = :one, n = :zero", "Values": {":one": 1, ":zero": 0}},  # overlapping
        {"UpdateExpression": "SET sk = :s", "Values": {":s": "other"}},  # a key attribute
        {"UpdateExpression": "SET n = :missing", "Values": {":one": 1}},  # an undefined value
        {"UpdateExpression": "SET a = :one SET b = :one", "Values": {":one": 1}},  # two SET clauses
        {"UpdateExpression": "SET nowhere.deep = :one", "Values": {":one": 1}},  # a path that does not exist
        {"UpdateExpression": counting, "Values": {":one": 5, ":zero": 9}},
    ]
    return [{**ask, "Key": key} for ask in asks]


def _apply(client) -> list:
    from boto3.dynamodb.types import TypeSerializer

    ser = TypeSerializer()
    client.put_item(TableName="t", Item=_every_kind_of_value())
    out = []
    for ask in _updates():
        args = {
            "TableName": "t",
            "Key": ask["Key"],
            "UpdateExpression": ask["UpdateExpression"],
            "ExpressionAttributeValues": {k: ser.serialize(v) for k, v in ask["Values"].items()},
            "ReturnValues": "ALL_NEW",
        }
        if "#c" in ask["UpdateExpression"]:
            args["ExpressionAttributeNames"] = {"#c": "created"}
        try:
            out.append(client.update_item(**args)["Attributes"])
        except ClientError as exc:
            out.append((exc.response["Error"]["Code"], exc.response["Error"]["Message"]))
    return out


def test_update_expressions_parsed_once_and_walked_once_answer_what_moto_does(ddb) -> None:
    """The kept parse and the one-table walk change no answer, refusals included, and a second update with
    the same expression parses nothing again."""
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    kept = UpdateExpressionParser.make
    fast = _apply(ddb)
    misses = kept.cache_info().misses
    assert _apply(ddb) == fast
    assert kept.cache_info().misses == misses  # the second round parsed nothing
    patched = (UpdateExpressionParser.make, DepthFirstTraverser.traverse)
    UpdateExpressionParser.make = classmethod(kept.__wrapped__)  # moto's own, for this comparison
    DepthFirstTraverser.traverse = DepthFirstTraverser.traverse.__wrapped__
    try:
        generic = _apply(ddb)
    finally:
        UpdateExpressionParser.make, DepthFirstTraverser.traverse = patched
    assert fast == generic
    assert [type(x).__name__ for x in fast] == ["dict"] * 5 + ["tuple"] * 5 + ["dict"]
    assert fast[-1]["n"] == {"N": "17.5"} and fast[-1]["created"] == {"N": "0"}


def test_queue_clock_and_attributes_answer_what_moto_does(monkeypatch) -> None:
    """SQS with the direct clock: delays and visibility timeouts hold as long as asked, the clock agrees
    with moto's own, and the queue's counts are right."""
    import time

    from moto.sqs import models as sqs_models

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    moto_fixes.install()
    clock = sqs_models.unix_time_millis
    assert abs(clock() - clock.__wrapped__()) < 50
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-central-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
        sqs.send_message(QueueUrl=url, MessageBody="now")
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=1)["Messages"]
        assert [m["Body"] for m in got] == ["now"]
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert counts["ApproximateNumberOfMessages"] == "0"
        assert counts["ApproximateNumberOfMessagesNotVisible"] == "1"
        assert counts["ApproximateNumberOfMessagesDelayed"] == "1"
        assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages") is None
        time.sleep(1.1)
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert sorted(m["Body"] for m in again) == ["later", "now"]


def _sends(sqs) -> list:
    """Sends to a standard queue and to FIFO queues with and without content deduplication: what moto
    answers (ids aside) and what each queue then holds."""
    out: list = []
    fifo = {"FifoQueue": "true"}
    queues = {
        "std": sqs.create_queue(QueueName="std")["QueueUrl"],
        "by-content": sqs.create_queue(
            QueueName="c.fifo", Attributes={**fifo, "ContentBasedDeduplication": "true"}
        )["QueueUrl"],
        "by-id": sqs.create_queue(QueueName="i.fifo", Attributes=fifo)["QueueUrl"],
    }
    asks = [
        ("std", {"MessageBody": "a"}),
        ("std", {"MessageBody": "a"}),
        ("by-content", {"MessageBody": "b", "MessageGroupId": "g"}),
        ("by-content", {"MessageBody": "b", "MessageGroupId": "g"}),  # deduplicated by its content
        ("by-id", {"MessageBody": "c", "MessageGroupId": "g"}),  # refused: no deduplication id
        ("by-id", {"MessageBody": "c"}),  # refused: no group
        ("by-id", {"MessageBody": "c", "MessageGroupId": "g", "MessageDeduplicationId": "d"}),
        ("by-id", {"MessageBody": "c2", "MessageGroupId": "g", "MessageDeduplicationId": "d"}),
    ]
    for name, ask in asks:
        try:
            sqs.send_message(QueueUrl=queues[name], **ask)
            out.append((name, "sent"))
        except ClientError as exc:
            out.append((name, exc.response["Error"]["Code"]))
    for name, url in queues.items():
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        out.append((name, attrs["ApproximateNumberOfMessages"], attrs.get("ContentBasedDeduplication")))
    return out


def test_sends_read_the_deduplication_rule_alone_and_answer_what_moto_does(monkeypatch) -> None:
    from moto.sqs import models as sqs_models

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    moto_fixes.install()
    with mock_aws():
        fast = _sends(boto3.client("sqs", region_name="eu-central-1"))
    patched = (sqs_models.SQSBackend.send_message, sqs_models.Queue.attributes)
    sqs_models.SQSBackend.send_message = patched[0].__wrapped__  # moto's own, for this comparison
    sqs_models.Queue.attributes = patched[1].fget.__wrapped__
    try:
        with mock_aws():
            generic = _sends(boto3.client("sqs", region_name="eu-central-1"))
    finally:
        sqs_models.SQSBackend.send_message, sqs_models.Queue.attributes = patched
    assert fast == generic
    assert [outcome for _, outcome in fast[:8]] == ["sent"] * 4 + [
        "InvalidParameterValue",
        "MissingParameter",
    ] + ["sent"] * 2
    assert fast[8:] == [("std", "2", None), ("by-content", "1", "true"), ("by-id", "1", "false")]


def test_moto_modules_listed_once_are_the_package_directory() -> None:
    from moto import backends

    moto_fixes.install()
    assert list(backends.list_of_moto_modules()) == list(backends.list_of_moto_modules.__wrapped__())
    assert "dynamodb" in backends.list_of_moto_modules()
