"""Deployment settings: the `waguard` object of cdk.json context, validated before anything is built.

Synth refuses a region outside `allowedRegions` and retention periods out of bounds, so a bad setting
fails at `cdk synth` with a message naming the key rather than deploying something non-compliant.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lambdas.shared import constants as c
from lambdas.shared.settings_contract import (
    BusinessNumber,
    FrequencyCap,
    KeepSettings,
    PrivacyNotice,
    SettingsDocument,
)

ROOT = Path(__file__).resolve().parent.parent  # the repository (cdk.json, lambdas/)
CONTEXT_KEY = "waguard"

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
RETENTION_MIN, RETENTION_MAX = 1, 3650
SHORT_RETENTION_MAX = 7  # idempotency records and rate counters are only useful for hours
SUPPRESSION_MIN = 365
PRIVACY_REQUESTS_DEFAULT_DAYS = 1095
KEYS_MARGIN_DAYS = 7  # key material outlives every item it protects
TEMPLATES_RETENTION_DEFAULT = 30  # days an entry Meta no longer lists stays (every sync refreshes the rest)
STORED_CLASSES = tuple(x for x in c.DATA_CLASSES if x != c.CLASS_KEYS)


class ConfigError(ValueError):
    """The cdk.json `waguard` settings are invalid; the message names the offending key."""


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=_camel, populate_by_name=True, extra="forbid", frozen=True)


class Keep(_Model):
    profile_name: bool = False
    contact_cards: bool = False
    locations: bool = False


class ApiThrottle(_Model):
    rate_limit: float = Field(gt=0, le=10_000)
    burst_limit: int = Field(gt=0, le=5_000)


class FunctionSettings(_Model):
    memory_mb: int = Field(default=512, ge=128, le=10_240)
    timeout_seconds: int = Field(default=30, ge=1, le=900)
    reserved_concurrency: int = Field(default=5, ge=1, le=1000)


class PrivacyNoticeConfig(_Model):
    """`privacyNotice`: the notice sent at a contact's first message (GDPR Art. 13); empty text: none."""

    version: str = Field(default="", max_length=64)
    text: str = Field(default="", max_length=c.TEXT_MAX_CHARS)


class FrequencyCapConfig(_Model):
    """`marketingFrequencyCap`: at most `messages` marketing templates to a contact in `days` days."""

    messages: int = Field(ge=1, le=1000)
    days: int = Field(ge=1, le=365)


class PhoneNumber(_Model):
    """A business phone number: Meta's phone_number_id and a label for people (the report)."""

    id: str = Field(pattern=r"^[A-Za-z0-9_]{1,64}$")
    label: str = Field(default="", max_length=64)


class WaguardConfig(_Model):
    region: str
    allowed_regions: tuple[str, ...] = Field(min_length=1)
    name_prefix: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$")
    stage: str = Field(pattern=r"^[A-Za-z0-9_]{1,64}$")
    graph_api_url: str = Field(pattern=r"^https://[^\s/]+(/[^\s]*)?$")
    graph_api_version: str = Field(pattern=r"^v\d+\.\d+$")
    # The business numbers served, the first the default; `phoneNumberId` (one id) is still accepted.
    phone_numbers: tuple[PhoneNumber, ...] = ()
    phone_number_id: str = Field(default="", exclude=True)
    powertools_version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    retention_days: dict[str, int]
    log_retention_days: int
    trail_retention_days: int = Field(ge=RETENTION_MIN, le=RETENTION_MAX)
    backup_retention_days: int = Field(default=35, ge=1, le=RETENTION_MAX)
    keep: Keep = Keep()
    opt_out_keywords: tuple[str, ...] = Field(min_length=1)
    opt_in_keywords: tuple[str, ...] = Field(min_length=1)
    stop_confirmation_text: str = ""
    service_window_hours: int = Field(ge=1, le=24)
    send_rate_per_second: int = Field(ge=1, le=1000)
    max_send_attempts: int = Field(ge=1, le=20)
    retry_base_seconds: int | float = Field(gt=0, le=900)
    sender_batch_size: int = Field(ge=1, le=10)
    sender_max_concurrency: int = Field(ge=2, le=1000)
    processor_batch_size: int = Field(default=10, ge=1, le=10)
    max_batching_window_seconds: int = Field(default=1, ge=0, le=20)
    api_throttle: ApiThrottle
    waf_rate_limit_per5_min: int = Field(ge=10, le=2_000_000_000, alias="wafRateLimitPer5Min")
    alarm_email: str = Field(default="", pattern=r"^$|^[^@\s]+@[^@\s]+\.[^@\s]+$")
    graph_throttled_alarm_threshold: int = Field(default=10, ge=1)
    log_level: str = Field(default="INFO", pattern=r"^(DEBUG|INFO|WARNING|ERROR)$")
    # Business events: an HTTPS endpoint of the business that receives every event (optional).
    events_endpoint: str = Field(default="", pattern=r"^$|^https://[^\s/]+(/[^\s]*)?$")
    events_rate_per_second: int = Field(default=10, ge=1, le=300)
    events_retry_attempts: int = Field(default=8, ge=0, le=185)
    functions: dict[str, FunctionSettings] = Field(default_factory=dict)
    # The WhatsApp Business Account whose message templates the registry reads (domain/templates.py).
    business_account_id: str = Field(default="REPLACE_WITH_WABA_ID", pattern=r"^[A-Za-z0-9_]{1,64}$")
    template_sync_minutes: int = Field(default=15, ge=1, le=1440)
    # The auditor runs every this many hours (and after each deploy); see docs/design.md "Audits".
    audit_schedule_hours: int = Field(default=24, ge=1, le=168)
    # AWS Config managed rules matching the audit's checks (infra/config_rules.py): needs a recorder.
    aws_config_rules: bool = False
    # Privacy operations: the law of requests opened over WhatsApp and the notice given at first contact.
    privacy_law: str = Field(default="gdpr", pattern=r"^(gdpr|ccpa)$")
    privacy_notice: PrivacyNoticeConfig = PrivacyNoticeConfig()
    # Campaigns (docs/design.md "Campaigns"): pace per business number and the marketing frequency cap.
    campaign_rate_per_second: int = Field(default=40, ge=1, le=1000)
    marketing_frequency_cap: FrequencyCapConfig | None = None

    @field_validator("retention_days")
    @classmethod
    def _retention(cls, value: dict[str, int]) -> dict[str, int]:
        value = {c.CLASS_TEMPLATES: TEMPLATES_RETENTION_DEFAULT, **value}  # optional: a registry's refresh
        # Data-subject requests came later (issue 24): a cdk.json without them keeps them three years.
        value = {c.CLASS_PRIVACY_REQUESTS: PRIVACY_REQUESTS_DEFAULT_DAYS, **value}
        if c.CLASS_KEYS in value:
            raise ValueError(f"'{c.CLASS_KEYS}' is computed (max of others + {KEYS_MARGIN_DAYS}); remove it")
        missing = sorted(set(STORED_CLASSES) - set(value))
        unknown = sorted(set(value) - set(STORED_CLASSES))
        if missing or unknown:
            raise ValueError(
                f"data classes must be exactly {list(STORED_CLASSES)} (missing {missing}, unknown {unknown})"
            )
        for name, days in value.items():
            short = name in (c.CLASS_IDEMPOTENCY, c.CLASS_OPERATIONAL)
            high = SHORT_RETENTION_MAX if short else RETENTION_MAX
            if not RETENTION_MIN <= days <= high:
                raise ValueError(f"retentionDays.{name}={days} is outside {RETENTION_MIN}..{high}")
        if value[c.CLASS_CONSENT] < value[c.CLASS_MESSAGES]:
            raise ValueError("retentionDays.consent must be >= retentionDays.messages (proof outlives use)")
        if value[c.CLASS_MEDIA] > value[c.CLASS_MESSAGES]:
            raise ValueError(
                "retentionDays.media must be <= retentionDays.messages (media outlives no message)"
            )
        if value[c.CLASS_SUPPRESSION] < SUPPRESSION_MIN:
            raise ValueError(f"retentionDays.suppression must be at least {SUPPRESSION_MIN} days")
        return value

    @field_validator("log_retention_days")
    @classmethod
    def _log_retention(cls, value: int) -> int:
        if value not in LOG_RETENTION_DAYS:
            raise ValueError(f"logRetentionDays={value} is not a CloudWatch Logs value {LOG_RETENTION_DAYS}")
        if value < 365:
            raise ValueError("logRetentionDays must be at least 365 (audit horizon; NIST/PCI log retention)")
        return value

    @field_validator("functions")
    @classmethod
    def _functions(cls, value: dict[str, FunctionSettings]) -> dict[str, FunctionSettings]:
        unknown = sorted(set(value) - set(c.HANDLERS))
        if unknown:
            raise ValueError(f"unknown functions {unknown}; known: {sorted(c.HANDLERS)}")
        return value

    @model_validator(mode="after")
    def _numbers(self) -> WaguardConfig:
        if self.phone_number_id and self.phone_numbers:
            raise ValueError("give phoneNumbers or the older phoneNumberId, not both")
        if self.phone_number_id:
            object.__setattr__(self, "phone_numbers", (PhoneNumber(id=self.phone_number_id),))
        if not self.phone_numbers:
            raise ValueError(
                "phoneNumbers lists at least one business number {id, label} (the first: default)"
            )
        ids = [n.id for n in self.phone_numbers]
        if len(set(ids)) != len(ids):
            raise ValueError("phoneNumbers: each id once")
        return self

    @property
    def business_numbers(self) -> tuple[str, ...]:
        """The ids of the business numbers served, the default first."""
        return tuple(n.id for n in self.phone_numbers)

    @model_validator(mode="after")
    def _cross_checks(self) -> WaguardConfig:
        if self.region not in self.allowed_regions:
            raise ValueError(
                f"region {self.region!r} is not in allowedRegions {list(self.allowed_regions)}: "
                "personal data must stay in the allowed regions; refusing to synthesize"
            )
        sender = self.function(c.FN_SENDER)
        if sender.reserved_concurrency < self.sender_max_concurrency:
            raise ValueError("functions.sender.reservedConcurrency must be >= senderMaxConcurrency")
        if self.campaign_rate_per_second > self.send_rate_per_second:
            raise ValueError("campaignRatePerSecond must be at most sendRatePerSecond")
        return self

    # ---- derived values -------------------------------------------------------------------------

    @property
    def retention(self) -> dict[str, int]:
        """Retention days of every data class, `keys` included (computed)."""
        days = {name: self.retention_days[name] for name in STORED_CLASSES}
        days[c.CLASS_KEYS] = max(days.values()) + KEYS_MARGIN_DAYS
        return days

    def function(self, name: str) -> FunctionSettings:
        return self.functions.get(name, FunctionSettings())

    def settings(self) -> SettingsDocument:
        """The runtime's settings document (lambdas/shared/settings_contract.py), built from cdk.json."""
        return SettingsDocument(
            retention_days=self.retention,
            keep=KeepSettings(
                profile_name=self.keep.profile_name,
                contact_cards=self.keep.contact_cards,
                locations=self.keep.locations,
            ),
            opt_out_keywords=tuple(self.opt_out_keywords),
            opt_in_keywords=tuple(self.opt_in_keywords),
            stop_confirmation=self.stop_confirmation_text,
            service_window_hours=self.service_window_hours,
            send_rate_per_second=self.send_rate_per_second,
            max_send_attempts=self.max_send_attempts,
            retry_base_seconds=self.retry_base_seconds,
            graph_api_url=self.graph_api_url,
            graph_api_version=self.graph_api_version,
            phone_numbers=tuple(BusinessNumber(id=n.id, label=n.label) for n in self.phone_numbers),
            business_account_id=self.business_account_id,
            privacy_law=self.privacy_law,
            privacy_notice=PrivacyNotice(version=self.privacy_notice.version, text=self.privacy_notice.text),
            campaign_rate_per_second=self.campaign_rate_per_second,
            marketing_frequency_cap=(
                FrequencyCap(
                    messages=self.marketing_frequency_cap.messages, days=self.marketing_frequency_cap.days
                )
                if self.marketing_frequency_cap
                else None
            ),
        )

    def settings_json(self) -> str:
        """`WG_SETTINGS`: the non-secret runtime settings (design.md), compact, ASCII-only (safe in env)."""
        return self.settings().to_json()

    # ---- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_context(cls, raw: Any) -> WaguardConfig:
        if not isinstance(raw, dict):
            raise ConfigError(f"cdk.json context has no '{CONTEXT_KEY}' object")
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            lines = []
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"]) or CONTEXT_KEY
                msg = re.sub(r"^Value error, ", "", err["msg"])
                lines.append(f"  {CONTEXT_KEY}.{where}: {msg}")
            raise ConfigError("invalid cdk.json settings:\n" + "\n".join(lines)) from None

    @classmethod
    def from_cdk_json(cls, path: str | Path = "cdk.json") -> WaguardConfig:
        return cls.from_context(load_cdk_context(path).get(CONTEXT_KEY))


def load_cdk_context(path: str | Path = "cdk.json") -> dict[str, Any]:
    """The `context` object of cdk.json (settings and feature flags)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    context = data.get("context", {})
    if not isinstance(context, dict):
        raise ConfigError(f"{path}: 'context' is not an object")
    return context
