"""POST /messages and GET /messages/{id} on the moto stack: gate, queueing, idempotency, audit."""

from __future__ import annotations

import json
import time

import pytest

from domain import eligibility
from domain.errors import Refused
from shared import constants as c
from tests import factory as f

PHONE = "4915112345678"
TEXT = {"to": "+" + PHONE, "purpose": "service", "text": {"body": "Yes, it ships today."}}
PROMO = {
    "to": PHONE,
    "purpose": "marketing",
    "template": {"name": "spring_sale", "language": {"code": "en_US"}},
}


@pytest.fixture(autouse=True)
def _fresh(aws_stack):
    from domain import idempotency
    from store import outbound

    idempotency.reset()
    outbound.reset()
    yield
    idempotency.reset()
    outbound.reset()


def inbound(stack, phone: str = PHONE, text: str = "Is my order ready?") -> None:
    f.deliver(stack, f.webhook_body(messages=[f.text_message(phone, text)]))


def consent(phone: str, purpose: str, status: str = "granted") -> None:
    reply = f.call_contacts(
        "PUT", phone, "/consent", {"purpose": purpose, "status": status, "source": "web_form"}
    )
    assert reply["statusCode"] == 200, reply


def send(body, headers=None, caller=f.CALLER_ARN):
    reply = f.call_messages(f.messages_post(body, headers=headers, caller=caller))
    return reply["statusCode"], json.loads(reply["body"])


def get(message_id):
    reply = f.call_messages(f.messages_get(message_id))
    return reply["statusCode"], json.loads(reply["body"])


def queued(stack) -> list[dict]:
    return [json.loads(m) for m in f.drain(stack.queues["send"])]


def outbound_items(stack) -> list[dict]:
    return [i for i in stack.items(c.TABLE_MESSAGES) if i["sk"].startswith("OUT#")]


def refused(stack, status, body, want_status, want_code):
    assert (status, body["error"]) == (want_status, want_code), body
    assert body["message"]
    assert queued(stack) == [] and outbound_items(stack) == []


# ---- accepted --------------------------------------------------------------------------------------
def test_reply_inside_window_is_queued(aws_stack):
    inbound(aws_stack)
    status, body = send(TEXT)
    assert status == 202 and body == {"id": body["id"], "status": "queued"}
    assert queued(aws_stack) == [{"message_id": body["id"]}]
    (item,) = outbound_items(aws_stack)
    assert item["status"] == "queued" and item["kind"] == "text" and item["purpose"] == "service"
    assert PHONE not in repr(item) and "ships" not in repr(item)
    assert int(item["expires_at"]) > time.time() + 80 * 86400
    assert get(body["id"]) == (200, {"id": body["id"], "status": "queued"})


def test_template_with_consent_is_queued(aws_stack):
    consent(PHONE, "marketing")
    status, body = send(PROMO)
    assert status == 202
    (item,) = outbound_items(aws_stack)
    assert item["template_name"] == "spring_sale" and item["kind"] == "template"
    assert queued(aws_stack) == [{"message_id": body["id"]}]


def test_service_template_needs_utility_consent(aws_stack):
    body = {**PROMO, "purpose": "service", "template": f.template_for("utility")}
    refused(aws_stack, *send(body), 403, "consent_required")
    consent(PHONE, "utility")
    assert send(body)[0] == 202


def test_marketing_text_needs_window_and_consent(aws_stack):
    body = {**TEXT, "purpose": "marketing"}
    refused(aws_stack, *send(body), 422, "outside_service_window")
    inbound(aws_stack)
    refused(aws_stack, *send(body), 403, "consent_required")
    consent(PHONE, "marketing")
    assert send(body)[0] == 202


# ---- refused before anything is queued -------------------------------------------------------------
def test_text_outside_window_is_422(aws_stack):
    refused(aws_stack, *send(TEXT), 422, "outside_service_window")


def test_window_closes_after_service_window_hours(aws_stack):
    from store import contacts

    inbound(aws_stack)
    identity = contacts.identity(PHONE)
    eligibility.require(
        eligibility.Candidate(identity, "service", "text", eligibility.ACCEPT, now=time.time() + 23 * 3600)
    )
    with pytest.raises(Refused) as exc:
        eligibility.require(
            eligibility.Candidate(
                identity, "service", "text", eligibility.ACCEPT, now=time.time() + 25 * 3600
            )
        )
    assert exc.value.code == "outside_service_window"


def test_opt_out_keyword_does_not_open_the_window(aws_stack):
    inbound(aws_stack, text="STOP")
    refused(aws_stack, *send(TEXT), 422, "outside_service_window")


def test_template_without_consent_or_after_revocation_is_403(aws_stack):
    refused(aws_stack, *send(PROMO), 403, "consent_required")
    consent(PHONE, "marketing")
    consent(PHONE, "marketing", "revoked")
    refused(aws_stack, *send(PROMO), 403, "consent_required")
    consent(PHONE, "utility")  # another purpose's consent does not count
    refused(aws_stack, *send(PROMO), 403, "consent_required")


def test_stop_keyword_refuses_templates(aws_stack):
    consent(PHONE, "marketing")
    inbound(aws_stack, text=" Stop! ")
    refused(aws_stack, *send(PROMO), 403, "consent_required")


def test_erased_contact_is_suppressed_until_new_grant(aws_stack):
    inbound(aws_stack)
    consent(PHONE, "marketing")
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    f.drain(aws_stack.queues["send"])
    refused(aws_stack, *send(PROMO), 403, "consent_required")
    refused(aws_stack, *send(TEXT), 422, "outside_service_window")  # the erasure closed the window
    inbound(aws_stack, text="hello again")  # writing in again opens it: free-form replies go out
    assert send(TEXT)[0] == 202
    status, body = send(PROMO)
    assert (status, body["error"]) == (403, "consent_required")  # templates wait for a new grant
    consent(PHONE, "marketing")  # a new explicit grant lifts the suppression
    assert send(PROMO)[0] == 202


INVALID_BODIES = [
    {"purpose": "service", "text": {"body": "hi"}},
    {**TEXT, "purpose": "promo"},
    {**TEXT, "template": PROMO["template"]},
    {"to": PHONE, "purpose": "service"},
    {**TEXT, "text": {"body": ""}},
    {**TEXT, "text": {"body": "x" * 4097}},
    {**TEXT, "extra": 1},
    "not json",
    "[1, 2]",
]


def test_invalid_body_is_400(aws_stack):
    inbound(aws_stack)
    for body in INVALID_BODIES:
        refused(aws_stack, *send(body), 400, "invalid_body")


def test_invalid_contact_is_400(aws_stack):
    for to in ["+49 151 123", "abc", "12345", "+", "US.short"]:
        refused(aws_stack, *send({**TEXT, "to": to}), 400, "invalid_contact")


def test_enqueue_failure_removes_the_item_and_answers_503(aws_stack, monkeypatch):
    inbound(aws_stack)
    monkeypatch.setenv(c.ENV_SEND_QUEUE_URL, aws_stack.queues["send"] + "-missing")
    refused(aws_stack, *send(TEXT), 503, "unavailable")


def test_get_unknown_is_404(aws_stack):
    assert get("msg_" + "0" * 24) == (404, {"error": "not_found", "message": "no such message"})
    assert get("../etc")[0] == 404
    assert get("4915112345678")[0] == 404


# ---- idempotency -----------------------------------------------------------------------------------
def test_same_key_same_response_one_message(aws_stack):
    inbound(aws_stack)
    key = {"Idempotency-Key": "order-1042-reply"}
    first = send(TEXT, key)
    assert first[0] == 202
    assert send(TEXT, key) == first
    assert send(TEXT, {"idempotency-key": "order-1042-reply"}) == first  # header names are case-insensitive
    assert queued(aws_stack) == [{"message_id": first[1]["id"]}]
    assert len(outbound_items(aws_stack)) == 1


def test_same_key_different_body_is_422(aws_stack):
    inbound(aws_stack)
    key = {"Idempotency-Key": "k-1"}
    assert send(TEXT, key)[0] == 202
    status, body = send({**TEXT, "text": {"body": "something else"}}, key)
    assert (status, body["error"]) == (422, "idempotency_key_reused")
    assert len(queued(aws_stack)) == 1


def test_keys_are_scoped_to_the_caller(aws_stack):
    inbound(aws_stack)
    key = {"Idempotency-Key": "k-1"}
    a = send(TEXT, key)
    b = send(TEXT, key, caller="arn:aws:iam::123456789012:user/other")
    assert a[0] == b[0] == 202 and a[1]["id"] != b[1]["id"]


def test_refusals_are_not_remembered(aws_stack):
    key = {"Idempotency-Key": "k-2"}
    assert send(TEXT, key)[0] == 422
    inbound(aws_stack)
    assert send(TEXT, key)[0] == 202


def test_idempotency_record_key_matches_powertools(aws_stack):
    from domain import idempotency

    inbound(aws_stack)
    status, body = send(TEXT, {"Idempotency-Key": "match-me"})
    assert status == 202
    (record,) = aws_stack.items(c.TABLE_IDEMPOTENCY)
    (item,) = outbound_items(aws_stack)
    assert (item["idem_pk"], item["idem_sk"]) == (record["pk"], record["sk"])
    assert idempotency.record_key(f.CALLER_ARN, "match-me") == {
        "pk": record["pk"],
        "sk": record["sk"],
    }
    assert record["status"] == "COMPLETED" and json.loads(record["data"]) == body
    assert 0 < int(record["expires_at"]) - time.time() <= 86400 + 5  # idempotency retention: 1 day
    assert PHONE not in repr(record) and "ships" not in repr(record)


def test_erasure_deletes_the_idempotency_record(aws_stack):
    inbound(aws_stack)
    assert send(TEXT, {"Idempotency-Key": "erase-me"})[0] == 202
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    assert aws_stack.items(c.TABLE_IDEMPOTENCY) == []


def test_in_progress_is_409(aws_stack, monkeypatch):
    from domain import sending

    inbound(aws_stack)
    key = {"Idempotency-Key": "slow"}
    real = sending.accept
    nested: list = []

    def accept_while_retried(*args, **kwargs):
        nested.append(send(TEXT, key))  # the client retries while the first request runs
        return real(*args, **kwargs)

    monkeypatch.setattr(sending, "accept", accept_while_retried)
    assert send(TEXT, key)[0] == 202
    assert nested[0][0] == 409 and nested[0][1]["error"] == "idempotency_in_progress"


def test_bad_idempotency_key_is_400(aws_stack):
    inbound(aws_stack)
    for value in ["", " ", "x" * 256, "ключ"]:
        status, body = send(TEXT, {"Idempotency-Key": value})
        assert (status, body["error"]) == (400, "invalid_body")
    assert queued(aws_stack) == []


# ---- audit and logs --------------------------------------------------------------------------------
def test_every_request_is_audited_without_personal_data(aws_stack):
    inbound(aws_stack)
    _, body = send(TEXT)
    send(PROMO)
    get(body["id"])
    records = aws_stack.items(c.TABLE_AUDIT)
    seen = sorted((r["route"], r["outcome"]) for r in records if "messages" in r["route"])
    assert seen == [("GET /messages/{id}", "200"), ("POST /messages", "202"), ("POST /messages", "403")]
    assert all(r["actor"] == f.CALLER_ARN for r in records if "messages" in r["route"])
    assert PHONE not in repr(records)


def test_logs_carry_no_personal_data(aws_stack, caplog):
    caplog.set_level("DEBUG", logger="waguard")
    inbound(aws_stack)
    send(TEXT)
    send({**TEXT, "to": "+4915199999999"})
    logs = "\n".join(repr(vars(r)) for r in caplog.records if r.name.startswith("waguard"))
    assert "message queued" in logs
    for secret in (PHONE, "4915199999999", "ships today"):
        assert secret not in logs
