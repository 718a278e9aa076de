"""Campaigns on the moto stack against the fake Graph API, through the campaigns-api handler and the sender:
validation, a mixed audience with its skipped reasons, the consented audience (GSI by_grant), exactly once
under redelivered steps and messages, the send-time gate (STOP), cancel, pause and resume, scheduling."""

from __future__ import annotations

import json
import time

import pytest

from shared import constants as c
from tests import factory as f
from tests.integration.test_sender_flow import receive, run_sender

PHONE_NUMBER_ID = "106540352242922"
A, B, E, G = "4915100000001", "4915100000002", "4915100000005", "4915100000007"
PROMO = {"name": "spring_sale", "language": {"code": "en_US"}}


@pytest.fixture
def fake(aws_stack, graph_api, monkeypatch):
    from domain import campaign_steps, idempotency
    from shared import settings
    from store import outbound

    graph_api.reset()
    monkeypatch.setenv(c.ENV_GRAPH_API_URL, graph_api.base_url)
    monkeypatch.setenv(c.ENV_PHONE_NUMBER_ID, PHONE_NUMBER_ID)
    monkeypatch.setenv(c.ENV_RETRY_BASE_SECONDS, "1")
    monkeypatch.setenv(c.ENV_CAMPAIGN_RATE, "50")
    monkeypatch.setattr(campaign_steps, "STEP_DELAY_SECONDS", 0)
    monkeypatch.setattr(campaign_steps, "POLL_DELAY_SECONDS", 0)
    settings.reset()
    idempotency.reset()
    outbound.reset()
    yield graph_api
    graph_api.reset()
    settings.reset()


def call(method: str, path: str, body: dict | None = None, query: dict | None = None) -> tuple[int, dict]:
    from handlers import campaigns_api

    parts = path.strip("/").split("/")
    resource = "/campaigns" + ("/{id}" if len(parts) > 1 else "") + ("/" + parts[2] if len(parts) > 2 else "")
    event = f.rest_event(
        method,
        resource,
        path=path,
        body=body,
        headers={"Content-Type": "application/json"} if body is not None else {},
        path_params={"id": parts[1]} if len(parts) > 1 else None,
        query=query,
    )
    reply = campaigns_api.handler(event, f.LambdaContext())
    return reply["statusCode"], json.loads(reply["body"])


def grant(phone: str, purpose: str = "marketing", status: str = "granted") -> None:
    body = {"purpose": purpose, "status": status, "source": "web_form"}
    assert f.call_contacts("PUT", phone, "/consent", body)["statusCode"] == 200


def drive(stack, rounds: int = 60, redeliver: bool = False) -> int:
    """Run the sender on the send queue until it is empty; `redeliver`: every record twice (SQS at least
    once). Returns the records handled."""
    handled = 0
    for _ in range(rounds):
        records = receive(stack, visibility_timeout=1)
        if not records:
            time.sleep(0.2)
            if not receive_pending(stack):
                return handled
            continue
        run_sender(*records)
        if redeliver:
            run_sender(*records)
        for r in records:
            stack.client("sqs").delete_message(
                QueueUrl=stack.queues["send"], ReceiptHandle=r["receiptHandle"]
            )
        handled += len(records)
    return handled


def receive_pending(stack) -> bool:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=stack.queues["send"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"],
    )["Attributes"]
    return any(int(v) for v in attrs.values())


def granted_campaign(phones: list[str]) -> str:
    """A campaign to `phones`, each of whom granted marketing consent: its id."""
    for phone in phones:
        grant(phone)
    return create({"contacts": [{"to": p} for p in phones]})


def create(audience: dict, **extra) -> str:
    status, body = call(
        "POST", "/campaigns", {"name": "December", "template": PROMO, "audience": audience, **extra}
    )
    assert status == 202, body
    assert body["id"].startswith("cp_")
    return body["id"]


def test_invalid_campaigns_are_refused_and_nothing_is_created(fake, aws_stack) -> None:
    before = len(aws_stack.items(c.TABLE_MESSAGES))
    bad = [
        (
            {
                "name": "x",
                "template": {"name": "nope", "language": {"code": "en_US"}},
                "audience": {"consented": True},
            },
            400,
        ),
        (
            {
                "name": "x",
                "template": {
                    **PROMO,
                    "components": [{"type": "body", "parameters": [{"type": "text", "text": "1"}]}],
                },
                "audience": {"consented": True},
            },
            400,
        ),
        (
            {
                "name": "x",
                "template": PROMO,
                "audience": {"consented": True},
                "send_at": "2001-01-01T00:00:00Z",
            },
            400,
        ),
        (
            {
                "name": "x",
                "template": PROMO,
                "audience": {"consented": True},
                "send_at": "2099-01-01T00:00:00Z",
            },
            400,
        ),
        ({"name": "x", "template": PROMO, "audience": {"contacts": []}}, 400),
        ({"name": "x", "template": PROMO, "audience": {"contacts": [{"to": A}], "consented": True}}, 400),
    ]
    for body, code in bad:
        status, reply = call("POST", "/campaigns", body)
        assert status == code, (body, reply)
    assert len(aws_stack.items(c.TABLE_MESSAGES)) == before
    assert call("GET", "/campaigns")[1] == {"campaigns": []}


def test_mixed_audience_sends_once_and_counts_every_skipped_reason(fake, aws_stack, contact_key) -> None:
    from shared import ids

    grant(A)
    grant(E)
    assert f.call_contacts("PUT", E, "/restriction", {"restricted": True})["statusCode"] == 200
    grant(G)
    assert f.call_contacts("DELETE", G)["statusCode"] == 200
    ref_a = ids.reference_of(ids.contact_pseudonym(contact_key, A))
    audience = {
        "contacts": [{"to": A}, {"to": B}, {"to": "not-a-number"}, {"to": ref_a}, {"to": E}, {"to": G}]
    }
    cid = create(audience)
    drive(aws_stack, redeliver=True)
    status, view = call("GET", f"/campaigns/{cid}")
    assert status == 200 and view["status"] == "completed", view
    counts = view["counts"]
    assert counts["recipients"] == 6 and counts["sent"] == 1 and counts["skipped"] == 5
    assert counts["skipped_by"] == {
        "no_consent": 1,
        "erased": 1,
        "restricted": 1,
        "invalid_contact": 1,
        "duplicate": 1,
        "frequency_cap": 0,
    }
    assert (
        sum(counts[b] for b in ("pending", "sent", "delivered", "read", "failed", "skipped", "cancelled"))
        == 6
    )
    (graph_call,) = fake.calls()  # one message, although every record was delivered twice
    assert graph_call["body"]["to"] == A
    rows = call("GET", f"/campaigns/{cid}/recipients", query={"status": "sent"})[1]["recipients"]
    assert [r["contact"] for r in rows] == [ref_a]
    message = f.reply_json(f.call_messages(f.messages_get(rows[0]["message_id"])))
    assert message["status"] == "sent"
    stored = json.dumps(
        [i for i in aws_stack.items(c.TABLE_MESSAGES) if str(i["pk"]).startswith("CAMPAIGN")], default=str
    )
    assert A not in stored and B not in stored and E not in stored  # references only
    told = aws_stack.events()
    kinds = [e["detail-type"] for e in told]
    assert c.EVENT_CAMPAIGN_STARTED in kinds and c.EVENT_CAMPAIGN_COMPLETED in kinds
    statuses = [e["detail"] for e in told if e["detail-type"] == c.EVENT_MESSAGE_STATUS]
    assert statuses and all(d.get("campaign") == cid for d in statuses)
    from tests.integration.test_conversations import _validator

    for envelope in told:  # docs/events schemas, the campaign field and the campaign events included
        errors = [e.message for e in _validator(envelope["detail-type"]).iter_errors(envelope["detail"])]
        assert not errors, (envelope["detail-type"], errors)


def test_consented_audience_reads_the_grants_index(fake, aws_stack) -> None:
    for phone in (A, B, E):
        grant(phone)
    grant(B, status="revoked")
    cid = create({"consented": True})
    drive(aws_stack)
    view = call("GET", f"/campaigns/{cid}")[1]
    assert view["status"] == "completed"
    assert sorted(call["body"]["to"] for call in fake.calls()) == [A, E]
    assert view["counts"]["sent"] == 2 and view["counts"]["skipped_by"]["no_consent"] == 1


def test_stop_between_preparation_and_send_skips_the_recipient(fake, aws_stack) -> None:
    grant(A)
    grant(E)
    cid = create({"contacts": [{"to": A}, {"to": E}]})
    records = receive(aws_stack)
    run_sender(*records)  # the preparation step: both messages queued
    grant(E, status="revoked")  # as a STOP would
    drive(aws_stack)
    view = call("GET", f"/campaigns/{cid}")[1]
    assert [call["body"]["to"] for call in fake.calls()] == [A]
    assert view["counts"]["sent"] == 1 and view["counts"]["skipped_by"]["no_consent"] == 1


def test_cancel_sends_nothing_more(fake, aws_stack) -> None:
    grant(A)
    cid = create({"contacts": [{"to": A}]})
    run_sender(*receive(aws_stack))  # prepared and queued, not yet sent
    status, view = call("POST", f"/campaigns/{cid}/cancel")
    assert status == 200 and view["status"] == "cancelled"
    drive(aws_stack)
    assert fake.calls() == []
    assert call("GET", f"/campaigns/{cid}")[1]["counts"]["cancelled"] == 1
    assert call("POST", f"/campaigns/{cid}/cancel")[0] == 409


def test_a_template_that_stops_being_approved_pauses_and_resume_needs_it_approved(fake, aws_stack) -> None:
    grant(A)
    cid = create({"contacts": [{"to": A}]})
    run_sender(*receive(aws_stack))
    f.deliver(aws_stack, f.template_status("spring_sale", "PAUSED"))
    assert call("GET", f"/campaigns/{cid}")[1]["status"] == "paused"  # at once, by the webhook
    drive(aws_stack)
    assert fake.calls() == []
    assert call("GET", f"/campaigns/{cid}")[1]["status"] == "paused"
    assert call("POST", f"/campaigns/{cid}/resume")[0] == 409
    f.deliver(aws_stack, f.template_status("spring_sale", "APPROVED"))
    status, view = call("POST", f"/campaigns/{cid}/resume")
    assert status == 200 and view["status"] == "running"
    drive(aws_stack)
    assert len(fake.calls()) == 1
    assert call("GET", f"/campaigns/{cid}")[1]["status"] == "completed"


def test_a_scheduled_campaign_starts_when_due(fake, aws_stack) -> None:
    from datetime import UTC, datetime, timedelta

    from domain import campaigns

    grant(A)
    at = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    cid = create({"contacts": [{"to": A}]}, send_at=at)
    assert call("GET", f"/campaigns/{cid}")[1]["status"] == "scheduled"
    assert campaigns.start_due() == {"started": 0}
    assert campaigns.start_due(int(time.time()) + 301) == {"started": 1}
    drive(aws_stack)
    assert len(fake.calls()) == 1 and call("GET", "/campaigns")[1]["campaigns"][0]["status"] == "completed"


def test_a_step_killed_mid_page_and_redelivered_sends_each_recipient_once(
    fake, aws_stack, monkeypatch
) -> None:
    """The sender dies after queueing some of a page's messages (here: the page's batch queues two of them,
    then the function dies): the step's record is retried, the page prepared again, and every recipient is
    still sent exactly once."""
    from store import outbound

    phones = [f"49151000001{i:02d}" for i in range(6)]
    cid = granted_campaign(phones)
    real = outbound.enqueue_many
    seen: list[int] = []

    def dies_once(msg_ids: list[str], *args, **kwargs) -> None:
        seen.append(1)
        if len(seen) == 1:
            real(msg_ids[:2], *args, **kwargs)
            raise RuntimeError("the function was killed")
        real(msg_ids, *args, **kwargs)

    monkeypatch.setattr(outbound, "enqueue_many", dies_once)
    (record,) = receive(aws_stack, visibility_timeout=0)
    assert run_sender(record) == [record["messageId"]]  # reported failed: SQS delivers it again
    assert seen == [1]
    monkeypatch.setattr(outbound, "enqueue_many", real)
    drive(aws_stack, redeliver=True)
    view = call("GET", f"/campaigns/{cid}")[1]
    assert view["status"] == "completed" and view["counts"]["sent"] == 6
    assert sorted(call["body"]["to"] for call in fake.calls()) == sorted(phones)


def test_the_frequency_cap_skips_a_contact_who_had_enough_marketing(fake, aws_stack, monkeypatch) -> None:
    from shared import settings

    monkeypatch.setenv(c.ENV_MARKETING_CAP, "1/30")
    settings.reset()
    grant(A)
    grant(E)
    first = create({"contacts": [{"to": A}]})
    drive(aws_stack)
    assert call("GET", f"/campaigns/{first}")[1]["counts"]["sent"] == 1
    second = create({"contacts": [{"to": A}, {"to": E}]})
    drive(aws_stack)
    counts = call("GET", f"/campaigns/{second}")[1]["counts"]
    assert counts["sent"] == 1 and counts["skipped_by"]["frequency_cap"] == 1
    assert [call["body"]["to"] for call in fake.calls()] == [A, E]


def test_a_campaign_cancelled_before_its_preparation_counts_every_entry_cancelled(fake, aws_stack) -> None:
    grant(A)
    grant(E)
    cid = create({"contacts": [{"to": A}, {"to": E}, {"to": B}]})
    assert call("GET", f"/campaigns/{cid}")[1]["counts"]["pending"] == 3  # not prepared yet: pending
    assert call("POST", f"/campaigns/{cid}/cancel")[0] == 200
    drive(aws_stack)
    counts = call("GET", f"/campaigns/{cid}")[1]["counts"]
    assert counts["recipients"] == 3 and counts["cancelled"] == 3 and fake.calls() == []
    assert call("POST", f"/campaigns/{cid}/resume")[0] == 409


def test_a_sender_killed_mid_batch_and_restarted_sends_each_recipient_once(
    fake, aws_stack, monkeypatch
) -> None:
    """The sender's process dies in the middle of a batch of campaign messages (at its fourth send, before
    that send's lease): the sends finished before stay done, the batch's records (never deleted) come back
    when their visibility ends, and each recipient gets exactly one message, counted once."""
    from domain import delivery

    phones = [f"49151000002{i:02d}" for i in range(8)]
    cid = granted_campaign(phones)
    real = delivery._lease
    leases: list[int] = []

    def dies_at_the_fourth(*args, **kwargs):
        leases.append(1)
        if len(leases) == 4:
            raise SystemExit("the sender's process was killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(delivery, "_lease", dies_at_the_fourth)
    killed, sent_before = 0, 0
    for _ in range(60):
        records = receive(aws_stack, visibility_timeout=1)
        if not records:
            time.sleep(0.2)
            continue
        try:
            run_sender(*records)
        except SystemExit:
            killed, sent_before = 1, len(fake.calls())
            break
    assert killed == 1 and 3 <= sent_before < len(phones)  # some sent, some not, when it died
    time.sleep(1.2)  # the killed invocation's records come back
    drive(aws_stack, redeliver=True)
    view = call("GET", f"/campaigns/{cid}")[1]
    assert view["status"] == "completed" and view["counts"]["sent"] == len(phones)
    assert sorted(sent["body"]["to"] for sent in fake.calls()) == sorted(phones)  # each once
