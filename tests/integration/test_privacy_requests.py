"""Data-subject requests and restriction on a moto account, through the contacts-api handler: due dates,
one extension, completion of each type, closed requests, the overdue check's event (once) and metric, and
what a restriction refuses and withholds."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from domain import privacy
from shared import constants as c
from store import contacts
from tests import factory as f

PHONE = "4915112340000"


def call(method: str, path: str, body: dict | None = None, query: dict | None = None) -> tuple[int, Any]:
    from handlers import contacts_api

    resource = path
    params: dict[str, str] = {}
    parts = path.split("/")
    if len(parts) > 3 and parts[1] == "privacy":
        params = {"id": parts[3]}
        resource = "/".join([*parts[:3], "{id}", *parts[4:]])
    event = f.rest_event(
        method,
        resource,
        path=path,
        body=body,
        headers={"Content-Type": "application/json"} if body is not None else {},
        path_params=params,
        query=query,
    )
    reply = contacts_api.handler(event, f.LambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


def open_request(kind: str = "access", law: str = "gdpr", **extra: Any) -> dict[str, Any]:
    status, body = call("POST", "/privacy/requests", {"contact": PHONE, "type": kind, "law": law, **extra})
    assert status == 201, body
    return body


def inbound(stack: Any, text: str = "hello") -> None:
    body = f.webhook_body(messages=[f.text_message(PHONE, text)], contacts=[f.contact(PHONE)])
    assert f.deliver(stack, body)["statusCode"] == 200


def of_type(envelopes: list[dict], detail_type: str) -> list[dict]:
    return [e["detail"] for e in envelopes if e["detail-type"] == detail_type]


def test_a_request_is_opened_with_its_due_date_and_told_without_the_contact(aws_stack) -> None:
    got = open_request(received_at="2026-01-31T09:00:00Z", channel="email")
    assert got["id"].startswith("dsr_") and got["contact"].startswith("ct_") and PHONE not in json.dumps(got)
    assert (got["status"], got["type"], got["law"], got["channel"]) == ("open", "access", "gdpr", "email")
    assert (got["received_at"], got["due_at"]) == ("2026-01-31T09:00:00Z", "2026-02-28T09:00:00Z")
    assert got["overdue"] is True  # open past due
    ccpa = open_request("objection", "ccpa")
    received = datetime.fromisoformat(ccpa["received_at"].replace("Z", "+00:00"))
    assert ccpa["due_at"] == (received + timedelta(days=45)).isoformat().replace("+00:00", "Z")
    assert ccpa["channel"] == "api" and ccpa["overdue"] is False
    opened = of_type(aws_stack.events(), c.EVENT_PRIVACY_OPENED)
    assert opened == [
        {"request": got["id"], "type": "access", "law": "gdpr", "due_at": "2026-02-28T09:00:00Z"},
        {"request": ccpa["id"], "type": "objection", "law": "ccpa", "due_at": ccpa["due_at"]},
    ]
    item = aws_stack.items(c.TABLE_PRIVACY)[0]
    ttl_days = (int(item[c.TTL_ATTRIBUTE]) - datetime.now(UTC).timestamp()) / 86400
    assert 1094 < ttl_days <= 1095  # retentionDays.privacyRequests


def test_received_at_in_the_future_or_unknown_values_are_refused(aws_stack) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (
        call(
            "POST",
            "/privacy/requests",
            {"contact": PHONE, "type": "access", "law": "gdpr", "received_at": later},
        )[0]
        == 400
    )
    assert (
        call("POST", "/privacy/requests", {"contact": PHONE, "type": "portability", "law": "gdpr"})[0] == 400
    )
    assert call("POST", "/privacy/requests", {"contact": PHONE, "type": "access", "law": "lgpd"})[0] == 400
    assert call("POST", "/privacy/requests", {"contact": "12", "type": "access", "law": "gdpr"})[0] == 400
    assert call("GET", "/privacy/requests/dsr_unknown")[0] == 404
    assert aws_stack.items(c.TABLE_PRIVACY) == []


def test_listing_is_soonest_due_first_and_filters_by_status(aws_stack) -> None:
    late = open_request(received_at="2026-01-10T00:00:00Z")
    now = open_request("erasure", "ccpa")
    soon = open_request("restriction", received_at=(datetime.now(UTC) - timedelta(days=20)).isoformat())
    status, body = call("GET", "/privacy/requests")
    assert status == 200
    assert [r["id"] for r in body["requests"]] == [late["id"], soon["id"], now["id"]]
    assert [
        r["id"] for r in call("GET", "/privacy/requests", query={"status": "overdue"})[1]["requests"]
    ] == [late["id"]]
    assert (
        call("POST", f"/privacy/requests/{soon['id']}/reject", {"reason": "identity not verified"})[0] == 200
    )
    assert [
        r["id"] for r in call("GET", "/privacy/requests", query={"status": "rejected"})[1]["requests"]
    ] == [soon["id"]]
    assert len(call("GET", "/privacy/requests", query={"status": "open"})[1]["requests"]) == 2
    assert call("GET", "/privacy/requests", query={"status": "lost"})[0] == 400


def test_one_extension_then_409_and_closed_requests_do_not_change(aws_stack) -> None:
    got = open_request(received_at="2026-01-31T09:00:00Z")
    status, extended = call("POST", f"/privacy/requests/{got['id']}/extend", {"reason": "complex request"})
    assert status == 200 and extended["due_at"] == "2026-04-28T09:00:00Z"
    status, again = call("POST", f"/privacy/requests/{got['id']}/extend", {"reason": "again"})
    assert (status, again["error"]) == (409, "already_extended")
    assert call("GET", f"/privacy/requests/{got['id']}")[1]["due_at"] == "2026-04-28T09:00:00Z"
    assert call("POST", f"/privacy/requests/{got['id']}/reject", {"reason": "manifestly unfounded"})[0] == 200
    for action, body in (("complete", None), ("reject", {"reason": "x"}), ("extend", {"reason": "x"})):
        status, refused = call("POST", f"/privacy/requests/{got['id']}/{action}", body)
        assert (status, refused["error"]) == (409, "request_closed"), action
    shown = call("GET", f"/privacy/requests/{got['id']}")[1]
    assert shown["status"] == "rejected" and shown["overdue"] is False and shown["rejection_reason"]


def test_completing_an_access_request_keeps_the_export_with_it(aws_stack) -> None:
    inbound(aws_stack, "my secret question")
    got = open_request()
    status, done = call("POST", f"/privacy/requests/{got['id']}/complete")
    assert status == 200 and done["status"] == "completed" and done["completed_at"]
    status, doc = call("GET", f"/privacy/requests/{got['id']}/export")
    assert status == 200 and [m.get("text") for m in doc["messages"]] == ["my secret question"]
    # the copy is sealed in the contact's partition, never in clear
    assert "my secret question" not in json.dumps(aws_stack.items(c.TABLE_CONTACTS), default=str)
    assert of_type(aws_stack.events(), c.EVENT_PRIVACY_COMPLETED)[-1]["request"] == got["id"]
    f.call_contacts("DELETE", PHONE)
    assert call("GET", f"/privacy/requests/{got['id']}/export")[0] == 404  # erased with everything else
    assert call("GET", f"/privacy/requests/{got['id']}")[1]["status"] == "completed"


def test_completing_an_erasure_erases_and_the_request_survives_it(aws_stack) -> None:
    inbound(aws_stack)
    got = open_request("erasure")
    status, done = call("POST", f"/privacy/requests/{got['id']}/complete")
    assert status == 200 and done["receipt_id"].startswith("rcpt_")
    assert f.call_contacts("GET", PHONE, "/export")["statusCode"] == 404
    kept = call("GET", f"/privacy/requests/{got['id']}")[1]
    assert kept["status"] == "completed" and kept["receipt_id"] == done["receipt_id"]
    assert PHONE not in json.dumps(aws_stack.items(c.TABLE_PRIVACY), default=str)


def test_completing_an_objection_revokes_marketing_and_a_restriction_restricts(aws_stack) -> None:
    inbound(aws_stack)
    f.call_contacts("PUT", PHONE, "/consent", {"purpose": "marketing", "status": "granted", "source": "form"})
    objection = open_request("objection")
    assert call("POST", f"/privacy/requests/{objection['id']}/complete")[0] == 200
    view = f.reply_json(f.call_contacts("GET", PHONE, "/consent"))
    assert view["purposes"]["marketing"]["status"] == "revoked"
    assert view["purposes"]["marketing"]["source"] == "objection"
    restriction = open_request("restriction")
    assert call("POST", f"/privacy/requests/{restriction['id']}/complete")[0] == 200
    assert f.reply_json(f.call_contacts("GET", PHONE, "/export"))["restriction"]["restricted"] is True


def test_the_overdue_check_tells_each_request_once_and_counts_them(aws_stack, capsys) -> None:
    from handlers import contacts_api

    late = open_request(received_at="2026-01-01T00:00:00Z")
    open_request("access", "ccpa")  # not due yet
    aws_stack.events()
    scheduled = {"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}
    assert contacts_api.handler(scheduled, f.LambdaContext()) == {"overdue": 1}
    assert contacts_api.handler(scheduled, f.LambdaContext()) == {"overdue": 1}
    told = of_type(aws_stack.events(), c.EVENT_PRIVACY_OVERDUE)
    assert told == [{"request": late["id"], "type": "access", "law": "gdpr", "due_at": late["due_at"]}]
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "_aws" in line]
    assert [m[c.METRIC_PRIVACY_OVERDUE] for m in emitted if c.METRIC_PRIVACY_OVERDUE in m] == [[1.0], [1.0]]
    assert privacy.check_overdue(datetime(2025, 1, 1, tzinfo=UTC)) == 0  # nothing is overdue then


def test_restriction_refuses_sends_and_reads_and_withholds_events_but_export_works(aws_stack) -> None:
    inbound(aws_stack)
    aws_stack.events()
    status, body = call(
        "PUT", f"/contacts/{PHONE}/restriction", {"restricted": True, "reason": "accuracy contested"}
    )
    assert status == 200 and body["restricted"] is True and body["reason"] == "accuracy contested"
    ref = body["contact"]
    assert ref.startswith("ct_") and body["recorded_at"]
    send = f.call_messages(f.messages_post({"to": PHONE, "purpose": "service", "text": {"body": "hi"}}))
    assert (send["statusCode"], f.reply_json(send)["error"]) == (403, "restricted")
    read = f.call_contacts("GET", PHONE, "/messages")
    assert (read["statusCode"], f.reply_json(read)["error"]) == (403, "restricted")
    inbound(aws_stack, "still writing")  # stored, but not told
    f.call_contacts("PUT", PHONE, "/consent", {"purpose": "utility", "status": "granted", "source": "form"})
    events = aws_stack.events()
    assert [e["detail-type"] for e in events] == [c.EVENT_CONTACT_RESTRICTED]
    assert events[0]["detail"] == {"contact": ref}
    doc = f.reply_json(f.call_contacts("GET", PHONE, "/export"))
    assert [m.get("text") for m in doc["messages"]] == ["hello", "still writing"]
    assert doc["restriction"]["restricted"] is True and doc["restriction"]["reason"] == "accuracy contested"
    assert "accuracy contested" not in json.dumps(aws_stack.items(c.TABLE_CONTACTS), default=str)
    status, body = call("PUT", f"/contacts/{PHONE}/restriction", {"restricted": False})
    assert status == 200 and body["restricted"] is False
    assert [e["detail-type"] for e in aws_stack.events()] == [c.EVENT_CONTACT_UNRESTRICTED]
    assert f.call_contacts("GET", PHONE, "/messages")["statusCode"] == 200
    send = f.call_messages(f.messages_post({"to": PHONE, "purpose": "service", "text": {"body": "hi"}}))
    assert send["statusCode"] == 202
    assert contacts.identity(PHONE).reference == ref


def test_the_privacy_events_conform_to_their_schemas(aws_stack) -> None:
    from tests.integration.test_conversations import PRIVACY_EVENTS, _validator

    inbound(aws_stack)
    late = open_request("restriction", received_at="2026-01-01T00:00:00Z")
    privacy.check_overdue()
    call("POST", f"/privacy/requests/{late['id']}/complete")
    call("PUT", f"/contacts/{PHONE}/restriction", {"restricted": False})
    envelopes = aws_stack.events()
    assert {e["detail-type"] for e in envelopes} >= set(PRIVACY_EVENTS)
    for envelope in envelopes:
        errors = [e.message for e in _validator(envelope["detail-type"]).iter_errors(envelope["detail"])]
        assert not errors, (envelope["detail-type"], errors)
    assert PHONE not in json.dumps(envelopes)
