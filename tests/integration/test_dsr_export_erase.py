"""Export and erasure on a moto account: what is held, what expires, what erasure leaves, and that a
restore of the backed-up tables after erasure brings nothing readable back (crypto-shredding)."""

from __future__ import annotations

import time
from decimal import Decimal

from domain import consent
from shared import constants as c
from store import contacts, outbound
from tests import factory as f

PHONE = "4915112345678"
USER_ID = "US.13491208655302741918"
OTHER = "4915187654321"
SECRET_TEXT = "my secret sentence"
REPLY_TEXT = "our private reply"


def export(contact: str) -> tuple[int, dict]:
    reply = f.call_contacts("GET", contact, "/export")
    return reply["statusCode"], f.reply_json(reply)


def every_item(stack) -> dict[str, list[dict]]:
    return {t: stack.items(t) for t in c.TABLES}


def conversation(stack, contact: str = PHONE, text: str = SECRET_TEXT, user_id: str | None = USER_ID) -> dict:
    """Consent, an inbound text (with the user id linked), an outbound text and a template, statuses."""
    for purpose in ("marketing", "utility"):
        f.call_contacts(
            "PUT",
            contact,
            "/consent",
            {"purpose": purpose, "status": "granted", "source": "web_form", "evidence": "signed form 7"},
        )
    body = f.webhook_body(
        messages=[f.text_message(contact, text)],
        contacts=[f.contact(contact, name="Erika Mustermann", user_id=user_id)],
    )
    assert f.deliver(stack, body)["statusCode"] == 200
    identity = contacts.identity(contact)
    idem = {"pk": "waguard#idem-" + contact, "sk": "hash-1"}
    stack.client("dynamodb").put_item(
        TableName=stack.tables[c.TABLE_IDEMPOTENCY],
        Item={
            "pk": {"S": idem["pk"]},
            "sk": {"S": idem["sk"]},
            "expires_at": {"N": str(int(time.time()) + 3600)},
        },
    )
    text_out = outbound.create(
        identity.primary, outbound.new_id(), "service", {"to": contact, "text": REPLY_TEXT}, idem_key=idem
    )
    wamid = "wamid.out-" + contact
    outbound.mark_sent(text_out, wamid, contacts.wamid_hash(wamid))
    template = {"name": "spring_sale", "language": {"code": "en_US"}}
    tpl_out = outbound.create(
        identity.primary, outbound.new_id(), "marketing", {"to": contact, "template": template}
    )
    f.deliver(stack, f.webhook_body(statuses=[f.status(wamid, "delivered", contact)]))
    return {"identity": identity, "text_out": text_out, "tpl_out": tpl_out, "wamid": wamid}


def test_export_holds_both_directions_statuses_consent_and_profile(aws_stack) -> None:
    held = conversation(aws_stack)
    status, doc = export(PHONE)
    assert status == 200
    assert doc["contact"] == PHONE
    by_dir = {(m["direction"], m.get("text") or m.get("template_name")) for m in doc["messages"]}
    assert by_dir == {("in", SECRET_TEXT), ("out", REPLY_TEXT), ("out", "spring_sale")}
    out = {m["id"]: m for m in doc["messages"] if m["direction"] == "out"}
    assert out[held["text_out"].msg_id]["status"] == "delivered"
    assert out[held["text_out"].msg_id]["wamid"] == held["wamid"]
    assert out[held["tpl_out"].msg_id]["status"] == "queued"
    assert [(s["id"], s["status"]) for s in doc["statuses"]] == [(held["wamid"], "delivered")]
    assert [(e["purpose"], e["status"], e["evidence"]) for e in doc["consent"]] == [
        ("marketing", "granted", "signed form 7"),
        ("utility", "granted", "signed form 7"),
    ]
    assert doc["profile"]["wa_id"] == PHONE and doc["profile"]["user_id"] == USER_ID
    assert "profile_name" not in doc["profile"] and "Erika" not in repr(doc)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    for item in [*doc["messages"], *doc["statuses"], *doc["consent"], doc["profile"]]:
        assert item["deletes_at"] > today, item
    assert doc["consent"][0]["deletes_at"] > doc["messages"][0]["deletes_at"]  # 1095 vs 90 days
    # The same person by the user id: the same document.
    status, by_user = export(USER_ID)
    assert status == 200 and by_user["messages"] == doc["messages"] and by_user["contact"] == USER_ID


def test_export_is_audited_with_caller_and_count_only(aws_stack) -> None:
    conversation(aws_stack)
    export(PHONE)
    status, body = export(OTHER)
    assert status == 404 and body["error"] == "not_found"
    records = [r for r in aws_stack.items(c.TABLE_AUDIT) if r.get("action") == "export"]
    assert sorted((r["outcome"], int(r["items"])) for r in records) == [("exported", 6), ("not_found", 0)]
    assert all(r["actor"] == f.CALLER_ARN for r in records)
    assert PHONE not in repr(records) and OTHER not in repr(records)


def _expire(stack, table: str, predicate) -> int:
    ddb = stack.client("dynamodb")
    n = 0
    for item in stack.items(table):
        if predicate(item):
            ddb.update_item(
                TableName=stack.tables[table],
                Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}},
                UpdateExpression="SET expires_at = :past",
                ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 10)}},
            )
            n += 1
    return n


def test_expired_items_are_never_returned(aws_stack) -> None:
    conversation(aws_stack, user_id=None)
    assert _expire(aws_stack, c.TABLE_MESSAGES, lambda i: i["sk"].startswith("IN#")) == 1
    assert _expire(aws_stack, c.TABLE_CONSENT, lambda i: i.get("purpose") == "marketing") == 1
    status, doc = export(PHONE)
    assert status == 200
    assert SECRET_TEXT not in repr(doc) and {m["direction"] for m in doc["messages"]} == {"out"}
    assert [e["purpose"] for e in doc["consent"]] == ["utility"]
    identity = contacts.identity(PHONE)
    assert not consent.is_granted(identity, "marketing") and consent.is_granted(identity, "utility")
    # Everything expired: nothing is held any more.
    for table in (c.TABLE_MESSAGES, c.TABLE_CONSENT, c.TABLE_CONTACTS):
        _expire(aws_stack, table, lambda i: True)
    assert export(PHONE)[0] == 404
    assert contacts.last_inbound_at(contacts.identity(PHONE)) is None


# ---- erasure -----------------------------------------------------------------------------------------
def test_erasure_removes_everything_and_leaves_a_pseudonymous_receipt(aws_stack) -> None:
    held = conversation(aws_stack)
    conversation(aws_stack, contact=OTHER, text="someone else's words", user_id=None)
    identity = held["identity"]
    assert len(identity.hashes) == 2
    before = every_item(aws_stack)
    reply = f.call_contacts("DELETE", PHONE)
    assert reply["statusCode"] == 200
    body = f.reply_json(reply)
    assert body["erased"] is True and body["receipt_id"]
    after = every_item(aws_stack)
    gone = sum(
        len(before[t]) - len(after[t])
        for t in (c.TABLE_MESSAGES, c.TABLE_CONSENT, c.TABLE_KEYS, c.TABLE_IDEMPOTENCY)
    )
    gone += sum(1 for i in before[c.TABLE_CONTACTS] if i["pk"] in identity.hashes)
    assert body["items_deleted"] == gone > 10

    dump = repr(after)
    for raw in (PHONE, USER_ID, SECRET_TEXT, REPLY_TEXT, "Erika", "signed form 7", held["wamid"]):
        assert raw not in dump, raw
    # The pseudonyms are left only in the suppression records, the receipt and the audit log.
    for table, items in after.items():
        for item in items:
            if any(h in repr(item) for h in identity.hashes):
                assert (table, item["sk"]) in {
                    (c.TABLE_CONTACTS, "SUPPRESSED"),
                    (c.TABLE_AUDIT, "RECEIPT"),
                } or (table == c.TABLE_AUDIT and item["pk"].startswith("AUDIT#")), (table, item)
    suppressed = [i for i in after[c.TABLE_CONTACTS] if i["sk"] == "SUPPRESSED"]
    assert {i["pk"] for i in suppressed} == set(identity.hashes)
    (receipt,) = [i for i in after[c.TABLE_AUDIT] if i["sk"] == "RECEIPT"]
    assert receipt["pk"] == "RECEIPT#" + body["receipt_id"] and receipt["subject"] == identity.primary
    assert int(receipt["items_deleted"]) == body["items_deleted"] and receipt["erased_at"]
    assert set(receipt["tables"]) == {"contacts", "messages", "consent", "keys", "idempotency"}
    audit = [r for r in after[c.TABLE_AUDIT] if r.get("action") == "erase"]
    assert (
        len(audit) == 1 and audit[0]["receipt_id"] == body["receipt_id"] and audit[0]["actor"] == f.CALLER_ARN
    )
    # Nothing readable by either id; the other contact is untouched.
    assert export(PHONE)[0] == 404 and export(USER_ID)[0] == 404
    assert export(OTHER)[0] == 200 and "someone else's words" in repr(export(OTHER)[1])
    for item in [i for items in after.values() for i in items]:
        assert isinstance(item["expires_at"], Decimal) and int(item["expires_at"]) > time.time()
    # Erasing again finds nothing more.
    again = f.reply_json(f.call_contacts("DELETE", PHONE))
    assert again["items_deleted"] == 0 and again["receipt_id"] != body["receipt_id"]


def test_restoring_backed_up_tables_after_erasure_brings_nothing_readable_back(aws_stack) -> None:
    conversation(aws_stack)
    snapshot = {t: items for t, items in every_item(aws_stack).items() if t != c.TABLE_KEYS}
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    import boto3

    ddb = boto3.resource("dynamodb", region_name=aws_stack.region)
    for table, items in snapshot.items():  # what a point-in-time restore would bring back
        with ddb.Table(aws_stack.tables[table]).batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)
    from store import crypto

    crypto.reset()  # and a cold container, with no cached key
    for contact in (PHONE, USER_ID):
        status, doc = export(contact)
        assert status == 404, doc
        assert f.reply_json(f.call_contacts("GET", contact, "/consent"))["history"] == []
    identity = contacts.identity(PHONE)
    assert consent.is_suppressed(identity)
    assert not consent.is_granted(identity, "marketing")
    assert contacts.last_inbound_at(identity) is None
    # The contact writes again: a new key, and only the new message is readable.
    f.deliver(aws_stack, f.webhook_body(messages=[f.text_message(PHONE, "new words")]))
    status, doc = export(PHONE)
    assert status == 200
    assert [m.get("text") for m in doc["messages"]] == ["new words"] and doc["consent"] == []


def test_erasure_by_user_id_covers_the_linked_phone(aws_stack) -> None:
    conversation(aws_stack)
    assert f.call_contacts("DELETE", USER_ID)["statusCode"] == 200
    assert export(PHONE)[0] == 404
    assert consent.is_suppressed(contacts.identity(PHONE))
    assert PHONE not in repr(every_item(aws_stack))


def test_contact_forms_name_the_same_person(aws_stack) -> None:
    conversation(aws_stack, user_id=None)
    for contact in (PHONE, "+" + PHONE, " " + PHONE + " "):
        status, doc = export(contact)
        assert status == 200 and doc["contact"] == PHONE


def test_an_erasure_served_by_another_container_takes_effect_here_at_once(aws_stack) -> None:
    """Warm containers cache data keys; a restore right after an erasure served elsewhere stays unreadable."""
    from store import crypto

    conversation(aws_stack, user_id=None)
    assert export(PHONE)[0] == 200  # this container now holds the contact's data key in its cache
    snapshot = {t: items for t, items in every_item(aws_stack).items() if t != c.TABLE_KEYS}
    warm = crypto.cipher()
    crypto._cipher = crypto.FieldCipher()  # another container serves the erasure
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    crypto._cipher = warm
    import boto3

    ddb = boto3.resource("dynamodb", region_name=aws_stack.region)
    for table, items in snapshot.items():
        with ddb.Table(aws_stack.tables[table]).batch_writer() as batch:
            for item in items:
                batch.put_item(Item=item)
    assert export(PHONE)[0] == 404
    assert f.reply_json(f.call_contacts("GET", PHONE, "/consent"))["history"] == []
