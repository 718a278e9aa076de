"""AWS API calls seen through botocore events: counting, DynamoDB items read, and fault injection.

Installed the way moto installs itself: handlers are appended to `botocore.handlers.BUILTIN_HANDLERS`, so
every botocore session created afterwards (boto3's default session and the sessions Powertools creates)
carries them on every client. `reset_clients()` drops the clients waguard caches so that they are
re-created with the handlers; a `Meter` does that when it is entered.

- `before-parameter-build`: remembers the call's API parameters (for fault predicates and inspection);
- `before-call`: counts the call and, when a fault matches, answers for AWS: an error response (parsed
  into the service's modeled exception, exactly as a real error answer) or a raised connection error or
  timeout. botocore's retry handler runs inside the skipped request, so an injected fault is a fault that
  outlasted the SDK's own retries;
- `after-call`: adds the DynamoDB items the call read (Query/Scan `ScannedCount`, GetItem hits,
  BatchGetItem responses).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_PARAMS_KEY = "waguard_meter_params"
_installed = False
_active: Meter | None = None
_local = threading.local()

WRITE_OPERATIONS = {
    "dynamodb": frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}),
    "sqs": frozenset({"SendMessage", "SendMessageBatch"}),
}


def install() -> None:
    """Register the handlers for every session created from now on (idempotent)."""
    global _installed  # noqa: PLW0603
    if _installed:
        return
    import boto3
    from botocore import handlers

    handlers.BUILTIN_HANDLERS.extend(
        [
            ("before-parameter-build", _remember_params),
            ("before-call", _before_call),
            ("after-call", _after_call),
        ]
    )
    boto3.DEFAULT_SESSION = None
    _installed = True


_session: Any = None  # the default session with the handlers, kept: a new one parses every model again


def _metered_session() -> Any:
    global _session  # noqa: PLW0603 - one per process, created after install()
    import boto3

    if _session is None:
        _session = boto3.session.Session()
    return _session


def reset_clients() -> None:
    """Forget every AWS client waguard's runtime caches (they are re-created, with the handlers, on use)."""
    import boto3

    boto3.DEFAULT_SESSION = _metered_session() if _installed else None
    from shared import secrets
    from store import crypto, outbound, tables

    tables.reset()
    crypto.reset()
    secrets.reset()
    for name in dir(outbound):
        fn = getattr(outbound, name)
        if callable(getattr(fn, "cache_clear", None)):
            fn.cache_clear()
    try:
        from aws_lambda_powertools.utilities import parameters
        from aws_lambda_powertools.utilities.parameters import base

        parameters.clear_caches()
        base.DEFAULT_PROVIDERS.clear()
    except ImportError:  # pragma: no cover
        pass
    for module in ("handlers.webhook", "domain.idempotency"):
        try:
            mod = __import__(module, fromlist=["reset"])
        except ImportError:
            continue
        reset = getattr(mod, "reset", None)
        if callable(reset):
            reset()


def transact_ops(params: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The operations of a TransactWriteItems call as (kind, untyped params): ("Put", {...}), ..."""
    return [
        (kind, untyped(op)) for entry in params.get("TransactItems", []) or [] for kind, op in entry.items()
    ]


def untyped(params: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB call parameters with `Item`, `Key` and `ExpressionAttributeValues` as plain Python values
    (by `before-call` the resource layer has serialized them to `{"S": ...}` form)."""
    from boto3.dynamodb.types import TypeDeserializer

    des = TypeDeserializer()
    out = dict(params)
    for name in ("Item", "Key", "ExpressionAttributeValues"):
        value = params.get(name)
        if isinstance(value, dict):
            try:
                out[name] = {k: des.deserialize(v) if isinstance(v, dict) else v for k, v in value.items()}
            except (TypeError, ValueError):
                out[name] = value
    return out


class _RawBody:
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield b""


@dataclass
class Fault:
    """One injected AWS fault: which calls it hits, what they answer, how many times."""

    service: str  # botocore service name: dynamodb, sqs, kms, secretsmanager
    operation: str | None = None  # None: every operation of the service
    code: str = "ThrottlingException"
    status: int = 400
    kind: str = "error"  # error (an AWS error answer), connection (no answer), timeout (read timeout), answer
    answer: dict[str, Any] | None = (
        None  # kind "answer": this parsed 200 response (e.g. a partial batch failure)
    )
    times: int | None = None  # None: until removed
    when: Callable[[dict[str, Any]], bool] | None = None  # predicate on the call's API parameters
    hits: int = 0

    def matches(self, service: str, operation: str, params: dict[str, Any]) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if service != self.service or (self.operation is not None and operation != self.operation):
            return False
        return self.when is None or bool(self.when(params))

    def fire(self, url: str) -> tuple[Any, dict[str, Any]]:
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

        self.hits += 1
        if self.kind == "connection":
            raise EndpointConnectionError(endpoint_url=url)
        if self.kind == "timeout":
            raise ReadTimeoutError(endpoint_url=url)
        if self.kind == "answer":
            parsed = {
                **(self.answer or {}),
                "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": "injected"},
            }
            return AWSResponse(url, 200, {}, _RawBody()), parsed
        parsed = {
            "Error": {"Code": self.code, "Message": f"injected fault {self.code}"},
            "ResponseMetadata": {"HTTPStatusCode": self.status, "RequestId": "injected-fault"},
        }
        return AWSResponse(url, self.status, {}, _RawBody()), parsed


def throttle(service: str, operation: str | None = None, **kw: Any) -> Fault:
    code = {
        "dynamodb": "ProvisionedThroughputExceededException",
        "sqs": "RequestThrottled",
        "kms": "ThrottlingException",
        "secretsmanager": "ThrottlingException",
    }.get(service, "ThrottlingException")
    return Fault(service, operation, code=code, status=400, **kw)


def unavailable(service: str, operation: str | None = None, **kw: Any) -> Fault:
    """The service answers 5xx (InternalServerError and the like)."""
    code = {
        "dynamodb": "InternalServerError",
        "sqs": "InternalError",
        "kms": "KMSInternalException",
        "secretsmanager": "InternalServiceError",
    }.get(service, "InternalFailure")
    return Fault(service, operation, code=code, status=500, **kw)


def unreachable(service: str, operation: str | None = None, **kw: Any) -> Fault:
    """No answer at all (connection refused / DNS / network)."""
    return Fault(service, operation, kind="connection", **kw)


@dataclass
class Meter:
    """Counts AWS API calls by (service, operation) while active; injects the faults it holds."""

    keep_params: bool = False
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)
    items_read: int = 0
    faults: list[Fault] = field(default_factory=list)
    log: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- activation --------------------------------------------------------------------------------
    def __enter__(self) -> Meter:
        global _active  # noqa: PLW0603
        install()
        reset_clients()
        _active = self
        return self

    def __exit__(self, *exc: Any) -> None:
        global _active  # noqa: PLW0603
        _active = None

    @staticmethod
    @contextmanager
    def suspended() -> Iterator[None]:
        """Calls made inside are neither counted nor faulted (harness plumbing on this thread)."""
        before = getattr(_local, "suspended", False)
        _local.suspended = True
        try:
            yield
        finally:
            _local.suspended = before

    # ---- faults ------------------------------------------------------------------------------------
    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self.faults.append(fault)
        return fault

    def heal(self) -> None:
        with self._lock:
            self.faults.clear()

    # ---- figures -----------------------------------------------------------------------------------
    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.items_read = 0
            self.log.clear()

    def total(self, service: str | None = None) -> int:
        return sum(n for (s, _), n in self.calls.items() if service is None or s == service)

    def count(self, service: str, operation: str) -> int:
        return self.calls[(service, operation)]

    def writes(self) -> int:
        return sum(n for (s, op), n in self.calls.items() if op in WRITE_OPERATIONS.get(s, ()))

    def by_operation(self) -> dict[str, int]:
        return {f"{s}.{op}": n for (s, op), n in sorted(self.calls.items())}

    # ---- event plumbing ----------------------------------------------------------------------------
    def _on_call(self, service: str, operation: str, params: dict[str, Any], url: str) -> Any:
        with self._lock:
            self.calls[(service, operation)] += 1
            if self.keep_params:
                self.log.append((service, operation, params))
            fault = next((f for f in self.faults if f.matches(service, operation, params)), None)
        return fault.fire(url) if fault is not None else None

    def _on_result(self, service: str, operation: str, parsed: dict[str, Any]) -> None:
        if service != "dynamodb" or not isinstance(parsed, dict):
            return
        if operation in ("Query", "Scan"):
            read = int(parsed.get("ScannedCount", parsed.get("Count", 0)) or 0)
        elif operation == "GetItem":
            read = 1 if parsed.get("Item") else 0
        elif operation == "BatchGetItem":
            read = sum(len(v) for v in (parsed.get("Responses") or {}).values())
        else:
            return
        with self._lock:
            self.items_read += read


def _meter() -> Meter | None:
    if _active is None or getattr(_local, "suspended", False):
        return None
    return _active


def _remember_params(params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
    if context is not None:
        context[_PARAMS_KEY] = params


def _before_call(model: Any, params: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> Any:
    meter = _meter()
    if meter is None:
        return None
    api_params = (context or {}).get(_PARAMS_KEY) or {}
    url = str(params.get("url", "")) if isinstance(params, dict) else ""
    return meter._on_call(model.service_model.service_name, model.name, api_params, url)


def _after_call(model: Any, parsed: Any = None, **_: Any) -> None:
    meter = _meter()
    if meter is not None:
        meter._on_result(model.service_model.service_name, model.name, parsed)
