"""A Meta value still holding the stack's placeholder is "not configured", never a value (issue 21's split
creates the new secrets with placeholders, so on an upgrade they are live before the operator fills them):
a delivery signed with the public placeholder is not accepted (503: Meta retries the real ones later),
the handshake refuses it, and no message is sent or failed with it (the batch is retried)."""

from __future__ import annotations

import json

import pytest

from shared import constants as c
from shared.settings import ConfigurationError
from tests import factory as f
from tests.integration.test_sender_flow import PHONE, fake, inbound, receive, run_sender, view  # noqa: F401

TEXT = {"to": PHONE, "purpose": "service", "text": {"body": "Your order is ready"}}


def _placeholder(stack, secret: str) -> None:
    from shared import secrets

    values = dict.fromkeys(c.SECRETS[secret], c.SECRET_PLACEHOLDER)
    stack.client("secretsmanager").put_secret_value(
        SecretId=stack.secret_arns[secret], SecretString=json.dumps(values)
    )
    secrets.clear_cache()


def test_a_delivery_signed_with_the_placeholder_is_not_accepted(aws_stack) -> None:
    from handlers import webhook

    webhook.reset()
    _placeholder(aws_stack, c.SECRET_WEBHOOK)
    raw = f.encode(f.webhook_body(messages=[f.text_message(PHONE, "forged")]))
    reply = f.call_webhook(f.webhook_post(raw, c.SECRET_PLACEHOLDER))
    assert reply["statusCode"] == 503
    assert f.drain(aws_stack.queues["inbound"]) == []
    hub = {"hub.mode": "subscribe", "hub.verify_token": c.SECRET_PLACEHOLDER, "hub.challenge": "1"}
    assert f.call_webhook(f.webhook_get(hub))["statusCode"] == 403


def test_no_message_is_sent_or_failed_with_the_placeholder_token(aws_stack, fake) -> None:  # noqa: F811
    inbound(aws_stack)
    reply = f.call_messages(f.messages_post(TEXT))
    assert reply["statusCode"] == 202
    msg_id = json.loads(reply["body"])["id"]
    _placeholder(aws_stack, c.SECRET_GRAPH)
    (record,) = receive(aws_stack)
    with pytest.raises(ConfigurationError):  # the whole batch goes back to the queue and is retried
        run_sender(record)
    assert fake.calls() == []
    assert view(msg_id)["status"] == "queued"
