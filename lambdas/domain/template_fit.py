"""What a template asks for, whether a send's `components` fill it exactly, and the body as it is read.

Pure functions over Meta's template shape (`GET /{WABA_ID}/message_templates`: `components` of type
HEADER, BODY, FOOTER, BUTTONS; placeholders `{{1}}` or `{{name}}`) and Meta's send shape (`components` of
type header, body, button with `parameters`). Contract: "Templates".
"""

from __future__ import annotations

import re
from typing import Any

_VAR = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_HEADERS = ("image", "video", "document")
HEADER_FORMATS = ("text", *MEDIA_HEADERS, "location")
HEADER_TEXT_MAX = 60
BODY_PARAMETER_MAX = 32768  # Meta: a body parameter's text (the whole body at most 1024 once filled)
BUTTON_PARAMETER_MAX = 2000
SEND_TYPES = ("header", "body", "button")


class Misfit(ValueError):
    """The components do not fill the template's parameters (the message says how; no values)."""


def _upper(value: Any) -> str:
    return str(value or "").upper()


def parameters(components: list[dict[str, Any]]) -> dict[str, Any]:
    """`{"header": None|FORMAT, "body": [NAME, ...], "buttons": [INDEX, ...]}` of a template: the header
    when it needs a parameter (a media or location header; a text header with a placeholder), the body's
    placeholders in order (each once), the indexes of URL buttons with a variable suffix (an
    authentication template's copy-code button is one: `.../otp/code/?...code=otp{{1}}`, or type OTP)."""
    header: str | None = None
    body: list[str] = []
    buttons: list[int] = []
    for comp in components:
        if not isinstance(comp, dict):
            continue
        kind = _upper(comp.get("type"))
        if kind == "HEADER":
            fmt = str(comp.get("format") or "TEXT").lower()
            if fmt != "text":
                header = fmt
            elif _VAR.search(str(comp.get("text") or "")):
                header = "text"
        elif kind == "BODY":
            body = list(dict.fromkeys(_VAR.findall(str(comp.get("text") or ""))))
        elif kind == "BUTTONS":
            for index, button in enumerate(comp.get("buttons") or []):
                if not isinstance(button, dict):
                    continue
                btype = _upper(button.get("type"))
                variable = btype == "URL" and _VAR.search(str(button.get("url") or ""))
                if variable or (btype == "OTP" and _upper(button.get("otp_type")) == "COPY_CODE"):
                    buttons.append(index)
    return {"header": header, "body": body, "buttons": buttons}


def body_text(components: list[dict[str, Any]]) -> str:
    return next(
        (
            str(comp.get("text") or "")
            for comp in components
            if isinstance(comp, dict) and _upper(comp.get("type")) == "BODY"
        ),
        "",
    )


def _text_of(param: dict[str, Any]) -> str | None:
    """What a body parameter reads as: its text, or the fallback of a currency or date_time parameter."""
    kind = param.get("type")
    if kind == "text":
        return param.get("text") if isinstance(param.get("text"), str) else None
    if kind in ("currency", "date_time"):
        inner = param.get(kind)
        if isinstance(inner, dict) and isinstance(inner.get("fallback_value"), str):
            return str(inner["fallback_value"])
    return None


def _one(comps: list[dict[str, Any]], what: str) -> dict[str, Any] | None:
    if len(comps) > 1:
        raise Misfit(f"{what} is given more than once")
    return comps[0] if comps else None


def _params(comp: dict[str, Any], what: str) -> list[dict[str, Any]]:
    params = comp.get("parameters")
    if not isinstance(params, list) or not all(isinstance(p, dict) for p in params):
        raise Misfit(f"{what}: parameters must be a list of objects")
    return params


def _check_header(want: str | None, comp: dict[str, Any] | None) -> None:
    if want is None:
        if comp is not None:
            raise Misfit("the template's header takes no parameter")
        return
    if comp is None:
        raise Misfit(f"the template's header needs a {want} parameter")
    params = _params(comp, "header")
    if len(params) != 1 or params[0].get("type") != want:
        raise Misfit(f"the header takes exactly one {want} parameter")
    param = params[0]
    if want == "text":
        text = param.get("text")
        if not isinstance(text, str) or not text.strip() or len(text) > HEADER_TEXT_MAX:
            raise Misfit(f"the header's text parameter has 1 to {HEADER_TEXT_MAX} characters")
    elif want in MEDIA_HEADERS:
        media = param.get(want)
        link = media.get("link") if isinstance(media, dict) else None
        media_id = media.get("id") if isinstance(media, dict) else None
        if isinstance(link, str) and link.startswith("https://") and not media_id:
            return
        if isinstance(media_id, str) and media_id and not link:
            return
        raise Misfit(f"the header's {want} needs an https link or a media id")
    else:  # location
        loc = param.get("location")
        ok = isinstance(loc, dict) and all(
            isinstance(loc.get(k), int | float) and not isinstance(loc.get(k), bool)
            for k in ("latitude", "longitude")
        )
        if not ok:
            raise Misfit("the header's location needs a latitude and a longitude")


def _check_body(want: list[str], comp: dict[str, Any] | None, named: bool) -> None:
    if not want:
        if comp is not None and _params(comp, "body"):
            raise Misfit("the template's body takes no parameters")
        return
    if comp is None:
        raise Misfit(f"the template's body takes {len(want)} parameters")
    params = _params(comp, "body")
    if len(params) != len(want):
        raise Misfit(f"the template's body takes {len(want)} parameters, {len(params)} given")
    for param in params:
        text = _text_of(param)
        if text is None or not text.strip() or len(text) > BODY_PARAMETER_MAX:
            raise Misfit("each body parameter is a non-empty text (or a currency or date_time)")
    if named:
        names = [p.get("parameter_name") for p in params]
        if sorted(str(n) for n in names) != sorted(want) or len(set(names)) != len(names):
            raise Misfit("the body's parameters must be named " + ", ".join(want))


def _check_buttons(want: list[int], comps: list[dict[str, Any]]) -> None:
    seen: set[int] = set()
    for comp in comps:
        if str(comp.get("sub_type") or "").lower() != "url":
            raise Misfit("only URL buttons with a variable take a parameter")
        try:
            index = int(str(comp.get("index")))
        except ValueError:
            raise Misfit("a button parameter needs its button's index") from None
        if index not in want or index in seen:
            raise Misfit(f"button {index} takes no parameter (or is given twice)")
        seen.add(index)
        params = _params(comp, f"button {index}")
        text = params[0].get("text") if len(params) == 1 and params[0].get("type") == "text" else None
        if not isinstance(text, str) or not text.strip() or len(text) > BUTTON_PARAMETER_MAX:
            raise Misfit(f"button {index} takes exactly one text parameter")
    missing = sorted(set(want) - seen)
    if missing:
        raise Misfit("the template's buttons " + ", ".join(map(str, missing)) + " need a parameter")


def check(template_components: list[dict[str, Any]], parameter_format: str, given: list[Any] | None) -> None:
    """Raise Misfit unless `given` (the send's `components`) fills exactly the template's parameters."""
    want = parameters(template_components)
    given = given or []
    if not all(isinstance(comp, dict) for comp in given):
        raise Misfit("components must be objects")
    by_type: dict[str, list[dict[str, Any]]] = {t: [] for t in SEND_TYPES}
    for comp in given:
        kind = str(comp.get("type") or "").lower()
        if kind not in by_type:
            raise Misfit(f"unknown component type {kind[:20]!r} (header, body or button)")
        by_type[kind].append(comp)
    _check_header(want["header"], _one(by_type["header"], "the header"))
    _check_body(want["body"], _one(by_type["body"], "the body"), _upper(parameter_format) == "NAMED")
    _check_buttons(want["buttons"], by_type["button"])


def render(template_components: list[dict[str, Any]], given: list[Any] | None) -> str:
    """The body as the recipient reads it: each placeholder filled with the parameter sent for it."""
    text = body_text(template_components)
    names = parameters(template_components)["body"]
    body = next(
        (c for c in given or [] if isinstance(c, dict) and str(c.get("type")).lower() == "body"), None
    )
    params = [p for p in (body or {}).get("parameters") or [] if isinstance(p, dict)]
    values: dict[str, str] = {}
    for position, param in enumerate(params):
        key = str(param.get("parameter_name") or (names[position] if position < len(names) else ""))
        values[key] = _text_of(param) or ""
    return _VAR.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def view(template: dict[str, Any] | None) -> dict[str, Any] | None:
    """An outbound template as the conversation and the export show it: `{"name", "language"}`."""
    if not template:
        return None
    language = template.get("language")
    code = language.get("code") if isinstance(language, dict) else language
    return {"name": template.get("name"), "language": code}
