"""Campaigns (issue 23) through `waguard serve` at a low local rate (`WA_CAMPAIGN_RATE=2`): a mixed audience
with its skipped reasons, the consented audience, the pace, a STOP during a campaign, cancel, pause and
resume, a scheduled start (the local scheduler), and the roles."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests import factory as f
from tests.scenario.util import calls_to, unique_phone
from waguard.demo import Client, LocalStack, wait_for

RATE = 2
JITTER = 0.25  # how much later than its slot a send may reach the fake on a loaded machine
SCHEDULE_SECONDS = 3  # the campaigns function's schedule in this stack (deployed: every minute)
PROMO = {"name": "spring_sale", "language": {"code": "en_US"}}


@pytest.fixture(scope="module")
def cstack(graph: Any) -> Iterator[LocalStack]:
    env = {
        "WA_GRAPH_API_URL": graph.base_url,
        "WA_BUSINESS_ACCOUNT_ID": graph.waba.id,
        "WA_CAMPAIGN_RATE": str(RATE),
        "WAGUARD_SCHEDULE_SECONDS": f"campaigns={SCHEDULE_SECONDS}",  # the deployed rule's minute, shortened
    }
    local = LocalStack(env_extra=env).start()
    yield local
    assert local.stop() == 0


@pytest.fixture
def cclient(cstack: LocalStack) -> Client:
    return cstack.client()


def post(client: Client, audience: dict[str, Any], **kw: Any) -> Any:
    body = {"name": "Winter", "template": PROMO, "audience": audience}
    body.update({k: v for k, v in kw.items() if k != "key"})
    return client.request("POST", "/campaigns", json.dumps(body).encode(), key=kw.get("key"))


def campaign(client: Client, cid: str, suffix: str = "", **kw: Any) -> Any:
    return client.request("GET", f"/campaigns/{cid}{suffix}", **kw)


def finished(client: Client, cid: str, timeout: float = 60.0) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        view = campaign(client, cid).json()
        return view if view["status"] in ("completed", "cancelled") else None

    result: dict[str, Any] = wait_for(done, timeout=timeout, interval=0.5)
    return result


def granted(client: Client, *phones: str) -> None:
    for phone in phones:
        assert client.set_consent(phone, "marketing", "granted", "web_form").status == 200


def test_mixed_audience_paced_with_every_skipped_reason(cclient: Client, graph: Any) -> None:
    ok = [unique_phone() for _ in range(4)]
    none, restricted, erased = unique_phone(), unique_phone(), unique_phone()
    granted(cclient, *ok, restricted, erased)
    assert cclient.restrict(restricted, True).status == 200
    assert cclient.erase(erased).status == 200
    entries = [{"to": p} for p in ok] + [{"to": "+" + ok[0]}, {"to": none}, {"to": restricted}]
    entries += [{"to": erased}, {"to": "12"}]
    reply = post(cclient, {"contacts": entries})
    assert reply.status == 202, reply.text()
    view = finished(cclient, reply.json()["id"])
    counts = view["counts"]
    assert view["status"] == "completed" and counts["recipients"] == 9
    assert counts["sent"] + counts["delivered"] + counts["read"] == 4
    assert counts["skipped_by"] == {
        "no_consent": 1,
        "erased": 1,
        "restricted": 1,
        "invalid_contact": 1,
        "duplicate": 1,
        "frequency_cap": 0,
    }
    for phone in ok:
        assert len(calls_to(graph, phone)) == 1  # once each, the duplicate included
    for phone in (none, restricted, erased):
        assert calls_to(graph, phone) == []
    starts = sorted(c["started"] for p in ok for c in calls_to(graph, p))
    # Never more than RATE in any one-second window: the sends take slots 1/RATE apart, and each reaches the
    # fake some ms after its slot (JITTER: a thread's wake-up and the HTTP call, longer on a loaded machine),
    # so the window is one second less that jitter; sends leaving together (a burst) fail this. Over the
    # whole campaign the rate is at most RATE: the last slot is (n - 1) / RATE after the first, and the
    # first send may have reached the fake up to JITTER after its own slot.
    for i, at in enumerate(starts):
        assert len([s for s in starts[i:] if s - at < 1.0 - JITTER]) <= RATE, starts
    assert starts[-1] - starts[0] >= (len(starts) - 1) / RATE - JITTER, starts
    rows = campaign(cclient, view["id"], "/recipients").json()["recipients"]
    assert all(str(r["contact"] or "ct_").startswith("ct_") for r in rows) and len(rows) == 9
    message_id = next(r["message_id"] for r in rows if r.get("message_id"))
    assert cclient.message(message_id).json()["status"] in ("sent", "delivered", "read")


def test_consented_audience_and_a_stop_during_the_campaign(cclient: Client, graph: Any) -> None:
    phones = [unique_phone() for _ in range(5)]
    granted(cclient, *phones)
    revoked = unique_phone()
    granted(cclient, revoked)
    assert cclient.set_consent(revoked, "marketing", "revoked", "web_form").status == 200
    reply = post(cclient, {"consented": True})
    assert reply.status == 202
    stopper = phones[-1]
    assert cclient.deliver(f.webhook_body(messages=[f.text_message(stopper, "STOP")])).status == 200
    view = finished(cclient, reply.json()["id"])
    assert calls_to(graph, revoked) == []
    stopped_templates = [c for c in calls_to(graph, stopper) if c["body"].get("type") == "template"]
    assert stopped_templates == []  # gated at preparation or again at its send: never sent
    for phone in phones[:-1]:
        assert len(calls_to(graph, phone)) == 1
    assert view["counts"]["skipped_by"]["no_consent"] >= 2


def test_cancel_and_roles(cclient: Client, cstack: LocalStack, graph: Any) -> None:
    phones = [unique_phone() for _ in range(8)]
    granted(cclient, *phones)
    sender = cstack.roles["sender"]
    reply = post(cclient, {"contacts": [{"to": p} for p in phones]}, key=sender)
    assert reply.status == 202
    cid = reply.json()["id"]
    assert campaign(cclient, cid, key=cstack.roles["agent"]).status == 403
    assert cclient.request("GET", "/campaigns", key=cstack.roles["privacy-officer"]).status == 403
    assert cclient.request("GET", "/campaigns", key=sender).status == 200
    assert cclient.request("POST", f"/campaigns/{cid}/cancel", key=sender).status == 200
    view = finished(cclient, cid)
    assert view["status"] == "cancelled" and view["counts"]["cancelled"] >= 1
    wait_for(lambda: campaign(cclient, cid).json()["counts"]["pending"] == 0, timeout=20)
    view = campaign(cclient, cid).json()
    sent = sum(len(calls_to(graph, p)) for p in phones)
    assert sent == view["counts"]["sent"] + view["counts"]["delivered"] + view["counts"]["read"] < 8


def test_scheduled_start_pause_on_a_template_that_left_approved_and_resume(
    cclient: Client, graph: Any
) -> None:
    phones = [unique_phone() for _ in range(2)]
    granted(cclient, *phones)
    at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    reply = post(cclient, {"contacts": [{"to": p} for p in phones]}, send_at=at)
    assert reply.status == 202 and reply.json()["status"] == "scheduled"
    cid = reply.json()["id"]
    assert post(cclient, {"contacts": [{"to": phones[0]}]}, send_at="2001-01-01T00:00:00Z").status == 400
    try:
        change = graph.waba.update({"name": "spring_sale", "language": "en_US", "status": "PAUSED"})
        assert cclient.deliver(change["webhook"]).status == 200
        # The local scheduler runs the campaigns function (every SCHEDULE_SECONDS here, every minute as
        # deployed): it starts the campaign once send_at has come, and the preparation's gate pauses it.
        wait_for(lambda: campaign(cclient, cid).json()["status"] == "paused", timeout=60, interval=0.5)
        assert cclient.request("POST", f"/campaigns/{cid}/resume").status == 409
    finally:
        change = graph.waba.update({"name": "spring_sale", "language": "en_US", "status": "REINSTATED"})
        assert cclient.deliver(change["webhook"]).status == 200
    wait_for(lambda: cclient.request("POST", f"/campaigns/{cid}/resume").status == 200, timeout=20)
    view = finished(cclient, cid)
    assert view["status"] == "completed" and view["started_at"]
    for phone in phones:
        assert len(calls_to(graph, phone)) == 1
