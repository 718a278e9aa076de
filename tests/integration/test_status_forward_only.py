"""Statuses never move backwards (issue 12): a `failed` after `delivered` or `read` changes nothing, in the
store and through a status webhook; before delivery `failed` still records Meta's error."""

from __future__ import annotations

import pytest

from tests import factory as f

PHONE = "4915112345678"


@pytest.fixture
def sent(aws_stack):
    from store import contacts, outbound

    outbound.reset()
    created = outbound.create(
        contacts.chash(PHONE), outbound.new_id(), "service", {"to": PHONE, "text": "hi"}
    )
    wamid = f.wamid()
    assert outbound.mark_sent(created, wamid, contacts.wamid_hash(wamid))
    return created.msg_id, wamid


def _status(msg_id: str) -> str:
    from store import outbound

    return outbound.get_by_id(msg_id).status


@pytest.mark.parametrize("reached", ["delivered", "read", "played"])
def test_failed_after_delivery_is_ignored(sent, reached) -> None:
    from store import contacts, outbound

    msg_id, wamid = sent
    wamid_h = contacts.wamid_hash(wamid)
    assert outbound.advance_status(wamid_h, reached, 1700000001)
    assert outbound.advance_status(wamid_h, "failed", 1700000002, error={"code": 131026, "title": "x"})
    got = outbound.get_by_id(msg_id)
    assert got.status == ("read" if reached == "played" else reached) and not got.error


def test_failed_before_delivery_still_fails(sent) -> None:
    from store import contacts, outbound

    msg_id, wamid = sent
    err = {"code": 131026, "title": "Message Undeliverable"}
    assert outbound.advance_status(contacts.wamid_hash(wamid), "failed", 1700000002, error=err)
    got = outbound.get_by_id(msg_id)
    assert got.status == "failed" and got.error == err


def test_a_failed_webhook_after_read_leaves_the_message_read(aws_stack, sent) -> None:
    msg_id, wamid = sent
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, "read", PHONE, timestamp=1700000001)]))
    failed = f.status(wamid, "failed", PHONE, timestamp=1700000002, errors=[f.meta_error(131026)])
    f.deliver(aws_stack, f.webhook_body(statuses=[failed]))
    assert _status(msg_id) == "read"
    reply = f.reply_json(f.call_messages(f.messages_get(msg_id)))
    assert reply["status"] == "read" and "error" not in reply
