"""A campaign's counts are counters moved with each recipient's transition (in the same transaction), not a
recount on each GET: after a mixed run (every skipped reason, a failure, delivered and read statuses, a
cancel, redelivered records) the counters equal a recount of the recipient items, and each recipient is
in exactly one bucket."""

from __future__ import annotations

from shared import constants as c
from tests import factory as f
from tests.integration.test_campaign_throttling import drive
from tests.integration.test_campaigns import A, B, E, G, call, create, fake, grant
from tests.integration.test_sender_flow import receive, run_sender

__all__ = ["fake"]  # the fixture, imported for pytest

BUCKETS = ("pending", "sent", "delivered", "read", "failed", "skipped", "cancelled")
H, K = "4915100000008", "4915100000009"


def _same(cid: str) -> dict:
    from store import campaigns as store

    counts, recount = store.counts(cid), store.recount(cid)
    assert counts == recount, (counts, recount)
    assert sum(counts[b] for b in BUCKETS) == counts["recipients"]
    return counts


def _wamid_to(fake, phone: str) -> str:
    (answer,) = [x["response"] for x in fake.calls() if x["body"]["to"] == phone and x["status"] == 200]
    return str(answer["messages"][0]["id"])


def test_counters_equal_a_recount_after_a_mixed_run(fake, aws_stack, contact_key, monkeypatch) -> None:
    from shared import ids
    from store import campaigns as store

    for phone in (A, E, G, H, K):
        grant(phone)
    assert f.call_contacts("PUT", E, "/restriction", {"restricted": True})["statusCode"] == 200
    assert f.call_contacts("DELETE", G)["statusCode"] == 200
    ref_a = ids.reference_of(ids.contact_pseudonym(contact_key, A))
    audience = [{"to": A}, {"to": B}, {"to": "not-a-number"}, {"to": ref_a}, {"to": E}, {"to": G}]
    audience += [{"to": H}, {"to": K}]
    fake.script([{"code": 131049}])  # the first message sent fails for good
    cid = create({"contacts": audience})
    drive(aws_stack)
    counts = _same(cid)
    assert counts["recipients"] == 8 and counts["failed"] == 1 and counts["sent"] == 2
    assert counts["skipped"] == 5 and all(counts["skipped_by"][r] == 1 for r in ("duplicate", "erased"))
    sent = [p for p in (A, H, K) if any(x["body"]["to"] == p and x["status"] == 200 for x in fake.calls())]
    assert len(sent) == 2
    # Statuses: one delivered then read, one read before delivered (out of order), a late duplicate.
    first, second = sent
    for phone, status in ((first, "delivered"), (first, "read"), (second, "read"), (second, "delivered")):
        f.deliver(aws_stack, f.webhook_body(statuses=[f.status(_wamid_to(fake, phone), status, phone)]))
    f.deliver(aws_stack, f.webhook_body(statuses=[f.status(_wamid_to(fake, first), "delivered", first)]))
    counts = _same(cid)
    assert counts["read"] == 2 and counts["sent"] == 0 and counts["delivered"] == 0

    # A second campaign cancelled after its preparation: pending recipients become cancelled.
    other = create({"contacts": [{"to": H}, {"to": K}, {"to": B}]})
    run_sender(*receive(aws_stack))  # prepared and queued, not yet sent
    assert _same(other)["pending"] == 2
    assert call("POST", f"/campaigns/{other}/cancel")[0] == 200
    drive(aws_stack)
    counts = _same(other)
    assert counts["cancelled"] == 2 and counts["skipped_by"]["no_consent"] == 1

    # GET reads the counters: it does not read the recipient items.
    def no_recount(*args, **kwargs):
        raise AssertionError("the counts were recomputed from the recipient items")

    monkeypatch.setattr(store, "recipients", no_recount)
    view = call("GET", f"/campaigns/{cid}")[1]
    assert view["counts"]["read"] == 2 and view["counts"]["recipients"] == 8
    counter_items = [
        i
        for i in aws_stack.items(c.TABLE_MESSAGES)
        if i["pk"] == f"CAMPAIGN#{cid}" and str(i["sk"]).startswith("N#")
    ]
    assert 1 <= len(counter_items) <= store.COUNTER_SHARDS


def test_a_redelivered_status_or_step_moves_no_counter_twice(fake, aws_stack) -> None:
    from store import campaigns as store

    grant(A)
    cid = create({"contacts": [{"to": A}]})
    records = receive(aws_stack)
    run_sender(*records)
    run_sender(*records)  # the preparation step delivered twice
    assert _same(cid)["pending"] == 1
    drive(aws_stack)
    person = store.recount(cid)
    assert person["sent"] == 1
    (line,) = list(store.recipients(cid))
    key = str(line["sk"])[len(store.RECIPIENT) :]
    assert store.move(cid, key, "sent") is False  # already there
    assert store.move(cid, key, "cancelled", only_from="pending") is False
    assert store.move(cid, key, "delivered") is True
    assert store.move(cid, key, "delivered") is False
    counts = _same(cid)
    assert counts["delivered"] == 1 and counts["sent"] == 0 and counts["recipients"] == 1
