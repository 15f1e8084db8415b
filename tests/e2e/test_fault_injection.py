"""Fault injection on the running stack (POST /local/faults, local.faults): the Management API's
error storms and 410s, the embedded AWS endpoint's throttling, and the refusals of bad specs."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from typing import Any

import boto3
import pytest
import pytest_asyncio
from botocore.config import Config
from botocore.exceptions import ClientError

from local.runtime import LocalRuntime


def local_faults(stack: LocalRuntime, method: str = "GET", spec: Any = None) -> tuple[int, Any]:
    data = json.dumps(spec).encode() if spec is not None else None
    request = urllib.request.Request(f"{stack.http_url}/local/faults", data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def connection_of(stack: LocalRuntime, player: str) -> str:
    assert stack.gateway is not None
    (conn_id,) = [c for c, live in stack.gateway.connections.items() if live.authorizer["playerId"] == player]
    return conn_id


def post_status(stack: LocalRuntime, conn_id: str, data: bytes) -> int:
    # No retries: botocore would spend the injected answers on one call's attempts.
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=stack.management_url,
        region_name="us-east-1",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )
    try:
        client.post_to_connection(ConnectionId=conn_id, Data=data)
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])
    return 200


@pytest_asyncio.fixture(autouse=True)
async def cleared(stack: LocalRuntime) -> Any:
    yield
    # Off the loop: the stack answers on it.
    await asyncio.to_thread(local_faults, stack, "DELETE")


async def test_a_management_api_storm_fails_the_calls_it_covers_then_lets_them_through(
    stack: LocalRuntime, connect_player: Any
) -> None:
    client = await connect_player("fault-storm")
    conn_id = connection_of(stack, client.player)
    status, before = await asyncio.to_thread(local_faults, stack)
    assert status == 200
    injected = before["management"]["injected"].get("503", 0)
    status, answer = await asyncio.to_thread(
        local_faults, stack, "POST", {"target": "management", "status": 503, "count": 2}
    )
    assert status == 200 and answer["fault"]["count"] == 2
    got = [await asyncio.to_thread(post_status, stack, conn_id, b'{"n": 1}') for _ in range(3)]
    assert got == [503, 503, 200]
    assert await client.recv() == {"n": 1}
    _, after = await asyncio.to_thread(local_faults, stack)
    assert after["management"]["injected"]["503"] == injected + 2
    assert after["management"]["faults"] == []


async def test_an_injected_410_drops_the_connection_as_a_lost_network_would(
    stack: LocalRuntime, connect_player: Any
) -> None:
    from websockets.exceptions import ConnectionClosed

    client = await connect_player("fault-gone")
    conn_id = connection_of(stack, client.player)
    await asyncio.to_thread(local_faults, stack, "POST", {"target": "management", "status": 410, "count": 1})
    assert await asyncio.to_thread(post_status, stack, conn_id, b"{}") == 410
    with pytest.raises(ConnectionClosed):
        await client.recv(timeout=10)
    assert stack.gateway is not None and conn_id not in stack.gateway.connections
    _, after = await asyncio.to_thread(local_faults, stack)
    assert after["management"]["dropped"] >= 1


async def test_a_dynamodb_throttle_fails_dynamodb_calls_only_until_it_is_used_up(stack: LocalRuntime) -> None:
    table = stack.service.resources["ConnectionsTable"]["Properties"]["TableName"]
    no_retries = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    dynamodb = boto3.client(
        "dynamodb", endpoint_url=stack.dynamodb_endpoint, config=no_retries, region_name="us-east-1"
    )
    kinesis = boto3.client(
        "kinesis", endpoint_url=stack.aws_endpoint, config=no_retries, region_name="us-east-1"
    )
    rule = {
        "target": "aws",
        "service": "dynamodb",
        "code": "ProvisionedThroughputExceededException",
        "status": 400,
        "count": 2,
    }
    status, _ = await asyncio.to_thread(local_faults, stack, "POST", rule)
    if stack.config.dynamodb == "local":
        pytest.skip("DynamoDB Local is another process: the embedded endpoint's faults do not reach it")
    assert status == 200
    await asyncio.to_thread(kinesis.list_streams)  # another service: not throttled, not used up
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            await asyncio.to_thread(dynamodb.describe_table, TableName=table)
        assert refused.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    await asyncio.to_thread(dynamodb.describe_table, TableName=table)
    _, after = await asyncio.to_thread(local_faults, stack)
    assert after["aws"]["faults"] == []


@pytest.mark.parametrize(
    ("spec", "status"),
    [
        ({"target": "nowhere"}, 400),
        ({"target": "management", "status": 404}, 400),
        ({"target": "management", "status": 503, "count": 0}, 400),
        ({"target": "management", "status": 503, "count": -1}, 400),  # never ends
        ({"target": "lambda", "function": "nope"}, 404),
        ([1, 2], 400),
    ],
)
async def test_a_bad_fault_is_a_json_4xx(stack: LocalRuntime, spec: Any, status: int) -> None:
    got, body = await asyncio.to_thread(local_faults, stack, "POST", spec)
    assert got == status and body["error"]["code"]
