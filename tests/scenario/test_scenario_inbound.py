"""Foundation issue, tried as a new user would against `waguard serve`."""

from __future__ import annotations

import json
import time

import pytest

from tests.scenario.util import exported_texts, unique_phone
from waguard.demo import inbound_text, wait_for


def test_handshake(client) -> None:
    ok = client.handshake(challenge="abc123")
    assert ok.status == 200 and ok.text == "abc123"
    assert ok.headers.get("Content-Type", ok.headers.get("content-type", "")).startswith("text/plain")
    assert client.handshake(token="nope").status == 403


def test_signed_inbound_text_shows_in_export(client) -> None:
    phone = unique_phone()
    assert client.deliver(inbound_text(phone, "where is my parcel?")).status == 200
    texts = wait_for(lambda: exported_texts(client, phone))
    assert texts == ["where is my parcel?"]


def test_same_delivery_five_times_is_stored_once(client, aws) -> None:
    phone = unique_phone()
    body = json.dumps(inbound_text(phone, "only once please")).encode()
    for _ in range(5):
        assert client.deliver(body).status == 200
    wait_for(lambda: exported_texts(client, phone))
    time.sleep(1.5)  # let any duplicate that slipped through land
    assert exported_texts(client, phone) == ["only once please"]


@pytest.mark.parametrize("signature", ["", "sha256=" + "0" * 64, "sha1=abc", "sha256=nothex"])
def test_unsigned_or_wrongly_signed_gets_401_and_leaves_no_trace(client, aws, signature) -> None:
    phone = unique_phone()
    before = aws.all_items()
    reply = client.deliver(inbound_text(phone, "forged"), signature=signature)
    assert reply.status == 401
    assert reply.json()["error"]
    time.sleep(1.0)
    assert aws.all_items() == before
    assert client.export(phone).status == 404


def test_non_ascii_text_escaped_as_meta_sends_it_is_stored_as_typed(client) -> None:
    phone = unique_phone()
    typed = "Grüße aus Köln, ça va? 👋🏽 Ñandú"
    # Meta escapes non-ASCII as \\uXXXX (json.dumps default); the signature is over those exact bytes.
    body = json.dumps(inbound_text(phone, typed), ensure_ascii=True).encode()
    assert b"\\u00fc" in body
    assert client.deliver(body).status == 200
    assert wait_for(lambda: exported_texts(client, phone)) == [typed]


def test_tables_are_encrypted_with_ttl_and_every_item_has_a_future_ttl(client, aws) -> None:
    phone = unique_phone()
    client.deliver(inbound_text(phone, "ttl check"))
    wait_for(lambda: exported_texts(client, phone))
    ddb = aws.client("dynamodb")
    names = aws.table_names()
    assert len(names) >= 6
    for name in names:
        desc = ddb.describe_table(TableName=name)["Table"]
        assert desc["SSEDescription"]["SSEType"] == "KMS", name
        assert desc["SSEDescription"]["KMSMasterKeyArn"], name
        ttl = ddb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        assert ttl["TimeToLiveStatus"] == "ENABLED" and ttl["AttributeName"] == "expires_at", name
    now = time.time()
    for name, items in aws.all_items().items():
        for item in items:
            assert int(item["expires_at"]) > now, (name, item.get("sk"))


def test_no_phone_number_or_text_in_clear_in_any_table(client, aws) -> None:
    phone = unique_phone()
    client.deliver(inbound_text(phone, "my secret sentence", name="Erika Mustermann"))
    wait_for(lambda: exported_texts(client, phone))
    dump = aws.dump()
    assert phone not in dump
    assert "my secret sentence" not in dump
    assert "Erika Mustermann" not in dump
