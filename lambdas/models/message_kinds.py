"""The content kinds of `POST /messages` beyond text and template, with Meta's limits (contract: Sending).

Each model is strict (unknown fields and wrong types refused) and encodes the limits the contract lists,
which are Meta's (WhatsApp Cloud API reference, "Messages"):

- media (`image`, `video`, `audio`, `document`, `sticker`): exactly one of `link` (an https URL) or
  `media_id` (a waguard media id); `caption` at most 1024 characters (image, video, document only);
  `filename` (document only);
- `interactive`: `button` (1 to 3 reply buttons, title 1..20, id 1..256, unique), `list` (button label
  1..20, 1 to 10 sections and 1 to 10 rows in all, row title 1..24, description at most 72, id 1..200,
  unique; a section title at most 24, required when there is more than one section) or `cta_url`
  (display text 1..20, an https URL); body text 1..1024, header text and footer 1..60;
- `reaction`: a waguard message id and exactly one emoji, or "" to remove the reaction;
- `location`: latitude -90..90, longitude -180..180, optional name and address.

A refusal is a pydantic ValidationError whose location names the field (400 `invalid_body`).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)

CAPTION_MAX = 1024
FILENAME_MAX = 240
URL_MAX = 2000
MEDIA_ID_MAX = 128
BODY_TEXT_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_TEXT_MAX = 60
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
LIST_LABEL_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_ROWS_MAX = 10
SECTION_TITLE_MAX = 24
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
ROW_ID_MAX = 200
CTA_TEXT_MAX = 20
PLACE_TEXT_MAX = 1000


# ---- field checks --------------------------------------------------------------------------------------
def _https(value: str) -> str:
    """An absolute https URL with a host and no whitespace (Meta fetches links over HTTPS only)."""
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or any(ch.isspace() for ch in value):
        raise ValueError("must be an https:// URL")
    return value


HttpsUrl = Annotated[str, Field(min_length=9, max_length=URL_MAX), AfterValidator(_https)]

_ZWJ, _VS16, _KEYCAP, _TAG_END = 0x200D, 0xFE0F, 0x20E3, 0xE007F
_PICTOGRAPHIC = (  # Unicode Extended_Pictographic, in ranges (emoji-data.txt), minus the pieces below
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328),
    (0x2388, 0x2388), (0x23CF, 0x23CF), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2),
    (0x25AA, 0x25AB), (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x27BF),
    (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50), (0x2B55, 0x2B55),
    (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297), (0x3299, 0x3299), (0x1F000, 0x1F1E5),
    (0x1F200, 0x1F3FA), (0x1F400, 0x1FAFF),
)  # fmt: skip


def _pictographic(cp: int) -> bool:
    return any(lo <= cp <= hi for lo, hi in _PICTOGRAPHIC)


def _regional(cp: int) -> bool:
    return 0x1F1E6 <= cp <= 0x1F1FF


def _skin_tone(cp: int) -> bool:
    return 0x1F3FB <= cp <= 0x1F3FF


def _element(cps: list[int], i: int) -> int:
    """Index after one emoji element starting at `i` (pictograph [VS16] [skin tone] [tags]); -1 if none."""
    if i >= len(cps) or not _pictographic(cps[i]):
        return -1
    i += 1
    if i < len(cps) and cps[i] == _VS16:
        i += 1
    if i < len(cps) and _skin_tone(cps[i]):
        i += 1
    if i < len(cps) and 0xE0020 <= cps[i] <= 0xE007E:  # tag sequence (subdivision flags)
        while i < len(cps) and 0xE0020 <= cps[i] <= 0xE007E:
            i += 1
        if i >= len(cps) or cps[i] != _TAG_END:
            return -1
        i += 1
    return i


def is_one_emoji(value: str) -> bool:
    """True when `value` is exactly one emoji: a pictograph (optionally with VS16, a skin tone, tags),
    a ZWJ sequence of such, a flag (two regional indicators) or a keycap (`1️⃣`)."""
    cps = [ord(ch) for ch in unicodedata.normalize("NFC", value)]
    if not cps:
        return False
    if len(cps) == 2 and all(_regional(cp) for cp in cps):
        return True
    if chr(cps[0]) in "0123456789#*" and cps[-1] == _KEYCAP and len(cps) in (2, 3):
        return len(cps) == 2 or cps[1] == _VS16
    if len(cps) == 1 and _skin_tone(cps[0]):
        return True
    i = _element(cps, 0)
    while i != -1 and i < len(cps) and cps[i] == _ZWJ:
        i = _element(cps, i + 1)
    return i == len(cps)


def _emoji(value: str) -> str:
    if value and not is_one_emoji(value):
        raise ValueError('must be exactly one emoji, or "" to remove the reaction')
    return value


# ---- media ---------------------------------------------------------------------------------------------
class _Media(BaseModel):
    model_config = _STRICT

    link: HttpsUrl | None = None
    media_id: str | None = Field(default=None, min_length=1, max_length=MEDIA_ID_MAX, pattern=r"^[\w.-]+$")

    @model_validator(mode="after")
    def _exactly_one_source(self) -> _Media:
        if (self.link is None) == (self.media_id is None):
            raise ValueError("exactly one of link or media_id is required")
        return self


class CaptionedMedia(_Media):
    """`image` and `video`."""

    caption: str | None = Field(default=None, min_length=1, max_length=CAPTION_MAX)


class DocumentMedia(CaptionedMedia):
    filename: str | None = Field(default=None, min_length=1, max_length=FILENAME_MAX)


class PlainMedia(_Media):
    """`audio` and `sticker`: no caption."""


# ---- interactive ---------------------------------------------------------------------------------------
class TextHeader(BaseModel):
    model_config = _STRICT

    type: Literal["text"]
    text: str = Field(min_length=1, max_length=HEADER_TEXT_MAX)


class Body(BaseModel):
    model_config = _STRICT

    text: str = Field(min_length=1, max_length=BODY_TEXT_MAX)


class Footer(BaseModel):
    model_config = _STRICT

    text: str = Field(min_length=1, max_length=FOOTER_TEXT_MAX)


class Reply(BaseModel):
    model_config = _STRICT

    id: str = Field(min_length=1, max_length=BUTTON_ID_MAX)
    title: str = Field(min_length=1, max_length=BUTTON_TITLE_MAX)


class ReplyButton(BaseModel):
    model_config = _STRICT

    type: Literal["reply"]
    reply: Reply


def _unique(values: list[str], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must be unique")


class ButtonAction(BaseModel):
    model_config = _STRICT

    buttons: list[ReplyButton] = Field(min_length=1, max_length=BUTTONS_MAX)

    @model_validator(mode="after")
    def _distinct(self) -> ButtonAction:
        _unique([b.reply.id for b in self.buttons], "button ids")
        _unique([b.reply.title for b in self.buttons], "button titles")
        return self


class Row(BaseModel):
    model_config = _STRICT

    id: str = Field(min_length=1, max_length=ROW_ID_MAX)
    title: str = Field(min_length=1, max_length=ROW_TITLE_MAX)
    description: str | None = Field(default=None, min_length=1, max_length=ROW_DESCRIPTION_MAX)


class Section(BaseModel):
    model_config = _STRICT

    title: str | None = Field(default=None, min_length=1, max_length=SECTION_TITLE_MAX)
    rows: list[Row] = Field(min_length=1, max_length=LIST_ROWS_MAX)


class ListAction(BaseModel):
    model_config = _STRICT

    button: str = Field(min_length=1, max_length=LIST_LABEL_MAX)
    sections: list[Section] = Field(min_length=1, max_length=LIST_SECTIONS_MAX)

    @model_validator(mode="after")
    def _rows_in_all(self) -> ListAction:
        rows = [row for section in self.sections for row in section.rows]
        if len(rows) > LIST_ROWS_MAX:
            raise ValueError(f"a list has at most {LIST_ROWS_MAX} rows in all")
        _unique([row.id for row in rows], "row ids")
        if len(self.sections) > 1 and any(s.title is None for s in self.sections):
            raise ValueError("every section needs a title when there is more than one")
        return self


class CtaParameters(BaseModel):
    model_config = _STRICT

    display_text: str = Field(min_length=1, max_length=CTA_TEXT_MAX)
    url: HttpsUrl


class CtaAction(BaseModel):
    model_config = _STRICT

    name: Literal["cta_url"]
    parameters: CtaParameters


class _Interactive(BaseModel):
    model_config = _STRICT

    header: TextHeader | None = None
    body: Body
    footer: Footer | None = None


class ButtonInteractive(_Interactive):
    type: Literal["button"]
    action: ButtonAction


class ListInteractive(_Interactive):
    type: Literal["list"]
    action: ListAction


class CtaInteractive(_Interactive):
    type: Literal["cta_url"]
    action: CtaAction


Interactive = Annotated[ButtonInteractive | ListInteractive | CtaInteractive, Field(discriminator="type")]


# ---- reaction and location -----------------------------------------------------------------------------
class Reaction(BaseModel):
    model_config = _STRICT

    message_id: str = Field(min_length=1, max_length=64)
    emoji: Annotated[str, Field(max_length=32), AfterValidator(_emoji)]


class Location(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = Field(default=None, min_length=1, max_length=PLACE_TEXT_MAX)
    address: str | None = Field(default=None, min_length=1, max_length=PLACE_TEXT_MAX)


MEDIA_KINDS = ("image", "video", "audio", "document", "sticker")
FREE_FORM_KINDS = ("text", *MEDIA_KINDS, "interactive", "reaction", "location")
KINDS = ("template", *FREE_FORM_KINDS)


def dump(value: Any) -> dict[str, Any]:
    """A kind's content as stored and sent: JSON values, absent fields left out."""
    out: dict[str, Any] = value.model_dump(mode="json", exclude_none=True)
    return out
