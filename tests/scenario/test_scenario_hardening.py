"""Client mistakes through `waguard serve` (issue 12): media types in any letter case, non-JSON bodies,
deep nesting, contacts in other scripts' digits, the trailing slash, two Authorization headers, and a
delivery whose malformed items never take a good sibling with them."""

from __future__ import annotations

import http.client
import json
import urllib.parse

import pytest

from tests.scenario.util import exported_texts, unique_phone
from waguard.demo import PHONE_NUMBER_ID, Client, wait_for

# 491511234567 in fullwidth and in Arabic-Indic digits (Python's `\d` accepts both).
FULLWIDTH = "".join(chr(0xFF10 + int(d)) for d in "491511234567")
ARABIC_INDIC = "".join(chr(0x0660 + int(d)) for d in "491511234567")


def _put_consent(client: Client, phone: str, body: bytes, content_type: str):
    path = f"/contacts/{urllib.parse.quote(phone, safe='')}/consent"
    return client.request("PUT", path, body, headers={"content-type": content_type})


CONSENT = json.dumps({"purpose": "marketing", "status": "granted", "source": "form"}).encode()


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON",
        "APPLICATION/JSON; charset=UTF-8",
        "application/json;charset=utf-8",
    ],
)
def test_json_in_any_letter_case_is_accepted(client: Client, content_type: str) -> None:
    reply = _put_consent(client, unique_phone(), CONSENT, content_type)
    assert reply.status == 200, reply.text
    assert reply.json()["status"] == "granted"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "text/json", "application/xml", "Text/Plain; charset=utf-8"]
)
def test_other_media_types_are_415_and_change_nothing(client: Client, content_type: str) -> None:
    phone = unique_phone()
    reply = _put_consent(client, phone, CONSENT, content_type)
    assert reply.status == 415, reply.text
    assert reply.json()["error"] == "unsupported_media_type"
    assert "marketing" not in client.consent(phone).json().get("purposes", {})
    send = client.request(
        "POST", "/messages", b'{"to": "4915112345678"}', headers={"content-type": content_type}
    )
    assert send.status == 415 and send.json()["error"] == "unsupported_media_type"


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "latin-1"])
def test_a_body_that_is_not_utf8_is_400(client: Client, encoding: str) -> None:
    body = json.dumps({"purpose": "marketing", "status": "granted", "source": "\u00e9"}, ensure_ascii=False)
    reply = _put_consent(client, unique_phone(), body.encode(encoding), "application/json")
    assert reply.status == 400, reply.text
    assert reply.json()["error"] == "invalid_body"


@pytest.mark.parametrize("depth", [40, 1000, 50_000])
def test_a_body_nested_too_deep_is_400_not_a_dropped_connection(client: Client, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    for method, path, body in (
        (
            "POST",
            "/messages",
            '{"to": "4915112345678", "purpose": "service", "text": {"body": ' + nested + "}}",
        ),
        (
            "PUT",
            f"/contacts/{unique_phone()}/consent",
            '{"purpose": "marketing", "evidence": ' + nested + "}",
        ),
    ):
        reply = client.request(method, path, body.encode())
        assert reply.status == 400, (method, depth, reply.text)
        assert reply.json()["error"] == "invalid_body"
    assert client.consent(unique_phone()).status in (200, 404)  # the server is still answering


@pytest.mark.parametrize("contact", [FULLWIDTH, ARABIC_INDIC, "4915112345678901", "49-151-7777777"])
def test_contacts_that_are_no_canonical_id_are_400(client: Client, contact: str) -> None:
    reply = client.set_consent(contact, "marketing", "granted", "form")
    assert reply.status == 400 and reply.json()["error"] == "invalid_contact", reply.text
    assert client.export(contact).status == 400
    send = client.send({"to": contact, "purpose": "service", "text": {"body": "hi"}})
    assert send.status == 400 and send.json()["error"] == "invalid_contact", send.text


def test_two_spellings_of_one_number_are_one_contact(client: Client) -> None:
    phone = unique_phone()
    assert client.set_consent("+" + phone, "marketing", "granted", "form").status == 200
    assert client.consent(phone).json()["purposes"]["marketing"]["status"] == "granted"


def test_a_trailing_slash_is_routed_alike_for_administrator_and_roles(client: Client, stack) -> None:
    body = json.dumps({"to": unique_phone(), "purpose": "service", "text": {"body": "hi"}}).encode()
    plain = client.request("POST", "/messages", body)
    assert plain.status == 422  # no service window: the route was reached
    for key in (None, stack.roles["sender"]):
        reply = client.request("POST", "/messages/", body, key=key)
        assert reply.status == plain.status, (key, reply.text)


def test_two_authorization_headers_are_refused(client: Client) -> None:
    path = f"/contacts/{unique_phone()}/consent"
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=client.api + path, data=b"")
    SigV4Auth(Credentials("testing", "testing"), "execute-api", client.region).add_auth(request)
    signed = dict(request.headers.items())
    url = urllib.parse.urlsplit(client.api)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("GET", path)
    # A second, forged Authorization first and the valid one last: "last wins" would let it through.
    conn.putheader("Authorization", signed["Authorization"].replace("Signature=", "Signature=0"))
    for name, value in signed.items():
        conn.putheader(name, value)
    conn.endheaders()
    reply = conn.getresponse()
    assert reply.status == 403, reply.read()
    conn.close()


def test_a_malformed_item_never_takes_its_good_sibling(client: Client) -> None:
    good, bad = unique_phone(), unique_phone()
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            "not an entry",
            {
                "id": "1",
                "changes": [
                    {"field": "messages", "value": []},
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550001111",
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            "messages": [
                                {
                                    "from": bad,
                                    "id": "wamid.bad" + bad,
                                    "timestamp": "1",
                                    "type": "location",
                                    "location": {"latitude": "north", "longitude": 1},
                                },
                                {
                                    "from": ARABIC_INDIC,
                                    "id": "wamid.x" + bad,
                                    "timestamp": "1",
                                    "type": "text",
                                    "text": {"body": "unreachable"},
                                },
                                {
                                    "from": good,
                                    "id": "wamid.good" + good,
                                    "type": "text",
                                    "text": {"body": "kept"},
                                    "errors": [{"code": 1, "error_data": "a string"}],
                                },
                            ],
                        },
                    },
                ],
            },
        ],
    }
    assert client.deliver(body).status == 200
    assert wait_for(lambda: exported_texts(client, good)) == ["kept"]
    assert exported_texts(client, bad) == []
