"""Runtime configuration, parsed on first use (never at import: handler modules must import with no env).

Non-secret settings come from the `WG_SETTINGS` JSON that the stack builds from cdk.json (the one
contract, `shared.settings_contract.SettingsDocument`, parsed on first use: pydantic stays off the cold
start); resource names from one environment key each. The contract's local variables (`WA_GRAPH_API_URL`,
...) override settings through one table, `OVERRIDES`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from shared import constants as c


class ConfigurationError(RuntimeError):
    """A required environment key is missing or malformed (a deployment error, never user input)."""


@dataclass(frozen=True)
class Settings:
    retention_days: dict[str, int]
    keep_profile_name: bool
    keep_contact_cards: bool
    keep_locations: bool
    opt_out_keywords: tuple[str, ...]
    opt_in_keywords: tuple[str, ...]
    stop_confirmation: str
    service_window_hours: int
    send_rate_per_second: int
    max_send_attempts: int
    retry_base_seconds: float
    graph_api_url: str
    graph_api_version: str
    phone_number_ids: tuple[str, ...]  # the business numbers served (Meta's phone_number_id), default first
    business_account_id: str = ""  # the WABA whose message templates the registry reads
    privacy_law: str = "gdpr"  # the law of data-subject requests opened over WhatsApp
    privacy_notice: str = ""  # the privacy notice's text (empty: none is sent)
    privacy_notice_version: str = ""
    campaign_rate_per_second: int = 40  # a campaign's messages per second per business number
    marketing_frequency_cap: tuple[int, int] | None = None  # (messages, days): at most N marketing in D days

    @property
    def phone_number_id(self) -> str:
        """The default business number (the first configured)."""
        return self.phone_number_ids[0]

    def retention_seconds(self, data_class: str) -> int:
        try:
            return self.retention_days[data_class] * 86400
        except KeyError as exc:
            raise ConfigurationError(f"no retention configured for data class {data_class!r}") from exc

    def expires_at(self, data_class: str, now: float | None = None) -> int:
        """The Number TTL of an item of `data_class` written at `now`."""
        return int(now if now is not None else time.time()) + self.retention_seconds(data_class)


def require_env(key: str) -> str:
    value = os.environ.get(key, "")
    if not value:
        raise ConfigurationError(f"environment key {key} is not set")
    return value


def table_name(logical: str) -> str:
    return require_env(c.ENV_TABLE[logical])


@cache
def get_settings() -> Settings:
    """`WG_SETTINGS` (the `SettingsDocument` infra writes), with the local overrides of the contract."""
    from pydantic import ValidationError

    from shared.settings_contract import SettingsDocument

    try:
        doc = SettingsDocument.from_json(require_env(c.ENV_SETTINGS))
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e["loc"]) or "(document)" for e in exc.errors()})
        raise ConfigurationError(f"{c.ENV_SETTINGS} is invalid: {', '.join(fields)}") from None
    values: dict[str, Any] = {
        "retention_days": dict(doc.retention_days),
        "keep_profile_name": doc.keep.profile_name,
        "keep_contact_cards": doc.keep.contact_cards,
        "keep_locations": doc.keep.locations,
        "opt_out_keywords": doc.opt_out_keywords,
        "opt_in_keywords": doc.opt_in_keywords,
        "stop_confirmation": doc.stop_confirmation,
        "service_window_hours": doc.service_window_hours,
        "send_rate_per_second": doc.send_rate_per_second,
        "max_send_attempts": doc.max_send_attempts,
        "retry_base_seconds": float(doc.retry_base_seconds),
        "graph_api_url": doc.graph_api_url.rstrip("/"),
        "graph_api_version": doc.graph_api_version,
        "phone_number_ids": tuple(n.id for n in doc.phone_numbers),
        "business_account_id": doc.business_account_id,
        "privacy_law": doc.privacy_law,
        "privacy_notice": doc.privacy_notice.text,
        "privacy_notice_version": doc.privacy_notice.version,
        "campaign_rate_per_second": doc.campaign_rate_per_second,
        "marketing_frequency_cap": (
            (doc.marketing_frequency_cap.messages, doc.marketing_frequency_cap.days)
            if doc.marketing_frequency_cap
            else None
        ),
    }
    for name, (key, parse) in OVERRIDES.items():
        raw = os.environ.get(key, "")
        if raw and (value := parse(raw)) != ():  # a list of no numbers keeps the configured ones
            values[name] = value
    if os.environ.get(c.ENV_PRIVACY_NOTICE):  # a local notice has no version of its own
        values["privacy_notice_version"] = values["privacy_notice_version"] or LOCAL_NOTICE_VERSION
    return Settings(**values)


def parse_numbers(raw: str) -> tuple[str, ...]:
    """Business numbers from a comma-separated list (`WA_PHONE_NUMBER_ID`), in order, each once."""
    return tuple(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))


def parse_cap(raw: str) -> tuple[int, int] | None:
    """`N/D` (`WA_MARKETING_CAP`): at most N marketing templates in D days; `none` or `0/D` is no cap."""
    if raw.strip().lower() in ("none", "off"):
        return None
    messages, _, days = raw.partition("/")
    cap = (int(messages), int(days))
    if cap[0] < 0 or cap[1] < 1:
        raise ConfigurationError(f"{c.ENV_MARKETING_CAP} must be N/D with N >= 0 and D >= 1")
    return cap if cap[0] > 0 else None


def reset() -> None:
    """Forget parsed settings (tests change the environment between cases)."""
    get_settings.cache_clear()


# The contract's local overrides (README, "Using it locally"), in one table: Settings field -> (environment
# key, parser). A set, non-empty value wins over WG_SETTINGS; a capability with an override adds a row.
OVERRIDES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "retry_base_seconds": (c.ENV_RETRY_BASE_SECONDS, float),
    "graph_api_url": (c.ENV_GRAPH_API_URL, lambda raw: raw.rstrip("/")),
    "graph_api_version": (c.ENV_GRAPH_API_VERSION, str),
    "phone_number_ids": (c.ENV_PHONE_NUMBER_ID, parse_numbers),
    "business_account_id": (c.ENV_BUSINESS_ACCOUNT_ID, str.strip),
    "privacy_notice": (c.ENV_PRIVACY_NOTICE, str),
    "campaign_rate_per_second": (c.ENV_CAMPAIGN_RATE, lambda raw: max(1, int(raw))),
    "marketing_frequency_cap": (c.ENV_MARKETING_CAP, parse_cap),
}
LOCAL_NOTICE_VERSION = "local"
