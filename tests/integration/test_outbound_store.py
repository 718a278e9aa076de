"""store.outbound on the moto stack: create, lookups, the send lease, and forward-only statuses."""

from __future__ import annotations

import pytest

from shared import constants as c


@pytest.fixture
def out(aws_stack):
    from store import contacts, outbound

    outbound.reset()
    chash = contacts.chash("4915112345678")
    msg_id = outbound.new_id()
    return outbound.create(chash, msg_id, "service", {"to": "4915112345678", "text": "hello"})


def _sent(out, wamid="wamid.TEST1"):
    from store import contacts, outbound

    wamid_h = contacts.wamid_hash(wamid)
    assert outbound.mark_sent(out, wamid, wamid_h)
    return wamid_h


def test_create_is_encrypted_and_found_by_id(out, aws_stack):
    from store import outbound

    raw = next(i for i in aws_stack.items(c.TABLE_MESSAGES) if i["sk"].startswith("OUT#"))
    assert "hello" not in repr(raw) and "4915112345678" not in repr(raw)
    assert raw["status"] == "queued" and int(raw["status_rank"]) == 0 and raw["expires_at"] > 0
    got = outbound.get_by_id(out.msg_id)
    assert got is not None and got.content() == {"to": "4915112345678", "text": "hello"}
    assert outbound.get_by_id("msg_" + "0" * 24) is None
    assert outbound.get_by_id("not-an-id") is None


def test_mark_sent_records_wamid(out):
    from store import outbound

    _sent(out)
    got = outbound.get_by_id(out.msg_id)
    assert got.status == "sent" and got.wamid() == "wamid.TEST1"
    assert "lease_until" not in got.item


def test_statuses_never_go_backwards(out):
    from store import outbound

    wamid_h = _sent(out)
    assert outbound.advance_status(wamid_h, "delivered", 1700000001)
    assert outbound.get_by_id(out.msg_id).status == "delivered"
    assert outbound.advance_status(wamid_h, "sent", 1700000000)  # late: found, but no change
    assert outbound.get_by_id(out.msg_id).status == "delivered"
    assert outbound.advance_status(wamid_h, "played", 1700000002)  # played counts as read
    assert outbound.get_by_id(out.msg_id).status == "read"
    assert outbound.advance_status(wamid_h, "delivered", 1700000003)
    assert outbound.get_by_id(out.msg_id).status == "read"


def test_failed_is_final_and_keeps_error(out):
    from store import outbound

    wamid_h = _sent(out)
    err = {"code": 131050, "title": "Unable to deliver message"}
    assert outbound.advance_status(wamid_h, "failed", "1700000005", error=err)
    got = outbound.get_by_id(out.msg_id)
    assert got.status == "failed" and got.error == err
    assert outbound.advance_status(wamid_h, "read", 1700000009)
    assert outbound.get_by_id(out.msg_id).status == "failed"


def test_unknown_wamid_is_false(aws_stack):
    from store import outbound

    assert outbound.advance_status("f" * 64, "delivered", 1) is False


def test_late_status_after_erasure_creates_nothing(out, aws_stack):
    from store import outbound

    wamid_h = _sent(out)
    outbound.delete(out.pk, out.msg_id)
    assert outbound.advance_status(wamid_h, "delivered", 1) is False
    assert not [i for i in aws_stack.items(c.TABLE_MESSAGES) if i["sk"].startswith("OUT#")]


def test_claim_is_exclusive_until_released(out):
    from store import outbound

    first = outbound.claim(out, lease_seconds=30, now=1_000)
    assert first is not None and first.attempts == 1
    assert outbound.claim(out, lease_seconds=30, now=1_010) is None  # lease held
    outbound.release(first, {"code": 130429, "title": "Rate limit hit"})
    second = outbound.claim(out, lease_seconds=30, now=1_020)
    assert second is not None and second.attempts == 2
    assert second.item["last_error"]["code"] == 130429
    assert outbound.claim(out, lease_seconds=30, now=2_000) is not None  # an expired lease is taken over
    _sent(out)
    assert outbound.claim(out, lease_seconds=30, now=3_000) is None  # not queued any more


def test_mark_failed_and_gone(out):
    from store import outbound

    assert outbound.mark_failed(out, {"code": 131026, "title": "Message undeliverable"})
    assert outbound.get_by_id(out.msg_id).status == "failed"
    outbound.delete(out.pk, out.msg_id)
    assert outbound.mark_failed(out, {"code": 1, "title": "x"}) is False
    assert outbound.mark_sent(out, "wamid.X", "h") is False
