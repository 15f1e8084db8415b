"""Fixes to moto that the embedded AWS endpoint installs (local.awsserver): behaviour kept, cost removed.

TransactWriteItems: moto backs a transaction up by deep-copying every table it touches, once per item
of the transaction, so that it can put the copies back if an item fails. On a table of 100,000 items a
20-item transaction copies two million items: the leaderboard projector, which moves a board's rank
tree in transactions, would take minutes per window on a full table. Here the backup is of the items
the transaction names, and a failed transaction puts exactly those back. Tables with a stream keep
moto's own way (their stream records are rolled back with the table copy).
"""

from __future__ import annotations

import copy
import types
from typing import Any

_INSTALLED: list[bool] = []  # once per process


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
    _INSTALLED.append(True)


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
