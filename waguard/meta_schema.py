"""Meta's published OpenAPI file as an oracle for `POST /{version}/{phone_number_id}/messages` bodies.

The file (`../shared/meta/business-messaging-api_v23.0.yaml`, or `WAGUARD_META_OPENAPI`) is read when
present; without it `load()` answers None and the Graph fake keeps its own checks only. As
`../shared/meta/README.md` says, the file needs two kinds of treatment before it can judge bodies:

- `allOf` parts each carry `additionalProperties: false`: the parts are merged into one object schema
  (properties and required lists united, closed when any part is closed);
- where it is stricter than Meta's own examples and documentation, the examples win, and exactly these
  are relaxed: `recipient_type` and template `language.policy` are optional; coordinates may be numbers
  or strings; a business-scoped user id goes in `recipient` instead of `to`; interactive type `cta_url`
  (Meta's "interactive call-to-action URL button messages") is added with its action
  `{"name": "cta_url", "parameters": {"display_text" (at most 20), "url"}}`; a template button's `index`
  is a digit 0 to 9 as its own description says (its pattern `^[2-6, 11-14]$` refuses "0", the index of
  every first button in Meta's examples).

A read receipt (`{"messaging_product", "status": "read", "message_id"}`) is checked against
`MarkMessageRequestPayload`, with Meta's documented `typing_indicator: {"type": "text"}`.
"""

from __future__ import annotations

import copy
import os
from functools import cache
from pathlib import Path
from typing import Any

ENV_PATH = "WAGUARD_META_OPENAPI"
DEFAULT_PATH = Path(__file__).resolve().parent.parent.parent / "shared" / "meta"
FILE_NAME = "business-messaging-api_v23.0.yaml"
_REF = "#/components/schemas/"
TEMPLATE_LIST_PATH = "/{Version}/{WABA-ID}/message_templates"


def schema_path() -> Path:
    return Path(os.environ.get(ENV_PATH) or DEFAULT_PATH / FILE_NAME)


def _merge_all_of(schema: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    """One object schema from the `allOf` parts (each `$ref` resolved, itself merged first)."""
    merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
    closed = False
    for given in schema["allOf"]:
        part = schemas[given["$ref"][len(_REF) :]] if "$ref" in given else given
        if "allOf" in part:
            part = _merge_all_of(part, schemas)
        merged["properties"].update(copy.deepcopy(part.get("properties", {})))
        merged["required"] += [r for r in part.get("required", []) if r not in merged["required"]]
        closed = closed or part.get("additionalProperties") is False
        for key in ("anyOf", "oneOf"):
            if key in part:
                merged.setdefault("allOf", []).append({key: copy.deepcopy(part[key])})
    if closed:
        merged["additionalProperties"] = False
    for key, value in schema.items():
        if key != "allOf":
            merged.setdefault(key, value)
    return merged


def _relax(schemas: dict[str, Any]) -> None:
    """Where the file is stricter than Meta's examples, the examples win (see the module doc)."""
    base = schemas["BaseMessageProperties"]
    base["required"] = [r for r in base["required"] if r not in ("recipient_type", "to")]
    base["properties"]["recipient"] = {"type": "string", "description": "a business-scoped user id"}
    base["anyOf"] = [{"required": ["to"]}, {"required": ["recipient"]}]
    language = schemas["LanguageObject"]
    language["required"] = [r for r in language["required"] if r != "policy"]
    location = schemas["LocationMessage"]["allOf"][1]["properties"]["location"]["properties"]
    for axis in ("latitude", "longitude"):
        location[axis]["type"] = ["string", "number"]
    schemas["InteractiveObject"]["properties"]["type"]["enum"].append("cta_url")
    schemas["TemplateComponent"]["properties"]["index"]["pattern"] = "^[0-9]$"
    schemas["ButtonComponent"]["allOf"][1]["properties"]["index"]["pattern"] = "^[0-9]$"
    schemas["ActionObject"]["oneOf"].append(
        {
            "required": ["name", "parameters"],
            "properties": {
                "name": {"type": "string", "enum": ["cta_url"]},
                "parameters": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["display_text", "url"],
                    "properties": {
                        "display_text": {"type": "string", "minLength": 1, "maxLength": 20},
                        "url": {"type": "string", "minLength": 1},
                    },
                },
            },
        }
    )
    schemas["MarkMessageRequestPayload"]["properties"]["typing_indicator"] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["type"],
        "properties": {"type": {"type": "string", "enum": ["text"]}},
    }


class MetaSchema:
    """The relaxed, merged schemas of the file, and validators built from them."""

    def __init__(self, document: dict[str, Any]) -> None:
        schemas = copy.deepcopy(document["components"]["schemas"])
        _relax(schemas)
        originals = copy.deepcopy(schemas)
        for name, schema in originals.items():
            if isinstance(schema, dict) and "allOf" in schema:
                schemas[name] = _merge_all_of(schema, originals)
        self.schemas = schemas
        self.paths = document.get("paths", {})
        self.mapping: dict[str, str] = {
            kind: ref[len(_REF) :] for kind, ref in schemas["Message"]["discriminator"]["mapping"].items()
        }

    def _errors(self, name: str, payload: Any) -> list[str]:
        from jsonschema import Draft202012Validator

        root = {"$ref": _REF + name, "components": {"schemas": self.schemas}}
        found = sorted(Draft202012Validator(root).iter_errors(payload), key=lambda e: list(e.path))
        return [f"{'.'.join(str(p) for p in e.path) or '(body)'}: {e.message}"[:300] for e in found]

    def message_errors(self, payload: Any) -> list[str]:
        """Why Meta's schema refuses this send body (empty: it conforms)."""
        kind = payload.get("type") if isinstance(payload, dict) else None
        if kind not in self.mapping:
            return [f"type: {kind!r} is not one of {sorted(self.mapping)}"]
        return self._errors(self.mapping[str(kind)], payload)

    def read_errors(self, payload: Any) -> list[str]:
        return self._errors("MarkMessageRequestPayload", payload)

    def template_list_errors(self, payload: Any) -> list[str]:
        """Why Meta's answer schema of `GET /{Version}/{WABA-ID}/message_templates` refuses this page."""
        from jsonschema import Draft202012Validator

        answer = self.paths[TEMPLATE_LIST_PATH]["get"]["responses"]["200"]["content"]["application/json"]
        found = Draft202012Validator(answer["schema"]).iter_errors(payload)
        return [f"{'.'.join(str(p) for p in e.path) or '(body)'}: {e.message}"[:300] for e in found]


@cache
def _load(path: str) -> MetaSchema | None:
    file = Path(path)
    if not file.is_file():
        return None
    return MetaSchema(_parsed(file.read_bytes()))


def _parsed(raw: bytes) -> Any:
    """The YAML document, parsed once per content on this machine.

    Parsing the 1 MB file costs about 0.4 s of CPU even with libyaml, and every `waguard serve`, Graph fake
    and test worker reads it. The parsed document is kept as marshal data (plain dicts, lists, strings and
    numbers; nothing in it runs) under the file's SHA-256, in a directory of the user's own (0700) in the
    system's temporary directory; anything unreadable there is parsed again."""
    import hashlib
    import marshal
    import tempfile

    folder = Path(tempfile.gettempdir()) / f"waguard-{os.getuid()}"
    kept = folder / f"meta-openapi-{hashlib.sha256(raw).hexdigest()[:32]}-m{marshal.version}.bin"
    try:
        held = folder.stat()
        if held.st_uid == os.getuid() and not held.st_mode & 0o077:
            return marshal.loads(kept.read_bytes())  # noqa: S302 - our own file, in our own 0700 folder
    except (OSError, ValueError, EOFError, TypeError):
        pass
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~4x faster on this 1 MB file
    doc = yaml.load(raw, Loader=loader)  # noqa: S506 - a safe loader
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        part = kept.with_suffix(f".{os.getpid()}.part")
        part.write_bytes(marshal.dumps(doc))
        os.replace(part, kept)
    except (OSError, ValueError):
        pass
    return doc


def load() -> MetaSchema | None:
    """Meta's schema when the file is present, else None (parsed once per path)."""
    return _load(str(schema_path()))
