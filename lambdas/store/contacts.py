"""Contacts: pseudonyms, identity sets, the PROFILE item and the suppression record.

A contact is stored under the pseudonym (`chash`) of its reference (wa_id or business-scoped user id).
When Meta sends both for one person, each pseudonym's PROFILE names the other in its `linked` set, so
every read, gate, export and erasure works on the identity set `{chash} | linked`.

An item whose encrypted `data` no longer opens (the contact's data key was shredded, or the item came
back from a backup after erasure) is treated as absent.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from shared import constants as c
from shared import ids
from store import tables

PROFILE = "PROFILE"
SUPPRESSED = "SUPPRESSED"
RESTRICTION = "RESTRICTION"  # a pseudonym's restriction record (store.privacy)
DATA = "data"


@dataclass(frozen=True)
class Seen:
    """What one batched read of an identity set found (`read_set`): each pseudonym's PROFILE (decrypted as
    `profile` gives it, None when absent or unreadable), restriction state and suppression record; `fresh`
    when the data keys were read from the table with it (the gate's acceptance reads keys fresh)."""

    profiles: dict[str, dict[str, Any] | None]
    restricted: dict[str, bool]
    fresh: bool = False
    suppressed: dict[str, dict[str, Any] | None] = dataclasses.field(default_factory=dict)
    consent: dict[str, dict[str, Any] | None] = dataclasses.field(default_factory=dict)  # SUMMARY items


@dataclass(frozen=True)
class Identity:
    """A contact reference, its own pseudonym and every pseudonym linked to it (primary first); `seen`:
    the items one batched read found for it just now (`read_set`), None when read item by item."""

    ref: str
    primary: str
    hashes: tuple[str, ...]
    seen: Seen | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def reference(self) -> str:
        """The contact reference (`ct_…`) the business's applications know this contact by."""
        return ids.reference_of(self.primary)

    @property
    def resolved(self) -> bool:
        """False for a reference that names no contact held here (no phone number or user id known)."""
        return not ids.is_reference(self.ref)


def contact_key() -> str:
    from shared.secrets import get_secret_field

    return get_secret_field(c.SECRET_CONTACT_KEY)


def chash(ref: str) -> str:
    """The pseudonym of an already normalized contact reference."""
    return ids.contact_pseudonym(contact_key(), ref)


def wamid_hash(wamid: str) -> str:
    return ids.wamid_pseudonym(contact_key(), wamid)


def media_ref(meta_media_id: str) -> str:
    """waguard's id of a media object Meta named `meta_media_id` (Meta's ids expire within days)."""
    return c.MEDIA_ID_PREFIX + ids.pseudonym(contact_key(), "media:" + meta_media_id)[:24]


def media_copy_ref(upload_id: str, pk: str) -> str:
    """waguard's id of the contact `pk`'s own copy of the business's upload `upload_id` (sent to them)."""
    return c.MEDIA_ID_PREFIX + ids.pseudonym(contact_key(), f"copy:{upload_id}:{pk}")[:24]


class Unreadable(RuntimeError):
    """An item's encrypted attribute is missing or does not open although its key exists (altered, copied
    from another item): not the absence an erasure leaves, so a reader that decides on it must not go on."""


def open_data(
    pk: str, sk: str, token: Any, table: str = c.TABLE_CONTACTS, attr: str = DATA, strict: bool = False
) -> Any:
    """Decrypt an item attribute of the contact `pk`; None when the key is gone (erased: absent).

    A value that does not open under a key that exists is None too, unless `strict` (a gate deciding on
    it: the consent ledger): then Unreadable. A key read that failed (DynamoDB, KMS) raises either way."""
    from cryptography.exceptions import InvalidTag

    from store.crypto import KeyShredded, cipher

    try:
        if not isinstance(token, str):
            raise ValueError("no ciphertext")
        return cipher().decrypt(pk, table, pk, sk, attr, token)
    except KeyShredded:
        return None
    except (InvalidTag, ValueError) as exc:
        if strict:
            raise Unreadable(f"{attr} of an item of {ids.reference_of(pk)} in {table} does not open") from exc
        return None


def fresh_keys(hashes: tuple[str, ...] | list[str]) -> None:
    """Drop cached data keys of these pseudonyms (an erasure elsewhere must take effect here at once)."""
    from store.crypto import cipher

    for pk in hashes:
        cipher().evict(pk)


FIELD_PREFIX = "d_"  # PROFILE fields are encrypted one attribute each: d_wa_id, d_user_id, d_profile_name


def profile(pk: str) -> dict[str, Any] | None:
    """The live PROFILE item of one pseudonym, its encrypted fields decrypted into `_data`; None when any
    of them is unreadable (the contact's key was shredded, or the item came back from a backup)."""
    return _opened(pk, tables.get_live(c.TABLE_CONTACTS, pk, PROFILE))


def _profile_of(identity: Identity, pk: str) -> dict[str, Any] | None:
    """The PROFILE of one pseudonym of the set: as its batched read found it, else read now."""
    if identity.seen is not None and pk in identity.seen.profiles:
        return identity.seen.profiles[pk]
    return profile(pk)


def _opened(pk: str, item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    data: dict[str, Any] = {}
    for attr, token in item.items():
        if attr.startswith(FIELD_PREFIX):
            value = open_data(pk, PROFILE, token, attr=attr)
            if value is None:
                return None
            data[attr[len(FIELD_PREFIX) :]] = value
    return {**item, "_data": data}


def identity(
    ref: str, strict: bool = True, fresh: bool = False, batched: bool = False, page: Any = None
) -> Identity:
    """The identity set of a contact as a client names it: a wa_id, a user id or a contact reference
    (normalized here; InvalidContact when `strict` and invalid). A reference resolves to the wa_id or
    user id its PROFILE holds; one nobody holds data for stays a bare reference. `fresh`: the set is read
    with its restriction state and data keys in one batch (`read_set`), as `POST /messages` decides on;
    `batched`: in one batch too, with the keys this container holds (a campaign's gate at preparation;
    `page`: its page's `read_page`)."""
    try:
        norm = ids.normalize_contact(ref)
    except ids.InvalidContact:
        if strict:
            raise
        norm = str(ref).strip()
    if batched and ids.is_reference(norm):  # the reference's own set, read once with its PROFILE
        got = read_set(norm, ids.pseudonym_of(norm), fresh, page=page)
        item = got.seen.profiles.get(got.primary) if got.seen is not None else None
        known = item["_data"].get("wa_id") or item["_data"].get("user_id") if item else None
        if not known:
            return got
        if chash(str(known)) == got.primary:
            return dataclasses.replace(got, ref=str(known))
        return read_set(str(known), chash(str(known)), fresh)
    if ids.is_reference(norm):
        primary = ids.pseudonym_of(norm)
        item = profile(primary)
        known = item["_data"].get("wa_id") or item["_data"].get("user_id") if item else None
        if not known:
            return read_set(norm, primary, fresh) if fresh else identity_of(norm, primary)
        norm = str(known)
    return read_set(norm, chash(norm), fresh) if fresh or batched else identity_of(norm, chash(norm))


def read_page(pks: list[str]) -> dict[str, tuple[bool, dict[tuple[str, str, str], dict[str, Any]]]]:
    """`read_set`'s first round for many pseudonyms at once (a campaign's preparation page: one
    BatchGetItem per 100 keys instead of one per recipient): {pk: (whether its data key was read, the
    live items found)}, for `read_set(..., page=...)`."""
    from store.crypto import DATA_KEY_SK, cipher

    pks = list(dict.fromkeys(pks))
    keyed = {pk for pk in pks if not cipher().holds(pk)}
    got = tables.batch_get(
        {
            c.TABLE_CONTACTS: [(pk, sk) for pk in pks for sk in (PROFILE, RESTRICTION, SUPPRESSED)],
            c.TABLE_KEYS: [(pk, DATA_KEY_SK) for pk in keyed],
            c.TABLE_CONSENT: [(pk, c.CONSENT_SUMMARY_SK) for pk in pks],
        }
    )
    out: dict[str, tuple[bool, dict[tuple[str, str, str], dict[str, Any]]]] = {
        pk: (pk in keyed, {}) for pk in pks
    }
    for key, item in got.items():
        out[key[1]][1][key] = item
    return out


def identity_of(ref: str, primary: str) -> Identity:
    item = profile(primary)
    linked = sorted(set(item.get("linked") or ()) - {primary}) if item else []
    return Identity(ref=ref, primary=primary, hashes=(primary, *linked))


def read_set(
    ref: str,
    primary: str,
    fresh: bool = False,
    also: list[tuple[str, str, str]] | None = None,
    into: dict[tuple[str, str, str], dict[str, Any]] | None = None,
    page: dict[str, tuple[bool, dict[tuple[str, str, str], dict[str, Any]]]] | None = None,
) -> Identity:
    """`identity_of` in one BatchGetItem per round (one round unless pseudonyms are linked): each
    pseudonym's PROFILE and RESTRICTION, and its data key from the keys table when `fresh` (then this
    container's cached key is replaced by the stored one: an erasure elsewhere takes effect at once) or
    when this container holds none. The gate and the sender use what it found instead of reading again.
    `also`: more (logical table, pk, sk) read in the first round, the live ones put `into` the dict given.
    `page`: `read_page`'s reads, used for the first round instead of reading it again."""
    from store.crypto import DATA_KEY_SK, cipher

    profiles: dict[str, dict[str, Any] | None] = {}
    restricted: dict[str, bool] = {}
    suppressed: dict[str, dict[str, Any] | None] = {}
    summaries: dict[str, dict[str, Any] | None] = {}
    todo, hashes = [primary], [primary]
    while todo:
        keyed = [pk for pk in todo if fresh or not cipher().holds(pk)]
        wanted = {
            c.TABLE_CONTACTS: [(pk, sk) for pk in todo for sk in (PROFILE, RESTRICTION, SUPPRESSED)],
            c.TABLE_KEYS: [(pk, DATA_KEY_SK) for pk in keyed],
            c.TABLE_CONSENT: [(pk, c.CONSENT_SUMMARY_SK) for pk in todo],
        }
        for table, pk, sk in also or ():
            wanted.setdefault(table, []).append((pk, sk))
        ready = page.get(primary) if page and todo == [primary] and not also and not fresh else None
        if ready is not None and (ready[0] or cipher().holds(primary)):  # the page read it (its key too)
            keyed, got = ([primary] if ready[0] else []), ready[1]
        else:
            got = tables.batch_get(wanted)
        if into is not None:
            into.update({k: v for k, v in got.items() if k in set(also or ())})
        also = None
        for pk in keyed:
            cipher().adopt(pk, got.get((c.TABLE_KEYS, pk, DATA_KEY_SK)))
        for pk in todo:
            profiles[pk] = _opened(pk, got.get((c.TABLE_CONTACTS, pk, PROFILE)))
            found = got.get((c.TABLE_CONTACTS, pk, RESTRICTION))
            restricted[pk] = bool(found and found.get("restricted"))
            suppressed[pk] = got.get((c.TABLE_CONTACTS, pk, SUPPRESSED))
            summaries[pk] = got.get((c.TABLE_CONSENT, pk, c.CONSENT_SUMMARY_SK))
        first = profiles[primary] if todo == [primary] else None
        todo = sorted(set(first.get("linked") or ()) - {primary}) if first else []
        hashes += todo
    return Identity(ref, primary, tuple(hashes), Seen(profiles, restricted, fresh, suppressed, summaries))


LAST_INBOUND_PREFIX = "li_"  # PROFILE's `li_<phone_number_id>`: the newest inbound time on that number
LEGACY_LAST_INBOUND = "last_inbound_at"  # one number only (before issue 17): read as the default's
ARRIVAL_PREFIX = "la_"  # PROFILE's `la_<phone_number_id>`: when (epoch µs) that window last moved


def window_attr(number: str | None) -> str:
    """The PROFILE attribute of the service window on a business number (None: the default number)."""
    from shared.settings import get_settings

    return LAST_INBOUND_PREFIX + (number or get_settings().phone_number_id)


def inbound_times(item: dict[str, Any]) -> dict[str, int]:
    """{business number: newest inbound time (epoch s)} of one PROFILE item."""
    from shared.settings import get_settings

    cut = len(LAST_INBOUND_PREFIX)
    times = {k[cut:]: int(v) for k, v in item.items() if k.startswith(LAST_INBOUND_PREFIX)}
    legacy = item.get(LEGACY_LAST_INBOUND)
    default = get_settings().phone_number_id
    if legacy is not None and int(legacy) > times.get(default, -1):
        times[default] = int(legacy)
    return times


def last_inbound_at(identity: Identity, number: str | None = None) -> int | None:
    """The newest inbound time (epoch seconds) on business number `number` (None: the default) of a
    message that was not an opt-out keyword: the service window is per (business number, contact)."""
    wanted = window_attr(number)[len(LAST_INBOUND_PREFIX) :]
    found = [inbound_times(item).get(wanted) for pk in identity.hashes if (item := _profile_of(identity, pk))]
    times = [t for t in found if t is not None]
    return max(times) if times else None


def last_number(identity: Identity) -> str | None:
    """The business number the contact last wrote to (its newest window), or None.

    Meta's timestamps have whole seconds: of two windows moved to the same second (a message to each
    number within one second), the one stored last wins, so the answer never depends on attribute order."""
    newest: tuple[int, int, str] | None = None
    for pk in identity.hashes:
        item = _profile_of(identity, pk) or {}
        for number, at in inbound_times(item).items():
            candidate = (at, int(item.get(ARRIVAL_PREFIX + number, 0)), number)
            if newest is None or candidate[:2] > newest[:2]:
                newest = candidate
    return newest[2] if newest else None


def suppression(pk: str, identity: Identity | None = None) -> dict[str, Any] | None:
    """The pseudonym's suppression record: as the identity set's batched read found it, else read now."""
    seen = identity.seen if identity is not None else None
    if seen is not None and pk in seen.suppressed:
        return seen.suppressed[pk]
    return tables.get_live(c.TABLE_CONTACTS, pk, SUPPRESSED)


def suppress(pk: str, erased_at: str, receipt_id: str) -> None:
    """Write the pseudonymous suppression record of an erased contact (no personal data)."""
    item = {c.PK: pk, c.SK: SUPPRESSED, "erased_at": erased_at, "receipt_id": receipt_id}
    tables.table(c.TABLE_CONTACTS).put_item(Item=tables.stamp(item, c.CLASS_SUPPRESSION))


def declare_touch(
    write: Any,
    pk: str,
    details: dict[str, Any],
    linked: str | None = None,
    inbound_at: int | None = None,
    number: str | None = None,
) -> int:
    """Declare the PROFILE upsert of one pseudonym in a guarded write (store.sealed); its op index.

    Each non-empty field of `details` (wa_id, user_id, profile name when kept) is sealed into its own
    attribute, so nothing has to be read and merged first; `linked` adds a pseudonym to the link set;
    `inbound_at` moves the window of business number `number` (`li_<number>`, None: the default) forward
    only (the op's condition: an older message fails it and the caller declares the touch again without
    `inbound_at`), and `la_<number>` records when it moved (`last_number`'s tie-break within one second).
    Idempotent.
    """
    names: dict[str, str] = {"#e": c.TTL_ATTRIBUTE}
    values: dict[str, Any] = {":e": tables.expires_at(c.CLASS_CONTACTS), ":f": tables.now()}
    sets = ["#e = :e", "first_seen_at = if_not_exists(first_seen_at, :f)"]
    for n, (field, value) in enumerate(sorted((k, v) for k, v in details.items() if v)):
        attr = FIELD_PREFIX + field
        names[f"#d{n}"] = attr
        values[f":d{n}"] = write.seal(pk, c.TABLE_CONTACTS, pk, PROFILE, attr, value)
        sets.append(f"#d{n} = :d{n}")
    adds = ""
    if linked and linked != pk:
        adds = " ADD linked :l"
        values[":l"] = {linked}
    condition = None
    if inbound_at is not None:
        names["#li"] = window_attr(number)
        names["#la"] = ARRIVAL_PREFIX + names["#li"][len(LAST_INBOUND_PREFIX) :]
        sets += ["#li = :t", "#la = :a"]
        values[":t"] = int(inbound_at)
        values[":a"] = tables.now_us()
        condition = "attribute_not_exists(#li) OR #li <= :t"
    return int(
        write.update(
            c.TABLE_CONTACTS,
            {c.PK: pk, c.SK: PROFILE},
            "SET " + ", ".join(sets) + adds,
            names,
            values,
            condition,
        )
    )


def touch(
    pk: str,
    details: dict[str, Any],
    linked: str | None = None,
    inbound_at: int | None = None,
    number: str | None = None,
) -> None:
    """Create or refresh the PROFILE of one pseudonym (see `declare_touch`), on its own."""
    from store import sealed

    try:
        sealed.run(lambda w: declare_touch(w, pk, details, linked, inbound_at, number))
    except sealed.Cancelled:  # an older message: refresh the PROFILE, keep the newer last_inbound_at
        sealed.run(lambda w: declare_touch(w, pk, details, linked, None))


def partition_keys(logical: str, pk: str) -> list[dict[str, Any]]:
    """Every item of one contact's partition in a table, expired ones included (erasure)."""
    return tables.partition(logical, pk, include_expired=True)


def write_receipt(
    receipt_id: str, subject: str, erased_at: str, items_deleted: int, tables_: list[str]
) -> None:
    """The erasure receipt in the audit table: pseudonymous, no phone number, user id or text."""
    item = {
        c.PK: "RECEIPT#" + receipt_id,
        c.SK: "RECEIPT",
        "receipt_id": receipt_id,
        "subject": subject,
        "erased_at": erased_at,
        "items_deleted": int(items_deleted),
        "tables": list(tables_),
    }
    tables.table(c.TABLE_AUDIT).put_item(Item=tables.stamp(item, c.CLASS_AUDIT))
