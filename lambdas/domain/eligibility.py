"""The one send gate: may this message go to this contact now? (contract: "Sending"; docs/sending.md)

Evaluated at four moments: when `POST /messages` accepts a message (`ACCEPT`: before anything is stored
or queued), when the sender's turn comes (`SEND`: what can change after acceptance, an erasure or a
STOP), for a service text waguard itself answers with (`SERVICE_TEXT`: the STOP confirmation), and for a
campaign's recipient when the campaign is prepared (`PREPARE`; its message is gated again at `SEND`).

The rules are a table (`RULES`): each names the moments it applies at and answers None (eligible) or an
`Ineligible` with the HTTP refusal of the accept moment and the `{"code", "title"}` a failed message shows.
A capability that adds a condition (templates, campaigns, restriction) adds one row. The first rule that
refuses decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from domain.errors import Refused
from shared import constants as c
from shared.settings import get_settings
from store.contacts import Identity

ACCEPT = "accept"
SEND = "send"
SERVICE_TEXT = "service_text"
PREPARE = "prepare"  # a campaign's recipient when the campaign is prepared (domain/campaigns.py)
MOMENTS = frozenset({ACCEPT, SEND, SERVICE_TEXT, PREPARE})
TEMPLATE = "template"


@dataclass(frozen=True)
class Candidate:
    """One message to one contact at one moment."""

    identity: Identity
    purpose: str | None  # as declared: service, marketing, utility, authentication (a template: optional)
    kind: str  # template or a free-form kind (text, image, interactive, ...)
    moment: str
    number: str | None = None  # the business number it goes out from (the window is per number)
    now: float = field(default_factory=time.time)
    template: dict[str, Any] | None = None  # a template send's {"name", "language": {"code"}, "components"?}
    entry: Any = None  # its registry entry (domain.templates.Entry), looked up by `check` when not given


@dataclass(frozen=True)
class Ineligible:
    status: int  # the HTTP answer at acceptance
    code: str
    message: str  # at acceptance (no personal data)
    title: str  # the failed message's error title at send time
    rule: str = ""  # the name of the rule that refused (RULES), set by `check`

    def refusal(self) -> Refused:
        return Refused(self.status, self.code, self.message)

    def error(self) -> dict[str, str]:
        return {"code": self.code, "title": self.title}


def consent_purpose(purpose: str | None, kind: str, entry: Any = None) -> str | None:
    """The consent purpose a send needs: a template's comes from its category in the registry (`entry`);
    None for a free-form service message (the window is enough)."""
    if kind == TEMPLATE and entry is not None:
        return str(entry.purpose)
    if kind != TEMPLATE:
        return None if purpose in (None, c.PURPOSE_SERVICE) else purpose
    return "utility" if purpose in (None, c.PURPOSE_SERVICE) else purpose


def _template(m: Candidate) -> Ineligible | None:
    """A template must be in the registry and APPROVED; at acceptance its components must fill exactly its
    parameters and a declared purpose must be its category's (`service` counts as utility)."""
    from domain import template_fit

    if m.kind != TEMPLATE:
        return None
    entry = m.entry
    if entry is None:
        if m.moment == ACCEPT:
            return Ineligible(
                400,
                "unknown_template",
                "the registry has no such template in that language (see GET /templates)",
                "",
            )
        return Ineligible(
            422, "template_not_approved", "", "the template left the registry before the message was sent"
        )
    if not entry.approved or entry.purpose is None:
        return Ineligible(
            422,
            "template_not_approved",
            f"the template's status is {entry.status}, not APPROVED",
            f"the template was {entry.status} when the message was due",
        )
    if m.moment != ACCEPT:
        return None
    try:
        template_fit.check(entry.components, entry.parameter_format, (m.template or {}).get("components"))
    except template_fit.Misfit as exc:
        return Ineligible(400, "template_parameters", str(exc), "")
    declared = "utility" if m.purpose == c.PURPOSE_SERVICE else m.purpose
    if declared is not None and declared != entry.purpose:
        return Ineligible(
            400,
            "purpose_mismatch",
            f"the template's category is {entry.category}: its purpose is {entry.purpose}, not {m.purpose}",
            "",
        )
    return None


def _restriction(m: Candidate) -> Ineligible | None:
    """A restricted contact (GDPR Art. 18, domain/restriction.py) gets nothing, waguard's own texts and
    campaign messages included."""
    from domain import restriction

    if restriction.is_restricted(m.identity):
        return Ineligible(
            403,
            "restricted",
            "processing of this contact's data is restricted",
            "the contact's processing was restricted before the message was sent",
        )
    return None


def _suppression(m: Candidate) -> Ineligible | None:
    """An erased contact gets no template until a new explicit grant. A free-form reply needs only the
    window, which the contact's first message after the erasure opens (a message queued before the
    erasure was erased with it); waguard's own service text waits for that message too."""
    from domain import consent

    if m.moment == SERVICE_TEXT and _wrote_since_erasure(m):
        return None  # the privacy notice and request answers to the contact's first message after it
    if (m.kind == TEMPLATE or m.moment == SERVICE_TEXT) and consent.is_suppressed(m.identity):
        return Ineligible(
            403,
            "consent_required",
            "the contact was erased; sending needs a new explicit consent",
            "the contact was erased before the message was sent",
        )
    return None


def _wrote_since_erasure(m: Candidate) -> bool:
    """The contact opened the window on this number after its latest erasure (a new life)."""
    from datetime import datetime

    from store import contacts

    erased = [str(i["erased_at"]) for pk in m.identity.hashes if (i := contacts.suppression(pk))]
    last = contacts.last_inbound_at(m.identity, m.number)
    if not erased or last is None:
        return False
    return last >= int(datetime.fromisoformat(max(erased)).timestamp())


def _window(m: Candidate) -> Ineligible | None:
    """Free-form kinds need the contact's 24-hour window on the business number it goes out from."""
    from store import contacts

    if m.kind == TEMPLATE:
        return None
    last = contacts.last_inbound_at(m.identity, m.number)
    if last is None or m.now - last > get_settings().service_window_hours * 3600:
        return Ineligible(
            422,
            "outside_service_window",
            "free-form messages need the 24-hour customer-service window; send a template instead",
            "the 24-hour customer-service window closed before the message was sent",
        )
    return None


def _consent(m: Candidate) -> Ineligible | None:
    """A template, or a free-form message declared for a purpose other than service, needs that purpose's
    `granted` consent and no later revocation."""
    from domain import consent

    needed = consent_purpose(m.purpose, m.kind, m.entry)
    if needed and not consent.is_granted(m.identity, needed):
        recategorized = m.moment == SEND and m.entry is not None and needed != m.purpose
        return Ineligible(
            403,
            "consent_required",
            f"the contact has not granted {needed} consent",
            f"the template now needs {needed} consent, which the contact has not granted"
            if recategorized
            else f"{needed} consent was revoked before the message was sent",
        )
    return None


def _frequency_cap(m: Candidate) -> Ineligible | None:
    """A campaign's marketing template skips a contact who received `N` of them in the last `D` days
    (`marketingFrequencyCap`; none by default)."""
    cap = get_settings().marketing_frequency_cap
    if cap is None or m.kind != TEMPLATE or m.entry is None or m.entry.purpose != "marketing":
        return None
    from store import messages

    if messages.marketing_sent_since(m.identity.hashes, int(m.now) - cap[1] * 86400) >= cap[0]:
        return Ineligible(
            403,
            "frequency_cap",
            f"the contact received {cap[0]} marketing templates in the last {cap[1]} days",
            "the contact reached the marketing frequency cap",
        )
    return None


Rule = Callable[[Candidate], Ineligible | None]
# (name, the moments it applies at, rule), in the order they decide. The window is checked at acceptance
# only: Meta itself refuses a free-form message sent after the window closed (131047).
RULES: tuple[tuple[str, frozenset[str], Rule], ...] = (
    ("template", frozenset({ACCEPT, SEND, PREPARE}), _template),
    ("restriction", MOMENTS, _restriction),
    ("suppression", MOMENTS, _suppression),
    ("service_window", frozenset({ACCEPT}), _window),
    ("consent", frozenset({ACCEPT, SEND, PREPARE}), _consent),
    ("frequency_cap", frozenset({PREPARE}), _frequency_cap),
)


def check(candidate: Candidate) -> Ineligible | None:
    """The first rule that refuses `candidate` at its moment, or None when it may go out."""
    from store import contacts

    if candidate.moment not in MOMENTS:
        raise ValueError(f"unknown moment {candidate.moment!r}")
    seen = candidate.identity.seen
    if candidate.moment == ACCEPT and not (seen is not None and seen.fresh):
        # Decide on what the API would show now: keys cached by this container may predate an erasure
        # served elsewhere (the consent and export routes read them fresh too; `contacts.read_set` with
        # `fresh` read them with the contact's items just now).
        contacts.fresh_keys(candidate.identity.hashes)
    if candidate.kind == TEMPLATE and candidate.entry is None:
        candidate = replace(candidate, entry=template_entry(candidate.template, candidate.moment))
    for name, moments, rule in RULES:
        if candidate.moment in moments and (found := rule(candidate)) is not None:
            return replace(found, rule=name)
    return None


def template_entry(template: dict[str, Any] | None, moment: str, max_age: float = 0) -> Any:
    """The registry entry a template send names (at acceptance, a miss syncs the registry once a minute;
    `max_age`: an APPROVED entry read that recently by this container will do, see templates.lookup)."""
    from domain import templates

    if not isinstance(template, dict) or not isinstance(template.get("language"), dict):
        return None
    name, code = str(template.get("name") or ""), str(template["language"].get("code") or "")
    return templates.find(name, code) if moment == ACCEPT else templates.lookup(name, code, max_age)


def template_refusal(template: dict[str, Any], entry: Any, purpose: str | None = None) -> Ineligible | None:
    """The template row alone, at acceptance (a campaign is validated before it has any recipient)."""
    from shared import ids

    nobody = Identity(ref=ids.REFERENCE_PREFIX, primary="", hashes=())
    found = _template(Candidate(nobody, purpose, TEMPLATE, ACCEPT, template=template, entry=entry))
    return replace(found, rule="template") if found is not None else None


def require(candidate: Candidate) -> None:
    """Raise the domain's Refused unless `candidate` may go out."""
    found = check(candidate)
    if found is not None:
        raise found.refusal()
