"""The audit's pure parts: the expectation from a template, secret-looking values, policy equality, and
the two readings of "may" (the function's matcher and the CLI's evaluator) agreeing."""

from __future__ import annotations

import pytest

from domain import audit_checks, audit_expect, audit_iam
from waguard import audit

ACCOUNT = "123456789012"
REGION = "eu-central-1"


def test_the_expectation_resolves_references_to_physical_values() -> None:
    template = {
        "Resources": {
            "Key1": {
                "Type": "AWS::KMS::Key",
                "Properties": {
                    "EnableKeyRotation": True,
                    "KeyPolicy": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {
                                    "AWS": {
                                        "Fn::Join": [
                                            "",
                                            ["arn:aws:iam::", {"Ref": "AWS::AccountId"}, ":root"],
                                        ]
                                    }
                                },
                                "Action": "kms:*",
                                "Resource": "*",
                            }
                        ]
                    },
                },
            },
            "Queue1": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "KmsMasterKeyId": {"Fn::GetAtt": ["Key1", "Arn"]},
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["Dlq1", "Arn"]},
                        "maxReceiveCount": 5,
                    },
                },
            },
            "QueuePolicy1": {
                "Type": "AWS::SQS::QueuePolicy",
                "Properties": {
                    "Queues": [{"Ref": "Queue1"}],
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Action": "sqs:*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ]
                    },
                },
            },
            "Role1": {"Type": "AWS::IAM::Role", "Properties": {}},
            "Fn1": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Runtime": "python3.13",
                    "MemorySize": 512,
                    "Environment": {"Variables": {"QUEUE": {"Fn::Sub": "${Queue1}"}, "FLAG": True}},
                },
            },
        }
    }
    rows = [
        {"LogicalResourceId": "Key1", "ResourceType": "AWS::KMS::Key", "PhysicalResourceId": "kid"},
        {
            "LogicalResourceId": "Queue1",
            "ResourceType": "AWS::SQS::Queue",
            "PhysicalResourceId": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/q1",
        },
        {"LogicalResourceId": "Role1", "ResourceType": "AWS::IAM::Role", "PhysicalResourceId": "r1"},
        {"LogicalResourceId": "Fn1", "ResourceType": "AWS::Lambda::Function", "PhysicalResourceId": "f1"},
    ]
    physical = audit_expect.physical_from_stack(rows, REGION, ACCOUNT)
    exp = audit_expect.expectation(template, physical, region=REGION, account=ACCOUNT, stack="S")
    (key,) = exp["keys"]
    assert key["arn"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/kid" and key["rotation"] is True
    assert key["policy"]["Statement"][0]["Principal"]["AWS"] == f"arn:aws:iam::{ACCOUNT}:root"
    (queue,) = exp["queues"]
    assert queue["key"] == key["arn"] and queue["ssl_only"] is True and queue["max_receive"] == 5
    assert queue["arn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:q1"
    assert queue["dlq"] == "${Dlq1.Arn}"  # not in the stack: never matches, so it is a finding
    assert exp["roles"] == [f"arn:aws:iam::{ACCOUNT}:role/r1"]
    (fn,) = exp["functions"]
    assert fn["environment"] == {"QUEUE": queue["url"], "FLAG": "true"} and fn["reserved"] is None


@pytest.mark.parametrize(
    ("name", "value", "secret"),
    [
        ("WG_GRAPH_SECRET_ID", "arn:aws:secretsmanager:eu-central-1:1:secret:x-AbCdEf", False),
        ("META_APP_SECRET", "5f4dcc3b5aa765d61d8327deb882cf99", True),
        ("DB_PASSWORD", "hunter2", True),
        ("ANYTHING", "AKIAABCDEFGHIJKLMNOP", True),
        ("ANYTHING", "EAAG" + "x1" * 20, True),
        ("WG_SETTINGS", '{"retention_days":{"messages":90}}', False),
        ("WG_MEDIA_BUCKET", "waguard-mediamediabucket84a4fa0d-1x2y3z4w5v6u", True),
        ("POWERTOOLS_LOG_LEVEL", "INFO", False),
        ("FEATURE_TOKEN_ENABLED", "true", False),
    ],
)
def test_secret_looking_values(name: str, value: str, secret: bool) -> None:
    # (a bucket name that was not the template's value looks like a token: only a changed value is judged)
    assert audit_checks.secret_looking(name, value) is secret


def test_equal_policies_compare_equal_whatever_the_order() -> None:
    a = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["b", "a"]}, {"Sid": "X"}]}
    b = {"Statement": [{"Sid": "X"}, {"Action": ["a", "b"], "Effect": "Allow"}], "Version": "2012-10-17"}
    assert audit_checks.canonical(a) == audit_checks.canonical(b)
    assert audit_checks.canonical({"Action": ["a"]}) == audit_checks.canonical({"Action": "a"})
    assert audit_checks.canonical(a) != audit_checks.canonical({**a, "Statement": [{"Sid": "X"}]})


TABLE = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t1"
CASES = [
    ([{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}], True),
    ([{"Effect": "Allow", "Action": "dynamodb:Get*", "Resource": TABLE}], True),
    ([{"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE}], False),
    ([{"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}], True),
    ([{"Effect": "Allow", "Action": "*", "NotResource": TABLE}], False),
    (
        [
            {
                "Effect": "Allow",
                "Action": "dynamodb:GetItem",
                "Resource": TABLE,
                "Condition": {"StringEquals": {"aws:SourceVpc": "vpc-1"}},
            }
        ],
        True,
    ),
    (
        [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {"Effect": "Deny", "Action": "dynamodb:*", "Resource": TABLE},
        ],
        False,
    ),
    (
        [
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
            {
                "Effect": "Deny",
                "Action": "dynamodb:*",
                "Resource": TABLE,
                "Condition": {"Bool": {"aws:X": "true"}},
            },
        ],
        True,
    ),
]


@pytest.mark.parametrize(("statements", "may"), CASES)
def test_both_readings_of_may_agree(statements, may) -> None:
    assert audit_iam.may(statements, "dynamodb:GetItem", TABLE) is may
    assert audit.may(statements, "dynamodb:GetItem", TABLE) is may
