"""Keywords: a whole message that is only the keyword, case- and punctuation-blind, matched to an intent.

`intent(text, settings)` answers what a message asks for (`OPT_OUT`, `OPT_IN`, the privacy intents, or
None): the first intent of `INTENTS` whose keywords it matches. A capability that adds keywords adds one
row there; ingestion acts on the intent, never on the words. The privacy keywords (contract: "Privacy
operations") are the contract's own lists, not settings.

`"  Stop! "`, `"arrêt"`, `"Opt-Out."` match; `"please don't stop"` does not. Matching is Unicode-aware:
the text is NFC-normalized, whitespace, punctuation and invisible characters are trimmed from both ends
(letters such as Ê and a hyphen inside a word are kept), then case-folded and compared with the
configured keywords, themselves normalized the same way.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

# Unicode general categories trimmed from both ends: punctuation, separators, control and format chars.
_TRIM_CATEGORIES = ("P", "Z", "C")
_MAX_KEYWORD_CHARS = 64


def _trimmable(char: str) -> bool:
    return char.isspace() or unicodedata.category(char)[0] in _TRIM_CATEGORIES


def normalize(text: str) -> str:
    """The comparable form of a message: NFC, trimmed of whitespace/punctuation, case-folded."""
    value = unicodedata.normalize("NFC", text)
    start, end = 0, len(value)
    while start < end and _trimmable(value[start]):
        start += 1
    while end > start and _trimmable(value[end - 1]):
        end -= 1
    return unicodedata.normalize("NFC", value[start:end].casefold())


@lru_cache(maxsize=8)
def _compiled(keywords: tuple[str, ...]) -> frozenset[str]:
    return frozenset(k for k in (normalize(w) for w in keywords) if k)


def matches(text: str | None, keywords: Iterable[str]) -> bool:
    """True when the whole message, normalized, equals one of `keywords` (normalized)."""
    if not text or len(text) > _MAX_KEYWORD_CHARS * 4:
        return False
    return normalize(text) in _compiled(tuple(keywords))


OPT_OUT = "opt_out"
OPT_IN = "opt_in"
ACCESS_REQUEST = "access_request"  # opens an access request (domain/privacy_inbound.py)
ERASURE_REQUEST = "erasure_request"  # opens an erasure request
PRIVACY_NOTICE = "privacy_notice"  # sends the privacy notice again
PRIVACY_INTENTS = (ACCESS_REQUEST, ERASURE_REQUEST, PRIVACY_NOTICE)
ACCESS_KEYWORDS = ("MY DATA", "MEINE DATEN", "MIS DATOS", "MES DONNEES", "MES DONNÉES")
ERASURE_KEYWORDS = (
    "DELETE MY DATA",
    "LÖSCHE MEINE DATEN",
    "BORRAR MIS DATOS",
    "SUPPRIMER MES DONNEES",
    "SUPPRIMER MES DONNÉES",
)
NOTICE_KEYWORDS = ("PRIVACY", "DATENSCHUTZ", "PRIVACIDAD", "CONFIDENTIALITE", "CONFIDENTIALITÉ")
# (intent, its keywords in the settings), in priority order: a word configured twice is an opt-out.
INTENTS: tuple[tuple[str, Callable[[Any], Iterable[str]]], ...] = (
    (OPT_OUT, lambda settings: settings.opt_out_keywords),
    (OPT_IN, lambda settings: settings.opt_in_keywords),
    (ERASURE_REQUEST, lambda settings: ERASURE_KEYWORDS),
    (ACCESS_REQUEST, lambda settings: ACCESS_KEYWORDS),
    (PRIVACY_NOTICE, lambda settings: NOTICE_KEYWORDS),
)


def intent(text: str | None, settings: Any) -> str | None:
    """What the whole message asks for (an intent of INTENTS), or None when it is no keyword."""
    for name, words in INTENTS:
        if matches(text, words(settings)):
            return name
    return None
