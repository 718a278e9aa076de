"""The one IAM evaluator (waguard.cfn.iam): Action/NotAction, Resource/NotResource, conditions and explicit
deny, on policies that exercise each. Local enforcement and the report's access matrix both decide with it."""

from __future__ import annotations

from typing import Any

import pytest

from waguard.cfn import iam

API = "arn:aws:execute-api:eu-central-1:123456789012:abc123/prod"
CTX = iam.api_context("123456789012", "arn:aws:iam::123456789012:role/waguard-sender", "10.1.2.3")


def decide(statements: list[dict[str, Any]], method: str, path: str, **extra: Any) -> str:
    context = {**CTX, **extra}
    return iam.decide(statements, iam.Request(iam.INVOKE, f"{API}/{method}/{path}", context))


def allow(resource: Any = f"{API}/*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": resource, **more}


def test_nothing_allowed_is_an_implicit_deny() -> None:
    assert decide([], "GET", "messages/1") == iam.IMPLICIT_DENY
    assert decide([allow(f"{API}/POST/messages")], "GET", "messages/1") == iam.IMPLICIT_DENY


def test_actions_match_case_insensitively_with_wildcards() -> None:
    assert decide([allow(Action="EXECUTE-API:*")], "GET", "x") == iam.ALLOW
    assert decide([allow(Action="execute-api:Inv?ke")], "GET", "x") == iam.ALLOW
    assert decide([allow(Action="execute-api:ManageConnections")], "GET", "x") == iam.IMPLICIT_DENY


def test_not_action_allows_every_other_action() -> None:
    not_s3 = {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}
    not_invoke = {"Effect": "Allow", "NotAction": ["execute-api:Invoke"], "Resource": "*"}
    assert decide([not_s3], "GET", "messages/1") == iam.ALLOW
    assert decide([not_invoke], "GET", "messages/1") == iam.IMPLICIT_DENY


def test_not_resource_allows_everything_outside_it() -> None:
    st = {"Effect": "Allow", "Action": "execute-api:Invoke", "NotResource": f"{API}/*/contacts/*"}
    assert decide([st], "POST", "messages") == iam.ALLOW
    assert decide([st], "DELETE", "contacts/4915112345678") == iam.IMPLICIT_DENY


def test_resource_wildcards_are_case_sensitive_and_cross_slashes() -> None:
    assert decide([allow(f"{API}/GET/*")], "GET", "contacts/x/export") == iam.ALLOW
    assert decide([allow(f"{API}/get/*")], "GET", "messages/1") == iam.IMPLICIT_DENY
    assert decide([allow(f"{API}/GET/messages/???")], "GET", "messages/abc") == iam.ALLOW
    assert decide([allow(f"{API}/GET/messages/???")], "GET", "messages/abcd") == iam.IMPLICIT_DENY


def test_an_explicit_deny_wins_over_any_allow() -> None:
    deny = {"Effect": "Deny", "Action": "execute-api:*", "Resource": f"{API}/DELETE/*"}
    assert decide([allow(), deny], "DELETE", "contacts/x") == iam.EXPLICIT_DENY
    assert decide([deny, allow()], "GET", "contacts/x") == iam.ALLOW
    deny_outside = {"Effect": "Deny", "Action": "*", "NotResource": f"{API}/GET/*"}
    assert decide([allow(), deny_outside], "POST", "messages") == iam.EXPLICIT_DENY
    assert decide([allow(), deny_outside], "GET", "messages/1") == iam.ALLOW


def test_conditions_string_bool_and_ip() -> None:
    tls = allow(Condition={"Bool": {"aws:SecureTransport": "true"}})
    assert decide([tls], "GET", "x") == iam.ALLOW
    assert decide([tls], "GET", "x", **{"aws:SecureTransport": "false"}) == iam.IMPLICIT_DENY
    office = allow(Condition={"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}})
    assert decide([office], "GET", "x") == iam.ALLOW
    assert decide([office], "GET", "x", **{"aws:SourceIp": "203.0.113.9"}) == iam.IMPLICIT_DENY
    who = allow(Condition={"StringLike": {"AWS:principalarn": "arn:aws:iam::*:role/waguard-*"}})
    assert decide([who], "GET", "x") == iam.ALLOW  # condition key names are case-insensitive
    other = allow(Condition={"StringEquals": {"aws:PrincipalArn": "arn:aws:iam::1:role/other"}})
    assert decide([other], "GET", "x") == iam.IMPLICIT_DENY


def test_every_block_and_key_of_a_condition_must_match() -> None:
    both = allow(
        Condition={
            "Bool": {"aws:SecureTransport": "true"},
            "StringEquals": {"aws:PrincipalAccount": "123456789012", "aws:RequestTag/team": "ops"},
        }
    )
    assert decide([both], "GET", "x") == iam.IMPLICIT_DENY
    assert decide([both], "GET", "x", **{"aws:RequestTag/team": "ops"}) == iam.ALLOW


def test_absent_keys_if_exists_null_and_negated_operators() -> None:
    mfa = allow(Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}})
    assert decide([mfa], "GET", "x") == iam.IMPLICIT_DENY  # absent key: a positive operator is false
    mfa_if = allow(Condition={"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}})
    assert decide([mfa_if], "GET", "x") == iam.ALLOW
    assert decide([mfa_if], "GET", "x", **{"aws:MultiFactorAuthPresent": "false"}) == iam.IMPLICIT_DENY
    no_vpce = allow(Condition={"Null": {"aws:SourceVpce": "true"}})
    assert decide([no_vpce], "GET", "x") == iam.ALLOW
    assert decide([no_vpce], "GET", "x", **{"aws:SourceVpce": "vpce-1"}) == iam.IMPLICIT_DENY
    not_blocked = allow(Condition={"StringNotEquals": {"aws:SourceVpce": "vpce-bad"}})
    assert decide([not_blocked], "GET", "x") == iam.ALLOW  # absent key: a negated operator is true
    assert decide([not_blocked], "GET", "x", **{"aws:SourceVpce": "vpce-bad"}) == iam.IMPLICIT_DENY


def test_numeric_date_and_set_operators() -> None:
    old = allow(Condition={"NumericLessThan": {"aws:EpochTime": "1000"}})
    assert decide([old], "GET", "x") == iam.IMPLICIT_DENY
    before = allow(Condition={"DateLessThan": {"aws:CurrentTime": "2999-01-01T00:00:00Z"}})
    assert decide([before], "GET", "x") == iam.ALLOW
    tags = {"aws:TagKeys": ["team", "cost"]}
    subset = allow(Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["team", "cost", "env"]}})
    assert decide([subset], "GET", "x", **tags) == iam.ALLOW
    assert decide([subset], "GET", "x", **{"aws:TagKeys": ["team", "owner"]}) == iam.IMPLICIT_DENY
    any_of = allow(Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": "owner"}})
    assert decide([any_of], "GET", "x", **tags) == iam.IMPLICIT_DENY
    assert decide([any_of], "GET", "x", **{"aws:TagKeys": ["team", "owner"]}) == iam.ALLOW


def test_a_conditional_deny_applies_only_when_its_condition_holds() -> None:
    deny_plain_http = {
        "Effect": "Deny",
        "Action": "*",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert decide([allow(), deny_plain_http], "GET", "x") == iam.ALLOW
    assert decide([allow(), deny_plain_http], "GET", "x", **{"aws:SecureTransport": "false"}) == (
        iam.EXPLICIT_DENY
    )


@pytest.mark.parametrize("effect,expected", [("Allow", iam.IMPLICIT_DENY), ("Deny", iam.EXPLICIT_DENY)])
def test_an_unknown_operator_errs_on_the_safe_side(effect: str, expected: str) -> None:
    st = {"Effect": effect, "Action": "*", "Resource": "*", "Condition": {"GeoWithin": {"k": "v"}}}
    statements = [allow(), st] if effect == "Deny" else [st]
    assert decide(statements, "GET", "x") == expected


def test_a_deny_of_deeper_paths_keeps_a_path_parameter_to_one_segment() -> None:
    """The personnel policies' shape (issue #21): `*` crosses `/`, so the Allow alone grants deeper paths;
    the Deny of the parameter spanning two or more segments takes them back."""
    grant = allow([f"{API}/GET/media/*", f"{API}/GET/contacts/*/export"])
    deny = {
        "Effect": "Deny",
        "Action": "execute-api:Invoke",
        "Resource": [f"{API}/GET/media/*/*", f"{API}/GET/contacts/*/*/export"],
    }
    assert decide([grant], "GET", "media/med_x/extra") == iam.ALLOW  # what the Deny is for
    assert decide([grant, deny], "GET", "media/med_x") == iam.ALLOW
    assert decide([grant, deny], "GET", "contacts/ct_x/export") == iam.ALLOW
    assert decide([grant, deny], "GET", "media/med_x/extra") == iam.EXPLICIT_DENY
    assert decide([grant, deny], "GET", "media/a/b/c") == iam.EXPLICIT_DENY
    assert decide([grant, deny], "GET", "contacts/a/b/export") == iam.EXPLICIT_DENY
