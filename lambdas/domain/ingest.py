"""Inbound webhook processing: contacts, messages, statuses, errors and marketing preferences.

What is kept of a message is decided by `domain.minimize` (the contract's data minimization). Everything
personal is encrypted under the contact's data key; clear attributes hold only non-personal facts.

Idempotent: a message is stored once per wamid and a status once per (wamid, status); the side effects
of an event (consent, service window, outbound status) run until the event is marked done.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from domain import consent, events, keywords, media, statuses
from domain.errors import Refused
from domain.minimize import clean, content, error_list, said
from domain.webhook_items import INVALID_SENDER, MALFORMED, parse_value, pick_ref
from domain.webhook_items import norm_ref as _norm
from models.webhook import ChangeValue, Contact, Delivery, Message, Status, UserPreference
from shared import constants as c
from shared.observability import logger
from shared.settings import Settings, get_settings
from store import contacts, messages, sealed, seen, tables
from store.contacts import Identity

FIELD_MESSAGES = "messages"
FIELD_USER_PREFERENCES = "user_preferences"
KEYWORD_SOURCE = consent.KEYWORD_SOURCE
PREFERENCES_SOURCE = consent.PREFERENCES_SOURCE
ERROR_131050_SOURCE = consent.ERROR_131050_SOURCE
ERROR_USER_STOPPED_MARKETING = 131050
MARKETING = "marketing"
# Types that are not something the user said: they neither open the service window nor carry keywords.
_NOT_USER_MESSAGES = frozenset({"system", "revoke"})


@dataclass
class Counts:
    messages: int = 0
    duplicates: int = 0
    statuses: int = 0
    preferences: int = 0
    errors: int = 0
    ignored_changes: int = 0
    invalid_changes: int = 0
    opt_outs: int = 0
    opt_ins: int = 0
    unknown_numbers: int = 0  # changes for a business number not configured here: dropped, not stored
    malformed_items: int = 0  # dropped at parsing: not an object, a wrong type, a missing id
    invalid_senders: int = 0  # dropped at parsing: a sender (or recipient) that is no valid contact id
    mismatched_recipients: int = 0  # statuses naming another recipient than their message's: dropped
    dropped: dict[str, int] = field(default_factory=dict)  # "<list>:<reason>" -> count (no values)
    gone: set[str] = field(default_factory=set)  # wamid_h of replays whose record is gone: told to nobody
    fields: dict[str, int] = field(default_factory=dict)
    # Left for `finish` (the processor finishes a whole SQS batch at once): the events to tell, then the
    # status items to mark done, and what the writes learned of restriction (pseudonym -> restricted).
    told: list[events.Event] = field(default_factory=list)
    done: list[tuple[str, str]] = field(default_factory=list)
    restricted: dict[str, bool] = field(default_factory=dict)
    found: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # wamid_h -> outbound items

    def drop(self, kind: str, reason: str) -> None:
        if reason == INVALID_SENDER:
            self.invalid_senders += 1
        else:
            self.malformed_items += 1
        key = f"{kind}:{reason}"
        self.dropped[key] = self.dropped.get(key, 0) + 1


# ---- contacts ----------------------------------------------------------------------------------
class _Contacts:
    """The contacts of one change: links wa_id and user_id pseudonyms, refreshes PROFILEs once."""

    def __init__(self, settings: Settings, listed: list[Contact]) -> None:
        self.settings = settings
        self.user_of: dict[str, str] = {}
        self.names: dict[str, str] = {}
        self.listed = listed
        self._seen: dict[tuple[str, str | None], Identity] = {}
        self._replayed: set[str] = set()  # refs whose events here were all replays of erased ones
        self.business_number: str | None = None  # the change's metadata.phone_number_id
        for contact in listed:
            wa, uid = _norm(contact.wa_id), _norm(contact.user_id)
            if wa and uid:
                self.user_of[wa] = uid
            if contact.profile and contact.profile.name and (wa or uid):
                self.names[str(wa or uid)] = contact.profile.name

    def declare(
        self, write: Any, wa_id: str | None, user_id: str | None, inbound_at: int | None = None
    ) -> tuple[Identity, int] | None:
        """Declare, in a guarded write, the PROFILE of each pseudonym of (wa_id, user_id), linked both
        ways; the contact as this change knows it and the op index of its primary PROFILE touch."""
        wa, uid = _norm(wa_id), _norm(user_id)
        if wa and not uid:
            uid = self.user_of.get(wa)
        ref = pick_ref(wa_id, user_id)
        if ref is None:
            return None
        primary = contacts.chash(ref)
        other = contacts.chash(uid) if (uid and uid != ref) else None
        details: dict[str, Any] = {"wa_id": wa or (wa_id if ref == wa_id else None), "user_id": uid}
        name = self.names.get(ref)
        if name and self.settings.keep_profile_name:
            details["profile_name"] = name
        index = contacts.declare_touch(
            write, primary, details, linked=other, inbound_at=inbound_at, number=self.business_number
        )
        if other:
            contacts.declare_touch(write, other, {"user_id": uid, "wa_id": wa}, linked=primary)
        identity = Identity(ref=ref, primary=primary, hashes=(primary, *((other,) if other else ())))
        self._seen[(ref, uid)] = identity  # filed: file_rest() need not touch it again
        return identity, index

    def link(self, wa_id: str | None, user_id: str | None, inbound_at: int | None = None) -> Identity | None:
        """File (wa_id, user_id) as one contact on its own write (once per change unless `inbound_at`)."""
        ref = pick_ref(wa_id, user_id)
        if ref is None:
            return None
        wa = _norm(wa_id)
        key = (ref, _norm(user_id) or (self.user_of.get(wa) if wa else None))
        if key in self._seen and inbound_at is None:
            return self._seen[key]
        got: list[tuple[Identity, int] | None] = []

        def build(write: Any, at: int | None) -> None:
            got[:] = [self.declare(write, wa_id, user_id, at)]

        try:
            sealed.run(lambda w: build(w, inbound_at))
        except sealed.Cancelled:  # an older message: keep the newer last_inbound_at
            sealed.run(lambda w: build(w, None))
        return got[0][0] if got and got[0] else None

    def replayed(self, wa_id: str | None, user_id: str | None) -> None:
        """An event of this contact was a replay of one whose records are gone (store.seen): file_rest()
        does not file it again (a replay after an erasure must not bring back a PROFILE)."""
        ref = pick_ref(wa_id, user_id)
        if ref is not None:
            self._replayed.add(ref)

    def file_rest(self) -> None:
        """File the listed contacts no event of the change has filed yet (but those only replayed)."""
        filed = {ref for ref, _ in self._seen}
        for contact in self.listed:
            ref = pick_ref(contact.wa_id, contact.user_id)
            if ref in self._replayed and ref not in filed:
                continue
            self.link(contact.wa_id, contact.user_id)


# ---- events ------------------------------------------------------------------------------------
def _message(msg: Message, people: _Contacts, settings: Settings, counts: Counts) -> None:
    if not msg.id or not msg.sender:
        counts.invalid_changes += 1
        return
    ref = pick_ref(msg.from_, msg.from_user_id)
    if ref is None:
        counts.invalid_changes += 1
        return
    pk = contacts.chash(ref)
    wamid_h = contacts.wamid_hash(msg.id)
    data = {"wamid": msg.id, "from": msg.from_, "from_user_id": msg.from_user_id, **content(msg, settings)}
    if _may_be_gone(pk, data) and messages.gone(pk, messages.inbound_sk(wamid_h), (seen.MESSAGE, wamid_h)):
        # A replay after an erasure (or after TTL): nothing is fetched, encrypted or keyed again.
        _repeat(messages.GONE, wamid_h, msg, people, counts)
        return
    media.request(pk, msg.type, data.get("media"))  # before storing: a retry re-queues; the worker dedupes
    wants = keywords.intent(said(msg), settings)
    at = window_start(msg, settings)
    if wants is None:
        state = _store_ordinary(msg, people, pk, wamid_h, clean(data), at, counts.restricted)
        if state in messages.REPEATS:
            _repeat(state, wamid_h, msg, people, counts)
        else:
            counts.messages += 1
            if settings.privacy_notice:  # the notice at a first message (privacy_inbound)
                _privacy(None, contacts.identity_of(ref, pk), msg, wamid_h, people, settings)
        return
    # A keyword changes consent: store the message first, apply the consent events once, then mark it
    # done, so a retry of Meta's after the events is a duplicate and never records them twice.
    state = messages.put_inbound(
        pk, wamid_h, msg.type or "unknown", msg.timestamp, clean(data), number=people.business_number
    )
    if state in messages.REPEATS:
        _repeat(state, wamid_h, msg, people, counts)
        return
    counts.messages += 1
    people.link(msg.from_, msg.from_user_id, inbound_at=at)
    ident = contacts.identity_of(ref, pk)  # every linked pseudonym, also those of earlier changes
    evidence = f"inbound message {msg.id}"
    if wants == keywords.OPT_OUT:
        counts.opt_outs += 1
        already = all(
            consent.current(ident).get(p, {}).get("status") == consent.REVOKED for p in c.CONSENT_PURPOSES
        )
        recorded = consent.revoke_all(ident, KEYWORD_SOURCE, evidence, msg.timestamp)
        took = any(e.get("effective", True) for e in recorded)
        if settings.stop_confirmation and took and not already:
            _confirm_stop(ident, settings.stop_confirmation, people.business_number)
    elif wants == keywords.OPT_IN:
        counts.opt_ins += 1
        consent.record(ident, MARKETING, consent.GRANTED, KEYWORD_SOURCE, evidence, msg.timestamp)
    if wants != keywords.OPT_OUT:
        _privacy(wants, ident, msg, wamid_h, people, settings)
    messages.mark_done(pk, messages.inbound_sk(wamid_h))


def _privacy(
    wants: str | None, ident: Identity, msg: Message, wamid_h: str, people: _Contacts, settings: Settings
) -> None:
    """The privacy notice at a first message, and the privacy keywords (domain/privacy_inbound.py)."""
    from domain import privacy_inbound

    number = people.business_number
    if wants != keywords.PRIVACY_NOTICE:  # that keyword gives the notice itself
        privacy_inbound.first_message(ident, number, settings)
    if wants in keywords.PRIVACY_INTENTS:
        privacy_inbound.keyword(wants, ident, wamid_h, msg.timestamp or tables.now(), number, settings)


def _may_be_gone(pk: str, data: dict[str, Any]) -> bool:
    """Whether the delivery marker must be read before anything is built: for media (a fetch is queued
    before the message is stored) and for a contact whose data key this container does not hold (the
    write would read or make one). Otherwise the marker is declared in the message's own guarded write,
    which refuses a replay and classifies it GONE there, at no extra call (docs/decisions.md)."""
    from store.crypto import cipher

    return bool(data.get("media")) or not cipher().holds(pk)


def _repeat(state: str, wamid_h: str, msg: Message, people: _Contacts, counts: Counts) -> None:
    """A message delivered before: counted; when its records are gone (GONE), told to nobody and its
    sender not filed again."""
    counts.duplicates += 1
    if state == messages.GONE:
        counts.gone.add(wamid_h)
        people.replayed(msg.from_, msg.from_user_id)


def window_start(msg: Message, settings: Settings) -> int | None:
    """When this message opens the service window (epoch s), or None (an opt-out keyword, a system
    message): Meta's timestamp, never later than now."""
    if keywords.intent(said(msg), settings) == keywords.OPT_OUT or (msg.type or "") in _NOT_USER_MESSAGES:
        return None
    return min(msg.timestamp or tables.now(), tables.now())


def _number(value: ChangeValue) -> str | None:
    return value.metadata.phone_number_id if value.metadata else None


def served(value: ChangeValue, settings: Settings) -> bool:
    """A change for a business number of this deployment (`metadata.phone_number_id` configured)."""
    return _number(value) in settings.phone_number_ids


def _store_ordinary(
    msg: Message,
    people: _Contacts,
    pk: str,
    wamid_h: str,
    data: dict[str, Any],
    at: int | None,
    known: dict[str, bool],
) -> str:
    """An ordinary message (its only side effect, the PROFILE touch, is idempotent): the touch and the
    message, stored done, in one guarded write. Meta's retry finds the message taken (a duplicate); an
    older message than the newest one keeps `last_inbound_at` and is stored. The write also checks that
    the contact is not restricted (`known[pk]`, so its event needs no read of its own)."""
    from store import privacy

    msg_type = msg.type or "unknown"
    forward_only = at
    check = pk not in known  # learned already in this delivery: not checked again

    def build(write: Any) -> None:  # the PROFILE touch(es) first, then the message and its marker
        people.declare(write, msg.from_, msg.from_user_id, inbound_at=forward_only)
        built[:] = [
            messages.inbound_item(
                write, pk, wamid_h, msg_type, msg.timestamp, data, done=True, number=people.business_number
            )
        ]
        index[:] = [
            write.put(c.TABLE_MESSAGES, built[0], "attribute_not_exists(pk)"),
            seen.declare(write, seen.MESSAGE, wamid_h),
        ]
        if check:
            index.append(privacy.declare_unrestricted(write, pk))

    built: list[dict[str, Any]] = []
    index: list[int] = []
    while True:
        try:
            sealed.run(build)
            if check:
                known[pk] = False
            return messages.NEW
        except sealed.Cancelled as exc:
            if exc.failed(index[0]):  # the message is stored already
                return messages.settle(
                    built[0],
                    lambda w: messages.inbound_item(
                        w, pk, wamid_h, msg_type, msg.timestamp, data, True, people.business_number
                    ),
                    (seen.MESSAGE, wamid_h),
                )
            if exc.failed(index[1]):  # processed before, its record erased or expired: nothing changes
                return messages.GONE
            if check and exc.failed(index[2]):  # restricted: stored all the same, told to nobody
                known[pk], check = True, False
                continue
            if forward_only is None:
                raise
            forward_only = None  # older than the newest message seen: store it, keep the newer window


def _confirm_stop(identity: Identity, text: str, number: str | None) -> None:
    """The optional one-time STOP confirmation, queued as a service text by the outbound side.

    It answers the contact's own message (which opened Meta's customer-service window), so the outbound
    side checks only suppression; it is sent once per opt-out (not when everything was already revoked).
    """
    from domain import sending

    try:
        sending.enqueue_service_text(identity, text, number)
    except Refused as exc:
        logger.info("stop confirmation not sent", extra={"code": exc.code})
    except Exception as exc:  # a failed confirmation must not hold up the opt-out itself
        logger.warning("stop confirmation failed", extra={"error_type": type(exc).__name__})


def _status(st: Status, people: _Contacts, counts: Counts, pre: dict[tuple[str, str], bool]) -> None:
    """One status (`pre`: those `statuses.prewrite` stored already, and whether each moved its message)."""
    from store import outbound

    if not st.id or not st.status:
        counts.invalid_changes += 1
        return
    wa, uid = st.recipient
    ref = pick_ref(wa, uid)
    if ref is None:
        counts.invalid_changes += 1
        return
    pk = contacts.chash(ref)
    wamid_h = contacts.wamid_hash(st.id)
    if wamid_h not in counts.found:  # the statuses of one message in one delivery: one lookup
        counts.found[wamid_h] = outbound.with_wamid(wamid_h)
    found = counts.found[wamid_h]
    if not statuses.recipient_matches(found, wa, uid, ref):
        # Another person's message: never stored under this recipient, never moves that message, never
        # changes this recipient's consent (counted, logged without values).
        counts.mismatched_recipients += 1
        counts.dropped["statuses:recipient_mismatch"] = (
            counts.dropped.get("statuses:recipient_mismatch", 0) + 1
        )
        people.replayed(wa, uid)  # nor filed from this change's contacts
        return
    marker = (seen.STATUS, f"{wamid_h}#{st.status}")
    written = pre.get((wamid_h, str(st.status)))
    if (
        written is None
        and _may_be_gone(pk, {})
        and messages.gone(pk, messages.status_sk(wamid_h, st.status), marker)
    ):
        counts.duplicates += 1
        people.replayed(wa, uid)
        return
    errors = error_list(st.errors)
    error = errors[0] if errors else None
    data = clean({"wamid": st.id, "recipient": wa, "recipient_user_id": uid, "errors": errors})
    # The outbound message's move rides on the status's own write when one message has this wamid.
    at = st.timestamp if st.timestamp is not None else tables.now()
    said_status = str(st.status)
    also = (
        (lambda w: outbound.declare_status(w, found[0], said_status, at, error)) if len(found) == 1 else None
    )
    applied: list[bool] = [] if written is None else [written]
    state = (
        messages.NEW
        if written is not None
        else messages.put_status(
            pk, wamid_h, st.status, st.timestamp, error, data, counts.restricted, also, applied
        )
    )
    if state in messages.REPEATS:
        counts.duplicates += 1
        if state == messages.GONE:
            people.replayed(wa, uid)
        return
    counts.statuses += 1
    status = c.STATUS_ALIASES.get(st.status, st.status)
    if status in c.STATUS_RANK:
        one = applied and applied[0] and len(found) == 1  # this write (or an earlier try's) moved it
        moved = {(str(found[0][c.PK]), str(found[0][c.SK]))} if one else set()
        counts.told += statuses.advance(
            wamid_h, status, st.timestamp, error, people.business_number, found, moved
        )
    if status == "failed" and any(e.get("code") == ERROR_USER_STOPPED_MARKETING for e in errors):
        ident = people.link(wa, uid) or contacts.identity_of(ref, pk)
        consent.record(
            ident, MARKETING, consent.REVOKED, ERROR_131050_SOURCE, f"failed status of {st.id}", st.timestamp
        )
    counts.done.append((pk, messages.status_sk(wamid_h, st.status)))  # once its events are told


_PREFERENCE_STATUS = {"stop": consent.REVOKED, "resume": consent.GRANTED, "signup": consent.GRANTED}


def _preference(pref: UserPreference, people: _Contacts, counts: Counts) -> None:
    status = _PREFERENCE_STATUS.get((pref.value or "").lower())
    if pref.category != "marketing_messages" or status is None:
        counts.invalid_changes += 1
        return
    ref = pick_ref(pref.wa_id, pref.user_id)
    if ref is None:
        counts.invalid_changes += 1
        return
    digest = preference_digest(ref, pref)
    if seen.claim(seen.PREFERENCE, digest) == seen.DUPLICATE:
        counts.duplicates += 1  # Meta retried the same preference change, or it was replayed: the
        people.replayed(pref.wa_id, pref.user_id)  # contact is not filed again (it may be erased)
        return
    filed = people.link(pref.wa_id, pref.user_id)
    if filed is None:
        counts.invalid_changes += 1
        return
    ident = contacts.identity_of(filed.ref, filed.primary)
    evidence = f"{pref.category}:{pref.value}" + (f" ({pref.detail})" if pref.detail else "")
    consent.record(ident, MARKETING, status, PREFERENCES_SOURCE, evidence, pref.timestamp)
    seen.done(seen.PREFERENCE, digest)
    counts.preferences += 1


def preference_digest(ref: str, pref: UserPreference) -> str:
    """The keyed hash that names one preference change (it has no id of its own): its holder, category,
    value and Meta's timestamp, under the contact key (store.seen)."""
    from shared import ids

    value = "|".join((ref, pref.category or "", (pref.value or "").lower(), str(pref.timestamp or "")))
    return ids.pseudonym(contacts.contact_key(), "preference:" + value)


def _messages_change(value: ChangeValue, people: _Contacts, settings: Settings, counts: Counts) -> None:
    for msg in value.messages:
        _message(msg, people, settings, counts)
    pre = statuses.prewrite(value.statuses, counts.found, counts.restricted) if value.statuses else {}
    for st in value.statuses:
        _status(st, people, counts, pre)
    people.file_rest()
    if value.errors:
        counts.errors += len(value.errors)
        logger.warning("webhook errors", extra={"codes": [e.code for e in value.errors][:10]})


def _preferences_change(value: ChangeValue, people: _Contacts, settings: Settings, counts: Counts) -> None:
    for pref in value.user_preferences:
        _preference(pref, people, counts)


# Webhook fields acted on, each by its own function (a capability that handles a new field adds a row);
# every other field is answered 200 and counted, its value never parsed or kept.
FIELDS: dict[str, Callable[[ChangeValue, _Contacts, Settings, Counts], None]] = {
    FIELD_MESSAGES: _messages_change,
    FIELD_USER_PREFERENCES: _preferences_change,
}


def _change(field_name: str, value: ChangeValue, settings: Settings, counts: Counts) -> None:
    if not served(value, settings):  # not ours: never stored (the metric names no number)
        counts.unknown_numbers += 1
        return
    people = _Contacts(settings, value.contacts)
    people.business_number = _number(value)
    FIELDS[field_name](value, people, settings, counts)


def _log_dropped(counts: Counts) -> None:
    if counts.dropped:
        # Which lists and why, never the values (they hold phone numbers, ids and text).
        logger.warning("webhook items dropped", extra={"dropped": counts.dropped})


def changes(delivery: Delivery, counts: Counts) -> Iterator[tuple[str, ChangeValue]]:
    """The `messages` and `user_preferences` changes of a delivery, each value parsed item by item."""
    for entry in delivery.entry:
        if entry is None:
            counts.drop("entry", MALFORMED)
            continue
        for change in entry.changes:
            if change is None:
                counts.drop("changes", MALFORMED)
                continue
            name = change.field or ""
            if name not in FIELDS:
                counts.ignored_changes += 1
                counts.fields[name[:64]] = counts.fields.get(name[:64], 0) + 1
                continue
            value = parse_value(change.value, counts)
            if value is None:
                counts.invalid_changes += 1
                continue
            yield name, value


def received_events(
    delivery: Delivery, settings: Settings | None = None, counts: Counts | None = None
) -> list[events.Event]:
    """`message.received` for every well-formed message of the delivery (published once it is stored),
    but those `counts` (of its ingest) found gone: a replay after an erasure is told to nobody."""
    settings = settings or get_settings()
    gone = counts.gone if counts is not None else set()
    out: list[events.Event] = []
    for name, value in changes(delivery, Counts()):
        if name != FIELD_MESSAGES or not served(value, settings):
            continue
        for msg in value.messages:
            ref = pick_ref(msg.from_, msg.from_user_id)
            if not msg.id or ref is None or contacts.wamid_hash(msg.id) in gone:
                continue
            start = window_start(msg, settings)
            closes = start + settings.service_window_hours * 3600 if start is not None else None
            out.append(
                events.received(
                    contacts.chash(ref),
                    contacts.wamid_hash(msg.id),
                    msg.type or "unknown",
                    msg.timestamp or tables.now(),
                    content(msg, settings),
                    _number(value),
                    closes,
                )
            )
    return out


def ingest(delivery: Delivery, settings: Settings | None = None) -> Counts:
    """Process one webhook delivery (or one part of a split delivery), item by item. What is left to tell
    and mark done is in the Counts: the caller `finish`es it (the processor, a whole SQS batch at once)."""
    settings = settings or get_settings()
    counts = Counts()
    for name, value in changes(delivery, counts):
        _change(name, value, settings, counts)
    _log_dropped(counts)
    return counts


def finish(
    told: list[events.Event], done: list[tuple[str, str]], restricted: dict[str, bool] | None = None
) -> None:
    """Tell the events the statuses left (store.events.Unpublished when the bus refuses them), then mark
    those statuses done: a retry before that redoes their side effects and tells them again."""
    with events.knowing(restricted or {}):
        events.publish(told)
    messages.mark_done_all(done)
