"""Request and response bodies of the consent, export and erasure routes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Purpose = Literal["marketing", "utility", "authentication"]
ConsentStatus = Literal["granted", "revoked"]


class ConsentRequest(BaseModel):
    """PUT /contacts/{contact}/consent."""

    model_config = ConfigDict(extra="forbid", strict=True)

    purpose: Purpose
    status: ConsentStatus
    source: str = Field(min_length=1, max_length=64)
    evidence: str | None = Field(default=None, max_length=1000)


class ConsentEntry(BaseModel):
    purpose: Purpose
    status: ConsentStatus
    source: str
    recorded_at: str


class PurposeState(BaseModel):
    status: ConsentStatus
    source: str
    recorded_at: str


class ConsentView(BaseModel):
    contact: str
    purposes: dict[str, PurposeState]
    history: list[ConsentEntry]


class ErasureReceipt(BaseModel):
    erased: bool
    items_deleted: int
    receipt_id: str


class Export(BaseModel):
    """GET /contacts/{contact}/export (items are free-form: what is held depends on the message type)."""

    model_config = ConfigDict(extra="allow")

    contact: str
    messages: list[dict[str, Any]]
    statuses: list[dict[str, Any]]
    consent: list[dict[str, Any]]
    profile: dict[str, Any] | None
