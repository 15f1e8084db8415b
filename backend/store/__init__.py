"""One module per table: the only code that knows its keys and attributes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any


def condition_failed(exc: Exception) -> bool:
    """Whether a botocore ClientError is a failed ConditionExpression: the stores turn that into the
    project's own errors (or into "already done"), never letting game code read AWS error codes."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return bool(code == "ConditionalCheckFailedException")


@dataclass(frozen=True)
class ConditionFailed:
    """A conditional write found its condition false and wrote nothing. `old` is the item as it was,
    when the write asked for it (ReturnValuesOnConditionCheckFailure=ALL_OLD)."""

    old: dict[str, Any] | None = None


def conditional(call: Callable[..., Any], **request: Any) -> dict[str, Any] | ConditionFailed:
    """Makes one conditional write (`call` is the client's put_item, update_item or delete_item): its
    answer, or ConditionFailed. Any other error is raised as it came."""
    try:
        out: dict[str, Any] = call(**request)
    except Exception as exc:
        if not condition_failed(exc):
            raise
        return ConditionFailed(getattr(exc, "response", {}).get("Item"))
    return out


def pages(call: Callable[..., Any], **request: Any) -> Iterator[dict[str, Any]]:
    """Every page of a Query or Scan (`call` is the client's query or scan), each from where the one
    before stopped (LastEvaluatedKey)."""
    while True:
        out: dict[str, Any] = call(**request)
        yield out
        last = out.get("LastEvaluatedKey")
        if last is None:
            return
        request = {**request, "ExclusiveStartKey": last}


def start_key(cursor: Any, schema: dict[str, str], **fixed: str) -> dict[str, Any]:
    """A client's cursor as the ExclusiveStartKey of a Scan or Query: exactly the attributes of `schema`
    (name -> "S" or "N"), with `fixed` string attributes equal to the query's own. DynamoDB refuses any
    other key with a ValidationException ("The provided starting key is invalid", "... does not match the
    range key predicate"), which would be a 500; moto crashes on some and ignores others. Checked here,
    every engine answers a forged cursor with the same BadRequest."""
    from backend.errors import BadRequest

    if not isinstance(cursor, dict) or set(cursor) != set(schema):
        raise BadRequest("invalid cursor")
    for name, kind in schema.items():
        value = cursor[name]
        if not isinstance(value, dict) or set(value) != {kind} or not isinstance(value[kind], str):
            raise BadRequest("invalid cursor")
        if kind == "N" and not _is_number(value[kind]):
            raise BadRequest("invalid cursor")
        if name in fixed and value[kind] != fixed[name]:
            raise BadRequest("invalid cursor")
    return cursor


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return len(text) <= 40
