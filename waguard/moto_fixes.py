"""Corrections to moto's in-process DynamoDB and S3, installed once per process (`install()`) by the local
runtime's moto server (`waguard serve`, `waguard invoke`), the tests' `aws_stack` and the benchmarks.

- Requests one at a time: DynamoDB applies every item operation atomically; moto takes no lock, so under
  a threaded server (the API, the pollers and the sender's batch at once) a conditional update could
  interleave with another write, and a read could see an update half applied or fail with "dictionary
  changed size during iteration" while its response is built. The whole DynamoDB request, from parsing
  to the serialized response, runs under one lock (`DynamoHandler.call_action`).
- Item-level rollback: moto backs up every table a transaction touches with `copy.deepcopy` (to roll back a
  cancelled transaction), so each TransactWriteItems costs a copy of whole tables: quadratic in the
  table's size, and gigabytes for the benchmarks' 1e5 items. Here the transaction keeps moto's own
  semantics (each operation checked and applied in order; cancelled as a whole) but backs up only the
  items it names, and a cancelled one restores exactly those.
- Bucket policies without conditions: moto evaluates a bucket policy ignoring its statements'
  conditions, so the stack's TLS-only Deny would refuse every object request over the local HTTP
  endpoint. Statements with a condition are left out of moto's decision (`FakeBucket.get_permission`);
  the policy itself is stored whole, as the audit reads it back.

Two costs, no change of behaviour (each a third or more of a busy local stack's or test's moto time):
- moto's EventBridge parses the same JSONPath input paths for every event it delivers to a target, and
  jsonpath_ng builds a whole PLY parser for each parse: parsed expressions are kept (`jsonpath_ng.ext.parse`).
- moto lists a response class's methods with `inspect.getmembers` on every request: kept per class.
- moto's Query reads `Table.all_items()`, which sorts every item of the table, for every Query: quadratic
  in a table's size (a soak, a long-running local stack, the pacing benchmark's tens of thousands of items).
  A Query by the table's partition key reads that partition only, and of it the items its sort key
  condition keeps, sorted (moto otherwise sorts a whole partition and sizes each item up to the page's
  limit: with a campaign's 20,000 recipients and entries in one partition, 40% of the pacing bench's
  time by its end). A Query of an index reads the items once, unsorted, keeping those its key conditions
  name (moto filters and sorts what it keeps afterwards either way, by every key attribute, so the results
  and their order are the same).
- moto's generic JSON response serializer looks up each of a DynamoDB AttributeValue's ten members through
  its alias pickers for every attribute of every item returned: about a third of a DynamoDB-heavy test's
  time. An AttributeValue (a dict in DynamoDB's wire form already) is written directly, with the same
  conversions the generic path applies (strings as `str`, binaries base64, maps and lists recursively);
  anything else, or an AttributeValue holding a key the model does not know, takes the generic path.
- moto's SQS asks the clock through datetime arithmetic (about 12 µs a call) for each message's
  visibility and delay, and builds every queue attribute, counting the messages each way, on every
  SendMessage (to read whether the queue deduplicates by content): a queue holding a soak's messages, or
  the events of a 10,000-recipient campaign, spends most of its time there. The clock is read once per
  question from `time.time()` (the same clock, in the same unit), attribute names are converted once
  each, and while a message is sent a queue's attributes are that rule alone; the answers do not change.
- moto's server finds the backend of a request by listing its own package directory (a `listdir` and an
  `isdir` per service) for every request whose host is not a service name: a tenth of a local stack's
  moto time. The list is read once (the installed package does not change while the process runs).
- moto parses each UpdateExpression again for every update (its validator works on a deep copy of the
  parsed tree, never the tree itself): a parsed expression is kept per expression string. And its
  validators' tree walk rebuilt each processor's table of node types for every node it visited: the walk
  here builds it once per walk and visits the same nodes in the same order.
"""

from __future__ import annotations

import copy
import functools
import threading
import time
from decimal import Decimal
from typing import Any

_LOCK = threading.RLock()


def _serialized(real: Any) -> Any:
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return real(self, *args, **kwargs)

    call.__wrapped__ = real  # type: ignore[attr-defined]
    return call


class _TablesAsThey:
    """`copy` for moto's DynamoDB module: a Table is "copied" as itself (the item snapshots of
    `_with_item_rollback` stand in for moto's table backups); everything else as `copy` does."""

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _with_item_rollback(real: Any) -> Any:
    from moto.core.exceptions import JsonRESTError

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        snapshots = []
        for entry in transact_items:
            try:
                op_type, op = next(iter(entry.items()))
                table = self.get_table(op["TableName"])
                hash_key, range_key = self.get_keys_value(
                    table, op["Item"] if op_type == "Put" else op["Key"]
                )
            except (JsonRESTError, LookupError, TypeError, AttributeError, StopIteration):
                continue  # an invalid operation: moto's own method refuses it below
            old = table.get_item(hash_key, range_key)
            snapshots.append((table, hash_key, range_key, copy.deepcopy(old)))
        try:
            return real(self, transact_items)
        except Exception:
            for table, hash_key, range_key, old in reversed(snapshots):
                if old is None:
                    table.delete_item(hash_key, range_key)
                elif range_key is not None:
                    table.items[hash_key][range_key] = old
                else:
                    table.items[hash_key] = old
            raise

    transact_write_items.__wrapped__ = real  # type: ignore[attr-defined]
    return transact_write_items


def _unconditional_bucket_policy(real: Any) -> Any:
    """moto evaluates a bucket policy's statements without their conditions, so the stack's TLS-only Deny
    (`aws:SecureTransport` false) would deny every object request; locally only the statements without a
    condition are evaluated (the policy is kept whole: the audit reads it back)."""
    import json

    def get_permission(self: Any, action: str, resource: str) -> Any:
        from moto.iam.access_control import IAMPolicy, PermissionResult

        if self.policy is None:
            return PermissionResult.NEUTRAL
        document = json.loads(self.policy.decode())
        items = document.get("Statement") or []
        kept = [st for st in ([items] if isinstance(items, dict) else items) if not st.get("Condition")]
        if not kept:
            return PermissionResult.NEUTRAL
        return IAMPolicy(json.dumps({**document, "Statement": kept})).is_action_permitted(action, resource)

    get_permission.__wrapped__ = real  # type: ignore[attr-defined]
    return get_permission


def _kept_per_argument(real: Any) -> Any:
    """`real` once per (hashable) argument list; its result is treated as read-only by its callers."""
    import functools

    return functools.lru_cache(maxsize=512)(real)


def _method_names_per_class(real: Any) -> Any:
    kept = _kept_per_argument(lambda clazz: tuple(real(clazz)))

    def method_names_from_class(clazz: object) -> list[str]:
        return list(kept(clazz))

    method_names_from_class.__wrapped__ = real  # type: ignore[attr-defined]
    return method_names_from_class


_STRINGS = frozenset({"S", "N"})
_STRING_LISTS = frozenset({"SS", "NS"})
_AS_IS = frozenset({"BOOL", "NULL"})


def _attribute_value(serializer: Any, value: dict[str, Any]) -> dict[str, Any] | None:
    """An AttributeValue as moto's JSON serializer writes it, or None when it is not one this knows."""
    out: dict[str, Any] = {}
    for name, member in value.items():
        if member is None:
            continue
        if name in _STRINGS:
            out[name] = member if member in ("", {}, []) or type(member) is str else str(member)
        elif name in _AS_IS:
            out[name] = member
        elif name in _STRING_LISTS:
            out[name] = [str(x) for x in member]
        elif name == "B":
            out[name] = serializer._base64(member)
        elif name == "BS":
            out[name] = [serializer._base64(x) for x in member]
        elif name == "M" and isinstance(member, dict):
            inner: dict[str, Any] = {}
            for key, nested in member.items():
                done = _attribute_value(serializer, nested) if type(nested) is dict else None
                if done is None:
                    return None
                inner[key] = done
            out[name] = inner
        elif name == "L" and isinstance(member, list):
            items = [_attribute_value(serializer, x) if type(x) is dict else None for x in member]
            if any(x is None for x in items):
                return None
            out[name] = items
        else:
            return None
    return out


def _attribute_values_directly(real: Any) -> Any:
    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and type(value) is dict:
            done = _attribute_value(self, value)
            if done is not None:
                self._default_serialize(serialized, done, shape, key)
                return
        real(self, serialized, value, shape, key)

    serialize_structure.__wrapped__ = real  # type: ignore[attr-defined]
    return serialize_structure


def _partition_queries(table_class: Any) -> None:
    """`Table.query` reading the partition it names (or, for an index, the items its key conditions name)
    instead of every item, sorted; see the module doc."""
    hint = threading.local()
    real_query, real_all_items = table_class.query, table_class.all_items

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index = kwargs.get("index_name") or (args[6] if len(args) > 6 else None)
        conditions = kwargs.get("hash_key_conditions")
        if index:
            hint.value = ("index", conditions) if conditions else None
        else:
            comparison = args[0] if args else kwargs.get("range_comparison")
            objs = args[1] if len(args) > 1 else kwargs.get("range_objs")
            hint.value = ("key", hash_key, comparison, objs)
        try:
            return real_query(self, hash_key, *args, **kwargs)
        finally:
            hint.value = None

    def all_items(self: Any) -> list[Any]:
        wanted = getattr(hint, "value", None)
        if wanted is None or not self.range_key_attr:
            return real_all_items(self)
        if wanted[0] == "key":
            return _in_range(self.items.get(wanted[1]), wanted[2], wanted[3])
        return [
            item
            for partition in self.items.values()
            for item in partition.values()
            if all(_equal(item.attrs.get(name), value) for name, value in wanted[1])
        ]

    query.__wrapped__ = real_query  # type: ignore[attr-defined]
    all_items.__wrapped__ = real_all_items  # type: ignore[attr-defined]
    table_class.query, table_class.all_items = query, all_items


def _in_range(partition: dict[Any, Any] | None, comparison: str | None, objs: Any) -> list[Any]:
    """A partition's items its sort key condition keeps (by moto's own comparison, which moto applies
    again), with the nearest item on either side of them: moto ends a page with a LastEvaluatedKey when any
    item follows the page's last, kept or not, so its pages stay the same. In sort key order (moto sorts
    again: sorted already, that costs one comparison an item)."""
    if not partition:
        return []
    items = list(partition.values())
    if comparison:
        from moto.dynamodb.comparisons import get_comparison_func

        test, values = get_comparison_func(comparison), [obj.cast_value for obj in objs or ()]
        keyed = [(_sort_value(item.range_key), item) for item in items]
        kept = [pair for pair in keyed if test(pair[0], *values)]
        if kept:  # a key condition keeps one contiguous run of sort keys
            low, high = min(k for k, _ in kept), max(k for k, _ in kept)
            below = [pair for pair in keyed if pair[0] < low]
            above = [pair for pair in keyed if pair[0] > high]
            kept += [max(below, key=_first)] if below else []
            kept += [min(above, key=_first)] if above else []
        items = [item for _, item in kept]
    items.sort(key=lambda item: item.range_key)
    return items


def _sort_value(key: Any) -> Any:
    """A sort key's `cast_value` (a sort key is a string, a number or a binary), without its type tests."""
    return Decimal(key.value) if key.type == "N" else key.value


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _equal(held: Any, wanted: Any) -> bool:
    return held is not None and bool(held == wanted)


def _clock_in_millis(real: Any) -> Any:
    """`unix_time_millis` for moto's SQS: now from `time.time()` when no time is given, else moto's own."""

    def millis(dt: Any = None) -> float:
        return time.time() * 1000.0 if dt is None else float(real(dt))

    millis.__wrapped__ = real  # type: ignore[attr-defined]
    return millis


def _update_expressions_parsed_once(parser_class: Any) -> None:
    """`UpdateExpressionParser.make` keeping each parsed expression (a failed parse raises each time)."""
    real = parser_class.make.__func__
    kept = functools.lru_cache(maxsize=1024)(real)
    parser_class.make = classmethod(kept)  # type: ignore[arg-type]
    kept.__wrapped__ = real


def _walk_with_one_table(traverser_class: Any) -> None:
    """`DepthFirstTraverser.traverse`: moto's depth-first, bottom-up walk, with the processor's table of
    node types built once per walk instead of twice per node visited, and each node type's answers (a
    Node? which processor?) found once per type: moto's node classes are ABCs, whose `isinstance` is slow,
    and none is registered as a virtual subclass, so the type alone decides."""
    from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]

    real = traverser_class.traverse
    is_node: dict[type, bool] = {}

    def traverse(self: Any, root: Any) -> Any:
        table = tuple(self._processing_map().items())
        processors: dict[type, Any] = {}
        before_child = self.pre_processing_of_child

        def processor(kind: type) -> Any:
            if kind not in processors:
                processors[kind] = next((p for k, p in table if issubclass(kind, k)), None)
            return processors[kind]

        def visit(node: Any, child_id: int = -1) -> Any:
            kind = type(node)
            if kind not in is_node:
                is_node[kind] = issubclass(kind, Node)
            if is_node[kind]:
                parent = node.parent
                if node.children is not None:
                    for i, child in enumerate(node.children):
                        before_child(node, i)
                        visit(child, i)
                process = processor(kind)
                if process is not None:
                    node = process(node)
                    node.parent = parent
                    if parent:
                        parent.children[child_id] = node
            return node

        return visit(root)

    traverse.__wrapped__ = real  # type: ignore[attr-defined]
    traverser_class.traverse = traverse


def _modules_listed_once(backends: Any) -> None:
    """`moto.backends.list_of_moto_modules` reading the package directory once."""
    real = backends.list_of_moto_modules
    listed = functools.cache(lambda: tuple(real()))

    def modules() -> Any:
        return iter(listed())

    modules.__wrapped__ = real  # type: ignore[attr-defined]
    backends.list_of_moto_modules = modules


def _sqs_clock_and_names() -> None:
    from moto.sqs import models as sqs

    _dedup_rule_only(sqs.SQSBackend, sqs.Queue)

    sqs.unix_time_millis = _clock_in_millis(sqs.unix_time_millis)  # type: ignore[assignment]
    real_names = sqs.camelcase_to_underscores
    names = functools.lru_cache(maxsize=512)(real_names)
    names.__wrapped__ = real_names  # type: ignore[attr-defined]
    sqs.camelcase_to_underscores = names  # type: ignore[assignment]


def _dedup_rule_only(backend_class: Any, queue_class: Any) -> None:
    """While moto sends a message, `Queue.attributes` answers the one attribute its message path reads
    (`ContentBasedDeduplication`, as the whole would give it) instead of counting every message of the
    queue three ways for the `ApproximateNumberOf*` attributes it builds first."""
    real_attributes = queue_class.attributes
    sending = threading.local()

    def attributes(self: Any) -> dict[str, Any]:
        if not getattr(sending, "on", False):
            return real_attributes.fget(self)  # type: ignore[no-any-return]
        if not self.fifo_queue:  # a standard queue has no FIFO attribute at all
            return {}
        value = self.content_based_deduplication
        return {"ContentBasedDeduplication": str(value).lower() if isinstance(value, bool) else value}

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        outer = getattr(sending, "on", False)
        sending.on = True
        try:
            return real_send(self, *args, **kwargs)
        finally:
            sending.on = outer

    real_send = backend_class.send_message
    send_message.__wrapped__ = real_send  # type: ignore[attr-defined]
    attributes.__wrapped__ = real_attributes  # type: ignore[attr-defined]
    queue_class.attributes = property(attributes)
    backend_class.send_message = send_message


def install() -> None:
    """The corrections, for the rest of the process. Idempotent."""
    global _installed  # noqa: PLW0603
    if _installed:
        return
    from moto.dynamodb import models
    from moto.dynamodb.responses import DynamoHandler

    DynamoHandler.call_action = _serialized(DynamoHandler.call_action)  # type: ignore[method-assign]
    models.copy = _TablesAsThey()  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = _with_item_rollback(  # type: ignore[method-assign]
        models.DynamoDBBackend.transact_write_items
    )
    from moto.s3.models import FakeBucket

    FakeBucket.get_permission = _unconditional_bucket_policy(FakeBucket.get_permission)  # type: ignore[method-assign]
    import jsonpath_ng.ext
    from moto.core import responses

    jsonpath_ng.ext.parse = _kept_per_argument(jsonpath_ng.ext.parse)  # type: ignore[assignment]
    responses.method_names_from_class = _method_names_per_class(responses.method_names_from_class)
    from moto.dynamodb.models.table import Table

    _partition_queries(Table)
    from moto.core.serialize import BaseJSONSerializer

    BaseJSONSerializer._serialize_type_structure = _attribute_values_directly(  # type: ignore[method-assign]
        BaseJSONSerializer._serialize_type_structure
    )
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    _update_expressions_parsed_once(UpdateExpressionParser)
    _walk_with_one_table(DepthFirstTraverser)
    _sqs_clock_and_names()
    from moto import backends

    _modules_listed_once(backends)
    _installed = True


_installed = False
