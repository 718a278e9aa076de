"""The tests' moto account is built once per worker and put back as seeded before each test
(tests/conftest.py): nothing a test wrote may reach the next one, and an account wiped by a local moto
server is rebuilt."""

from __future__ import annotations

import json

from shared import constants as c
from tests import conftest


def test_the_reset_restores_the_seeded_tables_and_empties_the_queues_and_the_media_bucket(aws_stack) -> None:
    sqs, s3 = aws_stack.client("sqs"), aws_stack.client("s3")
    ddb = aws_stack.client("dynamodb")
    seeded = {logical: aws_stack.items(logical) for logical in aws_stack.tables}
    assert seeded[c.TABLE_TEMPLATES] and all(seeded[t] == [] for t in seeded if t != c.TABLE_TEMPLATES)
    registry = aws_stack.tables[c.TABLE_TEMPLATES]
    first = seeded[c.TABLE_TEMPLATES][0]
    ddb.delete_item(TableName=registry, Key={c.PK: {"S": first[c.PK]}, c.SK: {"S": first[c.SK]}})
    for logical, name in aws_stack.tables.items():
        for i in range(30):  # more than one batch of deletes
            ddb.put_item(TableName=name, Item={c.PK: {"S": f"p{i}"}, c.SK: {"S": logical}})
    for url in (*aws_stack.queues.values(), *aws_stack.dlqs.values(), aws_stack.events_queue):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"left": "behind"}))
    in_flight = sqs.receive_message(QueueUrl=aws_stack.queues["send"], VisibilityTimeout=600)["Messages"]
    assert in_flight  # a message a test left invisible is emptied too
    bucket = aws_stack.env[c.ENV_MEDIA_BUCKET]
    s3.put_object(Bucket=bucket, Key="media/left-behind", Body=b"x")
    sm = aws_stack.client("secretsmanager")
    name, arn = next(iter(aws_stack.secret_arns.items()))
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"changed": "by a test"}))

    assert conftest._reset_account(aws_stack)

    assert {logical: aws_stack.items(logical) for logical in aws_stack.tables} == seeded
    for url in (*aws_stack.queues.values(), *aws_stack.dlqs.values(), aws_stack.events_queue):
        attrs = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0
    held = json.loads(sm.get_secret_value(SecretId=arn)["SecretString"])
    assert held == {k: conftest.SECRETS[k] for k in c.SECRETS[name]}


def test_an_account_wiped_under_the_tests_is_noticed(aws_stack) -> None:
    from moto.core.models import BackendDict

    BackendDict.reset()  # what a local test's moto server reset does to the shared backends
    assert not conftest._reset_account(aws_stack)
