"""The template registry's sync and webhooks on moto (issue 22): the templates function on its schedule
and its routes, the events of a change, the once-a-minute sync on a miss, and the webhooks of another
WABA ignored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import constants as c
from store import templates as registry
from tests import factory as f


@pytest.fixture
def waba(aws_stack, graph_api, monkeypatch):
    from shared import settings

    graph_api.reset()
    monkeypatch.setenv(c.ENV_GRAPH_API_URL, graph_api.base_url)
    monkeypatch.setenv(c.ENV_BUSINESS_ACCOUNT_ID, graph_api.waba.id)
    settings.reset()
    yield graph_api.waba
    graph_api.reset()


def call_templates(event: dict[str, Any]) -> Any:
    from handlers import templates_api

    return templates_api.handler(event, f.LambdaContext())


def scheduled() -> dict[str, Any]:
    return {"version": "0", "id": "1", "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}


def changed(stack) -> list[dict[str, Any]]:
    return [e["detail"] for e in stack.events() if e["detail-type"] == c.EVENT_TEMPLATE_CHANGED]


def test_the_schedule_syncs_and_tells_every_change_once(aws_stack, waba) -> None:
    from store import tables

    tables.delete_keys(c.TABLE_TEMPLATES, aws_stack.items(c.TABLE_TEMPLATES))  # as on the first deploy
    assert call_templates(scheduled()) == {"templates": 6}
    first = changed(aws_stack)
    assert sorted(d["name"] for d in first) == sorted(
        ["spring_sale", "new_arrivals", "order_update", "account_notice", "parcel_window", "login_code"]
    )
    assert all("previous_status" not in d for d in first)
    assert call_templates(scheduled()) == {"templates": 6}
    assert changed(aws_stack) == []  # nothing changed: nothing told
    waba.update({"name": "order_update", "language": "en_US", "category": "MARKETING"})  # webhook lost
    call_templates(scheduled())
    (last,) = changed(aws_stack)
    assert last == {
        "name": "order_update",
        "language": "en_US",
        "category": "MARKETING",
        "status": "APPROVED",
        "previous_category": "UTILITY",
    }
    assert all(i[c.TTL_ATTRIBUTE] > 0 for i in aws_stack.items(c.TABLE_TEMPLATES))


def test_a_failed_schedule_raises_and_changes_nothing(aws_stack, waba) -> None:
    before = aws_stack.items(c.TABLE_TEMPLATES)
    waba.failures = 1
    with pytest.raises(RuntimeError):
        call_templates(scheduled())
    assert aws_stack.items(c.TABLE_TEMPLATES) == before and changed(aws_stack) == []


def test_a_send_naming_a_missing_template_syncs_once_a_minute(aws_stack, waba, graph_api) -> None:
    waba.create(
        {
            "name": "fresh_news",
            "language": "en",
            "category": "UTILITY",
            "components": [{"type": "BODY", "text": "News."}],
        }
    )
    with waba._lock:
        waba._templates[-1]["status"] = "APPROVED"
    f.call_contacts(
        "PUT", "4915112345678", "/consent", {"purpose": "utility", "status": "granted", "source": "t"}
    )
    body = {"to": "4915112345678", "template": {"name": "fresh_news", "language": {"code": "en"}}}
    reply = f.call_messages(f.messages_post(body))
    assert reply["statusCode"] == 202, reply
    lists = [x for x in graph_api.calls("") if "/message_templates" in x["path"]]
    assert len(lists) == 1
    missing = {"to": "4915112345678", "template": {"name": "never_made", "language": {"code": "en"}}}
    for _ in range(3):
        reply = f.call_messages(f.messages_post(missing))
        assert json.loads(reply["body"])["error"] == "unknown_template"
    assert len([x for x in graph_api.calls("") if "/message_templates" in x["path"]]) == 1  # once a minute


def test_webhooks_of_another_waba_and_unknown_templates_change_nothing(aws_stack) -> None:
    before = registry.get("spring_sale", "en_US")
    f.deliver(
        aws_stack,
        f.template_webhook(
            "message_template_status_update",
            {"event": "PAUSED", "message_template_name": "spring_sale", "message_template_language": "en_US"},
            waba="999",
        ),
    )
    f.deliver(aws_stack, f.template_status("no_such_template", "PAUSED"))
    assert registry.get("spring_sale", "en_US") == before and changed(aws_stack) == []
    f.deliver(aws_stack, f.template_status("spring_sale", "PAUSED"))
    assert registry.get("spring_sale", "en_US")["status"] == "PAUSED"  # type: ignore[index]
    assert changed(aws_stack) == [
        {
            "name": "spring_sale",
            "language": "en_US",
            "category": "MARKETING",
            "status": "PAUSED",
            "previous_status": "APPROVED",
        }
    ]
