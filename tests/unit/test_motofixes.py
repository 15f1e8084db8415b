"""The embedded endpoint's fixes to moto's UpdateItem (local.motofixes) change its cost, not its answers:
an expression tree copies as `copy.deepcopy`'s generic protocol copies it, and a cached parse applies
each request's own values, and a validation that walks the tree fewer times accepts and refuses
what moto does."""

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


def table_t() -> Any:
    """A client of the mocked account, and its table `t` keyed by `k`."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb


def test_the_same_expression_applies_each_requests_own_values() -> None:
    motofixes.install()
    with mock_aws():
        ddb = table_t()
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


def test_every_fast_answer_is_the_body_motos_serializer_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each request of FAST_JSON is answered by moto's serializer as well, and the two bodies compared."""
    import json

    from moto.core.responses import BaseResponse

    motofixes.install()
    real = motofixes.fast_body
    pending: list[str | None] = []
    compared: list[str] = []

    def fast_then_moto(service: str, operation: str, result: Any) -> str | None:
        pending.append(real(service, operation, result))
        if pending[-1] is not None:
            compared.append(operation)
        return None  # moto's serializer writes the answer the client gets

    installed = BaseResponse.serialized

    def check(self: Any, action_result: Any) -> Any:
        answer = installed(self, action_result)
        fast = pending.pop() if pending else None
        if fast is not None:
            assert json.loads(fast) == json.loads(answer[2]), self._get_action()
        return answer

    monkeypatch.setattr(motofixes, "fast_body", fast_then_moto)
    monkeypatch.setattr(BaseResponse, "serialized", check)
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}, {"AttributeName": "r", "KeyType": "RANGE"}],
            AttributeDefinitions=[
                {"AttributeName": "k", "AttributeType": "S"},
                {"AttributeName": "r", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )
        item = {
            "k": {"S": "a"},
            "r": {"N": "1"},
            "b": {"B": b"\x00\xffbin"},
            "n": {"N": "-1.5e3"},
            "ss": {"SS": ["x", "y"]},
            "ns": {"NS": ["1", "2"]},
            "bs": {"BS": [b"\x01", b"\x02"]},
            "l": {"L": [{"S": "q"}, {"NULL": True}, {"BOOL": False}, {"M": {"deep": {"B": b"\x03"}}}]},
            "e": {"S": ""},
        }
        key = {"k": {"S": "a"}, "r": {"N": "1"}}
        ddb.put_item(TableName="t", Item=item)
        ddb.put_item(TableName="t", Item={**item, "r": {"N": "2"}}, ReturnValues="ALL_OLD")
        ddb.put_item(TableName="t", Item={**item, "n": {"N": "7"}}, ReturnValues="ALL_OLD")
        ddb.get_item(TableName="t", Key=key)
        ddb.get_item(TableName="t", Key={"k": {"S": "none"}, "r": {"N": "1"}})
        for returns in ("NONE", "ALL_NEW", "UPDATED_OLD", "UPDATED_NEW", "ALL_OLD"):
            ddb.update_item(
                TableName="t",
                Key=key,
                UpdateExpression="SET n = n + :one, l[0] = :s ADD ns :two",
                ExpressionAttributeValues={":one": {"N": "1"}, ":s": {"S": returns}, ":two": {"NS": ["3"]}},
                ReturnValues=returns,
            )
        ddb.batch_get_item(RequestItems={"t": {"Keys": [key, {"k": {"S": "zz"}, "r": {"N": "9"}}]}})
        ddb.query(
            TableName="t", KeyConditionExpression="k = :k", ExpressionAttributeValues={":k": {"S": "a"}}
        )
        ddb.query(
            TableName="t",
            KeyConditionExpression="k = :k",
            ExpressionAttributeValues={":k": {"S": "a"}},
            Limit=1,
        )
        ddb.scan(TableName="t", Limit=1)
        ddb.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": key}}])
        ddb.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "t", "Item": {**item, "r": {"N": "3"}}}},
                {"Delete": {"TableName": "t", "Key": {"k": {"S": "a"}, "r": {"N": "2"}}}},
            ]
        )
        ddb.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {**item, "r": {"N": "4"}}}}]})
        ddb.delete_item(TableName="t", Key=key, ReturnValues="ALL_OLD")
        streams = boto3.client("dynamodbstreams", region_name="us-east-1")
        arn = ddb.describe_table(TableName="t")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
        assert records and "ApproximateCreationDateTime" in records[0]["dynamodb"]
    expected = set(motofixes.FAST_JSON["dynamodb"] | motofixes.FAST_JSON["dynamodbstreams"])
    assert set(compared) == expected  # every fast operation was compared at least once


def test_an_overwritten_item_is_freed() -> None:
    """moto lists every model instance on its class for its dashboard, forever; installed, an item that
    a write replaces is gone with its last reference."""
    import gc
    import weakref

    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models.dynamo_type import DynamoType

    motofixes.install()
    with mock_aws():
        ddb = table_t()
        ddb.put_item(TableName="t", Item={"k": {"S": "a"}, "v": {"N": "1"}})
        table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables["t"]
        item = table.get_item(DynamoType({"S": "a"}))
        assert item is not None
        first = weakref.ref(item)
        del item
        ddb.put_item(TableName="t", Item={"k": {"S": "a"}, "v": {"N": "2"}})
        gc.collect()
        assert first() is None
        assert ddb.get_item(TableName="t", Key={"k": {"S": "a"}})["Item"]["v"] == {"N": "2"}


# UpdateExpressions moto accepts or refuses, each for its own reason: the checks run once at the root.
JUDGED = [
    "SET #a = :a, #b = :b",
    "SET #a = :a SET #b = :b",
    "SET #a = :a REMOVE #b REMOVE #c",
    "SET #a = :a ADD n :one ADD o :one",
    "SET #a = :a, #a = :b",
    "SET m.x = :a, m = :b",
    "SET m = :b, m.x = :a",
    "REMOVE e, e",
    "SET #a = :a, #a = :b REMOVE e REMOVE f",
    "SET #a = :a, #b = :b REMOVE e, e ADD n :one, n :one",
    "SET k = :a",
    "SET #a = :missing",
    "SET #a = #nope + :one",
    "SET #a = :a + :one",
    "ADD #s :set",
    "DELETE #s :set",
    "SET l[0] = :a",
    "SET #a = :a, #b = :b, c = :a, d = :b REMOVE e, f ADD n :one",
    "SET #a = if_not_exists(#a, :a), l = list_append(l, :l)",
    "SET e = :empty",
]


def judge_all(installed: bool) -> list[Any]:
    """What moto makes of each JUDGED expression on a fresh item: the item after it, or the error."""
    if installed:
        motofixes.install()
    values = {
        ":a": {"S": "A"},
        ":b": {"S": "B"},
        ":one": {"N": "1"},
        ":set": {"SS": ["p"]},
        ":l": {"L": [{"S": "w"}]},
        ":empty": {"S": ""},
    }
    outcomes: list[Any] = []
    with mock_aws():
        ddb = table_t()
        for i, expression in enumerate(JUDGED):
            key = {"k": {"S": f"x{i}"}}
            ddb.put_item(
                TableName="t",
                Item={
                    **key,
                    "m": {"M": {"x": {"S": "1"}}},
                    "l": {"L": [{"S": "z"}]},
                    "e": {"S": "q"},
                    "f": {"N": "1"},
                    "n": {"N": "1"},
                },
            )
            extra: dict[str, Any] = {}
            if names := {n: n[1:] for n in ("#a", "#b", "#c", "#s", "#nope") if n in expression}:
                extra["ExpressionAttributeNames"] = names
            if used := {v: values[v] for v in values if v in expression}:
                extra["ExpressionAttributeValues"] = used
            try:
                ddb.update_item(TableName="t", Key=key, UpdateExpression=expression, **extra)
                outcomes.append(["ok", ddb.get_item(TableName="t", Key=key)["Item"]])
            except ddb.exceptions.ClientError as e:
                outcomes.append(["refused", e.response["Error"]["Code"], e.response["Error"]["Message"]])
    return outcomes


def test_every_expression_is_accepted_or_refused_as_moto_does_it() -> None:
    """Installed and not, each in a process of its own (installing is for the life of a process)."""
    import json
    import subprocess
    import sys

    def judged(installed: bool) -> Any:
        code = f"import json, tests.unit.test_motofixes as t; print(json.dumps(t.judge_all({installed})))"
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return json.loads(run.stdout)

    moto_own, installed = judged(False), judged(True)
    assert installed == moto_own
    refusals = [o for o in moto_own if o[0] == "refused"]
    # The list does exercise refusals: clause counts, overlaps, keys, values, types.
    assert len(refusals) == 13
    assert {"SET", "REMOVE", "ADD"} <= {m.split('"')[1] for _, _, m in refusals if "section" in m}


def test_method_names_and_request_ids_are_what_moto_makes_them() -> None:
    """Installed, every module that imported them has the cheap ones, and they answer as moto's do."""
    import re

    from moto.core import responses, utils
    from moto.sqs import models as sqs_models
    from moto.utilities import aws_headers

    motofixes.install()
    names = ["ReceiveMessage", "PutRecord", "VisibilityTimeout", "KmsMasterKeyId", "getQueueURL", "", "A"]
    for module in (utils, responses, sqs_models):
        convert = module.camelcase_to_underscores
        assert [convert(n) for n in names] == [convert.__wrapped__(n) for n in names]
    assert utils.camelcase_to_underscores("ReceiveMessage") == "receive_message"
    headers: dict[str, str] = {}
    first = aws_headers.gen_amzn_requestid_long(headers)
    assert re.fullmatch("[A-Za-z0-9]{52}", first) and headers == {"x-amzn-requestid": first}
    assert aws_headers.gen_amzn_requestid_long() != first
    assert getattr(responses, "gen_amzn_requestid_long") is aws_headers.gen_amzn_requestid_long  # noqa: B009
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "7"})["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="m")
        got = sqs.receive_message(QueueUrl=url, AttributeNames=["All"], MessageAttributeNames=["All"])
        assert [m["Body"] for m in got["Messages"]] == ["m"]
        assert (
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["VisibilityTimeout"]
            == "7"
        )
