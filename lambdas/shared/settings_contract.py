"""`WG_SETTINGS`: the one contract between the stack and the runtime, defined once.

`infra/config.py` builds a `SettingsDocument` from cdk.json and serializes it into every function's
`WG_SETTINGS`; `shared/settings.py` parses it on first use. This module imports pydantic, so the runtime
loads it lazily (inside `get_settings`), never at a handler's cold start; it imports nothing else of the
runtime, so infra can import it as `lambdas.shared.settings_contract`.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Document(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class KeepSettings(_Document):
    """What the inbound worker may keep of a message beyond its text (off unless cdk.json says so)."""

    profile_name: bool = False
    contact_cards: bool = False
    locations: bool = False


class BusinessNumber(_Document):
    """One business phone number the deployment serves: Meta's phone_number_id and a label for people."""

    id: str = Field(min_length=1)
    label: str = ""


class PrivacyNotice(_Document):
    """The privacy notice (GDPR Art. 13) sent at first contact; an empty text: none."""

    version: str = ""
    text: str = ""


class FrequencyCap(_Document):
    """At most `messages` marketing templates to one contact in `days` days (campaigns skip the rest)."""

    messages: int
    days: int


class SettingsDocument(_Document):
    """The non-secret runtime settings (docs/design.md), in the order the JSON carries them."""

    retention_days: dict[str, int]
    keep: KeepSettings = KeepSettings()
    opt_out_keywords: tuple[str, ...]
    opt_in_keywords: tuple[str, ...]
    stop_confirmation: str = ""
    service_window_hours: int
    send_rate_per_second: int
    max_send_attempts: int
    retry_base_seconds: float
    graph_api_url: str
    graph_api_version: str
    phone_numbers: tuple[BusinessNumber, ...] = Field(min_length=1)  # the first is the default
    business_account_id: str = ""  # the WABA whose templates the registry reads (domain/templates.py)
    privacy_law: str = "gdpr"  # the law of requests opened over WhatsApp (gdpr or ccpa)
    privacy_notice: PrivacyNotice = Field(default_factory=PrivacyNotice)
    campaign_rate_per_second: int = 40  # campaigns: messages per second per business number
    marketing_frequency_cap: FrequencyCap | None = None

    @model_validator(mode="before")
    @classmethod
    def _single_number(cls, data: Any) -> Any:
        """A document of before several numbers (`phone_number_id`, comma-separated) still parses."""
        if isinstance(data, dict) and "phone_numbers" not in data and data.get("phone_number_id"):
            ids = [n.strip() for n in str(data["phone_number_id"]).split(",") if n.strip()]
            return {**data, "phone_numbers": [{"id": n} for n in ids]}
        return data

    def to_json(self) -> str:
        """Compact and ASCII-only (safe in an environment variable)."""
        return json.dumps(self.model_dump(mode="json"), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> SettingsDocument:
        return cls.model_validate_json(text)
