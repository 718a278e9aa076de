"""The consent gate reads the ledger under threads (issue 23): a grant that is there is never read as "no
consent". An erased contact (its key shredded) reads as absent; data that does not open although its key
exists, or a key that could not be read, stops the gate with an error (the work is retried), never a
silent "no consent"."""

from __future__ import annotations

import base64
import sys
import threading
from typing import Any

import pytest

from domain import consent, eligibility
from shared import constants as c
from store import consent as ledger
from store import contacts, crypto, tables

PHONE = "4915112345678"
OTHER = "4915187654321"


def _granted(phone: str = PHONE) -> contacts.Identity:
    identity = consent.identify(phone)
    consent.record(identity, "marketing", "granted", "web_form", evidence="form #12", publish=False)
    return identity


def _events(aws_stack, pk: str) -> list[dict[str, Any]]:
    """The contact's ledger events (not its consent summary)."""
    items = aws_stack.items(c.TABLE_CONSENT)
    return [i for i in items if i[c.PK] == pk and str(i[c.SK]).startswith(ledger.PREFIX)]


@pytest.fixture
def request_between_filter_and_key(monkeypatch):
    """Forces the interleaving seen under load: while this thread's request is being built (a Query's
    expiry filter done, its key condition not yet; with `within`, a condition's first comparison done, the
    next not yet), another thread makes a DynamoDB request (a PROFILE read, as the sender's other threads
    do), and this thread goes on once it is answered. `arm()` for the next request built on this thread;
    the state returned counts the requests that went between."""
    from boto3.dynamodb.conditions import ConditionExpressionBuilder

    me = threading.current_thread()
    state = {"armed": False, "between": 0}

    def other_request() -> None:
        if state["armed"] and threading.current_thread() is me:
            state["armed"] = False
            other = threading.Thread(target=tables.get_live, args=(c.TABLE_CONTACTS, "b" * 64, "PROFILE"))
            other.start()
            other.join()
            state["between"] += 1

    def hook(name: str, when: Any) -> None:
        real = getattr(ConditionExpressionBuilder, name)

        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            built = real(self, *args, **kwargs)
            if when(*args, **kwargs):
                other_request()
            return built

        monkeypatch.setattr(ConditionExpressionBuilder, name, call)

    def arm(within: bool = False) -> dict[str, Any]:
        if within:
            hook("_build_value_placeholder", lambda *a, **k: True)
        else:
            hook("build_expression", lambda condition, is_key_condition=False: not is_key_condition)
        state["armed"] = True
        return state

    return arm


def test_a_request_on_another_thread_does_not_empty_the_history_read(
    aws_stack, request_between_filter_and_key
) -> None:
    identity = _granted()
    state = request_between_filter_and_key()
    events = ledger.history(identity.hashes)
    assert state["between"] == 1  # the other thread's request did go between the two conditions
    assert [(e["purpose"], e["status"], e["evidence"]) for e in events] == [
        ("marketing", "granted", "form #12")
    ]


def test_the_prepare_gate_lets_a_consented_recipient_through_under_that_interleaving(
    aws_stack, request_between_filter_and_key
) -> None:
    from tests.conftest import seed_templates

    seed_templates()
    _granted()
    identity = contacts.identity(PHONE, strict=False, batched=True)
    template = {"name": "spring_sale", "language": {"code": "en_US"}}
    entry = eligibility.template_entry(template, eligibility.PREPARE)
    request_between_filter_and_key()
    found = eligibility.check(
        eligibility.Candidate(
            identity, None, eligibility.TEMPLATE, eligibility.PREPARE, template=template, entry=entry
        )
    )
    assert found is None


def test_a_conditional_write_is_checked_as_written_when_another_thread_goes_between(
    aws_stack, request_between_filter_and_key
) -> None:
    """Any Key/Attr condition, not only the ledger's: a put conditioned on `n = 2 AND k = 1` of an item
    holding n = 1, k = 1 must fail, whatever another thread sends while the condition is built (with one
    builder for all threads it became `k = 1 AND k = 1`, and the put was applied)."""
    from boto3.dynamodb.conditions import Attr
    from botocore.exceptions import ClientError

    item = {c.PK: "c" * 64, c.SK: "PROFILE", "n": 1, "k": 1, c.TTL_ATTRIBUTE: tables.now() + 3600}
    tables.table(c.TABLE_CONTACTS).put_item(Item=item)
    state = request_between_filter_and_key(within=True)
    with pytest.raises(ClientError) as failed:
        tables.table(c.TABLE_CONTACTS).put_item(
            Item={**item, "n": 3}, ConditionExpression=Attr("n").eq(2) & Attr("k").eq(1)
        )
    assert state["between"] == 1
    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert tables.get_live(c.TABLE_CONTACTS, "c" * 64, "PROFILE")["n"] == 1


def test_the_history_reads_under_threads_sharing_the_process_resource(aws_stack) -> None:
    """Eight threads read the ledger of contacts that all granted, at once: every read finds its grant."""
    from concurrent.futures import ThreadPoolExecutor

    identities = [_granted(f"49151000000{n:02d}") for n in range(8)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch as often as on a loaded machine
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            found = list(pool.map(lambda i: len(ledger.history(i.hashes)), identities * 25))
    finally:
        sys.setswitchinterval(switch)
    assert found == [1] * len(found)


# ---- a read that could not be completed is not "no consent"; an erasure is -----------------------------
def test_an_event_that_does_not_open_stops_the_gate_instead_of_reading_as_no_consent(aws_stack) -> None:
    identity = _granted()
    [event] = _events(aws_stack, identity.primary)
    # The ciphertext of another item of the same contact (same key, another item): it does not open here.
    stranger = crypto.cipher().encrypt(
        identity.primary, c.TABLE_CONSENT, identity.primary, "EV#other", contacts.DATA, {"evidence": None}
    )
    tables.table(c.TABLE_CONSENT).put_item(Item={**event, contacts.DATA: stranger})
    with pytest.raises(contacts.Unreadable) as raised:
        consent.is_granted(identity, "marketing")
    assert PHONE not in str(raised.value) and identity.reference in str(raised.value)
    candidate = eligibility.Candidate(identity, "marketing", "text", eligibility.SEND)
    with pytest.raises(contacts.Unreadable):
        eligibility.check(candidate)


def test_an_event_without_its_data_stops_the_gate(aws_stack) -> None:
    identity = _granted()
    [event] = _events(aws_stack, identity.primary)
    tables.table(c.TABLE_CONSENT).put_item(Item={k: v for k, v in event.items() if k != contacts.DATA})
    with pytest.raises(contacts.Unreadable):
        ledger.history(identity.hashes)


def test_a_key_read_that_fails_raises_instead_of_reading_as_no_consent(aws_stack, monkeypatch) -> None:
    from botocore.exceptions import ClientError

    identity = _granted()
    crypto.cipher().forget()  # a container that holds no key: the ledger's read needs the keys table
    real = tables.get_live

    def throttled(logical: str, pk: str, sk: str, consistent: bool = True) -> dict[str, Any] | None:
        if logical == c.TABLE_KEYS:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "GetItem")
        return real(logical, pk, sk, consistent)

    monkeypatch.setattr(tables, "get_live", throttled)
    with pytest.raises(ClientError):
        consent.is_granted(identity, "marketing")
    monkeypatch.setattr(tables, "get_live", real)
    assert consent.is_granted(identity, "marketing") is True


def test_an_erased_contact_reads_as_absent_not_as_an_error(aws_stack) -> None:
    identity = _granted()
    other = _granted(OTHER)
    assert crypto.cipher().shred(identity.primary) is True
    crypto.reset()  # a cold container too
    assert ledger.history(identity.hashes) == []
    assert consent.is_granted(identity, "marketing") is False
    assert consent.is_granted(other, "marketing") is True


def test_a_legacy_event_sealed_under_an_erased_key_reads_as_absent(aws_stack) -> None:
    """`v1:` values name no key: after an erasure and a new life (a new key), an old one does not open
    under the new key and is shredded data, not an error."""
    identity = _granted()
    [event] = _events(aws_stack, identity.primary)
    old_key = crypto.cipher().write_key(identity.primary).key
    aad = crypto._aad(c.TABLE_CONSENT, identity.primary, str(event[c.SK]), contacts.DATA)
    legacy = "v1:" + base64.urlsafe_b64encode(crypto._seal(old_key, b'{"evidence":"old"}', aad)).decode()
    tables.table(c.TABLE_CONSENT).put_item(Item={**event, contacts.DATA: legacy})
    assert [e["evidence"] for e in ledger.history(identity.hashes)] == ["old"]  # its key: it opens
    crypto.cipher().shred(identity.primary)
    consent.record(identity, "utility", "granted", "web_form", publish=False)  # a new life: a new key
    assert [(e["purpose"], e["status"]) for e in ledger.history(identity.hashes)] == [("utility", "granted")]
