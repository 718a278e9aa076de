"""Replays and redeliveries on moto (issue 21): what is left in the tables, what is told, what is counted.

The scenario tests (tests/scenario/test_scenario_replays.py) show the same through `waguard serve`; these
look at the stored items and events directly: a replay after an erasure leaves no item about the contact
anywhere, the delivery markers name no wamid, and consent from the contact's side follows Meta's clock.
"""

from __future__ import annotations

import time
from typing import Any

import boto3

from shared import constants as c
from store import tables
from tests import factory as f

PHONE = "4915112340021"
OTHER = "4915112340022"
DAY = 86400


def _items(stack: Any) -> dict[str, list[dict[str, Any]]]:
    ddb = boto3.resource("dynamodb", region_name=stack.region)
    return {t: ddb.Table(name).scan()["Items"] for t, name in stack.tables.items()}


def _markers(stack: Any) -> list[dict[str, Any]]:
    return [i for i in _items(stack)[c.TABLE_CONTACTS] if str(i[c.PK]).startswith("SEEN#")]


def _about(stack: Any, phone: str) -> list[tuple[str, dict[str, Any]]]:
    """Items of the contact's partitions but its suppression record (every table but the audit log, whose
    receipts name no one)."""
    from store import contacts

    pk = contacts.chash(phone)
    return [
        (t, i)
        for t, items in _items(stack).items()
        if t != c.TABLE_AUDIT
        for i in items
        if (i[c.PK] == pk or str(i[c.PK]).endswith(pk)) and i[c.SK] != "SUPPRESSED"
    ]


def _marketing(contact: str) -> str | None:
    reply = f.call_contacts("GET", contact, "/consent")
    if reply["statusCode"] != 200:
        return None
    return f.reply_json(reply)["purposes"].get("marketing", {}).get("status")


def _deliver(stack: Any, body: dict[str, Any]) -> None:
    assert f.deliver(stack, body)["statusCode"] == 200


def test_a_replay_after_erasure_stores_nothing_and_tells_nobody(aws_stack) -> None:
    start = f.webhook_body(messages=[f.text_message(PHONE, "START")])
    said = f.webhook_body(messages=[f.text_message(PHONE, "call me at home")])
    prefs = [f.user_preference(PHONE, "resume", int(time.time()) + 1)]
    resume = f.webhook_body(field="user_preferences", user_preferences=prefs)
    _deliver(aws_stack, start)
    _deliver(aws_stack, said)
    _deliver(aws_stack, resume)
    assert _marketing(PHONE) == "granted"
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    assert _about(aws_stack, PHONE) == []
    aws_stack.events()  # what was told before the erasure

    for body in (start, said, resume, start):
        _deliver(aws_stack, body)
    assert _about(aws_stack, PHONE) == []
    assert f.call_contacts("GET", PHONE, "/export")["statusCode"] == 404
    assert [e["detail-type"] for e in aws_stack.events()] == []


def test_a_replay_to_a_container_still_holding_the_erased_key_restores_nothing(aws_stack) -> None:
    """A warm processor reads no marker for a contact whose key it holds: the message's guarded write
    refuses the replay instead. After an erasure served by another container, its cached key is stale for
    up to a minute; a replay then must still restore nothing and tell nobody."""
    from store import contacts
    from store.crypto import cipher

    said = f.webhook_body(messages=[f.text_message(PHONE, "call me at home")])
    _deliver(aws_stack, said)
    pk = contacts.chash(PHONE)
    assert cipher().holds(pk)
    warm = dict(cipher()._keys)  # the processor container's cache, as another container erases
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    aws_stack.events()
    cipher()._keys.update(warm)
    assert cipher().holds(pk)

    _deliver(aws_stack, said)
    # At most an empty data key, made while the stale key was replaced: nothing is encrypted under it, it
    # expires with the keys class, and the person's next message would use it (docs/decisions.md).
    assert {(t, i[c.SK]) for t, i in _about(aws_stack, PHONE)} <= {(c.TABLE_KEYS, "DK")}
    assert f.call_contacts("GET", PHONE, "/export")["statusCode"] == 404
    assert [e["detail-type"] for e in aws_stack.events()] == []


def test_markers_hold_keyed_hashes_only_and_the_suppression_retention(aws_stack) -> None:
    wamid = f.wamid()
    at = tables.now()
    _deliver(aws_stack, f.webhook_body(messages=[f.text_message(PHONE, "hello", id=wamid)]))
    _deliver(
        aws_stack,
        f.webhook_body(
            field="user_preferences", user_preferences=[f.user_preference(PHONE, "stop", int(time.time()))]
        ),
    )
    markers = _markers(aws_stack)
    assert sorted(str(m[c.PK]).split("#")[1] for m in markers) == ["in", "pf"]
    for marker in markers:
        text = repr(marker)
        assert wamid not in text and PHONE not in text and "hello" not in text
        extra = {"state"} if str(marker[c.PK]).startswith("SEEN#pf#") else set()
        assert set(marker) == {c.PK, c.SK, c.TTL_ATTRIBUTE, *extra}  # no contact pseudonym, no data
        assert abs(int(marker[c.TTL_ATTRIBUTE]) - tables.expires_at(c.CLASS_SUPPRESSION, at)) <= 5


def test_a_status_replayed_after_erasure_stores_nothing(aws_stack) -> None:
    wamid = f.wamid()
    _deliver(aws_stack, f.webhook_body(messages=[f.text_message(PHONE, "hi")]))
    failed = f.webhook_body(
        statuses=[f.status(wamid, "failed", PHONE, errors=[f.meta_error(131050, "stopped marketing")])]
    )
    _deliver(aws_stack, failed)
    assert _marketing(PHONE) == "revoked"
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    _deliver(aws_stack, failed)
    assert _about(aws_stack, PHONE) == []


def test_preferences_are_deduplicated_and_ordered_by_metas_clock(aws_stack) -> None:
    now = int(time.time())

    def pref(value: str, at: int) -> dict[str, Any]:
        return f.webhook_body(
            field="user_preferences", user_preferences=[f.user_preference(PHONE, value, at)]
        )

    _deliver(aws_stack, pref("stop", now - 20))
    resume = pref("resume", now - 10)
    _deliver(aws_stack, resume)
    assert _marketing(PHONE) == "granted"
    _deliver(aws_stack, pref("stop", now))
    aws_stack.events()
    _deliver(aws_stack, resume)  # Meta's retry, or a replay: a duplicate
    _deliver(aws_stack, pref("resume", now - 5))  # new, but older than the stop: superseded
    _deliver(aws_stack, pref("resume", now - 8 * DAY))  # more than 7 days old: stale
    assert _marketing(PHONE) == "revoked"
    assert [e["detail-type"] for e in aws_stack.events()] == []  # no consent.changed
    history = f.reply_json(f.call_contacts("GET", PHONE, "/consent"))["history"]
    ignored = [(h["status"], h.get("ignored")) for h in history if h.get("effective") is False]
    assert ignored == [("granted", "superseded"), ("granted", "stale")]
    assert len(history) == 5  # stop, resume, stop and the two kept as evidence; the replay is not


def test_a_start_older_than_a_stop_is_kept_as_evidence_only(aws_stack) -> None:
    now = int(time.time())
    _deliver(aws_stack, f.webhook_body(messages=[f.text_message(PHONE, "STOP", timestamp=now)]))
    _deliver(aws_stack, f.webhook_body(messages=[f.text_message(PHONE, "START", timestamp=now - 60)]))
    assert _marketing(PHONE) == "revoked"
    _deliver(aws_stack, f.webhook_body(messages=[f.text_message(PHONE, "START", timestamp=now + 1)]))
    assert _marketing(PHONE) == "granted"


def test_api_grants_keep_their_recorded_time(aws_stack) -> None:
    """An API grant after a STOP takes effect although Meta's clock is not involved; a later old START
    from the contact is still ordered against the contact's own STOP."""
    now = int(time.time())
    _deliver(aws_stack, f.webhook_body(messages=[f.text_message(PHONE, "STOP", timestamp=now)]))
    body = {"purpose": "marketing", "status": "granted", "source": "web_form"}
    assert f.call_contacts("PUT", PHONE, "/consent", body)["statusCode"] == 200
    assert _marketing(PHONE) == "granted"
