"""The local SigV4 check follows the specification (issue 12): requests signed by a second, independent
signer (requests-aws4auth) verify, canonical-query edge cases included; one Authorization header only;
the session token is checked."""

from __future__ import annotations

import dataclasses
import urllib.parse

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from requests_aws4auth import AWS4Auth

from waguard import roles, sigv4

REGION = "eu-central-1"
HOST = "127.0.0.1:3000"
PRINCIPALS = {"testing": roles.administrator()}


def aws4auth_signed(
    method: str,
    target: str,
    body: bytes = b"",
    key: tuple[str, str] = ("testing", "testing"),
    token: str | None = None,
) -> list[tuple[str, str]]:
    """The headers requests-aws4auth sends for this request (prepared, not sent)."""
    auth = AWS4Auth(*key, REGION, "execute-api", session_token=token)
    prepared = requests.Request(
        method,
        f"http://{HOST}{target}",
        data=body or None,
        headers={"Content-Type": "application/json"},
        auth=auth,
    ).prepare()
    return [("Host", HOST), *prepared.headers.items()]


@pytest.mark.parametrize(
    "query",
    [
        "b=a/b",
        "a=b=c",
        "b=a+b",
        "b=a%20b",
        "z=1&a=2&m=3",
        "a=2&a=1&a=10",
        "a=&b",
        "k%3D=v%26",
        "emoji=%F0%9F%98%80",
        "sp%20ace=x~y_z-.",
        "limit=50&before=abc%2Fdef%3D%3D",
        "a=%2a",
    ],
)
def test_a_spec_following_signer_verifies_with_query_edge_cases(query: str) -> None:
    target = "/contacts/%2B4915112345678/messages?" + query
    headers = aws4auth_signed("GET", target)
    assert sigv4.verify("GET", target, headers, b"", PRINCIPALS, REGION).access_key == "testing"


def test_a_signed_body_and_path_verify_and_tampering_is_refused() -> None:
    target, body = "/contacts/%2B4915112345678/consent?x=1", b'{"purpose": "marketing"}'
    headers = aws4auth_signed("PUT", target, body)
    assert sigv4.verify("PUT", target, headers, body, PRINCIPALS, REGION).access_key == "testing"
    with pytest.raises(sigv4.AuthError):
        sigv4.verify("PUT", target.replace("x=1", "x=2"), headers, body, PRINCIPALS, REGION)
    with pytest.raises(sigv4.AuthError):
        sigv4.verify("PUT", target, headers, body + b" ", PRINCIPALS, REGION)


query_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)


@settings(max_examples=80, deadline=None, database=None)
@given(pairs=st.lists(st.tuples(query_text, query_text), max_size=4))
def test_any_query_encoded_by_a_client_verifies(pairs: list[tuple[str, str]]) -> None:
    query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote, safe="")
    target = "/messages/abc" + ("?" + query if query else "")
    headers = aws4auth_signed("GET", target)
    assert sigv4.verify("GET", target, headers, b"", PRINCIPALS, REGION).access_key == "testing"


def test_canonical_query_follows_the_specification() -> None:
    assert sigv4.canonical_query("b=a/b") == "b=a%2Fb"
    assert sigv4.canonical_query("a=b=c") == "a=b%3Dc"
    assert sigv4.canonical_query("b=a+b") == "b=a%20b"
    assert sigv4.canonical_query("z=1&a=2&a=1") == "a=1&a=2&z=1"
    assert sigv4.canonical_query("a&b=") == "a=&b="
    assert sigv4.canonical_query("x=%7e%2a") == "x=~%2A"


def test_two_authorization_headers_are_ambiguous() -> None:
    target = "/messages/abc"
    good = aws4auth_signed("GET", target)
    other = aws4auth_signed("GET", target, key=("other", "other-secret"))
    auth_other = next(v for k, v in other if k.lower() == "authorization")
    for headers in ([*good, ("Authorization", auth_other)], [("Authorization", auth_other), *good]):
        with pytest.raises(sigv4.AuthError, match="ambiguous"):
            sigv4.verify("GET", target, headers, b"", PRINCIPALS, REGION)
    twice = [*good, next((k, v) for k, v in good if k.lower() == "authorization")]
    with pytest.raises(sigv4.AuthError, match="ambiguous"):
        sigv4.verify("GET", target, twice, b"", PRINCIPALS, REGION)


@dataclasses.dataclass(frozen=True)
class TemporaryPrincipal(roles.Principal):
    session_token: str | None = None


def test_the_session_token_is_checked() -> None:
    temp = TemporaryPrincipal(
        "ASIATEMPORARYKEY0001", "temp-secret", roles.ADMIN_ARN, roles.ADMIN_ID, session_token="the-token"
    )
    principals = {**PRINCIPALS, temp.access_key: temp}
    key = (temp.access_key, temp.secret_key)
    target = "/messages/abc"
    ok = aws4auth_signed("GET", target, key=key, token="the-token")
    assert sigv4.verify("GET", target, ok, b"", principals, REGION) is temp
    for token in ("wrong-token", None):  # a wrong token, or a temporary key used without its token
        with pytest.raises(sigv4.AuthError, match="security token"):
            sigv4.verify(
                "GET", target, aws4auth_signed("GET", target, key=key, token=token), b"", principals, REGION
            )
    with pytest.raises(sigv4.AuthError, match="security token"):  # a long-term key sent with a token
        sigv4.verify("GET", target, aws4auth_signed("GET", target, token="any"), b"", PRINCIPALS, REGION)
