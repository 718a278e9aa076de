"""Request and response bodies of `POST /messages` and `GET /messages/{id}` (contract: Sending).

Strict: unknown fields, wrong types and anything but exactly one of `text` / `template` are refused
(400 `invalid_body`). `to` is checked by `shared.ids.normalize_contact` in the domain, so that an
invalid contact answers its own code (400 `invalid_contact`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared import constants as c

Purpose = Literal["service", "marketing", "utility", "authentication"]  # = constants.SEND_PURPOSES

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)


class TextContent(BaseModel):
    model_config = _STRICT

    body: str = Field(min_length=1, max_length=c.TEXT_MAX_CHARS)


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
    model_config = _STRICT

    to: str = Field(min_length=1, max_length=128)
    purpose: Purpose
    text: TextContent | None = None
    template: TemplateContent | None = None

    @model_validator(mode="after")
    def _exactly_one_content(self) -> SendMessageRequest:
        if (self.text is None) == (self.template is None):
            raise ValueError("exactly one of text or template is required")
        return self

    @property
    def kind(self) -> str:
        return "text" if self.text is not None else "template"


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
