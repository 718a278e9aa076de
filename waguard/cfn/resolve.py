"""Intrinsic resolution against local values.

Resources the local runtime creates (keys, tables, queues, secrets) resolve to what it created
(`Physical`); everything else resolves to a deterministic stand-in (a function name, an API id, an ARN),
so `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub`, ... produce the values the code would see in AWS, with
local names.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

from waguard.cfn.assembly import TemplateError
from waguard.cfn.template import Template

PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"


# ---- physical values -------------------------------------------------------------------------------


@dataclass
class Physical:
    """What `Ref` and `Fn::GetAtt` return for one resource."""

    ref: str
    attrs: dict[str, Any] = field(default_factory=dict)


_NO_VALUE = object()  # AWS::NoValue: the property or list item disappears


def _short_id(seed: str, length: int) -> str:
    digest = hashlib.sha256(seed.encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def physical_name(tpl: Template, logical_id: str, limit: int = 128) -> str:
    """The deterministic name of an unnamed resource (CloudFormation adds a random suffix; we don't)."""
    name = f"{tpl.stack}-{logical_id}"
    if len(name) > limit:
        suffix = _short_id(name, 8)
        name = name[: limit - 9] + "-" + suffix
    return name


class Resolver:
    """Evaluates CloudFormation intrinsic functions against local physical values."""

    def __init__(self, template: Template, physical: dict[str, Physical] | None = None) -> None:
        self.tpl = template
        self.physical: dict[str, Physical] = dict(physical or {})
        self._conditions: dict[str, bool] = {}
        self._resolving: set[str] = set()

    # -- public -------------------------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        out = self._eval(value)
        return None if out is _NO_VALUE else out

    def ref(self, name: str) -> Any:
        pseudo = self._pseudo(name)
        if pseudo is not None:
            return pseudo
        params = self.tpl.raw.get("Parameters", {})
        if name in params:
            if "Default" not in params[name]:
                raise TemplateError(f"parameter {name} has no default")
            return params[name]["Default"]
        return self.phys(name).ref

    def get_att(self, logical_id: str, attr: str) -> Any:
        phys = self.phys(logical_id)
        if attr in phys.attrs:
            return phys.attrs[attr]
        return self._generic_att(logical_id, attr)

    def phys(self, logical_id: str) -> Physical:
        if logical_id in self.physical:
            return self.physical[logical_id]
        if logical_id not in self.tpl.resources:
            raise TemplateError(f"reference to unknown resource or parameter {logical_id!r}")
        if logical_id in self._resolving:
            raise TemplateError(f"circular reference through {logical_id!r}")
        self._resolving.add(logical_id)
        try:
            return self.standin(logical_id)
        finally:
            self._resolving.discard(logical_id)

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            spec = self.tpl.raw.get("Conditions", {}).get(name)
            if spec is None:
                raise TemplateError(f"unknown condition {name!r}")
            self._conditions[name] = bool(self._eval(spec))
        return self._conditions[name]

    # -- evaluation ---------------------------------------------------------------------------------
    def _eval(self, value: Any) -> Any:
        if isinstance(value, list):
            items = [self._eval(v) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return _NO_VALUE if arg == "AWS::NoValue" else self.ref(arg)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            fn = self._FUNCTIONS.get(key)
            if fn is not None:
                return fn(self, arg)
            if key.startswith("Fn::"):
                raise TemplateError(f"unsupported intrinsic function {key}")
        out = {}
        for k, v in value.items():
            r = self._eval(v)
            if r is not _NO_VALUE:
                out[k] = r
        return out

    def _fn_get_att(self, arg: Any) -> Any:
        if isinstance(arg, str):
            logical_id, _, attr = arg.partition(".")
        else:
            logical_id, attr = arg[0], self._eval(arg[1])
        return self.get_att(logical_id, attr)

    def _fn_join(self, arg: Any) -> str:
        delim, items = arg
        return str(delim).join(_text(v) for v in self._eval(items))

    def _fn_select(self, arg: Any) -> Any:
        index, items = self._eval(arg[0]), self._eval(arg[1])
        try:
            return items[int(index)]
        except (IndexError, ValueError, TypeError) as exc:
            raise TemplateError(f"Fn::Select {index} of {items!r}: {exc}") from exc

    def _fn_split(self, arg: Any) -> list[str]:
        delim, text = arg[0], self._eval(arg[1])
        return str(text).split(delim)

    _SUB = re.compile(r"\$\{([^}]*)\}")

    def _fn_sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self._eval(v) for k, v in (arg[1] if len(arg) > 1 else {}).items()}
        else:
            text, variables = arg, {}

        def repl(m: re.Match[str]) -> str:
            name = m.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, _, attr = name.partition(".")
                return _text(self.get_att(logical_id, attr))
            return _text(self.ref(name))

        return self._SUB.sub(repl, text)

    def _fn_if(self, arg: Any) -> Any:
        name, yes, no = arg
        return self._eval(yes if self.condition(name) else no)

    def _fn_equals(self, arg: Any) -> bool:
        a, b = (self._eval(x) for x in arg)
        return bool(_text(a) == _text(b))

    def _fn_not(self, arg: Any) -> bool:
        return not self._eval(arg[0])

    def _fn_and(self, arg: Any) -> bool:
        return all(self._eval(x) for x in arg)

    def _fn_or(self, arg: Any) -> bool:
        return any(self._eval(x) for x in arg)

    def _fn_find_in_map(self, arg: Any) -> Any:
        name, top, second = (self._eval(x) for x in arg[:3])
        try:
            return self.tpl.raw["Mappings"][name][top][second]
        except KeyError as exc:
            raise TemplateError(f"Fn::FindInMap {name}.{top}.{second} not found") from exc

    def _fn_base64(self, arg: Any) -> str:
        return base64.b64encode(_text(self._eval(arg)).encode()).decode()

    def _fn_get_azs(self, arg: Any) -> list[str]:
        region = self._eval(arg) or self.tpl.region
        return [f"{region}{z}" for z in "abc"]

    def _fn_to_json_string(self, arg: Any) -> str:
        return json.dumps(self._eval(arg), separators=(",", ":"))

    def _fn_length(self, arg: Any) -> int:
        return len(self._eval(arg))

    def _fn_import_value(self, arg: Any) -> Any:
        raise TemplateError(f"Fn::ImportValue {arg!r}: cross-stack imports are not available locally")

    _FUNCTIONS: ClassVar[dict[str, Any]] = {
        "Fn::GetAtt": _fn_get_att,
        "Fn::Join": _fn_join,
        "Fn::Select": _fn_select,
        "Fn::Split": _fn_split,
        "Fn::Sub": _fn_sub,
        "Fn::If": _fn_if,
        "Fn::Equals": _fn_equals,
        "Fn::Not": _fn_not,
        "Fn::And": _fn_and,
        "Fn::Or": _fn_or,
        "Fn::FindInMap": _fn_find_in_map,
        "Fn::Base64": _fn_base64,
        "Fn::GetAZs": _fn_get_azs,
        "Fn::ToJsonString": _fn_to_json_string,
        "Fn::Length": _fn_length,
        "Fn::ImportValue": _fn_import_value,
    }

    # -- pseudo parameters and stand-ins ------------------------------------------------------------
    def _pseudo(self, name: str) -> Any:
        tpl = self.tpl
        return {
            "AWS::Region": tpl.region,
            "AWS::AccountId": tpl.account,
            "AWS::Partition": PARTITION,
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": tpl.stack,
            "AWS::StackId": f"arn:aws:cloudformation:{tpl.region}:{tpl.account}:stack/{tpl.stack}/"
            + str(uuid.uuid5(uuid.NAMESPACE_URL, tpl.stack)),
            "AWS::NotificationARNs": [],
        }.get(name)

    def _prop(self, logical_id: str, key: str) -> Any:
        value = self.tpl.props(logical_id).get(key)
        return None if value is None else self.resolve(value)

    def standin(self, lid: str) -> Physical:
        """A deterministic physical value for a resource the local runtime does not create."""
        rtype = self.tpl.resources[lid].type
        region, account = self.tpl.region, self.tpl.account
        named = self._prop
        if rtype == "AWS::Lambda::Function":
            name = named(lid, "FunctionName") or physical_name(self.tpl, lid, 64)
            return Physical(name, {"Arn": f"arn:aws:lambda:{region}:{account}:function:{name}"})
        if rtype == "AWS::Lambda::Alias":
            fn_arn = self._function_arn(named(lid, "FunctionName"))
            return Physical(f"{fn_arn}:{named(lid, 'Name')}")
        if rtype == "AWS::Lambda::Version":
            fn_arn = self._function_arn(named(lid, "FunctionName"))
            return Physical(f"{fn_arn}:1", {"Version": "1"})
        if rtype in ("AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"):
            name = named(lid, "TableName") or physical_name(self.tpl, lid, 255)
            arn = f"arn:aws:dynamodb:{region}:{account}:table/{name}"
            return Physical(name, {"Arn": arn, "StreamArn": f"{arn}/stream/1970-01-01T00:00:00.000"})
        if rtype == "AWS::SQS::Queue":
            name = named(lid, "QueueName") or physical_name(self.tpl, lid, 75)
            if named(lid, "FifoQueue") and not name.endswith(".fifo"):
                name += ".fifo"
            arn = f"arn:aws:sqs:{region}:{account}:{name}"
            url = f"https://sqs.{region}.{URL_SUFFIX}/{account}/{name}"
            return Physical(url, {"Arn": arn, "QueueName": name, "QueueUrl": url})
        if rtype == "AWS::KMS::Key":
            key_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{self.tpl.stack}/{lid}"))
            return Physical(key_id, {"Arn": f"arn:aws:kms:{region}:{account}:key/{key_id}", "KeyId": key_id})
        if rtype == "AWS::KMS::Alias":
            return Physical(named(lid, "AliasName"))
        if rtype == "AWS::SecretsManager::Secret":
            name = named(lid, "Name") or physical_name(self.tpl, lid, 256)
            arn = f"arn:aws:secretsmanager:{region}:{account}:secret:{name}-{_short_id(name, 6)}"
            return Physical(arn, {"Id": arn})
        if rtype == "AWS::ApiGateway::RestApi":
            api_id = _short_id(f"{self.tpl.stack}/{lid}", 10)
            return Physical(api_id, {"RootResourceId": _short_id(f"{api_id}/", 10), "RestApiId": api_id})
        if rtype in (
            "AWS::ApiGateway::Resource",
            "AWS::ApiGateway::Deployment",
            "AWS::ApiGateway::RequestValidator",
        ):
            rid = _short_id(f"{self.tpl.stack}/{lid}", 6)
            return Physical(rid, {"ResourceId": rid, "DeploymentId": rid})
        if rtype == "AWS::ApiGateway::Model":
            return Physical(named(lid, "Name") or lid)
        if rtype == "AWS::ApiGateway::Stage":
            return Physical(named(lid, "StageName") or lid)
        if rtype == "AWS::IAM::Role":
            name = named(lid, "RoleName") or physical_name(self.tpl, lid, 64)
            role_id = "AROA" + _short_id(name, 17).upper()
            return Physical(name, {"Arn": f"arn:aws:iam::{account}:role/{name}", "RoleId": role_id})
        if rtype == "AWS::IAM::ManagedPolicy":
            name = named(lid, "ManagedPolicyName") or physical_name(self.tpl, lid, 128)
            arn = f"arn:aws:iam::{account}:policy/{name}"
            return Physical(arn, {"PolicyArn": arn})
        if rtype == "AWS::Logs::LogGroup":
            name = named(lid, "LogGroupName") or f"/aws/{self.tpl.stack}/{lid}"
            return Physical(name, {"Arn": f"arn:aws:logs:{region}:{account}:log-group:{name}:*"})
        if rtype == "AWS::SNS::Topic":
            name = named(lid, "TopicName") or physical_name(self.tpl, lid, 256)
            arn = f"arn:aws:sns:{region}:{account}:{name}"
            return Physical(arn, {"TopicArn": arn, "TopicName": name})
        if rtype == "AWS::Events::EventBus":
            name = named(lid, "Name") or physical_name(self.tpl, lid, 256)
            return Physical(
                name, {"Arn": f"arn:aws:events:{region}:{account}:event-bus/{name}", "Name": name}
            )
        if rtype == "AWS::Events::Rule":
            name = named(lid, "Name") or physical_name(self.tpl, lid, 64)
            return Physical(name, {"Arn": f"arn:aws:events:{region}:{account}:rule/{name}"})
        if rtype == "AWS::S3::Bucket":
            name = named(lid, "BucketName") or physical_name(self.tpl, lid, 63).lower()
            return Physical(name, {"Arn": f"arn:aws:s3:::{name}", "DomainName": f"{name}.s3.{URL_SUFFIX}"})
        return Physical(physical_name(self.tpl, lid))

    def _function_arn(self, name_or_arn: Any) -> str:
        text = _text(name_or_arn)
        if text.startswith("arn:"):
            return text
        return f"arn:aws:lambda:{self.tpl.region}:{self.tpl.account}:function:{text}"

    def _generic_att(self, lid: str, attr: str) -> str:
        rtype = self.tpl.resources[lid].type if lid in self.tpl.resources else "AWS::Unknown::Thing"
        service = rtype.split("::")[1].lower() if rtype.count("::") >= 2 else "unknown"
        ref = self.phys(lid).ref
        if attr == "Arn" or attr.endswith("Arn"):
            if ref.startswith("arn:"):
                return ref
            return f"arn:aws:{service}:{self.tpl.region}:{self.tpl.account}:{ref}"
        return f"{ref}.{attr}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
