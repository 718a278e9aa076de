"""The one model of a synthesized CloudFormation template, shared by the local runtime and the report.

Resources by type, their CDK construct paths, tags and metadata, the stack's environment (region,
account, name: what pseudo parameters resolve to locally), and intrinsic functions rendered as text a
reviewer can follow (`{"Ref": "Key12AB"}` becomes `${Key12AB}`, `{"Fn::GetAtt": ["Table9C", "Arn"]}`
becomes `${Table9C.Arn}`). `resolve.Resolver` evaluates the same intrinsics to local values. Nothing
here knows waguard.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

ACCOUNT = "123456789012"  # moto's default account
DEFAULT_REGION = "us-east-1"
DEFAULT_STACK = "Waguard"
PSEUDO_PREFIX = "AWS::"
_SUB_VAR = re.compile(r"\$\{([^}!][^}]*)\}")


@dataclass(frozen=True)
class Resource:
    """One resource of the template."""

    logical_id: str
    type: str
    properties: dict[str, Any]
    metadata: dict[str, Any]
    raw: dict[str, Any]

    def prop(self, *keys: str, default: Any = None) -> Any:
        """A nested property, e.g. `prop("SSESpecification", "SSEEnabled")`."""
        value: Any = self.properties
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return default
            value = value[key]
        return value

    @property
    def tags(self) -> dict[str, str]:
        """Tags as a dict, whether the type lists them (`[{Key, Value}]`) or maps them (`{k: v}`)."""
        tags = self.properties.get("Tags")
        if isinstance(tags, dict):
            return {str(k): str(v) for k, v in tags.items()}
        out: dict[str, str] = {}
        if isinstance(tags, list):
            for tag in tags:
                if isinstance(tag, dict) and "Key" in tag:
                    out[str(tag["Key"])] = str(tag.get("Value"))
        return out


class Template:
    """A synthesized template with helpers to resolve references between its resources."""

    def __init__(
        self,
        data: dict[str, Any],
        source: str = "",
        region: str = DEFAULT_REGION,
        stack: str = DEFAULT_STACK,
        account: str = ACCOUNT,
    ) -> None:
        self.raw = data
        self.source = source
        self.region = region
        self.stack = stack
        self.account = account
        self.resources: dict[str, Resource] = {}
        for lid, raw in (data.get("Resources") or {}).items():
            self.resources[lid] = Resource(
                logical_id=lid,
                type=str(raw.get("Type", "")),
                properties=raw.get("Properties") or {},
                metadata=raw.get("Metadata") or {},
                raw=raw,
            )
        # CDK construct paths: from `aws:cdk:path` metadata when the app wrote it (the CDK CLI asks for it),
        # else from the cloud assembly's `aws:cdk:logicalId` entries (see `add_assembly_metadata`).
        self._path_of: dict[str, str] = {
            lid: str(r.metadata["aws:cdk:path"])
            for lid, r in self.resources.items()
            if "aws:cdk:path" in r.metadata
        }
        self._by_path = {path: lid for lid, path in self._path_of.items()}

    def add_assembly_metadata(self, metadata: dict[str, Any]) -> None:
        """Learn construct paths from a cloud assembly metadata file (`{"/Stack/Path": [{type, data}]}`)."""
        for path, entries in metadata.items():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict) and entry.get("type") == "aws:cdk:logicalId":
                    lid = str(entry.get("data"))
                    if lid in self.resources and lid not in self._path_of:
                        self._path_of[lid] = path.strip("/")
                        self._by_path[path.strip("/")] = lid

    def path_of(self, resource: Resource | str) -> str:
        """The CDK construct path of a resource, or its logical id when unknown."""
        lid = resource if isinstance(resource, str) else resource.logical_id
        return self._path_of.get(lid, lid)

    # ---- lookups -----------------------------------------------------------------------------------

    def of_type(self, *types: str) -> list[Resource]:
        """Resources of the given types, in template order."""
        return [r for r in self.resources.values() if r.type in types]

    def by_id(self, *types: str) -> dict[str, Resource]:
        """Resources of the given types by logical id, in template order."""
        return {r.logical_id: r for r in self.of_type(*types)}

    def props(self, logical_id: str) -> dict[str, Any]:
        """The (unresolved) properties of a resource."""
        return self.resources[logical_id].properties

    def get(self, logical_id: str | None) -> Resource | None:
        return self.resources.get(logical_id) if logical_id else None

    def by_construct_path(self, path: str) -> Resource | None:
        """The resource at a construct path (`Stack/Table/Resource`) or the L2 above it (`Stack/Table`)."""
        path = path.strip("/")
        lid = self._by_path.get(path) or self._by_path.get(path + "/Resource")
        return self.resources.get(lid) if lid else None

    def resources_under(self, path: str) -> list[Resource]:
        """Every resource whose construct path is `path` or below it."""
        path = path.strip("/")
        return [
            r
            for r in self.resources.values()
            if self.path_of(r) == path or self.path_of(r).startswith(path + "/")
        ]

    # ---- intrinsic functions -------------------------------------------------------------------------

    def target(self, value: Any) -> str | None:
        """The logical id a value points at when it is a `Ref`/`Fn::GetAtt` of a resource (or a Sub/Join
        whose only resource reference is one resource, e.g. an ARN built around `Ref`)."""
        if isinstance(value, dict):
            if "Ref" in value:
                ref = value["Ref"]
                return ref if ref in self.resources else None
            if "Fn::GetAtt" in value:
                att = value["Fn::GetAtt"]
                lid = att[0] if isinstance(att, list) else str(att).split(".", 1)[0]
                return lid if lid in self.resources else None
        refs = self.refs(value)
        return refs[0] if len(refs) == 1 else None

    def refs(self, value: Any) -> list[str]:
        """Every resource logical id referenced anywhere in a value (Ref, GetAtt, ${X} in Sub), in order."""
        found: list[str] = []

        def walk(v: Any) -> None:
            if isinstance(v, dict):
                if "Ref" in v and isinstance(v["Ref"], str):
                    if v["Ref"] in self.resources:
                        found.append(v["Ref"])
                    return
                if "Fn::GetAtt" in v:
                    att = v["Fn::GetAtt"]
                    lid = att[0] if isinstance(att, list) else str(att).split(".", 1)[0]
                    if lid in self.resources:
                        found.append(lid)
                    return
                if "Fn::Sub" in v:
                    sub = v["Fn::Sub"]
                    text, variables = (sub[0], sub[1]) if isinstance(sub, list) else (sub, {})
                    for name in _SUB_VAR.findall(str(text)):
                        base = name.split(".", 1)[0]
                        if base in variables:
                            walk(variables[base])
                        elif base in self.resources:
                            found.append(base)
                    return
                for item in v.values():
                    walk(item)
            elif isinstance(v, list):
                for item in v:
                    walk(item)

        walk(value)
        return list(dict.fromkeys(found))

    def render(self, value: Any, style: str = "cfn") -> str:
        """A value as readable text. `style="cfn"` writes references as `${Id}`/`${Id.Attr}` and pseudo
        parameters as `${AWS::Region}`; `style="nag"` writes them as cdk-nag does in finding ids
        (`<Id>`, `<Id.Attr>`, `<AWS::Partition>`)."""

        def ref(name: str) -> str:
            return f"<{name}>" if style == "nag" else f"${{{name}}}"

        def go(v: Any) -> str:
            if v is None:
                return ""
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, str | int | float):
                return str(v)
            if isinstance(v, list):
                return ", ".join(go(x) for x in v)
            if not isinstance(v, dict):
                return str(v)
            if len(v) != 1:
                return json.dumps(v, sort_keys=True)
            fn, arg = next(iter(v.items()))
            if fn == "Ref":
                return ref(str(arg))
            if fn == "Fn::GetAtt":
                parts = arg if isinstance(arg, list) else str(arg).split(".", 1)
                return ref(".".join(str(p) for p in parts))
            if fn == "Fn::Join" and isinstance(arg, list) and len(arg) == 2:
                delimiter, parts = arg
                if isinstance(parts, list):
                    return str(delimiter).join(go(p) for p in parts)
                return go(parts)
            if fn == "Fn::Sub":
                text, variables = (arg[0], arg[1]) if isinstance(arg, list) else (arg, {})

                def substitute(match: re.Match[str]) -> str:
                    name = match.group(1)
                    if name in variables:
                        return go(variables[name])
                    return ref(name)

                return _SUB_VAR.sub(substitute, str(text))
            if fn == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                return f"if {arg[0]}: {go(arg[1])} else {go(arg[2])}"
            if fn == "Fn::Select" and isinstance(arg, list) and len(arg) == 2:
                index, items = arg
                if isinstance(items, list) and isinstance(index, int | str) and str(index).isdigit():
                    i = int(index)
                    if i < len(items):
                        return go(items[i])
                return f"select({go(index)}, {go(items)})"
            if fn == "Fn::ImportValue":
                return f"import({go(arg)})"
            if fn.startswith("Fn::"):
                return f"{fn[4:].lower()}({go(arg)})"
            return json.dumps(v, sort_keys=True)

        return go(value)

    # ---- metadata ------------------------------------------------------------------------------------

    def iter_metadata(self, key: str) -> Iterator[tuple[Resource, Any]]:
        for resource in self.resources.values():
            if key in resource.metadata:
                yield resource, resource.metadata[key]


def as_list(value: Any) -> list[Any]:
    """Policy fields may be a single value or a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def canonical(value: Any) -> str:
    """A stable text form of a JSON value (to compare values taken from the template)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
