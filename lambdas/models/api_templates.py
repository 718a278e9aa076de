"""The body of `POST /templates`: a new template for Meta's review (contract: "Templates").

Checked before Meta is called (400 `invalid_body`, the message naming the field): Meta's name rules
(lowercase letters, digits and underscores), a language code, one of the three categories, and
components as Meta's template-creation schema has them (one BODY, at most one HEADER, FOOTER and BUTTONS;
Meta's length limits).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(extra="forbid", strict=True, frozen=True)
HEADER_FORMATS = ("TEXT", "IMAGE", "VIDEO", "DOCUMENT", "LOCATION")
BUTTON_TYPES = ("QUICK_REPLY", "URL", "PHONE_NUMBER", "OTP", "COPY_CODE", "FLOW", "CATALOG", "MPM")
COMPONENT_TYPES = ("HEADER", "BODY", "FOOTER", "BUTTONS")


def _check_component(comp: dict[str, Any], category: str) -> None:
    kind = comp.get("type")
    text = comp.get("text")
    if kind not in COMPONENT_TYPES:
        raise ValueError(f"components: type must be one of {', '.join(COMPONENT_TYPES)}")
    if text is not None and not isinstance(text, str):
        raise ValueError(f"components: the {kind} text must be a string")
    if kind == "HEADER":
        if comp.get("format") not in HEADER_FORMATS:
            raise ValueError(f"components: a HEADER's format is one of {', '.join(HEADER_FORMATS)}")
        if comp["format"] == "TEXT" and not (isinstance(text, str) and 1 <= len(text) <= 60):
            raise ValueError("components: a TEXT header has 1 to 60 characters")
    elif kind == "BODY":
        needs_text = category != "AUTHENTICATION"  # Meta writes an authentication body itself
        if needs_text and not (isinstance(text, str) and 1 <= len(text) <= 1024):
            raise ValueError("components: the BODY has 1 to 1024 characters")
    elif kind == "FOOTER":
        if text is not None and not 1 <= len(text) <= 60:
            raise ValueError("components: the FOOTER has 1 to 60 characters")
    else:
        buttons = comp.get("buttons")
        if not isinstance(buttons, list) or not 1 <= len(buttons) <= 10:
            raise ValueError("components: BUTTONS holds 1 to 10 buttons")
        for button in buttons:
            if not isinstance(button, dict) or button.get("type") not in BUTTON_TYPES:
                raise ValueError(f"components: a button's type is one of {', '.join(BUTTON_TYPES)}")
            label = button.get("text")
            if label is not None and not (isinstance(label, str) and 1 <= len(label) <= 25):
                raise ValueError("components: a button's text has 1 to 25 characters")
            url = button.get("url")
            if button["type"] == "URL" and not (isinstance(url, str) and url.startswith("https://")):
                raise ValueError("components: a URL button needs an https url")


class CreateTemplateRequest(BaseModel):
    model_config = _STRICT

    name: str = Field(pattern=r"^[a-z0-9_]{1,512}$")
    language: str = Field(pattern=r"^[a-z]{2,3}(_[A-Za-z0-9]{2,4})?$")
    category: Literal["MARKETING", "UTILITY", "AUTHENTICATION"]
    components: list[dict[str, Any]] = Field(min_length=1, max_length=4)
    parameter_format: Literal["POSITIONAL", "NAMED"] | None = None

    @model_validator(mode="after")
    def _components(self) -> CreateTemplateRequest:
        kinds = [comp.get("type") for comp in self.components]
        for comp in self.components:
            _check_component(comp, self.category)
        if kinds.count("BODY") != 1 or any(kinds.count(k) > 1 for k in COMPONENT_TYPES):
            raise ValueError("components: exactly one BODY and at most one HEADER, FOOTER and BUTTONS")
        return self
