"""Contact references and their pseudonyms.

A contact is its WhatsApp id (phone digits) or, where Meta sends no phone, its business-scoped user id.
Everything about a contact is stored under an HMAC of that reference with a secret key (the pseudonym),
never under the reference itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from urllib.parse import unquote

_PHONE = re.compile(r"^\+?(\d{6,20})$")
_USER_ID = re.compile(r"^[A-Z]{2}(?:\.[A-Z]{2,5})?\.[0-9A-Za-z]{6,64}$")


class InvalidContact(ValueError):
    """The value is neither a phone number nor a business-scoped user id."""


def normalize_contact(raw: str) -> str:
    """`+49 151...`-style input is not accepted: digits only, an optional leading `+`, or a user id."""
    if not isinstance(raw, str):
        raise InvalidContact("a contact must be a string")
    value = unquote(raw).strip()
    if match := _PHONE.match(value):
        return match.group(1)
    if _USER_ID.match(value):
        return value
    raise InvalidContact("a contact is a phone number in digits (wa_id) or a business-scoped user id")


def is_phone(ref: str) -> bool:
    return ref.isdigit()


def pseudonym(key: str, value: str) -> str:
    """Hex HMAC-SHA256 of `value` under `key`: stable, not reversible without the key."""
    return hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()


def contact_pseudonym(key: str, ref: str) -> str:
    return pseudonym(key, "contact:" + ref)


def wamid_pseudonym(key: str, wamid: str) -> str:
    return pseudonym(key, "wamid:" + wamid)
