"""Conversations on moto: business events on the bus, contact references, the conversation route.

The aws_stack's bus copies every waguard event to a queue (`aws_stack.events()`), as the local runtime
routes the forwarding rule; the tests read the EventBridge envelopes from there.
"""

from __future__ import annotations

import json
import re

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from shared import constants as c
from shared import ids
from tests import factory as f
from waguard.paths import ROOT

PHONE = "4915112345678"
NAME = "Erika Mustermann"
REF_RE = re.compile(r"^ct_[a-z0-9]{20,}$")


@pytest.fixture
def graph(aws_stack, graph_api, monkeypatch):
    from shared import settings

    graph_api.reset()
    monkeypatch.setenv(c.ENV_GRAPH_API_URL, graph_api.base_url)
    monkeypatch.setenv(c.ENV_PHONE_NUMBER_ID, f.PHONE_NUMBER_ID)
    settings.reset()
    yield graph_api
    settings.reset()


def say(stack, text: str, phone: str = PHONE, **extra) -> str:
    wamid = f.wamid()
    body = f.webhook_body(
        messages=[f.text_message(phone, text, id=wamid, **extra)], contacts=[f.contact(phone, name=NAME)]
    )
    assert f.deliver(stack, body)["statusCode"] == 200
    return wamid


def reference(contact_key: str, phone: str = PHONE) -> str:
    return ids.reference_of(ids.contact_pseudonym(contact_key, phone))


def no_personal_data(envelopes, *secrets: str) -> None:
    text = json.dumps(envelopes, ensure_ascii=False)
    for secret in (PHONE, NAME, "wamid.", *secrets):
        assert secret not in text, secret


def of_type(envelopes, detail_type: str) -> list[dict]:
    return [e["detail"] for e in envelopes if e["detail-type"] == detail_type]


def send_queued(stack) -> None:
    """Run the sender on what the send queue holds, as the event-source mapping would."""
    from handlers import sender

    sqs = stack.client("sqs")
    got = sqs.receive_message(
        QueueUrl=stack.queues["send"], MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"]
    ).get("Messages", [])
    records = [
        {
            "messageId": m["MessageId"],
            "receiptHandle": m["ReceiptHandle"],
            "body": m["Body"],
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": m["Attributes"]["SentTimestamp"]},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-central-1:123456789012:waguard-send",
            "awsRegion": "eu-central-1",
        }
        for m in got
    ]
    assert sender.handler({"Records": records}, f.LambdaContext())["batchItemFailures"] == []


# ---- events ---------------------------------------------------------------------------------------
def test_an_inbound_message_is_published_by_reference_with_no_personal_data(aws_stack, contact_key) -> None:
    wamid = say(aws_stack, "Is my order ready?")
    envelopes = aws_stack.events()
    (detail,) = of_type(envelopes, c.EVENT_MESSAGE_RECEIVED)
    (envelope,) = envelopes
    assert envelope["source"] == "waguard" and envelope["resources"] == []
    assert detail["contact"] == reference(contact_key) and REF_RE.match(detail["contact"])
    assert detail["business_number"] == f.PHONE_NUMBER_ID
    message = detail["message"]
    assert message["type"] == "text" and message["text"] == "Is my order ready?"
    assert message["id"].startswith("in_") and wamid not in json.dumps(envelopes)
    assert detail["window_closes_at"] > message["at"]
    no_personal_data(envelopes)
    # A retry of Meta's is stored once; the message keeps its id.
    body = f.webhook_body(messages=[f.text_message(PHONE, "Is my order ready?", id=wamid)])
    f.deliver(aws_stack, body)
    again = of_type(aws_stack.events(), c.EVENT_MESSAGE_RECEIVED)
    assert [d["message"]["id"] for d in again] in ([], [message["id"]])


def test_keywords_consent_and_erasure_are_published(aws_stack, contact_key) -> None:
    ref = reference(contact_key)
    say(aws_stack, "START")
    assert of_type(aws_stack.events(), c.EVENT_CONSENT_CHANGED) == [
        {"contact": ref, "purpose": "marketing", "status": "granted", "source": "keyword"}
    ]
    say(aws_stack, "Stop!")
    envelopes = aws_stack.events()
    revoked = of_type(envelopes, c.EVENT_CONSENT_CHANGED)
    assert sorted(d["purpose"] for d in revoked) == sorted(c.CONSENT_PURPOSES)
    assert {d["status"] for d in revoked} == {"revoked"}
    (stop,) = of_type(envelopes, c.EVENT_MESSAGE_RECEIVED)
    assert stop["window_closes_at"] is None  # an opt-out opens no window
    put = f.call_contacts(
        "PUT", ref, "/consent", {"purpose": "utility", "status": "granted", "source": "crm"}
    )
    assert put["statusCode"] == 200
    assert of_type(aws_stack.events(), c.EVENT_CONSENT_CHANGED) == [
        {"contact": ref, "purpose": "utility", "status": "granted", "source": "crm"}
    ]
    erased = f.reply_json(f.call_contacts("DELETE", ref))
    envelopes = aws_stack.events()
    assert of_type(envelopes, c.EVENT_CONTACT_ERASED) == [
        {"contact": ref, "receipt_id": erased["receipt_id"]}
    ]
    no_personal_data(envelopes)


def test_a_reply_by_reference_reaches_meta_with_the_number_and_its_status_is_published(
    aws_stack, graph, contact_key
) -> None:
    say(aws_stack, "hello")
    aws_stack.events()
    ref = reference(contact_key)
    reply = f.call_messages(f.messages_post({"to": ref, "purpose": "service", "text": {"body": "Hi!"}}))
    assert reply["statusCode"] == 202, reply
    msg_id = f.reply_json(reply)["id"]
    send_queued(aws_stack)
    (call,) = graph.calls()
    assert call["body"]["to"] == PHONE
    envelopes = aws_stack.events()
    assert of_type(envelopes, c.EVENT_MESSAGE_STATUS) == [
        {"contact": ref, "business_number": f.PHONE_NUMBER_ID, "message": {"id": msg_id, "status": "sent"}}
    ]
    wamid = f.reply_json(f.call_messages(f.messages_get(msg_id)))["wamid"]
    no_personal_data(envelopes, wamid)


def test_a_reference_nobody_holds_cannot_be_sent_to(aws_stack, graph) -> None:
    ref = ids.reference_of("ab" * 32)
    reply = f.call_messages(f.messages_post({"to": ref, "purpose": "service", "text": {"body": "Hi"}}))
    assert reply["statusCode"] in (404, 422)
    assert graph.calls() == []


def test_a_refused_event_fails_the_record_and_is_told_on_redelivery(aws_stack, monkeypatch) -> None:
    from store import events

    class Refusing:
        def put_events(self, **_):
            raise RuntimeError("EventBridge unavailable")

    body = f.webhook_body(messages=[f.text_message(PHONE, "lost?")])
    assert f.call_webhook(f.webhook_post(body, f.APP_SECRET))["statusCode"] == 200
    bodies = f.drain(aws_stack.queues["inbound"])
    with monkeypatch.context() as patched:
        patched.setattr(events, "_client", Refusing)
        patched.setattr(events, "BACKOFF_SECONDS", 0)
        with pytest.raises(BatchProcessingError):  # every record failed: the invocation fails, SQS keeps it
            f.run_processor(bodies)
    assert of_type(aws_stack.events(), c.EVENT_MESSAGE_RECEIVED) == []
    stored = [i for i in aws_stack.items(c.TABLE_MESSAGES) if str(i[c.SK]).startswith("IN#")]
    assert len(stored) == 1  # stored before it was told: a reply by reference finds the contact
    assert f.run_processor(bodies) == {"batchItemFailures": []}  # SQS delivers the record again
    assert [d["message"]["text"] for d in of_type(aws_stack.events(), c.EVENT_MESSAGE_RECEIVED)] == ["lost?"]
    assert len([i for i in aws_stack.items(c.TABLE_MESSAGES) if str(i[c.SK]).startswith("IN#")]) == 1


def test_the_event_is_told_only_once_the_contact_resolves(aws_stack, monkeypatch) -> None:
    """What a bot does on `message.received`: reply by the event's reference. It must find the contact."""
    from domain import events as domain_events
    from store import contacts

    seen: list[bool] = []
    real = domain_events.publish

    def publish_and_look(told):
        for kind, detail in told:
            if kind == c.EVENT_MESSAGE_RECEIVED:
                seen.append(contacts.identity(detail["contact"]).resolved)
        real(told)

    monkeypatch.setattr(domain_events, "publish", publish_and_look)
    body = f.webhook_body(messages=[f.text_message(PHONE, "first words")])
    assert f.call_webhook(f.webhook_post(body, f.APP_SECRET))["statusCode"] == 200
    assert f.run_processor(f.drain(aws_stack.queues["inbound"])) == {"batchItemFailures": []}
    assert seen == [True]


# ---- the conversation -----------------------------------------------------------------------------
def conversation(contact: str, **query: str) -> tuple[int, dict]:
    from urllib.parse import quote

    event = f.rest_event(
        "GET",
        "/contacts/{contact}/messages",
        path=f"/contacts/{quote(contact, safe='')}/messages",
        path_params={"contact": quote(contact, safe="")},
        query=query or None,
    )
    from handlers import contacts_api

    reply = contacts_api.handler(event, f.LambdaContext())
    return reply["statusCode"], f.reply_json(reply)


def test_the_conversation_pages_both_directions_by_reference(aws_stack, graph, contact_key) -> None:
    ref = reference(contact_key)
    import time

    for n in range(3):
        say(aws_stack, f"question {n}", timestamp=str(int(time.time()) - 100 + n))
    reply = f.call_messages(f.messages_post({"to": ref, "purpose": "service", "text": {"body": "answer"}}))
    assert reply["statusCode"] == 202
    status, page = conversation(ref)
    assert status == 200 and page["contact"] == ref and "next" not in page
    texts = [(m["direction"], m["text"]) for m in page["messages"]]
    assert texts == [("in", "question 0"), ("in", "question 1"), ("in", "question 2"), ("out", "answer")]
    assert page["messages"][-1]["status"] == "queued"
    assert all(m["business_number"] for m in page["messages"])
    no_personal_data(page)
    status, first = conversation(ref, limit="2")
    assert [m["text"] for m in first["messages"]] == ["question 2", "answer"] and first["next"]
    status, second = conversation(ref, limit="2", before=first["next"])
    assert [m["text"] for m in second["messages"]] == ["question 0", "question 1"] and "next" not in second
    assert conversation(PHONE)[1]["contact"] == ref  # the number works too, the answer names the reference


def test_messages_of_one_second_keep_the_order_they_came_in(aws_stack, graph, contact_key) -> None:
    """Meta's timestamps have whole seconds; their keys (hashes of random wamids) have no order."""
    ref, second = reference(contact_key), str(int(f.now_ts()))
    said = [f"answer {n}" for n in range(6)]
    for text in said:
        say(aws_stack, text, timestamp=second)
    status, page = conversation(ref)
    assert status == 200 and [m["text"] for m in page["messages"]] == said
    pages, cursor = [], None  # pages of two cut inside the second: none lost, none repeated
    while True:
        status, got = conversation(ref, limit="2", **({"before": cursor} if cursor else {}))
        pages[:0] = [m["text"] for m in got["messages"]]
        if not (cursor := got.get("next")):
            break
    assert pages == said
    export = f.reply_json(f.call_contacts("GET", PHONE, "/export"))
    assert [m["text"] for m in export["messages"]] == said


@pytest.mark.parametrize("query", [{"limit": "0"}, {"limit": "201"}, {"limit": "x"}, {"before": "!!"}])
def test_a_bad_page_query_is_400(aws_stack, query) -> None:
    say(aws_stack, "hi")
    status, body = conversation(PHONE, **query)
    assert (status, body["error"]) == (400, "invalid_query")


def test_the_conversation_of_an_unknown_or_erased_contact_is_404(aws_stack) -> None:
    assert conversation("4915199999999")[0] == 404
    say(aws_stack, "forget me")
    assert f.call_contacts("DELETE", PHONE)["statusCode"] == 200
    assert conversation(PHONE)[0] == 404


# ---- the event catalogue: what the code emits conforms to the published JSON Schemas ---------------
SCHEMAS = ROOT / "docs" / "events" / "schemas"


PRIVACY_EVENTS = (
    c.EVENT_CONTACT_RESTRICTED,
    c.EVENT_CONTACT_UNRESTRICTED,
    c.EVENT_PRIVACY_OPENED,
    c.EVENT_PRIVACY_COMPLETED,
    c.EVENT_PRIVACY_OVERDUE,
)


def _validator(detail_type: str):
    from jsonschema import Draft202012Validator

    schema = json.loads((SCHEMAS / f"{detail_type}.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_every_emitted_event_conforms_to_its_schema(aws_stack, graph, contact_key) -> None:
    ref = reference(contact_key)
    first = say(aws_stack, "hello")
    reply = f.call_messages(f.messages_post({"to": ref, "purpose": "service", "text": {"body": "Hi!"}}))
    msg_id = f.reply_json(reply)["id"]
    send_queued(aws_stack)
    wamid = f.reply_json(f.call_messages(f.messages_get(msg_id)))["wamid"]
    kinds = [
        f.message(
            PHONE,
            "interactive",
            {"interactive": {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}},
            context={"from": "15550001111", "id": wamid},
        ),
        f.message(PHONE, "reaction", {"reaction": {"message_id": first, "emoji": "👍"}}),
        f.message(
            PHONE,
            "image",
            {"image": {"id": "987654321", "mime_type": "image/jpeg", "caption": "the broken part"}},
        ),
        f.message(
            PHONE,
            "document",
            {"document": {"id": "123123", "mime_type": "application/pdf", "filename": "invoice.pdf"}},
        ),
        f.text_message(PHONE, "STOP"),
    ]
    assert (
        f.deliver(aws_stack, f.webhook_body(messages=kinds, contacts=[f.contact(PHONE)]))["statusCode"] == 200
    )
    statuses = [f.status(wamid, "delivered", PHONE), f.status(wamid, "read", PHONE)]
    assert f.deliver(aws_stack, f.webhook_body(statuses=statuses))["statusCode"] == 200
    f.call_contacts("PUT", ref, "/consent", {"purpose": "utility", "status": "granted", "source": "crm"})
    f.call_contacts("DELETE", ref)
    assert f.deliver(aws_stack, f.template_status("spring_sale", "PAUSED"))["statusCode"] == 200
    envelopes = aws_stack.events()
    seen = {e["detail-type"] for e in envelopes}
    # The privacy operations' events have their own flow (tests/integration/test_privacy_requests.py,
    # which checks them against the same schemas).
    # So have the campaigns' (tests/integration/test_campaigns.py).
    campaign_events = {c.EVENT_CAMPAIGN_STARTED, c.EVENT_CAMPAIGN_COMPLETED}
    assert seen == set(c.EVENT_TYPES) - set(PRIVACY_EVENTS) - campaign_events
    for envelope in envelopes:
        errors = [e.message for e in _validator(envelope["detail-type"]).iter_errors(envelope["detail"])]
        assert not errors, (envelope["detail-type"], errors)
    received = {d["message"]["type"]: d["message"] for d in of_type(envelopes, c.EVENT_MESSAGE_RECEIVED)}
    assert received["interactive"]["interactive"] == {"id": "yes", "title": "Yes"}
    assert received["interactive"]["reply_to"] == msg_id  # the business's own message, by waguard's id
    assert received["reaction"]["reaction"]["emoji"] == "👍"
    assert received["image"]["media"]["id"].startswith("med_") and "987654321" not in json.dumps(envelopes)
    assert received["document"]["media"]["filename"] == "invoice.pdf"
    moved = [d["message"]["status"] for d in of_type(envelopes, c.EVENT_MESSAGE_STATUS)]
    assert moved == ["sent", "delivered", "read"]
    no_personal_data(envelopes, wamid, first)


def test_the_catalogue_examples_conform_to_their_schemas() -> None:
    examples = sorted((ROOT / "docs" / "events" / "examples").glob("*.json"))
    assert {p.stem for p in examples} == set(c.EVENT_TYPES) | set(c.OPERATIONAL_EVENT_TYPES)
    for path in examples:
        event = json.loads(path.read_text())
        assert event["detail-type"] == path.stem and event["source"] == "waguard"
        assert not list(_validator(path.stem).iter_errors(event["detail"])), path.name
