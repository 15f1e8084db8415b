"""What DynamoDB does where moto and DynamoDB Local disagree, run on both engines.

Each test asserts the behaviour the DynamoDB documentation gives (the Developer Guide's "Supported data
types and naming rules", "Service, account, and table quotas", and the API reference of each call),
which DynamoDB Local, AWS's own engine, reproduces. Where moto does otherwise the test is a strict xfail
on moto with the reason: it documents the gap, and it starts failing the day moto closes it, so the list
in docs/local-runtime.md ("moto and DynamoDB Local") stays true. Where the stores depend on one of these
behaviours, the test also proves the store's way round it on both engines.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from backend.game.boards import configured
from backend.game.rules import Match, Player
from backend.store.leaderboards import LeaderboardStore
from backend.store.matches import MatchStore, Stored
from tests.leaderboard_fill import fill

TABLE = "semantics-probe"


def moto_differs(reason: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Marks a test as a strict xfail on moto: moto does `reason` where DynamoDB does what it asserts."""

    def mark(test: Callable[..., None]) -> Callable[..., None]:
        test.moto_gap = reason  # type: ignore[attr-defined]
        return test

    return mark


@pytest.fixture(autouse=True)
def _known_gap(request: pytest.FixtureRequest, dynamodb_engine: str) -> None:
    reason = getattr(request.function, "moto_gap", None)
    if reason and dynamodb_engine == "moto":
        request.applymarker(pytest.mark.xfail(strict=True, reason=f"moto: {reason}"))


@pytest.fixture
def probe(ddb: Any) -> Any:
    """A table keyed (pk S, sk N) with a GSI byG (g S, gs N)."""
    ddb.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "g", "AttributeType": "S"},
            {"AttributeName": "gs", "AttributeType": "N"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "byG",
                "KeySchema": [
                    {"AttributeName": "g", "KeyType": "HASH"},
                    {"AttributeName": "gs", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    return ddb


def key(pk: str = "a", sk: int | str = 1) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"N": str(sk)}}


def refused(call: Callable[[], Any], *fragments: str) -> None:
    """The call fails with a ValidationException whose message has every fragment (any case)."""
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert error["Code"] == "ValidationException", error
    assert all(f.lower() in error["Message"].lower() for f in fragments), error["Message"]


# --- numbers ---------------------------------------------------------------------------------------


@moto_differs("stores a 39-digit number")
def test_a_number_has_at_most_38_digits(probe: Any) -> None:
    # "Numbers can have up to 38 digits of precision. Exceeding this results in an exception."
    probe.put_item(TableName=TABLE, Item={**key(), "n": {"N": "9" * 38}})
    refused(lambda: probe.put_item(TableName=TABLE, Item={**key(), "n": {"N": "9" * 39}}), "38 digits")


def test_a_kinesis_sequence_number_is_kept_as_a_string(ddb: Any) -> None:
    # Kinesis sequence numbers run to 56 digits and more (up to 128): as a Number DynamoDB would refuse
    # them, which moto does not (above). The match item therefore keeps `seq` as a string.
    store = MatchStore(ddb, "gamebackend-local-matches")
    store.create("m-" + "0" * 32, "practice", "alice", now_ms=1)
    seq = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
    match = Match("m-" + "0" * 32, "practice", status="running", version=1, players={"alice": Player()})
    store.save(Stored(match, seq=seq), expected_version=0, events=[], last_at=1)
    assert store.load(match.match_id).seq == seq


@moto_differs("returns a number as it was written, zeros and all")
def test_numbers_come_back_normalised(probe: Any) -> None:
    # "Leading and trailing zeroes are trimmed." So "01.0" and "1" are one key value.
    probe.put_item(TableName=TABLE, Item={**key(sk="01.0"), "n": {"N": "007.50"}})
    item = probe.get_item(TableName=TABLE, Key=key(sk=1))["Item"]
    assert item["sk"] == {"N": "1"} and item["n"] == {"N": "7.5"}


# --- expressions -----------------------------------------------------------------------------------


@moto_differs("ignores an expression attribute value that no expression uses")
def test_an_unused_expression_attribute_value_is_refused(probe: Any) -> None:
    # The stores build their values with their expressions (MatchStore.save, replace_lobby): every store
    # test on DynamoDB Local proves that each value they pass is used.
    refused(
        lambda: probe.put_item(
            TableName=TABLE,
            Item=key(),
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeValues={":unused": {"S": "x"}},
        ),
        "ExpressionAttributeValues unused",
    )


@moto_differs("applies begins_with to a Number sort key")
def test_begins_with_takes_only_a_string_or_binary_key(probe: Any) -> None:
    refused(
        lambda: probe.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :p AND begins_with(sk, :x)",
            ExpressionAttributeValues={":p": {"S": "a"}, ":x": {"N": "1"}},
        ),
        "begins_with",
    )


@moto_differs("accepts an IN list of 101 values")
def test_in_takes_at_most_100_values(probe: Any) -> None:
    values = {f":v{i}": {"N": str(i)} for i in range(101)}
    refused(
        lambda: probe.scan(
            TableName=TABLE, FilterExpression=f"n IN ({', '.join(values)})", ExpressionAttributeValues=values
        ),
        "IN operator",
    )


@moto_differs("returns the key attributes too")
def test_updated_new_returns_only_the_updated_attributes(probe: Any, ddb: Any) -> None:
    out = probe.update_item(
        TableName=TABLE,
        Key=key(),
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    assert out["Attributes"] == {"n": {"N": "1"}}
    # The leaderboards read only the attributes they updated (`season`, `score`), so they work either way.
    store = LeaderboardStore(ddb, "gamebackend-local-leaderboards")
    assert store.start_season("duel") == 1
    assert store.credit("duel#alltime#all", "alice", "m-" + "1" * 32, believed=0, total=5, expires=None) == 5


# --- items and indexes -----------------------------------------------------------------------------


@moto_differs("writes an item whose GSI key attribute has the wrong type")
def test_an_index_key_of_the_wrong_type_is_refused(probe: Any) -> None:
    refused(lambda: probe.put_item(TableName=TABLE, Item={**key(), "g": {"N": "5"}}), "Type mismatch")


@moto_differs("stores a string set with a repeated member")
def test_a_set_has_no_repeated_member(probe: Any) -> None:
    refused(lambda: probe.put_item(TableName=TABLE, Item={**key(), "s": {"SS": ["a", "a"]}}), "duplicates")


@moto_differs("stores an attribute with an empty name")
def test_an_attribute_name_is_not_empty(probe: Any) -> None:
    refused(lambda: probe.put_item(TableName=TABLE, Item={**key(), "": {"S": "x"}}), "empty attribute name")


def test_items_of_equal_index_keys_are_in_no_promised_order(ddb: Any) -> None:
    # DynamoDB orders a GSI by its sort key only; moto and DynamoDB Local return ties in different orders.
    # The leaderboards order ties by player id themselves, on both engines.
    store = LeaderboardStore(ddb, "gamebackend-local-leaderboards")
    board = "duel#alltime#all"
    fill(store, configured()["duel"], board, {p: 50 for p in ["carol", "alice", "bob", "dave"]})
    page = store.top(configured()["duel"], board, 4)
    assert [(rank, row.player_id) for rank, row in page.entries] == [
        (1, "alice"),
        (1, "bob"),
        (1, "carol"),
        (1, "dave"),
    ]


@moto_differs("creates a table with a two-character name")
def test_a_table_name_has_3_to_255_characters(ddb: Any) -> None:
    refused(
        lambda: ddb.create_table(
            TableName="ab",
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        ),
        "between 3 and 255",
    )


# --- batches and transactions ----------------------------------------------------------------------


@moto_differs("writes 26 items in one BatchWriteItem")
def test_a_batch_write_takes_at_most_25_requests(probe: Any) -> None:
    puts = [{"PutRequest": {"Item": key(sk=i)}} for i in range(26)]
    refused(lambda: probe.batch_write_item(RequestItems={TABLE: puts}), "BatchWriteItem")


@moto_differs("applies a repeated TransactWriteItems with the same ClientRequestToken again")
def test_a_client_request_token_makes_a_transaction_idempotent(probe: Any) -> None:
    # "A client request token ... makes the call idempotent": within 10 minutes, the same token and
    # request succeed without changing anything again. Code relying on it would count twice on moto.
    items = [
        {
            "Update": {
                "TableName": TABLE,
                "Key": key(),
                "UpdateExpression": "ADD n :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
    ]
    probe.transact_write_items(TransactItems=items, ClientRequestToken="credit-1")
    probe.transact_write_items(TransactItems=items, ClientRequestToken="credit-1")
    assert probe.get_item(TableName=TABLE, Key=key())["Item"]["n"] == {"N": "1"}


# --- pagination ------------------------------------------------------------------------------------


@moto_differs("starts a query from a key outside its key condition (and crashes on a key of the wrong shape)")
def test_a_start_key_outside_the_query_is_refused(probe: Any) -> None:
    probe.put_item(TableName=TABLE, Item={**key("a", 1), "g": {"S": "one"}, "gs": {"N": "1"}})
    refused(
        lambda: probe.query(
            TableName=TABLE,
            IndexName="byG",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "one"}},
            ExclusiveStartKey={**key("a", 1), "g": {"S": "two"}, "gs": {"N": "1"}},
        ),
        "starting key",
    )


def test_what_every_engine_agrees_on(probe: Any) -> None:
    """The behaviours the stores rely on most, for the record: identical on both engines."""
    probe.put_item(TableName=TABLE, Item={**key(), "x": {"S": "old"}})
    with pytest.raises(ClientError) as caught:
        probe.put_item(
            TableName=TABLE,
            Item=key(),
            ConditionExpression="attribute_not_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    assert caught.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert caught.value.response["Item"]["x"] == {"S": "old"}
    refused(
        lambda: probe.query(
            TableName=TABLE,
            IndexName="byG",
            KeyConditionExpression="g = :g",
            ExpressionAttributeValues={":g": {"S": "x"}},
            ConsistentRead=True,
        ),
        "consistent reads are not supported on global secondary indexes",
    )
    refused(
        lambda: probe.batch_get_item(RequestItems={TABLE: {"Keys": [key(), key()]}}), "contains duplicates"
    )
    refused(
        lambda: probe.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": TABLE, "Item": key()}},
                {"Delete": {"TableName": TABLE, "Key": key()}},
            ]
        ),
        "multiple operations on one item",
    )
    refused(lambda: probe.put_item(TableName=TABLE, Item={**key(), "g": {"S": ""}}), "empty string")
    refused(lambda: probe.put_item(TableName=TABLE, Item={**key(), "big": {"S": "x" * 400 * 1024}}), "size")
    assert json.dumps(probe.describe_table(TableName=TABLE)["Table"]["TableStatus"]) == '"ACTIVE"'
