"""Request bodies of the privacy-request and restriction routes (contract: "Privacy operations")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RequestType = Literal["access", "erasure", "restriction", "objection"]
Law = Literal["gdpr", "ccpa"]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class PrivacyRequestBody(_Body):
    """POST /privacy/requests."""

    contact: str = Field(min_length=1, max_length=128)
    type: RequestType
    law: Law
    channel: str = Field(default="api", min_length=1, max_length=64)
    received_at: str | None = Field(default=None, max_length=64)  # ISO-8601, never in the future


class ReasonBody(_Body):
    """POST /privacy/requests/{id}/extend and .../reject."""

    reason: str = Field(min_length=1, max_length=1000)


class RestrictionBody(_Body):
    """PUT /contacts/{contact}/restriction."""

    restricted: bool
    reason: str | None = Field(default=None, max_length=1000)
