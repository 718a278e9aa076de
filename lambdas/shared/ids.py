"""Contact references and their pseudonyms.

A contact is its WhatsApp id (phone digits) or, where Meta sends no phone, its business-scoped user id.
Everything about a contact is stored under an HMAC of that reference with a secret key (the pseudonym),
never under the reference itself.

One canonical form per person: `normalize_contact` accepts each form in exactly one spelling family and
returns its canonical text (ASCII only). Other scripts' digits (fullwidth, Arabic-Indic, ...) are not
digits here: Python's `\\d` and `str.isdigit` are Unicode-aware, so this module uses `[0-9]` and
`str.isascii`. The forms are tried in order (`_FORMS`); a further form is one more parser in that tuple.

The third form, the contact reference `ct_…` (contract: Conversations), is what the business's own
applications hold instead of a phone number: the contact's pseudonym in lowercase base32. It is accepted
wherever a client names a contact, never as a webhook sender.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable
from urllib.parse import unquote

PHONE_MIN_DIGITS = 7
PHONE_MAX_DIGITS = 15  # E.164
_PHONE = re.compile(rf"\+?([0-9]{{{PHONE_MIN_DIGITS},{PHONE_MAX_DIGITS}}})", re.ASCII)
_USER_ID = re.compile(r"[A-Z]{2}(?:\.[A-Z]{2,5})?\.[0-9A-Za-z]{6,64}", re.ASCII)
_ASCII_SPACE = " \t\r\n"


class InvalidContact(ValueError):
    """The value is neither a phone number, a business-scoped user id nor a contact reference."""


def _phone(value: str) -> str | None:
    """A WhatsApp id: 7 to 15 ASCII digits, an optional leading `+` (dropped)."""
    match = _PHONE.fullmatch(value)
    return match.group(1) if match else None


def _user_id(value: str) -> str | None:
    """A business-scoped user id (`US.13491208655302741918`, `US.ENT.…`), as given."""
    return value if _USER_ID.fullmatch(value) else None


REFERENCE_PREFIX = "ct_"
_REFERENCE = re.compile(r"ct_[a-z2-7]{52}", re.ASCII)


_PSEUDONYM_BYTES = 32


def _reference(value: str) -> str | None:
    """A contact reference (`ct_` + the pseudonym in lowercase base32), as given, in its one canonical
    spelling: 52 base32 characters carry 260 bits for the pseudonym's 256, so the last character has
    unused low bits; a spelling that sets them decodes to the same pseudonym and is refused (decoding
    re-encodes and compares), so one person has exactly one reference string."""
    if not _REFERENCE.fullmatch(value):
        return None
    body = value[len(REFERENCE_PREFIX) :].upper()
    raw = base64.b32decode(body + "=" * (-len(body) % 8))
    if len(raw) != _PSEUDONYM_BYTES or _encode(raw) != value:
        return None
    return value


def _encode(raw: bytes) -> str:
    return REFERENCE_PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()


_META_FORMS: tuple[Callable[[str], str | None], ...] = (_phone, _user_id)
_FORMS: tuple[Callable[[str], str | None], ...] = (*_META_FORMS, _reference)


def normalize_contact(raw: str, references: bool = True) -> str:
    """The canonical reference of a contact as a client or Meta spelled it (URL-encoded or not, surrounding
    ASCII spaces ignored); `InvalidContact` for anything that is not exactly one of the forms.

    `references=False` accepts only what Meta sends (a wa_id or a user id): webhook senders.
    """
    if not isinstance(raw, str):
        raise InvalidContact("a contact must be a string")
    value = unquote(raw, errors="replace") if "%" in raw else raw
    value = value.strip(_ASCII_SPACE)
    if value.isascii():
        for form in _FORMS if references else _META_FORMS:
            canonical = form(value)
            if canonical is not None:
                return canonical
    raise InvalidContact(
        "a contact is a WhatsApp id (7 to 15 ASCII digits, an optional leading +), "
        "a business-scoped user id or a contact reference (ct_...)"
    )


def is_valid_contact(raw: str | None) -> bool:
    try:
        normalize_contact(raw)  # type: ignore[arg-type]
    except InvalidContact:
        return False
    return True


def is_reference(ref: str) -> bool:
    return _reference(ref) is not None


def reference_of(pseudonym_hex: str) -> str:
    """The contact reference of a pseudonym: stable, and (like the pseudonym, an HMAC under the
    deployment's contact key) not derivable from the phone number or user id without that key."""
    return _encode(bytes.fromhex(pseudonym_hex))


def pseudonym_of(reference: str) -> str:
    """The pseudonym a contact reference stands for; `InvalidContact` when it is not one."""
    if _reference(reference) is None:
        raise InvalidContact(
            "a contact reference is ct_ followed by 52 characters of [a-z2-7], in its canonical spelling"
        )
    body = reference[len(REFERENCE_PREFIX) :].upper()
    return base64.b32decode(body + "=" * (-len(body) % 8)).hex()


def is_phone(ref: str) -> bool:
    return ref.isascii() and ref.isdigit()


def pseudonym(key: str, value: str) -> str:
    """Hex HMAC-SHA256 of `value` under `key`: stable, not reversible without the key."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def contact_pseudonym(key: str, ref: str) -> str:
    return pseudonym(key, "contact:" + ref)


def wamid_pseudonym(key: str, wamid: str) -> str:
    return pseudonym(key, "wamid:" + wamid)
