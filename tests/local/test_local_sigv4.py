"""SigV4 on AWS_IAM methods: botocore-signed requests pass; anything tampered, stale or unknown is refused.
Role policies: each personnel role may invoke exactly what its policy allows."""

from __future__ import annotations

import datetime

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from waguard import model, roles, sigv4
from waguard.cfn import Resolver

REGION = "eu-central-1"
HOST = "127.0.0.1:3000"


def signed(
    method: str = "POST",
    target: str = "/contacts/%2B4915112345678/consent?x=1&a=b",
    body: bytes = b'{"purpose": "marketing"}',
    key: tuple[str, str] = ("testing", "testing"),
    region: str = REGION,
    service: str = "execute-api",
    token: str | None = None,
) -> list[tuple[str, str]]:
    request = AWSRequest(
        method=method,
        url=f"http://{HOST}{target}",
        data=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": "k1"},
    )
    SigV4Auth(Credentials(*key, token), service, region).add_auth(request)
    return [
        ("Host", HOST),
        *request.headers.items(),
        ("User-Agent", "test"),
        ("Content-Length", str(len(body))),
    ]


PRINCIPALS = {"testing": roles.administrator()}


def verify(
    headers,
    method="POST",
    target="/contacts/%2B4915112345678/consent?x=1&a=b",
    body=b'{"purpose": "marketing"}',
    now=None,
):
    return sigv4.verify(method, target, headers, body, PRINCIPALS, REGION, now=now)


def test_a_botocore_signed_request_passes_and_names_the_administrator() -> None:
    principal = verify(signed())
    assert principal.role is None
    assert principal.identity()["userArn"] == "arn:aws:iam::123456789012:user/admin"
    assert principal.identity()["accessKey"] == "testing"


def test_get_without_body_passes_and_an_unknown_security_token_is_refused() -> None:
    assert verify(signed("GET", "/messages/abc", b""), "GET", "/messages/abc", b"").access_key == "testing"
    headers = signed("GET", "/messages/abc", b"", token="session-token")  # the key has no session
    with pytest.raises(sigv4.AuthError, match="security token included in the request is invalid"):
        verify(headers, "GET", "/messages/abc", b"")


@pytest.mark.parametrize(
    ("change", "kind"),
    [
        ({"body": b'{"purpose": "utility"}'}, "INVALID_SIGNATURE"),
        ({"target": "/contacts/%2B4915199999999/consent?x=1&a=b"}, "INVALID_SIGNATURE"),
        ({"target": "/contacts/%2B4915112345678/consent?x=2&a=b"}, "INVALID_SIGNATURE"),
        ({"method": "PUT"}, "INVALID_SIGNATURE"),
    ],
)
def test_tampering_with_the_request_breaks_the_signature(change, kind) -> None:
    args = {
        "method": "POST",
        "target": "/contacts/%2B4915112345678/consent?x=1&a=b",
        "body": b'{"purpose": "marketing"}',
    }
    headers = signed()
    args.update(change)
    with pytest.raises(sigv4.AuthError) as err:
        verify(headers, **args)
    assert err.value.kind == kind and err.value.code == "invalid_signature"


def test_a_tampered_signed_header_breaks_the_signature() -> None:
    headers = [(k, "k2" if k == "Idempotency-Key" else v) for k, v in signed()]
    with pytest.raises(sigv4.AuthError, match="signature we calculated"):
        verify(headers)


def test_wrong_secret_unknown_key_region_and_service_are_refused() -> None:
    with pytest.raises(sigv4.AuthError, match="signature we calculated"):
        verify(signed(key=("testing", "not-the-secret")))
    with pytest.raises(sigv4.AuthError, match="security token included in the request is invalid"):
        verify(signed(key=("AKIAUNKNOWN000000000", "x" * 40)))
    with pytest.raises(sigv4.AuthError, match="region"):
        verify(signed(region="us-east-1"))
    with pytest.raises(sigv4.AuthError, match="service"):
        verify(signed(service="s3"))


def test_an_expired_signature_is_refused_and_skew_within_five_minutes_is_not() -> None:
    headers = signed()
    now = datetime.datetime.now(datetime.UTC)
    verify(headers, now=now + datetime.timedelta(minutes=4))
    with pytest.raises(sigv4.AuthError, match="Signature expired"):
        verify(headers, now=now + datetime.timedelta(minutes=6))
    with pytest.raises(sigv4.AuthError, match="Signature expired"):
        verify(headers, now=now - datetime.timedelta(minutes=6))


def test_missing_or_malformed_authorization() -> None:
    headers = [(k, v) for k, v in signed() if k.lower() != "authorization"]
    with pytest.raises(sigv4.AuthError) as err:
        verify(headers)
    assert err.value.kind == "MISSING_AUTHENTICATION_TOKEN" and err.value.code == "missing_authentication"
    with pytest.raises(sigv4.AuthError, match="AWS4-HMAC-SHA256"):
        verify([*headers, ("Authorization", "Basic dXNlcjpwYXNz")])
    with pytest.raises(sigv4.AuthError, match="SignedHeaders"):
        verify(
            [
                *headers,
                (
                    "Authorization",
                    "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-central-1/execute-api/aws4_request",
                ),
            ]
        )


def test_a_content_hash_header_must_match_the_body() -> None:
    headers = [*signed(), ("X-Amz-Content-SHA256", "0" * 64)]
    with pytest.raises(sigv4.AuthError, match="x-amz-content-sha256"):
        verify(headers)


# ---- role policies -----------------------------------------------------------------------------------


@pytest.fixture
def role_keys(tpl):
    res = Resolver(tpl)
    api_id = res.resolve({"Ref": "Api1234ABCD"})
    principals = {name: roles.role_principal(spec) for name, spec in model.roles(tpl, res).items()}

    def arn(method: str, path: str) -> str:
        return roles.execute_api_arn(REGION, api_id, "prod", method, path)

    return principals, arn


def test_role_keys_are_distinct_and_act_as_assumed_roles(role_keys) -> None:
    principals, _ = role_keys
    assert len({p.access_key for p in principals.values()}) == 3
    sender = principals["sender"]
    assert sender.access_key.startswith("AKIA") and len(sender.access_key) == 20
    assert sender.identity()["userArn"] == "arn:aws:sts::123456789012:assumed-role/waguard-sender/local"
    assert sender.identity()["caller"].endswith(":local")


def test_each_role_may_invoke_exactly_its_routes(role_keys) -> None:
    principals, arn = role_keys
    sender, officer, auditor = principals["sender"], principals["privacy-officer"], principals["auditor"]
    assert roles.allowed(sender, arn("POST", "/messages"))
    assert roles.allowed(sender, arn("GET", "/messages/msg_123"))
    assert not roles.allowed(sender, arn("GET", "/messages"))
    assert not roles.allowed(sender, arn("DELETE", "/contacts/4915112345678"))
    assert roles.allowed(officer, arn("DELETE", "/contacts/4915112345678"))
    assert roles.allowed(officer, arn("GET", "/contacts/4915112345678/export"))
    assert not roles.allowed(officer, arn("GET", "/contacts/4915112345678/secret"))  # explicit Deny wins
    assert not roles.allowed(officer, arn("POST", "/messages"))
    for method, path in (("POST", "/messages"), ("GET", "/contacts/1/export"), ("GET", "/webhook")):
        assert not roles.allowed(auditor, arn(method, path))
        assert roles.allowed(roles.administrator(), arn(method, path))


def test_policy_wildcards_and_conditions() -> None:
    spec = model.RoleSpec(
        "x",
        (
            {
                "Effect": "Allow",
                "Action": "execute-api:*",
                "Resource": "arn:aws:execute-api:*:*:api/prod/GET/a?c",
            },
            {
                "Effect": "Allow",
                "Action": "EXECUTE-API:invoke",
                "Resource": "arn:*:b",
                "Condition": {"Bool": {"aws:MultiFactorAuthPresent": "true"}},
            },
            {"Effect": "Allow", "NotAction": "s3:*", "Resource": "arn:*:notaction"},
        ),
    )
    principal = roles.role_principal(spec)
    assert roles.allowed(principal, "arn:aws:execute-api:eu-central-1:1:api/prod/GET/abc")
    assert not roles.allowed(principal, "arn:aws:execute-api:eu-central-1:1:api/prod/GET/abbc")
    assert not roles.allowed(principal, "arn:aws:b")  # the condition's key is absent from the context
    assert roles.allowed(principal, "arn:aws:notaction")
