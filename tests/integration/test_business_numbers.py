"""Several business numbers on moto (issue 17): routing by `metadata.phone_number_id`, the service window
per (business number, contact), the number a reply goes out from, unknown numbers, the rate budget."""

from __future__ import annotations

import json
import secrets
from typing import Any

import pytest

from shared import constants as c
from tests import factory as f

ONE, TWO = f.PHONE_NUMBER_ID, f.SECOND_PHONE_NUMBER_ID
UNKNOWN = "999000999000999"


def fresh_phone() -> str:
    return "49151" + "".join(secrets.choice("0123456789") for _ in range(8))


def body_on(number: str, phone: str, text: str = "hello", wamid: str | None = None) -> dict[str, Any]:
    body = f.webhook_body(messages=[f.text_message(phone, text, id=wamid or f.wamid())])
    body["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = number
    return body


def send(phone: str, **extra: Any) -> dict[str, Any]:
    reply = f.call_messages(
        f.messages_post({"to": phone, "purpose": "service", "text": {"body": "hi"}, **extra})
    )
    return {**f.reply_json(reply), "http": reply["statusCode"]}


def outbound_item(stack: Any, msg_id: str) -> dict[str, Any]:
    return next(
        i for i in stack.items(c.TABLE_MESSAGES) if i.get("msg_id") == msg_id and i["sk"].startswith("OUT#")
    )


def test_the_window_is_per_business_number_and_a_reply_goes_out_where_the_contact_wrote(
    aws_stack: Any,
) -> None:
    from store import contacts

    phone = fresh_phone()
    assert f.deliver(aws_stack, body_on(TWO, phone))["statusCode"] == 200
    identity = contacts.identity(phone)
    assert contacts.last_inbound_at(identity, TWO) is not None
    assert contacts.last_inbound_at(identity, ONE) is None  # the default number has no window
    assert contacts.last_number(identity) == TWO

    by_default = send(phone)  # no `from`: the number the contact last wrote to
    assert by_default["http"] == 202, by_default
    assert outbound_item(aws_stack, by_default["id"])["business_number"] == TWO
    assert send(phone, **{"from": TWO})["http"] == 202
    refused = send(phone, **{"from": ONE})
    assert (refused["http"], refused["error"]) == (422, "outside_service_window")
    unknown = send(phone, **{"from": UNKNOWN})
    assert (unknown["http"], unknown["error"]) == (400, "unknown_business_number")

    # Writing to the default number opens its window too; the newest decides the default reply number.
    assert f.deliver(aws_stack, body_on(ONE, phone))["statusCode"] == 200
    assert contacts.last_inbound_at(identity, ONE) is not None
    assert contacts.last_number(identity) == ONE
    assert outbound_item(aws_stack, send(phone)["id"])["business_number"] == ONE


@pytest.mark.parametrize("first,then", [(ONE, TWO), (TWO, ONE)])
def test_of_two_messages_in_one_second_the_one_stored_last_names_the_reply_number(
    aws_stack: Any, first: str, then: str
) -> None:
    """Meta's timestamps have whole seconds: the reply number must not depend on attribute order."""
    from store import contacts

    phone, second = fresh_phone(), str(int(f.now_ts()))
    for number in (first, then):
        body = body_on(number, phone)
        body["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = second
        assert f.deliver(aws_stack, body)["statusCode"] == 200
    identity = contacts.identity(phone)
    assert contacts.last_inbound_at(identity, ONE) == contacts.last_inbound_at(identity, TWO) == int(second)
    assert contacts.last_number(identity) == then
    assert outbound_item(aws_stack, send(phone)["id"])["business_number"] == then


def test_an_older_message_on_one_number_never_moves_that_window_back(aws_stack: Any) -> None:
    from store import contacts

    phone = fresh_phone()
    new, old = body_on(ONE, phone), body_on(ONE, phone)
    old["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(f.now_ts()) - 3600)
    f.deliver(aws_stack, new)
    newest = contacts.last_inbound_at(contacts.identity(phone), ONE)
    f.deliver(aws_stack, old)
    f.deliver(aws_stack, body_on(TWO, phone, wamid=None))
    identity = contacts.identity(phone)
    assert contacts.last_inbound_at(identity, ONE) == newest
    assert contacts.last_inbound_at(identity, TWO) is not None
    assert len(f.reply_json(f.call_contacts("GET", phone, "/export"))["messages"]) == 3  # all stored


def test_stored_messages_and_export_name_their_business_number(aws_stack: Any) -> None:
    phone = fresh_phone()
    f.deliver(aws_stack, body_on(TWO, phone))
    msg_id = send(phone)["id"]
    doc = f.reply_json(f.call_contacts("GET", phone, "/export"))
    assert {(m["direction"], m["business_number"]) for m in doc["messages"]} == {("in", TWO), ("out", TWO)}
    assert doc["profile"]["last_inbound_by_number"].keys() == {TWO}
    assert outbound_item(aws_stack, msg_id)["business_number"] == TWO


def test_a_delivery_for_a_number_not_configured_is_answered_not_stored_and_counted(
    aws_stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    from domain import ingest
    from models.webhook import Delivery

    phone = fresh_phone()
    before = {(i["pk"], i["sk"]) for i in aws_stack.items(c.TABLE_MESSAGES)}
    contacts_before = len(aws_stack.items(c.TABLE_CONTACTS))
    aws_stack.events()
    capsys.readouterr()
    body = body_on(UNKNOWN, phone, text="not for us")
    assert ingest.received_events(Delivery.model_validate(body)) == []
    assert f.deliver(aws_stack, body)["statusCode"] == 200
    assert {(i["pk"], i["sk"]) for i in aws_stack.items(c.TABLE_MESSAGES)} == before
    assert len(aws_stack.items(c.TABLE_CONTACTS)) == contacts_before
    assert aws_stack.events() == []  # no message.received
    metrics = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counted = [m for m in metrics if c.METRIC_UNKNOWN_BUSINESS_NUMBER in m]
    assert [m[c.METRIC_UNKNOWN_BUSINESS_NUMBER] for m in counted] == [[1.0]]
    for metric in counted:  # no personal data, nor the number, in the metric's dimensions
        dims = {d for group in metric["_aws"]["CloudWatchMetrics"] for ds in group["Dimensions"] for d in ds}
        assert dims == {"service"} and phone not in json.dumps(metric) and UNKNOWN not in json.dumps(metric)
    assert f.call_contacts("GET", phone, "/export")["statusCode"] == 404


def test_the_rate_budget_is_per_business_number(aws_stack: Any) -> None:
    from store import ratelimit

    second = 1_900_000_000
    clock = lambda: second + 0.5  # noqa: E731 - one fixed second
    assert all(ratelimit.acquire(ONE, per_second=3, max_wait=0, clock=clock) for _ in range(3))
    assert not ratelimit.acquire(ONE, per_second=3, max_wait=0, clock=clock)  # ONE's budget is spent
    assert ratelimit.acquire(TWO, per_second=3, max_wait=0, clock=clock)  # TWO's is its own
    assert (ratelimit.used(ONE, second), ratelimit.used(TWO, second)) == (3, 1)
