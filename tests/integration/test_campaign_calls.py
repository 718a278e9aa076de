"""Issue 23's call budget for a campaign message, where it can fail: the recipient's bucket moves inside the
writes that move its message (the sender's `sent`, the status webhooks' own write), and a recipient that
is not where its message says is moved all the same (the write made again without it, `move` deciding)."""

from __future__ import annotations

from shared import constants as c
from tests import factory as f
from tests.integration.test_campaign_counts import _same, _wamid_to
from tests.integration.test_campaign_throttling import drive
from tests.integration.test_campaigns import A, call, create, fake, grant
from tests.integration.test_sender_flow import receive, run_sender

__all__ = ["fake"]  # the fixture, imported for pytest


def _line(cid: str) -> tuple[str, dict]:
    from store import campaigns as store

    (line,) = [i for i in store.recipients(cid) if not str(i[c.SK]).endswith("~")]
    return str(line[c.SK])[len(store.RECIPIENT) :], line


def test_the_recipient_follows_its_message_inside_the_messages_own_writes(fake, aws_stack) -> None:
    from bench.meter import Meter
    from store import events

    grant(A)
    cid = create({"contacts": [{"to": A}]})
    run_sender(*receive(aws_stack))  # the preparation step: the message created and queued
    with Meter(keep_params=True) as meter:
        events.reset()
        drive(aws_stack)  # the send
    read = {str(p["Key"]["sk"]["S"]) for _, op, p in meter.log if op == "GetItem"}
    assert not read & {"PROFILE", "RESTRICTION", "SUPPRESSED"}  # the gate's items: the set's one batch
    assert _line(cid)[1]["status"] == "sent"
    assert _same(cid)["sent"] == 1
    # the lease with the campaign's active check; the wamid, `sent` and the recipient's move
    assert meter.count("dynamodb", "TransactWriteItems") == 2
    wamid = _wamid_to(fake, A)
    with Meter() as meter:
        events.reset()
        f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, "sent", A)]))  # warms the key
        body = f.webhook_body(statuses=[f.status(wamid, s, A) for s in ("delivered", "read")])
        assert f.call_webhook(f.webhook_post(body, f.APP_SECRET))["statusCode"] == 200
        bodies = f.drain(aws_stack.queues["inbound"])
        meter.reset()
        assert f.run_processor(bodies) == {"batchItemFailures": []}
    # one write for both statuses, the message's move and its recipient's; one to mark them done
    assert meter.count("dynamodb", "TransactWriteItems") == 2
    assert meter.count("dynamodb", "UpdateItem") == 0
    assert _line(cid)[1]["status"] == "read"
    counts = _same(cid)
    assert counts["read"] == 1 and counts["sent"] == 0 and counts["delivered"] == 0
    assert f.run_processor(bodies) == {"batchItemFailures": []}  # Meta's retry moves no counter twice
    assert _same(cid)["read"] == 1


def test_a_recipient_not_where_its_message_says_is_moved_all_the_same(fake, aws_stack) -> None:
    from store import campaigns as store

    grant(A)
    cid = create({"contacts": [{"to": A}]})
    run_sender(*receive(aws_stack))
    key, _ = _line(cid)
    # Not `pending` when its message is sent (as a line left behind by a crash of an older version)
    assert store.move(cid, key, "skipped", only_from="pending", skipped_by="no_consent")
    drive(aws_stack)
    assert _line(cid)[1]["status"] == "sent"  # moved by `move` after the write made without it
    assert _same(cid)["sent"] == 1
    # Ahead of its message: `delivered` while the message is `sent`; one status, then two together
    assert store.move(cid, key, "delivered")
    wamid = _wamid_to(fake, A)
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status(wamid, "read", A)]))
    assert _line(cid)[1]["status"] == "read"
    counts = _same(cid)
    assert counts["read"] == 1 and counts["delivered"] == 0 and counts["skipped"] == 0


def test_statuses_listed_together_over_a_recipient_ahead_go_one_by_one(fake, aws_stack) -> None:
    from store import campaigns as store
    from store import outbound

    grant(A)
    cid = create({"contacts": [{"to": A}]})
    drive(aws_stack)
    key, _ = _line(cid)
    assert store.move(cid, key, "delivered")  # the message itself is still `sent`
    wamid = _wamid_to(fake, A)
    body = f.webhook_body(statuses=[f.status(wamid, s, A) for s in ("delivered", "read")])
    f.deliver(aws_stack, body)  # the joint write's recipient move fails: one by one, `move` deciding
    assert _line(cid)[1]["status"] == "read"
    assert _same(cid)["read"] == 1
    (item,) = outbound.with_wamid(_wamid_hash(wamid))
    assert item["status"] == "read"


def _wamid_hash(wamid: str) -> str:
    from store import contacts

    return contacts.wamid_hash(wamid)


def test_a_pending_recipients_line_pointer_count_and_message_are_one_write(fake, aws_stack) -> None:
    from bench.meter import Meter
    from store import campaigns as store

    grant(A)
    cid = create({"contacts": [{"to": A}]})
    records = receive(aws_stack)
    with Meter(keep_params=True) as meter:
        run_sender(*records)  # the preparation step
    assert meter.count("dynamodb", "TransactWriteItems") == 1
    assert meter.count("dynamodb", "PutItem") == 0
    # the recipient's set, PROFILE, restriction and suppression in one read (no GetItem of its own)
    assert meter.count("dynamodb", "BatchGetItem") == 1
    read = {str(p["Key"]["sk"]["S"]) for _, op, p in meter.log if op == "GetItem"}
    assert not read & {"PROFILE", "RESTRICTION", "SUPPRESSED"} and {"META", "spring_sale#en_US"} <= read
    key, line = _line(cid)
    assert line["status"] == "pending" and line["message_id"].startswith("msg_")
    pointers = [i for i in aws_stack.items(c.TABLE_MESSAGES) if str(i[c.SK]).startswith(f"CP#{cid}#R#")]
    assert [p["camp_sk"] for p in pointers] == [store.RECIPIENT + key]
    run_sender(*records)  # the step redelivered: nothing written twice, the message queued again
    assert _same(cid)["pending"] == 1
    drive(aws_stack)
    assert len([x for x in fake.calls() if x["status"] == 200]) == 1
    assert _same(cid)["sent"] == 1


def test_a_message_left_without_its_line_gets_its_line_and_is_sent_once(fake, aws_stack) -> None:
    from domain import campaign_steps
    from shared import ids
    from store import campaigns as store
    from store import contacts

    grant(A)
    cid = create({"contacts": [{"to": A}]})
    meta = store.get(cid)
    identity = contacts.identity(str(store.entries(cid, 0, 1)[0]["to_ref"]), strict=False)
    person = ids.reference_of(min(identity.hashes))
    campaign_steps._create(meta, identity, person, dict(meta["template"]), None)  # as an older version
    drive(aws_stack)
    key, line = _line(cid)
    assert key == person and line["status"] == "sent"
    assert line["message_id"] == campaign_steps.message_id(cid, person)
    assert len([x for x in fake.calls() if x["status"] == 200]) == 1
    assert _same(cid)["sent"] == 1


def test_a_cancel_or_pause_the_sender_has_not_seen_yet_is_seen_by_the_lease(fake, aws_stack) -> None:
    import time

    from domain import campaign_steps, sending
    from store import campaigns as store

    grant(A)
    cid = create({"contacts": [{"to": A}]})
    run_sender(*receive(aws_stack))  # prepared: the message queued
    msg_id = campaign_steps.message_id(cid, _line(cid)[0])
    assert store.set_status(cid, "paused", ("preparing", "running"))
    campaign_steps._active_seen[cid] = time.monotonic()  # this container read it active a moment ago
    drive(aws_stack)
    assert fake.calls() == [] and sending.view(msg_id)["status"] == "queued"  # held by the lease's check
    assert call("POST", f"/campaigns/{cid}/resume")[0] == 200
    drive(aws_stack)
    assert len(fake.calls()) == 1 and _same(cid)["sent"] == 1

    other = create({"contacts": [{"to": A}]})
    run_sender(*receive(aws_stack))
    msg_id = campaign_steps.message_id(other, _line(other)[0])
    assert store.set_status(other, "cancelled", ("preparing", "running"))  # its recipients not moved yet
    campaign_steps._active_seen[other] = time.monotonic()
    drive(aws_stack)
    assert len(fake.calls()) == 1  # nothing more sent
    view = sending.view(msg_id)
    assert view["status"] == "failed" and view["error"]["code"] == "campaign_cancelled"
    assert _same(other)["cancelled"] == 1


def test_a_campaigns_template_is_read_once_for_its_sends_and_a_change_is_seen(fake, aws_stack) -> None:
    from bench.meter import Meter
    from store import templates

    phones = [A, "4915100000011", "4915100000012"]
    for phone in phones:
        grant(phone)
    cid = create({"contacts": [{"to": p} for p in phones]})
    with Meter(keep_params=True) as meter:
        run_sender(*receive(aws_stack))  # prepared: three messages queued
        drive(aws_stack)
    reads = [p for _, op, p in meter.log if op == "GetItem" and p["Key"]["sk"]["S"] == "spring_sale#en_US"]
    assert len(reads) == 1  # the page's read serves the three sends (an APPROVED entry, trusted 2 s)
    assert _same(cid)["sent"] == 3
    # A template that left APPROVED is read again at once by the container that stored it
    grant("4915100000013")
    other = create({"contacts": [{"to": "4915100000013"}]})
    run_sender(*receive(aws_stack))  # prepared while APPROVED
    templates.put({**templates.get("spring_sale", "en_US"), "status": "PAUSED"})
    drive(aws_stack)
    assert call("GET", f"/campaigns/{other}")[1]["status"] == "paused"  # the send-time gate paused it
    assert len(fake.calls()) == 3


def test_a_campaign_messages_queue_body_names_its_recipient_by_reference_read_with_the_message(
    fake, aws_stack
) -> None:
    import json

    from bench.meter import Meter
    from store import events

    grant(A)
    cid = create({"contacts": [{"to": A}]})
    run_sender(*receive(aws_stack))  # prepared
    (record,) = [r for r in receive(aws_stack) if "message_id" in r["body"]]  # beside the next step
    body = json.loads(record["body"])
    key, _ = _line(cid)
    assert body == {"message_id": _line(cid)[1]["message_id"], "contact": key}  # a `ct_` reference only
    assert A not in record["body"]
    with Meter() as meter:
        events.reset()
        assert run_sender(record) == []
    # the message, the set, its gate items and its consent summary: one batch; no ledger Query
    assert meter.count("dynamodb", "Query") == 0
    assert meter.count("dynamodb", "BatchGetItem") == 1
    assert _line(cid)[1]["status"] == "sent" and len(fake.calls()) == 1


def test_a_lease_refused_with_no_lease_held_is_tried_again_a_second_later(
    fake, aws_stack, monkeypatch
) -> None:
    import json
    import time

    from domain import delivery
    from store import outbound

    grant(A)
    create({"contacts": [{"to": A}]})
    run_sender(*receive(aws_stack))
    (record,) = [r for r in receive(aws_stack) if "message_id" in r["body"]]
    body = json.loads(record["body"])
    real = outbound.claim
    monkeypatch.setattr(outbound, "claim", lambda *a, **k: None)  # as a TransactionConflict answers
    got = delivery.deliver(body["message_id"], 1, time.time(), "token", contact=body["contact"])
    assert (got.result, got.delay) == ("deferred", delivery.RATE_DEFER_SECONDS)
    monkeypatch.setattr(outbound, "claim", real)
    assert fake.calls() == []
    got = delivery.deliver(body["message_id"], 2, time.time(), "token", contact=body["contact"])
    assert got.result == "sent" and len(fake.calls()) == 1


def test_statuses_listed_together_for_a_key_not_held_here_are_one_write(fake, aws_stack) -> None:
    from bench.meter import Meter
    from store import contacts, events
    from store.crypto import cipher

    grant(A)
    cid = create({"contacts": [{"to": A}]})
    drive(aws_stack)
    wamid = _wamid_to(fake, A)
    body = f.webhook_body(statuses=[f.status(wamid, s, A) for s in ("sent", "delivered", "read")])
    assert f.call_webhook(f.webhook_post(body, f.APP_SECRET))["statusCode"] == 200
    bodies = f.drain(aws_stack.queues["inbound"])
    cipher().evict(contacts.chash(A))  # a processor container that never met the contact
    with Meter(keep_params=True) as meter:
        events.reset()
        assert f.run_processor(bodies) == {"batchItemFailures": []}
    assert not [p for _, op, p in meter.log if op == "GetItem" and str(p["Key"]["sk"]["S"]) == "DK"]
    assert meter.count("dynamodb", "BatchGetItem") == 1  # the stored key read ahead with the batch's
    assert not [p for _, op, p in meter.log if op == "PutItem"]  # no key made
    # one write for the three statuses, the message's move and its recipient's; one to mark them done
    assert meter.count("dynamodb", "TransactWriteItems") == 2
    assert meter.count("dynamodb", "UpdateItem") == 0
    assert _line(cid)[1]["status"] == "read"
    assert _same(cid)["read"] == 1
    cipher().evict(contacts.chash(A))
    assert f.run_processor(bodies) == {"batchItemFailures": []}  # Meta's retry moves no counter twice
    counts = _same(cid)
    assert counts["read"] == 1 and counts["sent"] == 0 and counts["delivered"] == 0


def test_a_pages_pending_recipients_are_one_write_and_a_page_run_again_writes_each_once(
    fake, aws_stack, monkeypatch
) -> None:
    from bench.meter import Meter
    from store import campaigns as store
    from store import outbound

    phones = [f"49151000001{i:02d}" for i in range(6)]
    for phone in phones:
        grant(phone)
    # six consenting contacts, the first named again at the end, one who never consented
    audience = [{"to": p} for p in phones] + [{"to": phones[0]}, {"to": "4915100000199"}]
    cid = create({"contacts": audience})
    records = receive(aws_stack, visibility_timeout=0)
    real = outbound.enqueue_many
    calls = []

    def dies_once(*args, **kwargs):  # the step crashes after the page's writes, before its messages queue
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(outbound, "enqueue_many", dies_once)
    with Meter(keep_params=True) as meter:
        run_sender(*records)
    assert meter.count("dynamodb", "BatchGetItem") == 1  # the page's gate items, all in one read
    writes = [p for _, op, p in meter.log if op == "TransactWriteItems"]
    # the six pending recipients in one write (lines, pointers, messages, one update per counter shard);
    # the duplicate: its own attempt and its line; the one without consent: its line
    assert len(writes) == 4
    assert len(writes[0]["TransactItems"]) <= 100
    assert sum(1 for op in writes[0]["TransactItems"] if "Put" in op) == 18
    counts = _same(cid)
    assert counts["pending"] == 6 and counts["skipped_by"]["duplicate"] == 1
    assert counts["skipped_by"]["no_consent"] == 1
    run_sender(*receive(aws_stack, visibility_timeout=0))  # the step again: each written once
    drive(aws_stack)
    counts = _same(cid)
    assert counts["sent"] == 6 and counts["recipients"] == 8, counts
    sent_to = sorted(x["body"]["to"] for x in fake.calls() if x["status"] == 200)
    assert sent_to == sorted(phones)
    assert store.get(cid)["status"] == "completed"


def test_a_consented_audiences_page_is_gated_with_one_read(fake, aws_stack) -> None:
    from bench.meter import Meter

    phones = [f"49151000002{i:02d}" for i in range(4)]
    for phone in phones:
        grant(phone)
    grant(phones[0], status="revoked")  # granted once, then revoked: in the index, refused by the gate
    cid = create({"consented": True})
    records = receive(aws_stack)
    with Meter() as meter:
        run_sender(*records)  # the preparation page
    assert meter.count("dynamodb", "BatchGetItem") == 1  # every grant's set, gate items and summary
    assert meter.count("dynamodb", "Query") == 1  # the grants index page; no consent ledger Query
    drive(aws_stack)
    counts = _same(cid)
    assert counts["sent"] == 3 and counts["skipped_by"]["no_consent"] == 1, counts
    assert sorted(x["body"]["to"] for x in fake.calls() if x["status"] == 200) == sorted(phones[1:])


def test_a_processor_batch_reads_its_statuses_contact_keys_together(fake, aws_stack) -> None:
    from bench.meter import Meter
    from store import contacts, events
    from store.crypto import cipher

    phones = [f"49151000003{i:02d}" for i in range(3)]
    for phone in phones:
        grant(phone)
    cid = create({"contacts": [{"to": p} for p in phones]})
    drive(aws_stack)
    for phone in phones:  # one delivery per message (sent, delivered, read), as Meta lists them
        wamid = _wamid_to(fake, phone)
        body = f.webhook_body(statuses=[f.status(wamid, s, phone) for s in ("sent", "delivered", "read")])
        assert f.call_webhook(f.webhook_post(body, f.APP_SECRET))["statusCode"] == 200
        cipher().evict(contacts.chash(phone))  # a processor container that never met them
    bodies = f.drain(aws_stack.queues["inbound"])
    assert len(bodies) == 3
    with Meter(keep_params=True) as meter:
        events.reset()
        assert f.run_processor(bodies) == {"batchItemFailures": []}
    assert meter.count("dynamodb", "BatchGetItem") == 1  # the three keys in one read
    assert not [p for _, op, p in meter.log if op == "GetItem" and str(p["Key"]["sk"]["S"]) == "DK"]
    assert meter.count("dynamodb", "TransactWriteItems") == 4  # one joint write each, one mark-done
    counts = _same(cid)
    assert counts["read"] == 3 and counts["sent"] == 0
