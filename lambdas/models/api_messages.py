"""Request and response bodies of `POST /messages` and `GET /messages/{id}` (contract: Sending).

Strict: unknown fields, wrong types and anything but exactly one content kind (`text`, `template`, or
one of models.message_kinds: media, `interactive`, `reaction`, `location`) are refused (400
`invalid_body`, the message naming the field). `to` is checked by `shared.ids.normalize_contact` in the
domain, so that an invalid contact answers its own code (400 `invalid_contact`); `reply_to`,
`reaction.message_id`, `media_id` and `from` are resolved in the domain too (their own 400 codes).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.message_kinds import (
    KINDS,
    CaptionedMedia,
    DocumentMedia,
    Interactive,
    Location,
    PlainMedia,
    Reaction,
)
from shared import constants as c

Purpose = Literal["service", "marketing", "utility", "authentication"]  # = constants.SEND_PURPOSES

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class TextContent(BaseModel):
    model_config = _STRICT

    body: str = Field(min_length=1, max_length=c.TEXT_MAX_CHARS)
    preview_url: bool | None = None


class TemplateLanguage(BaseModel):
    model_config = _STRICT

    # Meta's template language codes: `en`, `en_US`, `pt_BR`, `zh_CN`, `es_AR`, ...
    code: str = Field(pattern=r"^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$")


class TemplateContent(BaseModel):
    model_config = _STRICT

    # Meta's template names: lowercase letters, digits and underscores, at most 512 characters.
    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    language: TemplateLanguage
    # Meta's component objects (header/body/button parameters) are passed through as given.
    components: list[dict[str, Any]] | None = Field(default=None, max_length=50)


class SendMessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    to: str = Field(min_length=1, max_length=128)
    purpose: Purpose | None = None  # a template's comes from its category in the registry
    text: TextContent | None = None
    template: TemplateContent | None = None
    image: CaptionedMedia | None = None
    video: CaptionedMedia | None = None
    audio: PlainMedia | None = None
    document: DocumentMedia | None = None
    sticker: PlainMedia | None = None
    interactive: Interactive | None = None
    reaction: Reaction | None = None
    location: Location | None = None
    reply_to: str | None = Field(default=None, min_length=1, max_length=64)
    from_: str | None = Field(default=None, alias="from", min_length=1, max_length=64, pattern=r"^\d+$")

    @model_validator(mode="after")
    def _exactly_one_content(self) -> SendMessageRequest:
        given = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError("exactly one of " + ", ".join(KINDS) + " is required")
        if self.purpose is None and given[0] != "template":
            raise ValueError("purpose: required for every kind but template")
        if self.reply_to is not None and given[0] == "reaction":
            raise ValueError("reply_to: a reaction cannot be a reply")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)


class ReadRequest(BaseModel):
    """The optional body of `POST /messages/{id}/read`."""

    model_config = _STRICT

    typing: bool = False


class MessageAccepted(BaseModel):
    id: str
    status: Literal["queued"] = "queued"


class MessageError(BaseModel):
    code: int | str
    title: str


class MessageView(BaseModel):
    id: str
    status: str
    wamid: str | None = None
    error: MessageError | None = None

    def public(self) -> dict[str, Any]:
        """The GET /messages/{id} body: `wamid` and `error` only when present."""
        return self.model_dump(exclude_none=True)
