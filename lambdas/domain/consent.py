"""Consent: an append-only ledger per contact; the current state of a purpose is its latest event.

Sources used by waguard itself: `keyword` (STOP/START), `user_preferences` (Meta's marketing
stop/resume), `meta_error_131050` (a failed status or Graph answer with error 131050). A `granted`
event recorded after an erasure lifts the contact's suppression (`is_suppressed`).

Order (contract: Consent). Grants and revocations through the API are ordered by the time waguard records
them. What comes from the contact's side (the sources above) is ordered by Meta's timestamp: an event
whose Meta timestamp is earlier than the latest effective contact-side change of that purpose (a grant
also when it is the same second: a revocation wins a tie), or more than `STALE_SECONDS` old, is kept
as evidence (`effective: false`, with the reason in `ignored`) and changes nothing: it is not the
purpose's state, lifts no suppression and is not told as `consent.changed`.
Meta's signature carries no timestamp and the inbound queue keeps no order, so without this an old signed
START or "resume" replayed (or merely delayed) would undo a later STOP.
"""

from __future__ import annotations

from typing import Any

from domain import events
from shared import constants as c
from store import consent as ledger
from store import contacts, tables
from store.contacts import Identity

GRANTED = "granted"
REVOKED = "revoked"
STATUSES = (GRANTED, REVOKED)
KEYWORD_SOURCE = "keyword"
PREFERENCES_SOURCE = "user_preferences"
ERROR_131050_SOURCE = "meta_error_131050"
CONTACT_SOURCES = frozenset({KEYWORD_SOURCE, PREFERENCES_SOURCE, ERROR_131050_SOURCE})
STALE_SECONDS = 7 * 86400  # Meta redelivers for up to 7 days: anything older is a replay, not news
IGNORED_STALE = "stale"  # Meta's timestamp more than STALE_SECONDS before it was recorded
IGNORED_SUPERSEDED = "superseded"  # not later than the latest contact-side change of the purpose


def is_suppressed(identity: Identity) -> bool:
    """Erased (a suppression record on any pseudonym of the set) and no effective `granted` consent event
    of the set recorded after the latest erasure (contract: "Life after erasure")."""
    erased = [
        str(item["erased_at"]) for pk in identity.hashes if (item := contacts.suppression(pk, identity))
    ]
    if not erased:
        return False
    latest = max(erased)
    return not any(
        e["status"] == GRANTED and e.get("effective", True) is not False and str(e["recorded_at"]) > latest
        for e in ledger.history(identity.hashes)
    )


def identify(contact: str) -> Identity:
    """The identity set of a contact as given in a request (shared.ids.InvalidContact when malformed)."""
    return contacts.identity(contact)


def entry(event: dict[str, Any]) -> dict[str, Any]:
    """The public shape of one event (`effective: false` and `ignored` for evidence that changed nothing)."""
    out = {
        "purpose": event["purpose"],
        "status": event["status"],
        "source": event["source"],
        "recorded_at": event["recorded_at"],
    }
    if not is_effective(event):
        out["effective"] = False
        out["ignored"] = event.get("ignored")
    return out


def is_effective(event: dict[str, Any]) -> bool:
    return event.get("effective", True) is not False


def _ignored(
    purpose: str,
    status: str,
    source: str,
    meta_timestamp: int | None,
    events: list[dict[str, Any]],
    now: int,
) -> str | None:
    """Why a contact-side event changes nothing (see the module doc), or None when it takes effect."""
    if source not in CONTACT_SOURCES:
        return None
    at = int(meta_timestamp) if meta_timestamp is not None else now
    if at < now - STALE_SECONDS:
        return IGNORED_STALE
    latest = [
        int(e["meta_timestamp"])
        for e in events
        if e["purpose"] == purpose
        and e["source"] in CONTACT_SOURCES
        and e.get("meta_timestamp") is not None
        and is_effective(e)
    ]
    if not latest:
        return None
    newest = max(latest)
    # Meta's timestamps have whole seconds: within one second a revocation takes effect, a grant does not
    # (the person's no is never lost to a tie).
    return IGNORED_SUPERSEDED if at < newest or (at == newest and status == GRANTED) else None


def record(
    identity: Identity,
    purpose: str,
    status: str,
    source: str,
    evidence: str | None = None,
    meta_timestamp: int | None = None,
    publish: bool = True,
    known: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Append one event for the contact and return `{"purpose", "status", "source", "recorded_at"}`
    (with `effective: false` when it changed nothing, see the module doc); then tell the business
    (`consent.changed`; store.events.Unpublished when the bus refuses it). `known`: the contact's
    history when the caller has just read it."""
    if purpose not in c.CONSENT_PURPOSES:
        raise ValueError(f"unknown consent purpose {purpose!r}")
    if status not in STATUSES:
        raise ValueError(f"unknown consent status {status!r}")
    if meta_timestamp is None and source in CONTACT_SOURCES:
        meta_timestamp = tables.now()  # told by Graph's own answer just now (error 131050)
    ignored = None
    if source in CONTACT_SOURCES:
        ignored = _ignored(
            purpose,
            status,
            source,
            meta_timestamp,
            known if known is not None else history(identity),
            tables.now(),
        )
    stored = ledger.append(
        identity.primary, purpose, status, source, evidence, meta_timestamp, ignored=ignored
    )
    recorded = entry(stored)
    if publish and ignored is None:
        events.publish([events.consent_changed(identity.primary, purpose, status, source)])
    return recorded


def revoke_all(
    identity: Identity, source: str, evidence: str | None = None, meta_timestamp: int | None = None
) -> list[dict[str, Any]]:
    """Revoke every consent purpose (an opt-out keyword): one `consent.changed` per purpose that changed,
    one call."""
    known = history(identity)
    recorded = [
        record(identity, p, REVOKED, source, evidence, meta_timestamp, publish=False, known=known)
        for p in c.CONSENT_PURPOSES
    ]
    told = [
        events.consent_changed(identity.primary, e["purpose"], REVOKED, source)
        for e in recorded
        if e.get("effective", True)
    ]
    if told:
        events.publish(told)
    return recorded


def history(identity: Identity) -> list[dict[str, Any]]:
    return ledger.history(identity.hashes)


def current(identity: Identity, events: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Purpose -> its latest event `{"status", "source", "recorded_at"}` (purposes never set are absent)."""
    state: dict[str, dict[str, Any]] = {}
    for event in events if events is not None else history(identity):
        if is_effective(event):
            state[event["purpose"]] = {k: event[k] for k in ("status", "source", "recorded_at")}
    return state


def is_granted(identity: Identity, purpose: str) -> bool:
    """True when the latest event for `purpose` is `granted` (as the contact's consent SUMMARY read with its
    set says, else the ledger)."""
    held = ledger.summarized(identity, purpose)
    if held is not None:
        return held
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


def remember_address(identity: Identity) -> None:
    """Keep (encrypted in the PROFILE) the number or user id a grant was recorded for, so that a campaign
    whose audience is everyone who consented reaches the contact by reference; erased with the contact."""
    from shared import ids
    from store import contacts

    if ids.is_reference(identity.ref):
        return
    field = "wa_id" if ids.is_phone(identity.ref) else "user_id"
    contacts.touch(identity.primary, {field: identity.ref})
