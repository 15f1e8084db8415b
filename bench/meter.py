"""The embedded AWS endpoint (local.awsserver), but answering ReturnConsumedCapacity with what DynamoDB
would bill.

Stock moto answers ReturnConsumedCapacity with constants (0.5 or 1 unit, whatever the item), so the
capacity the benchmark counts would be fiction. This server computes it from the items it holds, with
DynamoDB's published rules for on-demand request units:

- a write (PutItem, UpdateItem, DeleteItem, each item of BatchWriteItem) costs ceil(size / 1 KB) write
  units, minimum 1, where size is the larger of the item before and after; plus, for every global
  secondary index the write touches, ceil(index entry / 1 KB) for an entry added, removed or changed,
  and twice (delete + put) when the index key changes; each item of a TransactWriteItems twice that;
- a read costs ceil(size / 4 KB) read units, minimum 1, halved when eventually consistent: per item for
  GetItem and BatchGetItem, and over the sum of every item evaluated (before any filter; the index
  entries for an index) for Query and Scan.

A request whose condition fails is billed for the item it read (DynamoDB bills it; the response carries
no ConsumedCapacity, so the worker's counter prices it at 1 unit, see bench/cost.py).

Item sizes are moto's (attribute names plus values, numbers by their digits): close to DynamoDB's, not
exact. Run as `python -m bench.meter -H 127.0.0.1 -p PORT`.
"""

from __future__ import annotations

import math
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

WRITE_UNIT = 1024
READ_UNIT = 4096


def write_units(size: int) -> int:
    return max(1, math.ceil(size / WRITE_UNIT))


def read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / READ_UNIT))
    return float(units) if consistent else units / 2


def index_write_units(old: tuple[Any, int] | None, new: tuple[Any, int] | None) -> int:
    """Units one index entry costs, given (key, size) of the entry before and after (None: absent).
    A same-key entry whose size or content changed is passed as new with the old key; an unchanged one
    should not be passed at all."""
    if old is None and new is None:
        return 0
    if old is None:
        assert new is not None
        return write_units(new[1])
    if new is None:
        return write_units(old[1])
    if old[0] != new[0]:
        return write_units(old[1]) + write_units(new[1])
    return write_units(new[1])


def query_units(sizes: Iterable[int], consistent: bool) -> float:
    return read_units(sum(sizes), consistent)


# --- the moto patch ---------------------------------------------------------------------------------

_stash = threading.local()


def _entry(index: Any, item: Any) -> tuple[Any, int, Any] | None:
    """(key, size, content) of an item's entry in a secondary index, or None when it has none."""
    if not all(a in item.attrs for a in index.schema_key_attrs):
        return None
    projected = index.project(item)
    key = tuple(str(item.attrs[a].value) for a in index.schema_key_attrs)
    return key, projected.size(), projected.to_json()


Image = tuple[int, list[tuple[Any, int, Any] | None]]


def _image(table: Any, key: dict[str, Any]) -> Image | None:
    """What a write is billed on: the item's size and its entry in each global secondary index."""
    item = _get(table, key)
    if item is None:
        return None
    return item.size(), [_entry(index, item) for index in table.global_indexes]


def _write_cost(table: Any, old: Image | None, new: Image | None) -> int:
    units = write_units(max(old[0] if old else 0, new[0] if new else 0))
    for i in range(len(table.global_indexes)):
        before = old[1][i] if old else None
        after = new[1][i] if new else None
        if before is not None and after is not None and before == after:
            continue
        units += index_write_units(before[:2] if before else None, after[:2] if after else None)
    return units


def _get(table: Any, key: dict[str, Any]) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    hash_key = DynamoType(key[table.hash_key_attr])
    range_key = DynamoType(key[table.range_key_attr]) if table.range_key_attr else None
    return table.get_item(hash_key, range_key)


def _key_of(table: Any, item: dict[str, Any]) -> dict[str, Any]:
    names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
    return {n: item[n] for n in names}


def _report(handler: Any, result: Any, consumed: dict[str, float], as_list: bool) -> Any:
    if handler.body.get("ReturnConsumedCapacity", "NONE") == "NONE":
        return result
    rows = [{"TableName": t, "CapacityUnits": u} for t, u in consumed.items()]
    body = result.result
    if isinstance(body, dict):
        body["ConsumedCapacity"] = rows if as_list else rows[0]
    return result


def install() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    def single_write(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def action(self: Any) -> Any:
            name = self.body["TableName"]
            table = self.dynamodb_backend.get_table(name)
            key = self.body.get("Key") or _key_of(table, self.body["Item"])
            old = _image(table, key)
            result = original(self)
            return _report(self, result, {name: _write_cost(table, old, _image(table, key))}, False)

        return action

    def batch_write(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def action(self: Any) -> Any:
            before = []
            for name, requests in self.body["RequestItems"].items():
                table = self.dynamodb_backend.get_table(name)
                for r in requests:
                    key = (
                        r["DeleteRequest"]["Key"]
                        if "DeleteRequest" in r
                        else _key_of(table, r["PutRequest"]["Item"])
                    )
                    before.append((name, table, key, _image(table, key)))
            result = original(self)
            consumed: dict[str, float] = {}
            for name, table, key, old in before:
                consumed[name] = consumed.get(name, 0) + _write_cost(table, old, _image(table, key))
            return _report(self, result, consumed, True)

        return action

    def transact_write(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        # Transactional writes are billed twice a plain write's units, item by item.
        def action(self: Any) -> Any:
            before = []
            for entry in self.body["TransactItems"]:
                op = next(iter(entry.values()))
                table = self.dynamodb_backend.get_table(op["TableName"])
                key = op.get("Key") or _key_of(table, op["Item"])
                before.append((op["TableName"], table, key, _image(table, key)))
            result = original(self)
            consumed: dict[str, float] = {}
            for name, table, key, old in before:
                units = 2 * _write_cost(table, old, _image(table, key))
                consumed[name] = consumed.get(name, 0) + units
            return _report(self, result, consumed, True)

        return action

    def get_item(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def action(self: Any) -> Any:
            name = self.body["TableName"]
            table = self.dynamodb_backend.get_table(name)
            item = _get(table, self.body["Key"])
            result = original(self)
            units = read_units(item.size() if item else 0, bool(self.body.get("ConsistentRead")))
            return _report(self, result, {name: units}, False)

        return action

    def batch_get(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def action(self: Any) -> Any:
            consumed: dict[str, float] = {}
            for name, request in self.body["RequestItems"].items():
                table = self.dynamodb_backend.get_table(name)
                for key in request["Keys"]:
                    item = _get(table, key)
                    units = read_units(item.size() if item else 0, bool(request.get("ConsistentRead")))
                    consumed[name] = consumed.get(name, 0) + units
            return _report(self, original(self), consumed, True)

        return action

    def read_many(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def action(self: Any) -> Any:
            _stash.read = None
            result = original(self)
            name = self.body["TableName"]
            read = _stash.read
            units = 0.5
            if read is not None:
                table = self.dynamodb_backend.get_table(name)
                items, scanned, index_name = read
                index = table.get_index(index_name) if index_name else None

                def size(item: Any) -> int:
                    return int(index.project(item).size() if index else item.size())

                sizes = [size(i) for i in items]
                if scanned > len(items):  # a filter dropped some: price the rest at the mean entry
                    everything = table.has_idx_items(index_name) if index_name else table.all_items()
                    mean = sum(size(i) for i in everything) / max(1, len(everything))
                    sizes += [int(mean)] * (scanned - len(items))
                units = query_units(sizes, bool(self.body.get("ConsistentRead")))
            return _report(self, result, {name: units}, False)

        return action

    def stash(original: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            out = original(self, *args, **kwargs)
            _stash.read = (out[0], out[1], kwargs.get("index_name"))
            return out

        return call

    wrappers: dict[str, Callable[[Callable[[Any], Any]], Callable[[Any], Any]]] = {
        "put_item": single_write,
        "update_item": single_write,
        "delete_item": single_write,
        "batch_write_item": batch_write,
        "transact_write_items": transact_write,
        "get_item": get_item,
        "batch_get_item": batch_get,
        "query": read_many,
        "scan": read_many,
    }
    for name, wrap in wrappers.items():
        setattr(DynamoHandler, name, wrap(getattr(DynamoHandler, name)))
    for name in ("query", "scan"):
        setattr(DynamoDBBackend, name, stash(getattr(DynamoDBBackend, name)))


def main(argv: list[str] | None = None) -> None:
    install()
    # The embedded endpoint's server (one request at a time, change feeds), with the billing above.
    from local.awsserver import main as server_main

    server_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
