"""POST /messages request model: what is refused with 400 invalid_body."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from models.api_messages import MessageView, SendMessageRequest
from shared import constants as c

TEXT = {"to": "+4915112345678", "purpose": "service", "text": {"body": "hello"}}
TEMPLATE = {
    "to": "4915112345678",
    "purpose": "marketing",
    "template": {"name": "spring_sale", "language": {"code": "en_US"}},
}


def test_valid_bodies():
    assert SendMessageRequest.model_validate(TEXT).kind == "text"
    tpl = SendMessageRequest.model_validate(
        {**TEMPLATE, "template": {**TEMPLATE["template"], "components": [{"type": "body", "parameters": []}]}}
    )
    assert tpl.kind == "template" and tpl.template.components == [{"type": "body", "parameters": []}]
    assert SendMessageRequest.model_validate({**TEXT, "text": {"body": "x" * c.TEXT_MAX_CHARS}})
    assert SendMessageRequest.model_validate({**TEXT, "to": "US.13491208655302741918"})


def test_purposes_match_constants():
    for purpose in c.SEND_PURPOSES:
        SendMessageRequest.model_validate({**TEXT, "purpose": purpose})


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({k: v for k, v in TEXT.items() if k != "to"}, id="missing-to"),
        pytest.param({k: v for k, v in TEXT.items() if k != "purpose"}, id="missing-purpose"),
        pytest.param({**TEXT, "purpose": "promotion"}, id="unknown-purpose"),
        pytest.param({**TEXT, "template": TEMPLATE["template"]}, id="both-text-and-template"),
        pytest.param({"to": "4915112345678", "purpose": "service"}, id="neither-text-nor-template"),
        pytest.param({**TEXT, "text": {"body": ""}}, id="empty-text"),
        pytest.param({**TEXT, "text": {"body": "x" * (c.TEXT_MAX_CHARS + 1)}}, id="4097-chars"),
        pytest.param({**TEXT, "text": {"body": "hi", "preview": True}}, id="extra-text-field"),
        pytest.param({**TEXT, "text": {"body": "hi", "preview_url": "yes"}}, id="preview-url-not-bool"),
        pytest.param({**TEXT, "text": "hello"}, id="text-not-object"),
        pytest.param({**TEXT, "text": {"body": 42}}, id="body-not-string"),
        pytest.param({**TEXT, "to": 4915112345678}, id="to-not-string"),
        pytest.param({**TEXT, "to": ""}, id="to-empty"),
        pytest.param({**TEXT, "priority": "high"}, id="extra-field"),
        pytest.param({**TEMPLATE, "template": {"language": {"code": "en_US"}}}, id="template-no-name"),
        pytest.param({**TEMPLATE, "template": {"name": "spring_sale"}}, id="template-no-language"),
        pytest.param(
            {**TEMPLATE, "template": {"name": "spring_sale", "language": {}}}, id="template-no-code"
        ),
        pytest.param(
            {**TEMPLATE, "template": {"name": "Spring Sale!", "language": {"code": "en"}}}, id="bad-name"
        ),
        pytest.param(
            {**TEMPLATE, "template": {**TEMPLATE["template"], "components": {"type": "body"}}},
            id="components-not-list",
        ),
        pytest.param(
            {**TEMPLATE, "template": {**TEMPLATE["template"], "namespace": "x"}}, id="extra-template"
        ),
    ],
)
def test_invalid_bodies(body):
    with pytest.raises(ValidationError):
        SendMessageRequest.model_validate(body)


def test_view_omits_absent_fields():
    assert MessageView(id="msg_1", status="queued").public() == {"id": "msg_1", "status": "queued"}
    failed = MessageView(
        id="msg_1", status="failed", error={"code": 131026, "title": "Message Undeliverable"}
    )
    assert failed.public()["error"] == {"code": 131026, "title": "Message Undeliverable"}
