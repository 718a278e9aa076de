"""Campaigns and the contact's rights, on the moto stack against the fake Graph API: an erasure removes every
campaign item that names the contact (entries and recipient lines, found through the pointers in the
contact's partition) and the counts stay right; an entry's personalized parameters are sealed under the
contact's key (shredded with it); the export lists the contact's campaigns and the campaign messages."""

from __future__ import annotations

import json

from shared import constants as c
from tests import factory as f
from tests.integration.test_campaign_throttling import drive
from tests.integration.test_campaigns import PROMO, A, B, E, G, call, create, fake, grant
from tests.integration.test_sender_flow import receive, run_sender

__all__ = ["fake"]  # the fixture, imported for pytest

ORDER = {"name": "order_update", "language": {"code": "en_US"}}
SECRET_NAME, SECRET_ORDER = "Anneliese-Secret", "ZX-998877"


def _order_components(name: str, order: str) -> list[dict]:
    return [
        {"type": "body", "parameters": [{"type": "text", "text": name}, {"type": "text", "text": order}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": order}]},
    ]


def _ref(contact_key: str, phone: str) -> str:
    from shared import ids

    return ids.reference_of(ids.contact_pseudonym(contact_key, phone))


def _campaign_items(stack, cid: str) -> list[dict]:
    return [i for i in stack.items(c.TABLE_MESSAGES) if i["pk"] == f"CAMPAIGN#{cid}"]


def _assert_counts_right(cid: str) -> dict:
    from store import campaigns as store

    counts = store.counts(cid)
    assert counts == store.recount(cid), (counts, store.recount(cid))
    buckets = ("pending", "sent", "delivered", "read", "failed", "skipped", "cancelled")
    assert sum(counts[b] for b in buckets) == counts["recipients"]
    return counts


def test_erasure_removes_the_contacts_campaign_lines_and_the_counts_stay_right(
    fake, aws_stack, contact_key
) -> None:
    from shared import ids

    for phone in (A, E, G):
        grant(phone)
    cid = create({"contacts": [{"to": A}, {"to": E}, {"to": G}]})
    run_sender(*receive(aws_stack))  # prepared: three pending recipients, their messages queued
    ref_e, ref_a = _ref(contact_key, E), _ref(contact_key, A)
    assert ref_e in json.dumps(_campaign_items(aws_stack, cid), default=str)
    assert f.call_contacts("DELETE", E)["statusCode"] == 200  # pending: its line becomes skipped / erased
    drive(aws_stack)
    view = call("GET", f"/campaigns/{cid}")[1]
    assert view["status"] == "completed", view
    counts = view["counts"]
    assert counts["recipients"] == 3 and counts["sent"] == 2 and counts["skipped"] == 1
    assert counts["skipped_by"]["erased"] == 1
    assert sorted(x["body"]["to"] for x in fake.calls()) == sorted([A, G])
    assert f.call_contacts("DELETE", A)["statusCode"] == 200  # already sent: it stays counted as sent
    items = json.dumps(_campaign_items(aws_stack, cid), default=str)
    assert ref_e not in items and ref_a not in items
    assert ids.pseudonym_of(ref_e) not in items and ids.pseudonym_of(ref_a) not in items
    for ref in (ref_a, ref_e):  # nothing left in the erased contacts' partitions but suppression
        pk = ids.pseudonym_of(ref)
        assert [i for i in aws_stack.items(c.TABLE_MESSAGES) if i["pk"] == pk] == []
    counts = _assert_counts_right(cid)
    assert counts["sent"] == 2 and counts["skipped_by"]["erased"] == 1
    rows = call("GET", f"/campaigns/{cid}/recipients")[1]["recipients"]
    assert sorted((r["contact"] or "-", r["status"]) for r in rows) == sorted(
        [("-", "sent"), ("-", "skipped"), (_ref(contact_key, G), "sent")]
    )


def test_an_entry_erased_before_preparation_is_blanked_and_skipped_as_erased(
    fake, aws_stack, contact_key
) -> None:
    grant(A)
    grant(B)
    cid = create({"contacts": [{"to": A}, {"to": B, "components": None}]})
    assert f.call_contacts("DELETE", B)["statusCode"] == 200
    ref_b = _ref(contact_key, B)
    assert ref_b not in json.dumps(_campaign_items(aws_stack, cid), default=str)
    drive(aws_stack)
    view = call("GET", f"/campaigns/{cid}")[1]
    assert view["status"] == "completed" and view["counts"]["sent"] == 1
    assert view["counts"]["skipped_by"]["erased"] == 1
    assert ref_b not in json.dumps(_campaign_items(aws_stack, cid), default=str)
    _assert_counts_right(cid)


def test_an_entrys_parameters_are_sealed_under_the_contacts_key_and_sent(
    fake, aws_stack, contact_key
) -> None:
    grant(A, "utility")
    grant(E, "utility")
    template = {**ORDER, "components": _order_components("Customer", "A-1")}
    entries = [{"to": A, "components": _order_components(SECRET_NAME, SECRET_ORDER)}, {"to": E}]
    status, body = call(
        "POST", "/campaigns", {"name": "Orders", "template": template, "audience": {"contacts": entries}}
    )
    assert status == 202, body
    cid = body["id"]
    stored = json.dumps(_campaign_items(aws_stack, cid), default=str)
    assert SECRET_NAME not in stored and SECRET_ORDER not in stored  # sealed, not in clear
    assert "Customer" in stored  # the campaign's own components (no personal data) stay readable
    drive(aws_stack)
    sent = {x["body"]["to"]: json.dumps(x["body"]) for x in fake.calls()}
    assert SECRET_NAME in sent[A] and SECRET_ORDER in sent[A]  # the message still carries them
    assert SECRET_NAME not in sent[E] and "Customer" in sent[E]
    assert call("GET", f"/campaigns/{cid}")[1]["counts"]["sent"] == 2


def test_parameters_of_an_erased_entry_are_shredded_with_its_key(fake, aws_stack, contact_key) -> None:
    from store import campaigns as store

    grant(A, "utility")
    template = {**ORDER, "components": _order_components("Customer", "A-1")}
    entries = [{"to": A, "components": _order_components(SECRET_NAME, SECRET_ORDER)}]
    cid = call(
        "POST", "/campaigns", {"name": "Orders", "template": template, "audience": {"contacts": entries}}
    )[1]["id"]
    (entry,) = [i for i in _campaign_items(aws_stack, cid) if str(i["sk"]).startswith("E#")]
    assert str(entry["components"]).startswith("v2:")
    from store.crypto import cipher

    cipher().shred(_pseudonym(contact_key, A))  # as an erasure does first
    cipher().forget()
    (opened,) = store.entries(cid, 0, 10)
    assert opened.get("erased") is True and "components" not in opened


def _pseudonym(contact_key: str, phone: str) -> str:
    from shared import ids

    return ids.contact_pseudonym(contact_key, phone)


def test_the_export_lists_the_contacts_campaigns_and_the_campaign_message(fake, aws_stack) -> None:
    grant(A)
    cid = create({"contacts": [{"to": A}]})
    drive(aws_stack)
    doc = f.reply_json(f.call_contacts("GET", A, "/export"))
    (row,) = doc["campaigns"]
    assert row["campaign"] == cid and row["status"] == "sent" and row["message_id"].startswith("msg_")
    assert row["deletes_at"]
    (message,) = [m for m in doc["messages"] if m.get("id") == row["message_id"]]
    assert message["template"] == {"name": PROMO["name"], "language": PROMO["language"]["code"]}
    assert message["direction"] == "out" and message["text"]
