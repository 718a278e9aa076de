"""Contacts: pseudonyms, identity sets, the PROFILE item and the suppression record.

A contact is stored under the pseudonym (`chash`) of its reference (wa_id or business-scoped user id).
When Meta sends both for one person, each pseudonym's PROFILE names the other in its `linked` set, so
every read, gate, export and erasure works on the identity set `{chash} | linked`.

An item whose encrypted `data` no longer opens (the contact's data key was shredded, or the item came
back from a backup after erasure) is treated as absent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared import constants as c
from shared import ids
from store import tables

PROFILE = "PROFILE"
SUPPRESSED = "SUPPRESSED"
DATA = "data"


@dataclass(frozen=True)
class Identity:
    """A contact reference, its own pseudonym and every pseudonym linked to it (primary first)."""

    ref: str
    primary: str
    hashes: tuple[str, ...]

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


def open_data(pk: str, sk: str, token: Any, table: str = c.TABLE_CONTACTS, attr: str = DATA) -> Any:
    """Decrypt an item attribute of the contact `pk`; None when the key is gone or does not match."""
    from cryptography.exceptions import InvalidTag

    from store.crypto import KeyShredded, cipher

    if not isinstance(token, str):
        return None
    try:
        return cipher().decrypt(pk, table, pk, sk, attr, token)
    except (KeyShredded, InvalidTag, ValueError):
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
    item = tables.get_live(c.TABLE_CONTACTS, pk, PROFILE)
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


def identity(ref: str, strict: bool = True) -> Identity:
    """The identity set of a contact as a client names it: a wa_id, a user id or a contact reference
    (normalized here; InvalidContact when `strict` and invalid). A reference resolves to the wa_id or
    user id its PROFILE holds; one nobody holds data for stays a bare reference."""
    try:
        norm = ids.normalize_contact(ref)
    except ids.InvalidContact:
        if strict:
            raise
        norm = str(ref).strip()
    if ids.is_reference(norm):
        primary = ids.pseudonym_of(norm)
        item = profile(primary)
        known = item["_data"].get("wa_id") or item["_data"].get("user_id") if item else None
        if not known:
            return identity_of(norm, primary)
        norm = str(known)
    return identity_of(norm, chash(norm))


def identity_of(ref: str, primary: str) -> Identity:
    item = profile(primary)
    linked = sorted(set(item.get("linked") or ()) - {primary}) if item else []
    return Identity(ref=ref, primary=primary, hashes=(primary, *linked))


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
    found = [inbound_times(item).get(wanted) for pk in identity.hashes if (item := profile(pk))]
    times = [t for t in found if t is not None]
    return max(times) if times else None


def last_number(identity: Identity) -> str | None:
    """The business number the contact last wrote to (its newest window), or None.

    Meta's timestamps have whole seconds: of two windows moved to the same second (a message to each
    number within one second), the one stored last wins, so the answer never depends on attribute order."""
    newest: tuple[int, int, str] | None = None
    for pk in identity.hashes:
        item = profile(pk) or {}
        for number, at in inbound_times(item).items():
            candidate = (at, int(item.get(ARRIVAL_PREFIX + number, 0)), number)
            if newest is None or candidate[:2] > newest[:2]:
                newest = candidate
    return newest[2] if newest else None


def suppression(pk: str) -> dict[str, Any] | None:
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
