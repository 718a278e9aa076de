"""Fuzzing the business routes through the local API (`waguard serve`, issue 12): hypothesis-generated
methods, paths, contacts, headers, media types and bodies, signed or not. Invariants, for every request:

- an answer arrives (no dropped connection, no timeout) and it is never a 5xx;
- every error answer is the contract's JSON error body `{"error", "message"}`;
- a body that is no JSON request gets 415 (a media type other than application/json, in any letter
  case) or 400 (not UTF-8 JSON, or nested too deep), a contact that is no canonical id 400.

Profiles: `make test` runs about 150 cases; `make fuzz` (WAGUARD_RELIABILITY=full) 4,000.
"""

from __future__ import annotations

import json
import string
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reliability.profile import scale
from waguard.demo import Client, LocalStack

# 491511234567 in fullwidth and in Arabic-Indic digits (Python's `\d` accepts both).
FULLWIDTH = "".join(chr(0xFF10 + int(d)) for d in "491511234567")
ARABIC_INDIC = "".join(chr(0x0660 + int(d)) for d in "491511234567")


pytestmark = pytest.mark.xdist_group("reliability-api")


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    from waguard import graph_fake

    server, base_url = graph_fake.start()
    stack = LocalStack(env_extra={"WA_GRAPH_API_URL": base_url}).start()
    try:
        yield stack.client()
    finally:
        stack.stop()
        server.shutdown()


def fuzz_settings(ci: int, full: int) -> settings:
    return settings(
        max_examples=scale(ci, full),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


contacts = st.one_of(
    st.text(alphabet="0123456789", min_size=5, max_size=17),
    st.text(alphabet="0123456789", min_size=7, max_size=15).map(lambda d: "+" + d),
    st.sampled_from([FULLWIDTH, ARABIC_INDIC, "49-151-7777777", "US.13491208655302741918", "ct_x"]),
    st.text(max_size=20).filter(bool),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
kinds = st.sampled_from(["text", "template", "image", "interactive", "reaction", "location", "bogus"])


@st.composite
def send_bodies(draw: st.DrawFn) -> Any:
    body: dict[str, Any] = {
        "to": draw(contacts),
        "purpose": draw(st.sampled_from(["service", "marketing", "utility", "authentication", "x"])),
    }
    body[draw(kinds)] = draw(json_values)
    return draw(st.one_of(st.just(body), json_values))


def _deep(depth: int) -> bytes:
    return (
        b'{"purpose": "marketing", "status": "granted", "source": "x", "evidence": '
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )


bodies = st.one_of(
    send_bodies().map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
    st.sampled_from(["utf-16", "utf-32", "latin-1"]).map(
        lambda e: json.dumps(
            {"purpose": "marketing", "status": "granted", "source": "\u00e9"}, ensure_ascii=False
        ).encode(e)
    ),
    st.integers(20, 3000).map(_deep),
    st.just(b""),
)
media_types = st.one_of(
    st.sampled_from(
        [
            "application/json",
            "Application/JSON",
            "APPLICATION/JSON; charset=UTF-8",
            "application/json;charset=utf-8",
            "text/plain",
            "text/json",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
        ]
    ),
    st.text(alphabet=string.ascii_letters + string.digits + "/;=-+. ", max_size=40),
)
header_values = st.text(alphabet=string.printable.strip("\t\n\r\x0b\x0c"), max_size=40)


@st.composite
def requests_(draw: st.DrawFn) -> tuple[str, str, bytes, dict[str, str], bool]:
    contact = urllib.parse.quote(draw(contacts), safe=draw(st.sampled_from(["", "+"])))
    method, path = draw(
        st.sampled_from(
            [
                ("POST", "/messages"),
                ("POST", "/messages/"),
                ("GET", "/messages/{id}"),
                ("POST", "/messages/{id}/read"),
                ("PUT", "/contacts/{c}/consent"),
                ("GET", "/contacts/{c}/consent"),
                ("GET", "/contacts/{c}/export"),
                ("GET", "/contacts/{c}/messages"),
                ("DELETE", "/contacts/{c}"),
                ("PATCH", "/contacts/{c}/consent"),
                ("GET", "/nowhere"),
            ]
        )
    )
    message_id = urllib.parse.quote(draw(st.text(max_size=30)), safe="")
    path = path.replace("{c}", contact or "x").replace("{id}", message_id or "x")
    query = draw(
        st.one_of(
            st.just(""),
            st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=3).map(
                urllib.parse.urlencode
            ),
        )
    )
    if query:
        path += "?" + query
    headers = {"content-type": draw(media_types)}
    headers.update(
        draw(
            st.dictionaries(
                st.sampled_from(["Idempotency-Key", "X-Custom", "Accept"]), header_values, max_size=2
            )
        )
    )
    return method, path, draw(bodies), headers, draw(st.booleans() | st.just(True))


@fuzz_settings(ci=150, full=4_000)
@given(request=requests_())
def test_business_routes_never_answer_5xx_or_drop_the_connection(client: Client, request: Any) -> None:
    method, path, body, headers, sign = request
    reply = client.request(
        method, path, body if body or method in ("POST", "PUT", "PATCH") else None, headers, sign
    )
    assert reply.status < 500, (method, path, reply.status, reply.text[:300])
    if reply.status >= 400:
        error = reply.json()
        assert isinstance(error.get("error"), str) and "message" in error, reply.text[:300]
    if sign and method in ("POST", "PUT") and path.startswith(("/messages", "/contacts")):
        media = headers["content-type"].split(";")[0].strip().lower()
        if media not in ("", "application/json") and reply.status not in (403, 404):
            assert reply.status == 415, (headers, reply.status, reply.text[:200])
