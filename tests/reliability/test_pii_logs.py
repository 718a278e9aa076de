"""No personal data in logs: the scenario flows run with logging at DEBUG, and no phone number, user id,
profile name or message text may appear anywhere in what was logged.

Flows (in-process on moto, the handlers driven as API Gateway and the event-source mappings drive them):
inbound deliveries of every type (and the pywa corpus when present), a refused delivery, the handshake,
consent, sends (text and template, refused ones, a Graph error 131050) through the sender and the fake
Graph API, status webhooks, STOP, marketing preferences, export, erasure, sends after erasure.

What is searched: everything written to stdout/stderr (Powertools' JSON lines, extras included), every
log record's message, arguments and extra attributes on every logger, and exception texts. Each value is
looked for as written and JSON-escaped.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from shared import constants as c
from tests import factory as f
from tests.reliability import corpus, flows

pytestmark = pytest.mark.xdist_group("reliability-pii-logs")

# Not the service's own logs: the AWS SDK's wire traces (at DEBUG they print every request's parameters,
# see `test_sdk_wire_logs_stay_quiet_when_the_application_log_level_is_debug`) and moto (tests only).
SDK_WIRE_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")
NOT_SERVICE = (*SDK_WIRE_LOGGERS, "moto")


class RecordSink(logging.Handler):
    """Keeps every record with its extras, and the service's records as Powertools formats them (the JSON
    lines Lambda ships to CloudWatch)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        handlers = logging.getLogger(c.SERVICE_NAME).handlers
        self.powertools = next((h.formatter for h in handlers if h.formatter is not None), None)

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        if self.powertools is not None and record.name.split(".")[0] == c.SERVICE_NAME:
            try:
                self.lines.append(self.powertools.format(record))
            except Exception as exc:
                self.lines.append(f"UNFORMATTABLE {record.name}: {exc!r}")

    def text(self, exclude: tuple[str, ...] = ()) -> str:
        parts = []
        for r in self.records:
            if r.name.split(".")[0] in exclude:
                continue
            try:
                message = r.getMessage()
            except Exception:
                message = f"{r.msg!r} {r.args!r}"
            extras = {k: v for k, v in r.__dict__.items() if k not in ("msg", "args")}
            parts.append(f"{r.name} {message} {extras!r}")
            if r.exc_info and r.exc_info[1] is not None:
                parts.append(repr(r.exc_info[1]))
        return "\n".join([*parts, *self.lines])


@pytest.fixture
def debug_logs(aws_stack: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordSink]:
    """The service logger and the root logger at DEBUG (what `logLevel: DEBUG` in cdk.json sets in Lambda:
    POWERTOOLS_LOG_LEVEL and the application log level), every record kept."""
    import handlers.webhook  # noqa: F401 - the service logger and its handler exist before the sink looks
    import shared.observability  # noqa: F401

    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "DEBUG")
    sink = RecordSink()
    root = logging.getLogger()
    service = logging.getLogger(c.SERVICE_NAME)
    saved = (root.level, service.level)
    root.setLevel(logging.DEBUG)
    service.setLevel(logging.DEBUG)
    root.addHandler(sink)
    try:
        yield sink
    finally:
        root.removeHandler(sink)
        root.setLevel(saved[0])
        service.setLevel(saved[1])


def leaks(text: str, values: list[str]) -> list[str]:
    found = []
    for value in values:
        forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
        if any(form and form in text for form in forms):
            found.append(value)
    return found


# ---- the flows ---------------------------------------------------------------------------------
def run_inbound(stack: Any) -> None:
    for name, body in corpus.inbound_deliveries():
        reply = flows.inbound(stack, body)
        assert reply["statusCode"] == 200, name
    refused = flows.webhook(
        f.webhook_body([f.text_message(corpus.PHONE, corpus.TEXT)]), secret="wrong-secret"
    )
    assert refused["statusCode"] == 401
    from handlers import webhook

    shake = {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token", "hub.challenge": "12345"}
    assert webhook.handler(f.webhook_get(shake), f.LambdaContext())["statusCode"] == 200


def run_consent_send_status(stack: Any, graph: Any) -> None:
    phone = corpus.PHONE
    put = flows.contacts(
        "PUT",
        phone,
        "/consent",
        {
            "purpose": "marketing",
            "status": "granted",
            "source": "web-form",
            "evidence": f"form by {corpus.NAME}",
        },
    )
    assert put["statusCode"] == 200, put
    assert flows.contacts("GET", phone, "/consent")["statusCode"] == 200
    assert flows.contacts("GET", corpus.USER_ID_2, "/consent")["statusCode"] == 200

    text = flows.send(phone, text=corpus.OUT_TEXT)
    template = flows.send(
        "+" + phone,
        purpose="marketing",
        template={
            "name": "new_arrivals",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "header",
                    "parameters": [{"type": "image", "image": {"link": "https://example.com/a.jpg"}}],
                },
                {"type": "body", "parameters": [{"type": "text", "text": corpus.NAME}]},
            ],
        },
        idempotency_key="idem-1",
    )
    assert text["statusCode"] == 202 and template["statusCode"] == 202, (text, template)
    assert flows.send("4930111122223", text=corpus.OUT_TEXT)["statusCode"] == 422  # no window
    assert flows.send(corpus.CONTACT_CARD_PHONE, text=corpus.OUT_TEXT)["statusCode"] == 400  # not a wa_id
    assert flows.send(phone, purpose="utility", template=f.template_for("utility"))["statusCode"] == 403
    graph.script([{"code": 131000}])  # one retry on the way
    flows.sender_mapping(stack).drain()
    text_id, template_id = flows.body_of(text)["id"], flows.body_of(template)["id"]
    sent = flows.view(text_id)
    assert sent["status"] == "sent", sent
    assert flows.view(template_id)["status"] == "sent"
    assert flows.view("msg_does_not_exist")["statusCode"] == 404

    # status webhooks for the text: delivered, read, a replay, and a failed one with 131050 for the template
    wamid = sent["wamid"]
    statuses = [f.status(wamid, s, phone) for s in ("sent", "delivered", "read", "read")]
    statuses.append(
        f.status(flows.view(template_id)["wamid"], "failed", phone, errors=[f.meta_error(131050)])
    )
    assert flows.inbound(stack, f.webhook_body(statuses=statuses))["statusCode"] == 200
    assert flows.view(text_id)["status"] == "read"

    # a send the Graph API refuses with 131050 (marketing stopped)
    assert (
        flows.contacts(
            "PUT", phone, "/consent", {"purpose": "marketing", "status": "granted", "source": "web-form"}
        )["statusCode"]
        == 200
    )
    again = flows.send(phone, purpose="marketing", template=f.template_for("marketing"))
    graph.script([{"code": 131050}])
    flows.sender_mapping(stack).drain()
    assert flows.view(flows.body_of(again)["id"])["status"] == "failed"


def run_keywords_preferences(stack: Any) -> None:
    phone = corpus.PHONE_2
    for body in (
        f.webhook_body([f.text_message(phone, " stop! ")]),
        f.webhook_body([f.text_message(phone, "START")]),
        f.webhook_body(
            field="user_preferences",
            user_preferences=[f.user_preference(phone, "stop")],
            contacts=[f.contact(phone, corpus.NAME_2)],
        ),
        f.webhook_body(field="user_preferences", user_preferences=[f.user_preference(phone, "resume")]),
    ):
        assert flows.inbound(stack, body)["statusCode"] == 200


def run_dsr(stack: Any) -> None:
    for contact in (corpus.PHONE, corpus.USER_ID_2, corpus.PHONE_2):
        assert flows.contacts("GET", contact, "/export")["statusCode"] == 200, contact
    erased = flows.contacts("DELETE", corpus.PHONE)
    assert erased["statusCode"] == 200
    assert flows.contacts("GET", corpus.PHONE, "/export")["statusCode"] == 404
    assert flows.contacts("DELETE", corpus.USER_ID_2)["statusCode"] == 200
    assert flows.contacts("GET", "not a contact " + corpus.NAME, "/export")["statusCode"] == 400
    assert flows.send(corpus.PHONE, text=corpus.OUT_TEXT)["statusCode"] in (403, 422)


def captured(capfd: pytest.CaptureFixture[str], sink: RecordSink, exclude: tuple[str, ...] = ()) -> str:
    out, err = capfd.readouterr()
    return "\n".join([out, err, sink.text(exclude)])


# ---- the tests ----------------------------------------------------------------------------------
def test_no_personal_data_in_logs_across_the_scenario_flows(
    aws_stack: Any, graph: Any, debug_logs: RecordSink, capfd: pytest.CaptureFixture[str]
) -> None:
    run_inbound(aws_stack)
    run_consent_send_status(aws_stack, graph)
    run_keywords_preferences(aws_stack)
    run_dsr(aws_stack)
    text = captured(capfd, debug_logs, exclude=NOT_SERVICE)
    assert logging.getLogger(c.SERVICE_NAME).getEffectiveLevel() == logging.DEBUG
    service = [r for r in debug_logs.records if r.name.split(".")[0] == c.SERVICE_NAME]
    assert len(service) > 40 and len(debug_logs.lines) == len(service), "the capture is broken"
    assert leaks(text, [str(service[0].getMessage())]), "the leak detector is broken"
    found = leaks(text, corpus.PERSONAL)
    assert not found, f"personal data in the logs: {found}"


def test_no_personal_data_in_logs_for_the_pywa_corpus(
    aws_stack: Any, debug_logs: RecordSink, capfd: pytest.CaptureFixture[str]
) -> None:
    if not corpus.pywa_available():
        pytest.skip("peer webhook fixtures are not present next to the repository")
    for name, body in corpus.pywa_bodies():
        assert flows.inbound(aws_stack, body)["statusCode"] == 200, name
    for contact in ("972987654321", "US.13491208655302741918"):
        flows.contacts("GET", contact, "/export")
        flows.contacts("DELETE", contact)
    text = captured(capfd, debug_logs, exclude=NOT_SERVICE)
    found = leaks(text, corpus.PYWA_PERSONAL)
    assert not found, f"personal data in the logs: {found}"


def test_failures_log_no_personal_data(
    aws_stack: Any, graph: Any, meter: Any, debug_logs: RecordSink, capfd: pytest.CaptureFixture[str]
) -> None:
    """Error paths log exception types and ids, never the payload (AWS faults in every function)."""
    from bench import meter as faults

    body = f.webhook_body(
        [f.text_message(corpus.PHONE, corpus.TEXT)], contacts=[f.contact(corpus.PHONE, corpus.NAME)]
    )
    meter.inject(faults.unavailable("sqs", "SendMessage", times=1))
    assert flows.webhook(body)["statusCode"] == 503
    meter.inject(faults.throttle("dynamodb", "PutItem", times=1))
    assert flows.inbound(aws_stack, body)["statusCode"] == 200
    meter.inject(faults.unavailable("dynamodb", "BatchGetItem", times=1))  # the contact's batched read
    assert flows.send(corpus.PHONE, text=corpus.OUT_TEXT)["statusCode"] >= 500
    reply = flows.send(corpus.PHONE, text=corpus.OUT_TEXT)
    assert reply["statusCode"] == 202
    meter.inject(faults.unavailable("dynamodb", "TransactWriteItems", times=2))  # the lease, the record
    graph.script(
        [{"status": 500, "body": {"error": {"message": f"bad recipient {corpus.PHONE}", "code": 1}}}]
    )
    flows.sender_mapping(aws_stack).drain()
    meter.inject(faults.unavailable("dynamodb", "Query", times=1))
    assert flows.contacts("GET", corpus.PHONE, "/export")["statusCode"] >= 500
    text = captured(capfd, debug_logs, exclude=NOT_SERVICE)
    found = leaks(text, corpus.PERSONAL)
    assert not found, f"personal data in the logs: {found}"


def test_sdk_wire_logs_stay_quiet_when_the_application_log_level_is_debug(
    aws_stack: Any, debug_logs: RecordSink, capfd: pytest.CaptureFixture[str]
) -> None:
    """With the application log level at DEBUG (cdk.json logLevel DEBUG sets Lambda's root logger), the AWS
    SDK's loggers stay quiet: at DEBUG botocore logs every request's parameters, e.g. SendMessage's body,
    the verified webhook with phone numbers, names and texts (found by this test, fixed in
    shared/observability.py)."""
    body = f.webhook_body(
        [f.text_message(corpus.PHONE, corpus.TEXT)], contacts=[f.contact(corpus.PHONE, corpus.NAME)]
    )
    assert flows.inbound(aws_stack, body)["statusCode"] == 200
    assert logging.getLogger().getEffectiveLevel() == logging.DEBUG
    text = captured(capfd, debug_logs, exclude=("moto",))
    found = leaks(text, [corpus.PHONE, corpus.NAME, corpus.TEXT])
    assert not found, f"personal data in the SDK's DEBUG logs: {found}"
