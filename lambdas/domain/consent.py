"""Consent: an append-only ledger per contact; the current state of a purpose is its latest event.

Sources used by waguard itself: `keyword` (STOP/START), `user_preferences` (Meta's marketing
stop/resume), `meta_error_131050` (a failed status or Graph answer with error 131050). A `granted`
event recorded after an erasure lifts the contact's suppression (`store.contacts.is_suppressed`).
"""

from __future__ import annotations

from typing import Any

from domain import events
from shared import constants as c
from store import consent as ledger
from store import contacts
from store.contacts import Identity

GRANTED = "granted"
REVOKED = "revoked"
STATUSES = (GRANTED, REVOKED)


def identify(contact: str) -> Identity:
    """The identity set of a contact as given in a request (shared.ids.InvalidContact when malformed)."""
    return contacts.identity(contact)


def entry(event: dict[str, Any]) -> dict[str, Any]:
    """The public shape of one event."""
    return {
        "purpose": event["purpose"],
        "status": event["status"],
        "source": event["source"],
        "recorded_at": event["recorded_at"],
    }


def record(
    identity: Identity,
    purpose: str,
    status: str,
    source: str,
    evidence: str | None = None,
    meta_timestamp: int | None = None,
    publish: bool = True,
) -> dict[str, Any]:
    """Append one event for the contact and return `{"purpose", "status", "source", "recorded_at"}`;
    then tell the business (`consent.changed`; store.events.Unpublished when the bus refuses it)."""
    if purpose not in c.CONSENT_PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    if status not in STATUSES:
        raise ValueError(f"unknown consent status {status!r}")
    recorded = entry(ledger.append(identity.primary, purpose, status, source, evidence, meta_timestamp))
    if publish:
        events.publish([events.consent_changed(identity.primary, purpose, status, source)])
    return recorded


def revoke_all(
    identity: Identity, source: str, evidence: str | None = None, meta_timestamp: int | None = None
) -> list[dict[str, Any]]:
    """Revoke every consent purpose (an opt-out keyword): one `consent.changed` per purpose, one call."""
    recorded = [
        record(identity, p, REVOKED, source, evidence, meta_timestamp, publish=False)
        for p in c.CONSENT_PURPOSES
    ]
    events.publish(
        [events.consent_changed(identity.primary, e["purpose"], REVOKED, source) for e in recorded]
    )
    return recorded


def history(identity: Identity) -> list[dict[str, Any]]:
    return ledger.history(identity.hashes)


def current(identity: Identity, events: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Purpose -> its latest event `{"status", "source", "recorded_at"}` (purposes never set are absent)."""
    state: dict[str, dict[str, Any]] = {}
    for event in events if events is not None else history(identity):
        state[event["purpose"]] = {k: event[k] for k in ("status", "source", "recorded_at")}
    return state


def is_granted(identity: Identity, purpose: str) -> bool:
    """True when the latest event for `purpose` is `granted`."""
    return current(identity).get(purpose, {}).get("status") == GRANTED


def view(identity: Identity) -> dict[str, Any]:
    """The GET /contacts/{contact}/consent document."""
    contacts.fresh_keys(identity.hashes)
    events = history(identity)
    return {
        "contact": identity.ref,
        "purposes": current(identity, events),
        "history": [entry(e) for e in events],
    }
