"""The embedded endpoint's fixes to moto's UpdateItem (local.motofixes) change its cost, not its answers:
an expression tree copies as `copy.deepcopy`'s generic protocol copies it, and a cached parse applies
each request's own values."""

from __future__ import annotations

import copy
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.parsing.ast_nodes import Node  # type: ignore[attr-defined]  # the module opts out of typing
from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]

from local import motofixes

EXPRESSIONS = [
    "SET #a = :a, #n = if_not_exists(#n, :zero) + :one REMOVE #r",
    "SET #l = list_append(if_not_exists(#l, :empty), :more), #m.#k = :a ADD #s :set",
    "REMOVE #l[1], #l[0] SET #a = :a DELETE #s :set",
]


def shape(node: Any, seen: dict[int, int]) -> Any:
    """A node's tree as plain data: classes, fields, and each parent as the position it was first met."""
    if not isinstance(node, Node):
        if isinstance(node, list):
            return [shape(v, seen) for v in node]
        return repr(node)
    seen.setdefault(id(node), len(seen))
    fields = {}
    for name, value in sorted(vars(node).items()):
        if name == "parent":
            fields[name] = None if value is None else seen.get(id(value), "outside")
        else:
            fields[name] = shape(value, seen)
    return (type(node).__name__, fields)


def nodes(node: Any) -> list[Any]:
    found = [node]
    for child in getattr(node, "children", None) or []:
        if isinstance(child, Node):
            found += nodes(child)
    return found


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_a_tree_copies_as_the_generic_protocol_copies_it(
    expression: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = UpdateExpressionParser.make(expression)
    fast = motofixes.node_deepcopy(tree, {})
    monkeypatch.delattr(Node, "__deepcopy__", raising=False)  # installed or not: the generic protocol
    generic = copy.deepcopy(tree)
    assert shape(fast, {}) == shape(generic, {}) == shape(tree, {})
    originals = {id(n) for n in nodes(tree)}
    assert not originals & {id(n) for n in nodes(fast)}  # nothing shared with the original
    for n in nodes(fast):
        for child in n.children or []:
            if isinstance(child, Node):
                assert child.parent is n


def test_the_same_expression_applies_each_requests_own_values() -> None:
    motofixes.install()
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        names = {"#a": "a", "#n": "n", "#r": "r"}
        ddb.put_item(TableName="t", Item={"k": {"S": "x"}, "r": {"S": "gone"}})
        for value in ("first", "second"):
            ddb.update_item(
                TableName="t",
                Key={"k": {"S": "x"}},
                UpdateExpression=EXPRESSIONS[0],
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={":a": {"S": value}, ":zero": {"N": "0"}, ":one": {"N": "1"}},
            )
        item = ddb.get_item(TableName="t", Key={"k": {"S": "x"}})["Item"]
        assert item == {"k": {"S": "x"}, "a": {"S": "second"}, "n": {"N": "2"}}
        # A bad expression is refused every time, not cached as if it had parsed.
        for _ in range(2):
            with pytest.raises(ddb.exceptions.ClientError):
                ddb.update_item(
                    TableName="t",
                    Key={"k": {"S": "x"}},
                    UpdateExpression="SET #a = = :a",
                    ExpressionAttributeNames={"#a": "a"},
                    ExpressionAttributeValues={":a": {"S": "v"}},
                )
    assert UpdateExpressionParser.make(EXPRESSIONS[0]) is UpdateExpressionParser.make(EXPRESSIONS[0])
