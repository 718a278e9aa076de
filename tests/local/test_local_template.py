"""Template reading: intrinsic functions, pseudo parameters, and the model the local runtime builds."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from waguard import cfn, materialize, model
from waguard.cfn import Physical, Resolver, TemplateError

ACCOUNT = "123456789012"


def test_pseudo_parameters_and_parameter_defaults(tpl) -> None:
    res = Resolver(tpl)
    assert res.resolve({"Ref": "AWS::Region"}) == "eu-central-1"
    assert res.resolve({"Ref": "AWS::AccountId"}) == ACCOUNT
    assert res.resolve({"Ref": "AWS::Partition"}) == "aws"
    assert res.resolve({"Ref": "AWS::URLSuffix"}) == "amazonaws.com"
    assert res.resolve({"Ref": "AWS::StackName"}) == "local_template"
    assert res.resolve({"Ref": "BootstrapVersion"}) == "/cdk-bootstrap/hnb659fds/version"
    assert res.resolve({"a": {"Ref": "AWS::NoValue"}, "b": [1, {"Ref": "AWS::NoValue"}]}) == {"b": [1]}


def test_refs_and_attributes_resolve_to_local_physical_values(tpl) -> None:
    physical = {
        "MessagesTable0C1D2E3F": Physical(
            "waguard-messages", {"Arn": "arn:aws:dynamodb:eu-central-1:1:table/m"}
        ),
        "InboundQueue1B2C3D4E": Physical(
            "http://127.0.0.1:4566/123456789012/inbound", {"Arn": "arn:aws:sqs:eu-central-1:1:inbound"}
        ),
    }
    res = Resolver(tpl, physical)
    assert res.resolve({"Ref": "MessagesTable0C1D2E3F"}) == "waguard-messages"
    assert res.resolve({"Fn::GetAtt": ["MessagesTable0C1D2E3F", "Arn"]}).endswith("table/m")
    assert res.resolve({"Fn::GetAtt": "InboundQueue1B2C3D4E.Arn"}) == "arn:aws:sqs:eu-central-1:1:inbound"
    env = model.functions(tpl, res)["echo"].environment
    assert env["WG_MESSAGES_TABLE"] == "waguard-messages"
    assert env["WG_INBOUND_QUEUE_URL"] == "http://127.0.0.1:4566/123456789012/inbound"
    assert env["QUEUE_NAME"] == "inbound"  # Fn::Select 4 of Fn::Split "/"
    assert env["SUBBED"] == "waguard-messages|arn:aws:dynamodb:eu-central-1:1:table/m|${Literal}|eu-central-1"
    assert env["IF_VALUE"] == "frankfurt"
    assert env["LAYER"] == "arn:aws:lambda:eu-central-1:017000801446:layer:Powertools:1"
    assert json.loads(env["WG_SETTINGS"]) == {"retention_days": {"messages": 90}}


def test_stand_ins_are_deterministic_and_shaped_like_aws(tpl) -> None:
    a, b = Resolver(tpl), Resolver(tpl)
    fn_arn = a.resolve({"Fn::GetAtt": ["EchoFunction55667788", "Arn"]})
    assert fn_arn == b.resolve({"Fn::GetAtt": ["EchoFunction55667788", "Arn"]})
    assert fn_arn == f"arn:aws:lambda:eu-central-1:{ACCOUNT}:function:local_template-EchoFunction55667788"
    key = a.resolve({"Fn::GetAtt": ["DataKey1A2B3C4D", "Arn"]})
    assert key.startswith(f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/")
    api_id = a.resolve({"Ref": "Api1234ABCD"})
    assert len(api_id) == 10 and api_id.isalnum()
    assert a.resolve({"Ref": "ApiDeploymentStageprod0000"}) == "prod"
    assert a.resolve({"Fn::GetAtt": ["EchoRole11223344", "Arn"]}).startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    assert (
        a.resolve({"Fn::GetAtt": ["InboundQueue1B2C3D4E", "QueueName"]})
        == "local_template-InboundQueue1B2C3D4E"
    )


def test_join_select_split_sub_base64_and_conditions(tpl) -> None:
    res = Resolver(tpl)
    assert res.resolve({"Fn::Join": ["-", ["a", {"Ref": "AWS::Region"}, 3]]}) == "a-eu-central-1-3"
    assert res.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}) == "y"
    assert res.resolve({"Fn::Sub": "${AWS::Region}/${!Keep}"}) == "eu-central-1/${Keep}"
    assert res.resolve({"Fn::Base64": "hi"}) == "aGk="
    assert res.resolve({"Fn::If": ["Never", "a", {"Ref": "AWS::NoValue"}]}) is None
    assert res.resolve({"Fn::GetAZs": ""})[0] == "eu-central-1a"
    with pytest.raises(TemplateError):
        res.resolve({"Ref": "NoSuchThing"})
    with pytest.raises(TemplateError):
        res.resolve({"Fn::ImportValue": "x"})
    with pytest.raises(TemplateError):
        res.resolve({"Fn::Transform": {}})


def test_functions_are_the_tagged_ones_with_handler_timeout_memory(tpl) -> None:
    fns = model.functions(tpl, Resolver(tpl))
    assert set(fns) == {"echo", "batch"}
    echo = fns["echo"]
    assert (echo.handler, echo.timeout, echo.memory) == ("echo_handlers.echo", 5, 256)
    assert fns["batch"].memory == 128  # CloudFormation's default


def test_event_source_mappings(tpl) -> None:
    res = Resolver(tpl)
    (mapping,) = model.mappings(tpl, res, model.functions(tpl, res))
    assert mapping.function == "batch"
    assert mapping.queue_arn == res.resolve({"Fn::GetAtt": ["InboundQueue1B2C3D4E", "Arn"]})
    assert mapping.queue_url == res.resolve({"Ref": "InboundQueue1B2C3D4E"})
    assert (mapping.batch_size, mapping.batching_window, mapping.report_batch_item_failures) == (10, 1, True)


def test_api_methods_walk_the_resource_tree(tpl) -> None:
    res = Resolver(tpl)
    (api,) = model.apis(tpl, res, model.functions(tpl, res))
    assert api.stage == "prod" and api.api_id == res.resolve({"Ref": "Api1234ABCD"})
    routes = {(m.http_method, m.path): (m.authorization, m.function) for m in api.methods}
    assert routes == {
        ("GET", "/webhook"): ("NONE", "echo"),
        ("POST", "/webhook"): ("NONE", "echo"),
        ("POST", "/messages"): ("AWS_IAM", "echo"),
        ("GET", "/messages/{id}"): ("AWS_IAM", "echo"),
        ("DELETE", "/contacts/{contact}"): ("AWS_IAM", "echo"),
        ("GET", "/contacts/{contact}/export"): ("AWS_IAM", "echo"),
        ("ANY", "/files/{proxy+}"): ("NONE", "echo"),
    }
    post = next(m for m in api.methods if (m.http_method, m.path) == ("POST", "/messages"))
    assert post.body_schema == {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}
    assert set(api.gateway_responses) == {"ACCESS_DENIED", "DEFAULT_4XX"}


def test_personnel_roles_from_managed_policy_metadata(tpl) -> None:
    res = Resolver(tpl)
    roles = model.roles(tpl, res)
    assert set(roles) == {"sender", "privacy-officer", "auditor"}
    api_id = res.resolve({"Ref": "Api1234ABCD"})
    (statement,) = roles["sender"].statements
    assert statement["Resource"] == [
        f"arn:aws:execute-api:eu-central-1:{ACCOUNT}:{api_id}/prod/POST/messages",
        f"arn:aws:execute-api:eu-central-1:{ACCOUNT}:{api_id}/prod/GET/messages/*",
    ]


def test_creation_order_puts_references_first_and_skips_false_conditions(tpl) -> None:
    order = materialize.creation_order(tpl, Resolver(tpl))
    assert "NeverTable" not in order
    assert order.index("DataKey1A2B3C4D") < order.index("MessagesTable0C1D2E3F")
    assert order.index("InboundDlq9A8B7C6D") < order.index("InboundQueue1B2C3D4E")
    assert order.index("InboundQueue1B2C3D4E") < order.index("InboundQueuePolicy2C3D4E5F")
    # a function's configuration is in moto (the audit reads it; its code runs in the workers), after its role
    assert order.index("EchoRole11223344") < order.index("EchoFunction55667788")


def test_region_comes_from_the_stack_environment_in_the_manifest(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "cdk.out"
    out.mkdir()
    (out / "Waguard.template.json").write_text('{"Resources": {}}')
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    assert cfn.load(out / "Waguard.template.json").region == "us-west-2"
    manifest = {"artifacts": {"Waguard": {"environment": "aws://unknown-account/eu-west-1"}}}
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert cfn.load(out / "Waguard.template.json").region == "eu-west-1"


def test_staleness_follows_the_cdk_app_sources(tmp_path: Path) -> None:
    (tmp_path / "infra").mkdir()
    (tmp_path / "app.py").write_text("")
    (tmp_path / "infra" / "stack.py").write_text("")
    assert cfn.is_stale(tmp_path)  # no template yet
    out = tmp_path / "cdk.out"
    out.mkdir()
    built = out / "Waguard.template.json"
    built.write_text("{}")
    past = time.time() - 100
    os.utime(tmp_path / "app.py", (past, past))
    os.utime(tmp_path / "infra" / "stack.py", (past, past))
    assert not cfn.is_stale(tmp_path)
    (tmp_path / "infra" / "stack.py").write_text("# changed")
    assert cfn.is_stale(tmp_path)


def test_a_failing_synthesis_is_reported_with_its_output(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("raise SystemExit('no stack for you')\n")
    with pytest.raises(TemplateError, match="no stack for you"):
        cfn.ensure_synthesized(tmp_path)
