"""The report's template model and rules on small hand-written templates (no synth): intrinsic rendering,
route matching, wildcard flags, gaps when a control is missing, and HTML escaping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from waguard.cfn import Template
from waguard.paths import ROOT
from waguard.report import build, compute, load_inputs, promises, render_html, render_md
from waguard.report.access import access_matrix, api_routes, wildcard_flags


def _arn(api: str, tail: str) -> dict[str, Any]:
    return {
        "Fn::Join": [
            "",
            [
                "arn:",
                {"Ref": "AWS::Partition"},
                ":execute-api:eu-central-1:",
                {"Ref": "AWS::AccountId"},
                ":",
                {"Ref": api},
                tail,
            ],
        ]
    }


def _template() -> dict[str, Any]:
    """A tiny stack: one table without a CMK, one with; an API with an open and an IAM route; two roles."""
    return {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"EnableKeyRotation": True}},
            "KeyAlias": {
                "Type": "AWS::KMS::Alias",
                "Properties": {"AliasName": "alias/x", "TargetKeyId": {"Ref": "Key"}},
            },
            "Contacts1": {
                "Type": "AWS::DynamoDB::Table",
                "Properties": {
                    "SSESpecification": {
                        "SSEEnabled": True,
                        "SSEType": "KMS",
                        "KMSMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
                    },
                    "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
                    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                },
            },
            "Messages1": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
            "Api": {"Type": "AWS::ApiGateway::RestApi", "Properties": {"Name": "api"}},
            "ApiMessages": {
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {
                    "ParentId": {"Fn::GetAtt": ["Api", "RootResourceId"]},
                    "PathPart": "messages",
                    "RestApiId": {"Ref": "Api"},
                },
            },
            "ApiMessagesId": {
                "Type": "AWS::ApiGateway::Resource",
                "Properties": {
                    "ParentId": {"Ref": "ApiMessages"},
                    "PathPart": "{id}",
                    "RestApiId": {"Ref": "Api"},
                },
            },
            "PostMessages": {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "HttpMethod": "POST",
                    "AuthorizationType": "AWS_IAM",
                    "ResourceId": {"Ref": "ApiMessages"},
                    "RestApiId": {"Ref": "Api"},
                    "Integration": {
                        "Type": "AWS_PROXY",
                        "Uri": {
                            "Fn::Join": [
                                "",
                                [
                                    "arn:aws:apigateway:eu-central-1:lambda:path/functions/",
                                    {"Fn::GetAtt": ["Fn", "Arn"]},
                                    "/invocations",
                                ],
                            ]
                        },
                    },
                },
            },
            "GetMessage": {
                "Type": "AWS::ApiGateway::Method",
                "Properties": {
                    "HttpMethod": "GET",
                    "AuthorizationType": "NONE",
                    "ResourceId": {"Ref": "ApiMessagesId"},
                    "RestApiId": {"Ref": "Api"},
                    "Integration": {"Type": "AWS_PROXY"},
                },
            },
            "Fn": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Handler": "handlers.messages_api.handler",
                    "Role": {"Fn::GetAtt": ["FnRole", "Arn"]},
                    "Environment": {
                        "Variables": {
                            "WG_CONTACTS_TABLE": {"Ref": "Contacts1"},
                            "WG_MESSAGES_TABLE": {"Ref": "Messages1"},
                            "WG_SETTINGS": json.dumps({"retention_days": {"messages": 1}}),
                        }
                    },
                },
            },
            "FnRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Service": "lambda.amazonaws.com"},
                                "Action": "sts:AssumeRole",
                            }
                        ]
                    },
                    "Policies": [
                        {
                            "PolicyName": "inline",
                            "PolicyDocument": {
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": ["dynamodb:GetItem", "kms:*"],
                                        "Resource": "*",
                                    }
                                ]
                            },
                        }
                    ],
                },
            },
            "SenderPolicy": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Metadata": {"waguard:role": "sender"},
                "Properties": {
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "execute-api:Invoke",
                                "Resource": [
                                    _arn("Api", "/prod/POST/messages"),
                                    _arn("Api", "/prod/GET/messages/*"),
                                ],
                            },
                            {
                                "Effect": "Deny",
                                "Action": "execute-api:Invoke",
                                "Resource": _arn("Api", "/prod/GET/*"),
                            },
                        ]
                    }
                },
            },
        }
    }


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "Waguard.template.json"
    path.write_text(json.dumps(data))
    return path


def test_render_intrinsics() -> None:
    tpl = Template(_template())
    arn = _arn("Api", "/prod/POST/messages")
    assert (
        tpl.render(arn)
        == "arn:${AWS::Partition}:execute-api:eu-central-1:${AWS::AccountId}:${Api}/prod/POST/messages"
    )
    assert (
        tpl.render(arn, style="nag")
        == "arn:<AWS::Partition>:execute-api:eu-central-1:<AWS::AccountId>:<Api>/prod/POST/messages"
    )
    assert tpl.render({"Fn::Sub": "arn:${AWS::Partition}:s3:::${B}/x"}) == "arn:${AWS::Partition}:s3:::${B}/x"
    assert tpl.render({"Fn::Sub": ["${X}-y", {"X": {"Ref": "Key"}}]}) == "${Key}-y"
    assert tpl.target({"Fn::GetAtt": ["Key", "Arn"]}) == "Key"
    assert tpl.target(arn) == "Api"
    assert tpl.refs({"a": [{"Ref": "Key"}, {"Fn::Sub": "${Api}/${AWS::Region}"}]}) == ["Key", "Api"]


def test_routes_paths_and_personnel_matching() -> None:
    tpl = Template(_template(), region="eu-central-1")  # the region the policies' ARNs name
    routes = api_routes(tpl)
    assert [(r.method, r.path, r.authorization) for r in routes] == [
        ("POST", "/messages", "AWS_IAM"),
        ("GET", "/messages/{id}", "NONE"),
    ]
    assert routes[0].integration == "messages-api"
    sender = next(p for p in access_matrix(tpl) if p.personnel_role == "sender")
    # GET /messages/{id} is open (NONE) and denied anyway: only POST /messages is an IAM route it may call.
    assert sender.routes == ["POST /messages"]


def test_wildcard_flags() -> None:
    assert wildcard_flags("kms:*", "x") == ("all actions",)
    assert wildcard_flags("kms:GenerateDataKey*", "*") == ("action wildcard", "any resource")
    assert wildcard_flags("s3:GetObject", "arn:aws:s3:::b/*") == ("resource wildcard",)
    assert wildcard_flags("s3:GetObject", "arn:aws:s3:::b") == ()


def test_missing_controls_are_gaps(tmp_path: Path) -> None:
    facts = compute(load_inputs(_write(tmp_path, _template()), ROOT / "cdk.json"))
    tables = {t.logical_id: t for t in facts.inventory.tables}
    assert tables["Contacts1"].key.is_cmk and tables["Contacts1"].key.key_id == "Key"
    assert tables["Messages1"].key.kind == "AWS owned"
    assert not tables["Messages1"].ttl_enabled
    status = {p.title: p for p in promises(facts)}
    assert not status["Encryption"].kept
    assert any(ch.ok is False and "(not: messages)" in ch.text for ch in status["Encryption"].checks)
    assert not status["Deletion and retention"].kept
    assert not status["Audits and updates"].kept  # no trail, no validation report
    assert not status["Authentication and access control"].kept  # GET /messages/{id} has no IAM
    grants = [g for p in facts.principals for g in p.allows if p.logical_id == "FnRole"]
    assert {g.action for g in grants} == {"dynamodb:GetItem", "kms:*"}
    assert all(g.flags and g.acknowledged is None for g in grants)
    md = render_md(build(facts))
    assert "NOT acknowledged" in md and "**gap**" in md


def test_html_escapes_template_text(tmp_path: Path) -> None:
    data = _template()
    data["Resources"]["Secret"] = {
        "Type": "AWS::SecretsManager::Secret",
        "Properties": {
            "GenerateSecretString": {
                "SecretStringTemplate": json.dumps({"<script>alert(1)</script>": ""}),
                "GenerateStringKey": "k",
            }
        },
    }
    html_text = render_html(build(compute(load_inputs(_write(tmp_path, data), ROOT / "cdk.json"))))
    assert "<script>" not in html_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text
