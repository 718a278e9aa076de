"""The body of `POST /campaigns` (contract: "Campaigns"): strict, 400 `invalid_body` naming the field.

The audience is exactly one of `contacts` (1 to 10,000 entries `{"to", "components"?}`) or
`{"consented": true}`; `to` is checked in the domain (an invalid entry is a skipped `invalid_contact`
recipient, not a refusal of the campaign).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.api_messages import TemplateContent

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
MAX_RECIPIENTS = 10_000


class AudienceEntry(BaseModel):
    model_config = _STRICT

    to: str = Field(min_length=1, max_length=200)
    components: list[dict[str, Any]] | None = Field(default=None, max_length=50)


class Audience(BaseModel):
    model_config = _STRICT

    contacts: list[AudienceEntry] | None = Field(default=None, min_length=1, max_length=MAX_RECIPIENTS)
    consented: Literal[True] | None = None

    @model_validator(mode="after")
    def _one(self) -> Audience:
        if (self.contacts is None) == (self.consented is None):
            raise ValueError('audience is either {"contacts": [...]} or {"consented": true}')
        return self


class CreateCampaignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    name: str = Field(min_length=1, max_length=200)
    template: TemplateContent
    from_: str | None = Field(default=None, alias="from", min_length=1, max_length=64)
    audience: Audience
    send_at: str | None = Field(default=None, min_length=10, max_length=40)
