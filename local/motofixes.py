"""Fixes to moto that the embedded AWS endpoint installs (local.awsserver): behaviour kept, cost removed.

TransactWriteItems: moto backs a transaction up by deep-copying every table it touches, once per item
of the transaction, so that it can put the copies back if an item fails. On a table of 100,000 items a
20-item transaction copies two million items: the leaderboard projector, which moves a board's rank
tree in transactions, would take minutes per window on a full table. Here the backup is of the items
the transaction names, and a failed transaction puts exactly those back. Tables with a stream keep
moto's own way (their stream records are rolled back with the table copy).

UpdateItem: moto parses each UpdateExpression twice (once to list the placeholders it uses, once to
apply it) and then deep-copies the parsed tree with `copy.deepcopy`'s generic protocol, which is most
of what an update costs it (profiled under the load test: parsing and copying were 60 % of the
tables' UpdateItem time). The same expression string always parses to the same tree, which moto only
reads (it validates and applies a copy), so the parse is cached per string; and the tree's nodes copy
themselves field by field, as the generic protocol would, without its per-object detour. moto then
validates the copy with ten tree walks, each asking its walker for a fresh map of node types at every
node (through isinstance on an ABC), and two of them re-check the whole subtree at every one of the
expression's nested UpdateExpression nodes: a third of the processor's match write (2.9 ms against 2.0
with it gone, in one process, on the slowed machine of 2026-12-03). Here a walker finds
what processes a node type once, and those two checks run at the root, where a pass means every subtree
passes; a root they refuse takes moto's own walk, so the error is moto's.

Answers: moto turns the result of every request into its body by walking the operation's output shape
in the botocore model, attribute by attribute, which took half of the tables' time under the load
test. For the item reads and writes of DynamoDB and the reads of its streams (FAST_JSON), the result
is already in the wire's shape (AttributeValues as DynamoDB writes them), and the same body comes from
`json.dumps`, with binary values in base64 and times in epoch seconds, as the shape-driven serializer
writes them; any other value takes moto's serializer (tests/unit/test_motofixes.py compares the two).

Names: moto derives each request's method name from its CamelCase action character by character,
and SQS each queue attribute's (7 % of the Kinesis process, which serves the stack's queues too,
profiled under 16 bots), and draws a 52-character request id with 52 calls to `random.choice` (5 to
6 % of either process). The names are
cached per string and the id is drawn with one `choices` from moto's own random source.

Instances: every object of a moto model class (a DynamoDB item, each copy of one, a stream record, a
Kinesis record) is appended to a list on its class when it is made, for moto's dashboard, and never
leaves it. A table item that is overwritten, deleted or copied for an answer stays in memory for the
life of the process: some 8 items per game action, 370,000 objects after one 60-second run of 32 bots,
which every full garbage collection walks (250 ms with every request waiting). Here they are not
tracked, except S3's (moto's S3 closes its objects' files through that list); the dashboard, which
the stack does not serve, lists nothing else.
"""

from __future__ import annotations

import base64
import copy
import functools
import json
import string
import types
from datetime import datetime
from typing import Any

_INSTALLED: list[bool] = []  # once per process
PARSED_EXPRESSIONS = 2048  # distinct UpdateExpressions kept parsed; the stack uses a few dozen
_IMMUTABLE = (str, int, float, bool, bytes, type(None))
# Operations whose results json.dumps writes as moto's serializer does, per boto3 service.
FAST_JSON = {
    "dynamodb": frozenset(
        {
            "GetItem",
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchGetItem",
            "BatchWriteItem",
            "Query",
            "Scan",
            "TransactGetItems",
            "TransactWriteItems",
        }
    ),
    "dynamodbstreams": frozenset({"GetRecords", "GetShardIterator"}),
}
JSON_1_0 = "application/x-amz-json-1.0"
PLAIN_RESULTS = frozenset({"ActionResult", "DynamoResult"})


class _NoTableCopies(types.SimpleNamespace):
    """Stands in for the `copy` module inside moto's DynamoDB backend during one transaction: a table is
    "copied" as itself (the items it holds are backed up one by one instead); anything else is copied."""

    def deepcopy(self, value: Any, memo: Any = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def install() -> None:
    if _INSTALLED:
        return
    import moto.dynamodb.models as backend_module
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType

    original = DynamoDBBackend.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        names = {
            op.get("TableName") for item in transact_items for op in item.values() if isinstance(op, dict)
        }
        tables = {n: self.tables[n] for n in names if n in self.tables}
        if len(transact_items) > 100 or any(t.stream_shard is not None for t in tables.values()):
            return original(self, transact_items)
        backups: list[tuple[Any, Any, Any, Any]] = []
        for item in transact_items:
            op = next(iter(item.values()))
            table = tables.get(op.get("TableName"))
            if table is None:
                continue
            key = op.get("Key") or {
                a: op["Item"][a] for a in (table.hash_key_attr, table.range_key_attr) if a
            }
            if table.hash_key_attr not in key:
                continue  # moto refuses it on its own
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr in key else None
            backups.append((table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key))))
        # moto is untyped at this seam: its module's `copy` is replaced through setattr.
        real = getattr(backend_module, "copy")  # noqa: B009
        setattr(backend_module, "copy", _NoTableCopies())  # noqa: B010
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, old in reversed(backups):
                _restore(table, hash_key, range_key, old)
            raise
        finally:
            setattr(backend_module, "copy", real)  # noqa: B010

    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    _stop_tracking_instances()
    _install_expression_speedups()
    _install_validator_speedups()
    _install_name_speedups()
    _install_fast_json()
    _INSTALLED.append(True)


TRACKED_SERVICES = ("moto.s3.",)  # model instances still listed on their class (module doc)


def _stop_tracking_instances() -> None:
    from moto.core.common_models import BaseModel

    def new(cls: type, *args: Any, **kwargs: Any) -> Any:
        # As moto's BaseModel.__new__, through the rest of the class's bases, without the list.
        instance = super(BaseModel, cls).__new__(cls)  # type: ignore[misc]
        if cls.__module__.startswith(TRACKED_SERVICES):
            cls.instances_tracked.append(instance)  # type: ignore[attr-defined]
        return instance

    # moto is untyped at this seam: its constructor is replaced through setattr.
    setattr(BaseModel, "__new__", staticmethod(new))  # noqa: B010


class _NotWire(TypeError):
    """A value json.dumps cannot write as the wire has it: moto's serializer answers instead."""


def _wire(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        from botocore.utils import parse_to_aware_datetime
        from moto.core.serialize import TimestampSerializer

        return TimestampSerializer._timestamp_unixtimestamp(parse_to_aware_datetime(value))
    raise _NotWire(type(value).__name__)


@functools.cache
def _output_members(service: str, operation: str) -> frozenset[str]:
    from moto.core.utils import get_service_model

    shape = get_service_model(service).operation_model(operation).output_shape
    return frozenset(shape.members) if shape is not None else frozenset()


def fast_body(service: str, operation: str, result: Any) -> str | None:
    """The body of a result of FAST_JSON, or None when it must take moto's serializer. As the
    serializer does, it keeps only what the operation's output declares (moto's results carry more)."""
    if operation not in FAST_JSON.get(service, ()) or not isinstance(result, dict):
        return None
    members = _output_members(service, operation)
    try:
        return json.dumps({k: v for k, v in result.items() if k in members}, default=_wire)
    except _NotWire:
        return None


def _install_fast_json() -> None:
    from moto.core.responses import BaseResponse

    serialized = BaseResponse.serialized

    def fast_serialized(self: Any, action_result: Any) -> Any:
        # Results that the base class executes as they are (PaginatedResult pages its own, and others
        # may write their own answers).
        if type(action_result).__name__ in PLAIN_RESULTS:
            body = fast_body(self.boto3_service_name, self._get_action(), action_result.result)
            if body is not None:
                return 200, {"Content-Type": JSON_1_0, **self.response_headers}, body
        return serialized(self, action_result)

    setattr(BaseResponse, "serialized", fast_serialized)  # noqa: B010


def _install_expression_speedups() -> None:
    from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]  # the module opts out of typing
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

    parse = UpdateExpressionParser.make
    # moto is untyped at these seams: they are replaced through setattr.
    setattr(UpdateExpressionParser, "make", staticmethod(functools.lru_cache(PARSED_EXPRESSIONS)(parse)))  # noqa: B010
    setattr(Node, "__deepcopy__", node_deepcopy)  # noqa: B010


def _install_validator_speedups() -> None:
    from moto.dynamodb.exceptions import MockValidationException
    from moto.dynamodb.parsing.ast_nodes import (  # type: ignore[attr-defined]
        DepthFirstTraverser,
        Node,
        UpdateExpression,
    )
    from moto.dynamodb.parsing.validators import (
        ActionCountValidator,
        OverlappingPathsValidator,
    )

    node_types: dict[
        type, bool
    ] = {}  # which classes are moto's tree nodes (Node is an ABC: isinstance is slow)
    processors: dict[tuple[type, type], Any] = {}  # (traverser class, node class): what processes it, or None
    visits_children: dict[type, Any] = {}  # traverser class: its pre_processing_of_child, if it has one

    def processor(traverser: Any, node_type: type) -> Any:
        key = (type(traverser), node_type)
        if key not in processors:
            mapping = traverser._processing_map()
            found = next((m for kind, m in mapping.items() if issubclass(node_type, kind)), None)
            if found is not None and getattr(found, "__self__", None) is not traverser:
                raise TypeError(f"{key[0].__name__} maps a node to something other than its own method")
            # A function, not the bound method: one kept here would hold the request's traverser.
            processors[key] = found.__func__ if found is not None else None
        return processors[key]

    def traverse_node_recursively(self: Any, node: Any, child_id: int = -1) -> Any:
        node_type = type(node)
        is_node = node_types.get(node_type)
        if is_node is None:
            is_node = node_types[node_type] = issubclass(node_type, Node)
        if not is_node:
            return node
        parent_node = node.parent
        if node.children is not None:
            traverser_type = type(self)
            pre = visits_children.get(traverser_type, False)
            if pre is False:
                own = traverser_type.pre_processing_of_child
                pre = visits_children[traverser_type] = (
                    None if own is DepthFirstTraverser.pre_processing_of_child else own
                )
            for i, child_node in enumerate(node.children):
                if pre is not None:
                    pre(self, node, i)
                self.traverse_node_recursively(child_node, i)
        function = processor(self, node_type)
        if function is not None:
            node = function(self, node)
            node.parent = parent_node
            if parent_node:
                parent_node.children[child_id] = node
        return node

    setattr(DepthFirstTraverser, "traverse_node_recursively", traverse_node_recursively)  # noqa: B010
    for validator, check in (
        (ActionCountValidator, ActionCountValidator.verify_action_counts),
        (OverlappingPathsValidator, OverlappingPathsValidator.check_for_overlapping_paths),
    ):
        checked = _checked_at_the_root(validator.traverse, check, UpdateExpression, MockValidationException)
        setattr(validator, "traverse", checked)  # noqa: B010


REQUEST_ID_CHARACTERS = string.ascii_letters + string.digits  # what moto draws a request id from


def _install_name_speedups() -> None:
    """Two pure functions moto runs on every request, made cheap: the action's method name from its
    CamelCase (moto walks the string character by character; SQS's ReceiveMessage does it for each
    queue attribute, 5 ms a call in the Kinesis process, which serves the stack's queues too), cached
    per name; and the 52-character request id drawn with one `choices` instead of 52 `choice` calls,
    from moto's own random source (which a seed set through moto's API still makes repeatable)."""
    import sys

    from moto.core import utils
    from moto.moto_api._internal import mock_random
    from moto.utilities import aws_headers

    original = utils.camelcase_to_underscores
    cached = functools.lru_cache(maxsize=4096)(original)

    @functools.wraps(original)
    def camelcase_to_underscores(argument: str) -> str:
        try:
            return cached(argument)
        except TypeError:  # not hashable: moto's own function decides
            return original(argument)

    def gen_amzn_requestid_long(headerdict: dict[str, Any] | None = None) -> str:
        request_id = "".join(mock_random.choices(REQUEST_ID_CHARACTERS, k=52))
        if isinstance(headerdict, dict):
            headerdict.update({"x-amzn-requestid": request_id})
        return request_id

    replaced = {
        original: camelcase_to_underscores,
        aws_headers.gen_amzn_requestid_long: gen_amzn_requestid_long,
    }
    # moto's modules import both by name: the ones loaded already are patched here, the ones it loads
    # later (a service's on its first request) import the replacements from their home modules.
    for module in list(sys.modules.values()):
        if not getattr(module, "__name__", "").startswith("moto"):
            continue
        for name in ("camelcase_to_underscores", "gen_amzn_requestid_long"):
            found = getattr(module, name, None)
            if found in replaced:
                setattr(module, name, replaced[found])


def _checked_at_the_root(traverse: Any, check: Any, root_type: type, refusal: type[Exception]) -> Any:
    """moto runs these two checks at every UpdateExpression node of the tree, and each one walks the
    whole subtree below it: quadratic in the number of actions. What a subtree holds, the root holds
    too, so a root that passes means every subtree passes; a root that fails takes moto's own walk, so
    the error is the one moto would raise."""

    def checked(self: Any, node: Any) -> Any:
        if isinstance(node, root_type):
            try:
                check(self, node)
            except refusal:
                pass
            else:
                return node
        return traverse(self, node)

    return checked


def node_deepcopy(node: Any, memo: dict[int, Any]) -> Any:
    """What `copy.deepcopy` makes of an expression tree's node (a new object of its class, its fields
    copied deeply, parents and children through the memo), without the pickle protocol's detour."""
    found = memo.get(id(node))
    if found is not None:
        return found
    new = node.__class__.__new__(node.__class__)
    memo[id(node)] = new
    fields = new.__dict__
    for name, value in node.__dict__.items():
        if isinstance(value, _IMMUTABLE):
            fields[name] = value
        elif type(value) is list:
            fields[name] = [v if isinstance(v, _IMMUTABLE) else copy.deepcopy(v, memo) for v in value]
        else:
            fields[name] = copy.deepcopy(value, memo)
    return new


def _restore(table: Any, hash_key: Any, range_key: Any, old: Any) -> None:
    """Puts an item back as it was before the transaction (absent: removed), writing no stream record."""
    if range_key is None:
        if old is None:
            table.items.pop(hash_key, None)
        else:
            table.items[hash_key] = old
        return
    if old is None:
        table.items.get(hash_key, {}).pop(range_key, None)
    else:
        table.items[hash_key][range_key] = old
