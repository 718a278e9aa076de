"""Life after erasure (contract "Life after erasure"), on moto with several warm "containers".

Each function instance in AWS keeps its own cache of data keys. `Containers` gives every handler call
the cache of one named instance (a `store.crypto.FieldCipher` of its own), so a processor that cached the
contact's key before the erasure, served elsewhere, handles the next message with that stale key, and
the instance that served the erasure handles the next consent change: what the issue found losing data.

The sequence test drives write / grant / revoke / erase in any order (hypothesis), each through a
randomly chosen instance, against a small model of what must be readable afterwards; and every send the
API accepts must be backed by consent or a window that the API shows at that moment (the invariant).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from store import crypto
from tests import factory as f

PURPOSES = ("marketing", "utility", "authentication")
_numbers = itertools.count(1)


def fresh_phone() -> str:
    return f"4917{next(_numbers):09d}"


class Containers:
    """Warm instances, each with its own key cache (one FieldCipher per name)."""

    def __init__(self) -> None:
        self._ciphers: dict[str, crypto.FieldCipher] = {}

    @contextmanager
    def on(self, name: str) -> Iterator[None]:
        saved = crypto._cipher
        crypto._cipher = self._ciphers.setdefault(name, crypto.FieldCipher())
        try:
            yield
        finally:
            crypto._cipher = saved


@pytest.fixture
def containers(aws_stack) -> Containers:
    return Containers()


# ---- calls, each on one instance ------------------------------------------------------------------
def write(stack, boxes: Containers, phone: str, text: str, box: str = "processor-1") -> None:
    body = f.webhook_body(messages=[f.text_message(phone, text)], contacts=[f.contact(phone)])
    reply = f.call_webhook(f.webhook_post(body, f.APP_SECRET))
    assert reply["statusCode"] == 200
    with boxes.on(box):
        result = f.run_processor(f.drain(stack.queues["inbound"]))
    assert result == {"batchItemFailures": []}, result


def set_consent(boxes: Containers, phone: str, purpose: str, status: str, box: str = "contacts-1") -> None:
    with boxes.on(box):
        reply = f.call_contacts(
            "PUT", phone, "/consent", {"purpose": purpose, "status": status, "source": "form"}
        )
    assert reply["statusCode"] == 200, reply


def erase(boxes: Containers, phone: str, box: str = "contacts-1") -> None:
    with boxes.on(box):
        assert f.call_contacts("DELETE", phone)["statusCode"] == 200


def export(boxes: Containers, phone: str, box: str = "contacts-1") -> dict | None:
    with boxes.on(box):
        reply = f.call_contacts("GET", phone, "/export")
    if reply["statusCode"] == 404:
        return None
    assert reply["statusCode"] == 200, reply
    return f.reply_json(reply)


def consent_view(boxes: Containers, phone: str, box: str = "contacts-1") -> dict:
    with boxes.on(box):
        reply = f.call_contacts("GET", phone, "/consent")
    assert reply["statusCode"] == 200, reply
    return f.reply_json(reply)


def send(boxes: Containers, body: dict, box: str = "messages-1") -> tuple[int, dict]:
    with boxes.on(box):
        reply = f.call_messages(f.messages_post(body))
    return reply["statusCode"], f.reply_json(reply)


def texts_in(doc: dict | None) -> list[str]:
    return [m["text"] for m in (doc or {}).get("messages", []) if m["direction"] == "in"]


def warm(stack, boxes: Containers, phone: str) -> None:
    """Every instance caches the contact's key: a message, a grant, a send, an export, all before erasure."""
    write(stack, boxes, phone, "before", box="processor-1")
    set_consent(boxes, phone, "marketing", "granted", box="contacts-1")
    assert (
        send(boxes, {"to": phone, "purpose": "marketing", "template": f.template_for("marketing")})[0] == 202
    )
    assert texts_in(export(boxes, phone)) == ["before"]
    f.drain(stack.queues["send"])


# ---- the cases of the issue -----------------------------------------------------------------------
def test_a_grant_after_erasure_is_kept_readable_and_allows_only_its_purpose(aws_stack, containers) -> None:
    phone = fresh_phone()
    warm(aws_stack, containers, phone)
    erase(containers, phone)
    set_consent(containers, phone, "utility", "granted")  # the very instance that served the erasure
    view = consent_view(containers, phone, box="contacts-2")
    assert view["purposes"] == {"utility": view["purposes"]["utility"]}
    assert [(h["purpose"], h["status"]) for h in view["history"]] == [("utility", "granted")]
    assert (
        send(containers, {"to": phone, "purpose": "utility", "template": f.template_for("utility")})[0] == 202
    )
    status, body = send(
        containers, {"to": phone, "purpose": "marketing", "template": f.template_for("marketing")}
    )
    assert (status, body["error"]) == (403, "consent_required")


def test_a_message_after_erasure_through_a_warm_processor_is_stored_and_opens_the_window(
    aws_stack, containers
) -> None:
    phone = fresh_phone()
    warm(aws_stack, containers, phone)
    erase(containers, phone)
    status, body = send(containers, {"to": phone, "purpose": "service", "text": {"body": "hi"}})
    assert (status, body["error"]) == (422, "outside_service_window")
    write(aws_stack, containers, phone, "I am back", box="processor-1")  # holds the shredded key
    assert texts_in(export(containers, phone, box="contacts-2")) == ["I am back"]
    assert send(containers, {"to": phone, "purpose": "service", "text": {"body": "welcome"}})[0] == 202
    status, body = send(
        containers, {"to": phone, "purpose": "marketing", "template": f.template_for("marketing")}
    )
    assert (status, body["error"]) == (403, "consent_required")


def test_write_erase_cycles_keep_each_life_whole(aws_stack, containers) -> None:
    phone = fresh_phone()
    for life in range(4):
        for n in range(2):
            write(aws_stack, containers, phone, f"life {life} #{n}", box=f"processor-{(life + n) % 2}")
        assert sorted(texts_in(export(containers, phone))) == [f"life {life} #0", f"life {life} #1"]
        if life < 3:
            erase(containers, phone, box=f"contacts-{life % 2}")
            assert export(containers, phone) is None


def test_start_after_erasure_is_in_the_ledger_that_the_gate_reads(aws_stack, containers) -> None:
    phone = fresh_phone()
    warm(aws_stack, containers, phone)
    erase(containers, phone)
    write(aws_stack, containers, phone, "START", box="processor-1")
    view = consent_view(containers, phone)
    assert view["purposes"]["marketing"]["status"] == "granted"
    assert [(h["purpose"], h["status"], h["source"]) for h in view["history"]] == [
        ("marketing", "granted", "keyword")
    ]
    assert (
        send(containers, {"to": phone, "purpose": "marketing", "template": f.template_for("marketing")})[0]
        == 202
    )
    assert texts_in(export(containers, phone, box="contacts-2")) == ["START"]


def test_outbound_messages_after_erasure_are_exported(aws_stack, containers) -> None:
    phone = fresh_phone()
    warm(aws_stack, containers, phone)
    erase(containers, phone)
    write(aws_stack, containers, phone, "hello again", box="processor-2")
    ids = []
    for n in range(4):
        status, body = send(containers, {"to": phone, "purpose": "service", "text": {"body": f"r{n}"}})
        assert status == 202
        ids.append(body["id"])
    doc = export(containers, phone)
    assert sorted(m["id"] for m in doc["messages"] if m["direction"] == "out") == sorted(ids)


# ---- any sequence, against a model ----------------------------------------------------------------
@dataclass
class Model:
    """What must be readable: everything since the last erasure."""

    texts: list[str] = field(default_factory=list)
    consent: list[tuple[str, str]] = field(default_factory=list)
    erased: bool = False

    def current(self, purpose: str) -> str | None:
        states = [s for p, s in self.consent if p == purpose]
        return states[-1] if states else None

    def suppressed(self) -> bool:
        return self.erased and not any(s == "granted" for _, s in self.consent)


STEP = st.one_of(
    st.tuples(st.just("write"), st.sampled_from(["hello", "where is my parcel", "thanks"])),
    st.tuples(st.just("grant"), st.sampled_from(PURPOSES)),
    st.tuples(st.just("revoke"), st.sampled_from(PURPOSES)),
    st.tuples(st.just("erase"), st.just("")),
)
BOX = st.integers(min_value=0, max_value=2)


def check_sends(boxes: Containers, phone: str, model: Model, box: str) -> None:
    """Every send the API accepts is allowed by what the API shows now (the invariant), and the gate
    agrees with the model."""
    view = consent_view(boxes, phone, box="contacts-0")
    for purpose in PURPOSES:
        status, _ = send(
            boxes, {"to": phone, "purpose": purpose, "template": f.template_for(purpose)}, box=box
        )
        readable = view["purposes"].get(purpose, {}).get("status") == "granted"
        assert (status == 202) == readable, (purpose, status, view)
        assert (status == 202) == (model.current(purpose) == "granted" and not model.suppressed())
    status, _ = send(boxes, {"to": phone, "purpose": "service", "text": {"body": "reply"}}, box=box)
    shown = texts_in(export(boxes, phone, box="contacts-1"))
    assert (status == 202) == bool(shown) == bool(model.texts), (status, shown, model)


@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(st.tuples(STEP, BOX), min_size=3, max_size=9))
def test_any_sequence_leaves_exactly_what_the_model_says(aws_stack, containers, steps) -> None:
    phone = fresh_phone()
    model = Model()
    for (op, arg), n in steps:
        if op == "write":
            write(aws_stack, containers, phone, arg, box=f"processor-{n}")
            model.texts.append(arg)
        elif op in ("grant", "revoke"):
            status = "granted" if op == "grant" else "revoked"
            set_consent(containers, phone, arg, status, box=f"contacts-{n}")
            model.consent.append((arg, status))
        else:
            erase(containers, phone, box=f"contacts-{n}")
            model = Model(erased=True)
        f.drain(aws_stack.queues["send"])
    assert sorted(texts_in(export(containers, phone, box="contacts-2"))) == sorted(model.texts)
    view = consent_view(containers, phone, box="contacts-0")
    assert [(h["purpose"], h["status"]) for h in view["history"]] == model.consent
    check_sends(containers, phone, model, box="messages-0")
    f.drain(aws_stack.queues["send"])
