"""Meta's throttling answers during a campaign, on the moto stack against the fake Graph API: 130429 slows
the campaigns' shared budget of the number (every instance sees it, it recovers after the cool-down, single
replies keep their own budget), 131056 delays that recipient only, 131049 fails without retry."""

from __future__ import annotations

import time

from shared import constants as c
from tests import factory as f
from tests.integration.test_campaigns import (
    PHONE_NUMBER_ID,
    PROMO,
    A,
    B,
    E,
    call,
    create,
    fake,
    grant,
    receive_pending,
)
from tests.integration.test_sender_flow import receive, run_sender

__all__ = ["fake"]  # the fixture, imported for pytest


def drive(stack, seconds: float = 15) -> None:
    """Run the sender as the event-source mapping does: a record reported as a batch item failure stays
    on the queue (visible again after the backoff the sender set), the others are deleted."""
    end = time.time() + seconds
    while time.time() < end:
        records = receive(stack, visibility_timeout=5)
        if not records:
            if not receive_pending(stack):
                return
            time.sleep(0.2)
            continue
        failed = set(run_sender(*records))
        for r in records:
            if r["messageId"] not in failed:
                stack.client("sqs").delete_message(
                    QueueUrl=stack.queues["send"], ReceiptHandle=r["receiptHandle"]
                )


def _item(pk: str, sk: str) -> dict | None:
    from store import tables

    return tables.get_live(c.TABLE_MESSAGES, pk, sk)


def _recipients(cid: str) -> dict[str, dict]:
    rows = call("GET", f"/campaigns/{cid}/recipients")[1]["recipients"]
    return {str(r["contact"]): r for r in rows}


def test_130429_halves_the_campaign_budget_for_every_instance_and_it_recovers(
    fake, aws_stack, monkeypatch
) -> None:
    from store import ratelimit

    grant(A)
    grant(E)
    assert ratelimit.campaign_rate(PHONE_NUMBER_ID) == 50
    budgets: list[tuple[str, int]] = []
    real = ratelimit.acquire_spaced

    def recorded(key: str, per_second: int, *args, **kwargs) -> bool:
        budgets.append((key, per_second))
        return real(key, per_second, *args, **kwargs)

    monkeypatch.setattr(ratelimit, "acquire_spaced", recorded)
    fake.script([{"code": 130429}])
    cid = create({"contacts": [{"to": A}, {"to": E}]})
    drive(aws_stack)
    view = call("GET", f"/campaigns/{cid}")[1]
    assert view["status"] == "completed" and view["counts"]["sent"] == 2  # the throttled one was retried
    assert len(fake.calls()) == 3
    # The sends before the 130429 took tokens of the full budget, the retry after it of the halved one.
    key = ratelimit.campaign_key(PHONE_NUMBER_ID)
    assert budgets[0] == (key, 50) and budgets[-1] == (key, 25), budgets
    ratelimit.reset()  # another instance (a fresh container) reads the same slowdown from the table
    assert ratelimit.campaign_rate(PHONE_NUMBER_ID) == 25
    slow = _item("RATE#" + ratelimit.campaign_key(PHONE_NUMBER_ID), "SLOW")
    assert slow is not None and int(slow["divisor"]) == 2
    # Single replies keep their own budget: nothing about the number itself is slowed.
    assert _item("RATE#" + PHONE_NUMBER_ID, "SLOW") is None
    assert ratelimit.acquire(PHONE_NUMBER_ID, ratelimit.limit(), max_wait=0)
    # A burst of 130429 answers (every message in flight) halves once; a later one halves again. The
    # clock is the halving's own (however long the campaign took to drive on a loaded machine).
    now = float(slow["halved_at"])
    assert ratelimit.slow_campaigns(PHONE_NUMBER_ID, now + 1) == 2
    assert ratelimit.slow_campaigns(PHONE_NUMBER_ID, now + ratelimit.HALVING_GAP_SECONDS + 1) == 4
    ratelimit.reset()
    assert ratelimit.campaign_rate(PHONE_NUMBER_ID, now + ratelimit.HALVING_GAP_SECONDS + 2) == 12
    for _ in range(5):  # never below 1/MAX_DIVISOR of the configured rate
        now += ratelimit.HALVING_GAP_SECONDS + 1
        ratelimit.slow_campaigns(PHONE_NUMBER_ID, now + ratelimit.HALVING_GAP_SECONDS + 1)
    ratelimit.reset()
    assert ratelimit.campaign_rate(PHONE_NUMBER_ID, now + 7) == 50 // ratelimit.MAX_DIVISOR
    # Recovered after the cool-down, for every instance.
    ratelimit.reset()
    later = now + ratelimit.HALVING_GAP_SECONDS + 1 + ratelimit.COOLDOWN_SECONDS + 1
    assert ratelimit.campaign_rate(PHONE_NUMBER_ID, later) == 50


def test_130429_on_a_single_send_slows_the_campaigns_not_the_replies(fake, aws_stack) -> None:
    from store import ratelimit

    grant(A)
    fake.script([{"code": 130429}])
    reply = f.call_messages(f.messages_post({"to": A, "template": PROMO}))
    assert reply["statusCode"] == 202, reply
    run_sender(*receive(aws_stack))
    ratelimit.reset()
    assert ratelimit.campaign_rate(PHONE_NUMBER_ID) == 25
    assert _item("RATE#" + PHONE_NUMBER_ID, "SLOW") is None


def test_131056_delays_that_recipient_only(fake, aws_stack) -> None:
    from store import ratelimit

    grant(A)
    grant(E)
    fake.script([{"code": 131056}])
    cid = create({"contacts": [{"to": A}, {"to": E}]})
    run_sender(*receive(aws_stack))  # the preparation step
    records = receive(aws_stack, visibility_timeout=30)
    assert len([r for r in records if "message_id" in r["body"]]) == 2
    failed = run_sender(*records)
    for r in records:
        if r["messageId"] not in failed:
            aws_stack.client("sqs").delete_message(
                QueueUrl=aws_stack.queues["send"], ReceiptHandle=r["receiptHandle"]
            )
    assert len(failed) == 1  # the pair-limited recipient is retried later; the other one is sent now
    counts = call("GET", f"/campaigns/{cid}")[1]["counts"]
    assert counts["sent"] == 1 and counts["pending"] == 1
    again = receive(aws_stack, visibility_timeout=1)  # the failed one is held back by Meta's 4^n schedule
    assert not [r for r in again if r["messageId"] in failed]
    ratelimit.reset()
    assert ratelimit.campaign_rate(PHONE_NUMBER_ID) == 50  # the campaign is not slowed
    time.sleep(4.2)
    drive(aws_stack)
    view = call("GET", f"/campaigns/{cid}")[1]
    assert view["status"] == "completed" and view["counts"]["sent"] == 2
    tos = sorted(x["body"]["to"] for x in fake.calls())
    assert tos in (sorted([A, A, E]), sorted([A, E, E]))  # the pair-limited recipient sent on its retry


def test_131049_is_failed_without_retry(fake, aws_stack) -> None:
    grant(A)
    fake.script([{"code": 131049}])
    cid = create({"contacts": [{"to": A}]})
    drive(aws_stack)
    view = call("GET", f"/campaigns/{cid}")[1]
    assert view["status"] == "completed" and view["counts"]["failed"] == 1
    assert len(fake.calls()) == 1
    (row,) = _recipients(cid).values()
    assert row["status"] == "failed" and row["error"]["code"] == "131049"


def test_preparation_runs_ahead_while_less_than_two_pages_wait_to_be_sent(
    fake, aws_stack, monkeypatch
) -> None:
    from domain import campaign_steps

    for phone in (A, E, B):
        grant(phone)
    cid = create({"contacts": [{"to": A}, {"to": E}, {"to": B}]})
    run_sender(*receive(aws_stack))  # one page: three pending recipients, their messages queued
    monkeypatch.setattr(campaign_steps, "STEP_DELAY_SECONDS", 1)
    assert campaign_steps._next_delay(cid, 2) == 0  # 3 pending < 2 pages of 2: the next page at once
    assert campaign_steps._next_delay(cid, 1) == 1  # 3 pending >= 2 pages of 1: a second later


def test_a_campaigns_sends_take_evenly_spaced_slots_shared_by_every_instance(aws_stack) -> None:
    from store import ratelimit

    key = ratelimit.campaign_key(PHONE_NUMBER_ID)
    now = float(int(time.time()) + 5)
    slots = [ratelimit.claim_slot(key, 4, now) for _ in range(7)]  # as seven senders at the same moment
    assert slots == [now, now + 0.25, now + 0.5, now + 0.75, now + 1.0, now + 1.25, now + 1.5]
    assert ratelimit.claim_slot(key, 4, now) is None  # more than 1.5 s ahead: the message is deferred
    assert ratelimit.claim_slot(key, 4, now + 3) == now + 3  # idle again: the slot is now
    clock, slept = [now + 10], []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        clock[0] += seconds

    for _ in range(3):
        assert ratelimit.acquire_spaced(key, 2, clock=lambda: clock[0], sleep=sleep)
    assert slept == [0.5, 0.5]  # never two sends closer than 1 / rate


def test_a_block_of_slots_is_one_claim_bounded_by_the_wait(aws_stack) -> None:
    from store import ratelimit

    key = ratelimit.campaign_key(PHONE_NUMBER_ID)
    now = float(int(time.time()) + 5)
    now_ms = int(now * 1000)
    assert ratelimit.claim_block(key, 4, now, 3) == (now_ms, 3)  # idle: the block starts now
    # busy: 10 wanted, but only the slots up to 1.5 s ahead are taken (0.75 .. 1.5: four)
    assert ratelimit.claim_block(key, 4, now, 10) == (now_ms + 750, 4)
    assert ratelimit.claim_block(key, 4, now, 10) is None  # the budget is taken 1.75 s ahead
    assert ratelimit.claim_slot(key, 4, now + 0.5) == now + 1.75  # one slot, after the blocks
    # A block believed idle when another instance holds the budget: the refusal says where it is
    assert ratelimit.claim_block(key, 4, now + 1, 2, idle=True) == (now_ms + 2000, 2)


def test_an_invocations_campaign_messages_share_one_claim_and_give_back_what_they_left(aws_stack) -> None:
    from bench.meter import Meter
    from store import ratelimit

    key = ratelimit.campaign_key(PHONE_NUMBER_ID)
    now = float(int(time.time()) + 5)
    slots = ratelimit.Slots(4)  # four campaign messages in the batch
    with Meter() as meter:
        got = [slots.take(key, 4, now) for _ in range(2)]
    assert got == [now, now + 0.25] and meter.count("dynamodb", "UpdateItem") == 1  # one claim of four
    slots.finish()  # a taker's own end: nothing more expected of it
    assert slots.expected == 2
    with Meter() as meter:
        slots.give_back()  # two messages never came (gated out): their slots go back to the budget
    assert meter.count("dynamodb", "UpdateItem") == 1
    assert ratelimit.claim_slot(key, 4, now) == now + 0.5  # the next claim gets the first one left
    # Nothing given back when another instance claimed after the block (its slots stay unused)
    other = ratelimit.Slots(3)
    assert other.take(key, 4, now) == now + 0.75
    assert ratelimit.claim_slot(key, 4, now) == now + 1.5
    with Meter() as meter:
        other.give_back()
    assert ratelimit.claim_slot(key, 4, now) is None  # next free 1.75 s ahead still: nothing came back
    assert meter.count("dynamodb", "UpdateItem") == 1


def test_a_batch_of_campaign_messages_claims_its_slots_once(fake, aws_stack) -> None:
    from bench.meter import Meter
    from store import events

    for phone in (A, E, B):
        grant(phone)
    cid = create({"contacts": [{"to": A}, {"to": E}, {"to": B}]})
    run_sender(*receive(aws_stack))  # the preparation step: three messages queued
    records = receive(aws_stack)  # the three messages (and the campaign's next step)
    assert sum('"contact"' in r["body"] for r in records) == 3
    with Meter(keep_params=True) as meter:
        events.reset()
        run_sender(*records)
    slot_claims = [p for _, op, p in meter.log if op == "UpdateItem" and "NEXT" in str(p.get("Key"))]
    assert len(slot_claims) == 1  # one block of three slots, not one claim per message
    view = call("GET", f"/campaigns/{cid}")[1]
    assert view["counts"]["sent"] == 3
    assert len(fake.calls()) == 3
