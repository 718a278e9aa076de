"""Restriction of processing (GDPR Art. 18; contract: "Privacy operations").

While a contact is restricted its data is stored and nothing else: every send is refused (the send gate's
`restriction` rule, domain/eligibility.py: 403 `restricted` at acceptance, `failed` at the sender's turn,
so campaigns skip them too), the conversation route answers 403 `restricted`, and no event about the
contact goes on the bus but `contact.restricted`, `contact.unrestricted` and `contact.erased`
(domain/events.publish). Export, consent and erasure still work; the export shows `restriction`.

The state is recorded on every pseudonym of the identity set; an erasure removes it with the rest.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain import events
from store import audit
from store import privacy as store
from store.contacts import Identity

ROUTE = "PUT /contacts/{contact}/restriction"


def set_restriction(
    identity: Identity, restricted: bool, reason: str | None = None, actor: str = ""
) -> dict[str, Any]:
    """Record the state, tell consumers (`contact.restricted` / `contact.unrestricted`); the answer."""
    recorded_at = datetime.now(UTC).isoformat(timespec="microseconds")
    for pk in identity.hashes:
        store.set_restriction(pk, restricted, reason, recorded_at)
    audit.record(
        actor=actor or "privacy request",
        action="restrict" if restricted else "unrestrict",
        outcome="recorded",
        route=ROUTE,
        subject=identity.primary,
    )
    events.publish([events.restriction_changed(pk, restricted) for pk in identity.hashes])
    out: dict[str, Any] = {
        "contact": identity.reference,
        "restricted": restricted,
        "recorded_at": recorded_at,
    }
    if reason:
        out["reason"] = reason
    return out


def state(identity: Identity) -> dict[str, Any] | None:
    """The export's `restriction`: the newest record of the identity set, None when never restricted."""
    found = [r for pk in identity.hashes if (r := store.restriction(pk))]
    return max(found, key=lambda r: r["recorded_at"]) if found else None


def is_restricted(identity: Identity) -> bool:
    """Whether any pseudonym of the set is restricted (as the set's batched read found it, when it was)."""
    seen = identity.seen.restricted if identity.seen is not None else {}
    return any(seen[pk] if pk in seen else store.is_restricted(pk) for pk in identity.hashes)
