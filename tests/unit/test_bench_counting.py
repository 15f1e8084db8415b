"""The bench's call counting: what the Lambda workers count (local.worker.AwsCallCounter) and how
bench/counting.py reads it back. No botocore session is patched here: the counter's handlers are called
directly, with the arguments botocore passes them."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from bench import counting
from local.lambdas import FunctionStats
from local.worker import AwsCallCounter


def _model(service: str, operation: str, members: tuple[str, ...] = ()) -> Any:
    return SimpleNamespace(
        name=operation,
        service_model=SimpleNamespace(service_name=service),
        input_shape=SimpleNamespace(members=dict.fromkeys(members)),
    )


def test_the_counter_asks_dynamodb_for_capacity_and_names_the_tables() -> None:
    counter = AwsCallCounter()
    params: dict[str, Any] = {"RequestItems": {"t-b": {}, "t-a": {}}}
    context: dict[str, Any] = {}
    counter.ask_capacity(params, _model("dynamodb", "BatchWriteItem", ("ReturnConsumedCapacity",)), context)
    assert params["ReturnConsumedCapacity"] == "TOTAL"
    assert context["countedTables"] == "t-a,t-b"

    untouched: dict[str, Any] = {"TableName": "t", "ReturnConsumedCapacity": "INDEXES"}
    counter.ask_capacity(untouched, _model("dynamodb", "GetItem", ("ReturnConsumedCapacity",)), {})
    assert untouched["ReturnConsumedCapacity"] == "INDEXES"  # the caller's choice stands
    no_member: dict[str, Any] = {"TableName": "t"}
    counter.ask_capacity(no_member, _model("dynamodb", "DescribeTable"), {})
    assert "ReturnConsumedCapacity" not in no_member


def test_the_counter_counts_calls_errors_and_capacity() -> None:
    counter = AwsCallCounter()
    ok = SimpleNamespace(status_code=200)
    failed = SimpleNamespace(status_code=400)
    update = _model("dynamodb", "UpdateItem")
    ctx = {"countedTables": "gb-local-matches"}
    counter.record(
        ok, {"ConsumedCapacity": {"TableName": "gb-local-matches", "CapacityUnits": 3.0}}, update, ctx
    )
    counter.record(failed, {"Error": {"Code": "ConditionalCheckFailedException"}}, update, ctx)
    batch = {
        "ConsumedCapacity": [{"TableName": "a", "CapacityUnits": 1.5}, {"TableName": "b", "CapacityUnits": 2}]
    }
    counter.record(ok, batch, _model("dynamodb", "BatchGetItem"), {"countedTables": "a,b"})
    counter.record(ok, {}, _model("kinesis", "PutRecord"), {})
    assert counter.drain() == {
        "dynamodb.UpdateItem@gb-local-matches": 2,
        "error:dynamodb.UpdateItem@gb-local-matches:ConditionalCheckFailedException": 1,
        "wcu@gb-local-matches": 3.0,
        "dynamodb.BatchGetItem@a,b": 1,
        "rcu@a": 1.5,
        "rcu@b": 2.0,
        "kinesis.PutRecord": 1,
    }
    assert counter.drain() == {}  # drained: each reply carries its own invocation's calls


def test_function_stats_show_the_counts() -> None:
    stats = FunctionStats()
    stats.aws_calls["kinesis.PutRecord"] = 2
    assert stats.snapshot()["awsCalls"] == {"kinesis.PutRecord": 2}


def test_parse_splits_calls_tables_errors_and_units() -> None:
    calls = counting.parse(
        {
            "dynamodb.UpdateItem@gamebackend-local-leaderboards": 12,
            "dynamodb.UpdateItem@gamebackend-local-matches": 2,
            "dynamodb.BatchWriteItem@gamebackend-local-events": 1,
            "dynamodb.Query@gamebackend-local-connections": 1,
            "dynamodb.BatchGetItem@gamebackend-local-matches,gamebackend-local-leaderboards": 1,
            "error:dynamodb.UpdateItem@gamebackend-local-matches:ConditionalCheckFailedException": 1,
            "wcu@gamebackend-local-leaderboards": 36,
            "wcu@gamebackend-local-matches": 2,
            "rcu@gamebackend-local-connections": 0.5,
            "kinesis.PutRecord": 20,
            "apigatewaymanagementapi.PostToConnection": 5,
        }
    )
    assert calls.by_call["dynamodb.UpdateItem"] == 14
    assert calls.by_table["dynamodb.UpdateItem leaderboards"] == 12
    assert calls.by_table["dynamodb.BatchGetItem matches,leaderboards"] == 1
    assert calls.errors == {"dynamodb.UpdateItem ConditionalCheckFailedException": 1}
    assert calls.dynamodb_requests == 17
    assert calls.dynamodb_writes == 15
    assert calls.dynamodb_reads == 2
    assert calls.failed_writes == 1
    assert calls.write_units == 36 + 2 + counting.FAILED_WRITE_UNITS  # a failed write is billed too
    assert calls.read_units == 0.5
    per = counting.per_action(calls, 20)
    assert per["dynamodb_writes"] == pytest.approx(0.75)
    assert per["kinesis_puts"] == 1
    assert per["posts"] == 0.25
    assert counting.per_thousand({"x": 3}, 20) == {"x": 150.0}
    with pytest.raises(ValueError):
        counting.per_action(calls, 0)


def test_merge_and_diff() -> None:
    assert counting.merge({"a": 1}, {"a": 2, "b": 1}) == {"a": 3, "b": 1}
    assert counting.diff({"a": 3, "b": 1}, {"a": 1, "b": 1}) == {"a": 2}
    assert counting.short_table("gamebackend-dev-leaderboards") == "leaderboards"
