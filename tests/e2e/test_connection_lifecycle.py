"""The local stack as a client sees it: connect, talk, get refused, drop, and what the backend stored."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayWebSocketConnectEventModel,
    APIGatewayWebSocketDisconnectEventModel,
    APIGatewayWebSocketMessageEventModel,
)
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from backend.vocabulary import PROTOCOL_VERSION
from local.gateway import Limits
from local.runtime import LocalRuntime
from tests.conftest import token_for
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.e2e
TABLE = "gamebackend-local-connections"


@pytest.fixture
def ddb(stack: LocalRuntime) -> Any:
    return boto3.client("dynamodb", endpoint_url=stack.dynamodb_endpoint, region_name="us-east-1")


@pytest.fixture
def mgmt(stack: LocalRuntime) -> Any:
    return boto3.client("apigatewaymanagementapi", endpoint_url=stack.management_url, region_name="us-east-1")


def stored(ddb: Any, player: str) -> list[dict[str, Any]]:
    items = ddb.query(
        TableName=TABLE,
        IndexName="byPlayer",
        KeyConditionExpression="playerId = :p",
        ExpressionAttributeValues={":p": {"S": player}},
    )["Items"]
    return list(items)


def connection_id_of(stack: LocalRuntime, player: str) -> str:
    assert stack.gateway is not None
    ids = [
        c.connection_id for c in stack.gateway.connections.values() if c.authorizer.get("playerId") == player
    ]
    assert len(ids) == 1, ids
    return ids[0]


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("", 401),
        ("?token=", 401),
        ("?token=garbage", 401),
        ("?token=" + token_for("eve", secret="a-different-secret-that-is-long-enough"), 401),
        ("?token=" + token_for("eve", now=time.time() - 7200, ttl=60), 401),
    ],
    ids=["no-token", "empty-token", "garbage", "wrong-signature", "expired"],
)
async def test_refused_connections_store_nothing(
    stack: LocalRuntime, ddb: Any, query: str, status: int
) -> None:
    with pytest.raises(InvalidStatus) as err:
        async with connect(f"{stack.ws_url}/{query}", open_timeout=30):
            pass
    assert err.value.response.status_code == status
    assert stored(ddb, "eve") == []


async def test_connect_stores_the_player_and_disconnect_removes_it(
    stack: LocalRuntime, ddb: Any, connect_player: Any
) -> None:
    client = await connect_player("alice")
    items = stored(ddb, "alice")
    assert len(items) == 1
    assert items[0]["connectionId"]["S"] == connection_id_of(stack, "alice")
    await client.ws.close()
    await eventually(lambda: stored(ddb, "alice") == [])


async def test_ping_pong(connect_player: Any) -> None:
    client = await connect_player("bob")
    await client.send({"action": "ping", "id": "p-1"})
    assert await client.recv() == {"type": "pong", "ref": "p-1", "protocol": PROTOCOL_VERSION}


@pytest.mark.parametrize(
    ("frame", "code", "ref"),
    [
        ("garbage", "malformed_frame", None),
        ("[1, 2, 3]", "malformed_frame", None),
        ('{"id": "x1"}', "unknown_action", "x1"),
        ('{"action": "teleport", "id": "x2"}', "unknown_action", "x2"),
        ('{"action": "ping", "id": "x3", "extra": true}', "invalid_message", "x3"),
        ('{"action": "join", "mode": "solo", "id": "x4"}', "invalid_message", "x4"),
        (
            '{"action": "act", "kind": "score", "id": "x5", "matchId": "m-1", "points": "many"}',
            "invalid_message",
            "x5",
        ),
    ],
)
async def test_bad_frames_get_an_error_frame_and_the_socket_stays_open(
    connect_player: Any, frame: str, code: str, ref: str | None
) -> None:
    client = await connect_player("carol")
    await client.send(frame)
    answer = await client.recv()
    assert answer["type"] == "error"
    assert answer["code"] == code
    assert answer.get("ref") == ref
    assert answer["message"]
    await client.send({"action": "ping"})
    assert (await client.recv())["type"] == "pong"


async def test_binary_frames_are_refused_cleanly(connect_player: Any) -> None:
    client = await connect_player("dave")
    await client.ws.send(b"\xff\xfe\x00")
    answer = await client.recv()
    assert (answer["type"], answer["code"]) == ("error", "malformed_frame")


async def test_an_oversize_frame_closes_with_1009_and_disconnect_runs(
    stack: LocalRuntime, ddb: Any, connect_player: Any
) -> None:
    client = await connect_player("frank")
    await client.ws.send("x" * (128 * 1024 + 1))
    with pytest.raises(ConnectionClosed):
        await client.ws.recv()
    assert client.ws.close_code == 1009
    await eventually(lambda: stored(ddb, "frank") == [])


async def test_management_api_post_get_delete(
    stack: LocalRuntime, mgmt: Any, connect_player: Any, ddb: Any
) -> None:
    client = await connect_player("grace")
    cid = connection_id_of(stack, "grace")
    await asyncio.to_thread(
        mgmt.post_to_connection, ConnectionId=cid, Data=b'{"type":"notice","message":"hi"}'
    )
    assert await client.recv() == {"type": "notice", "message": "hi"}

    info = await asyncio.to_thread(mgmt.get_connection, ConnectionId=cid)
    assert info["Identity"]["SourceIp"] == "127.0.0.1"
    assert info["ConnectedAt"] <= info["LastActiveAt"]

    await asyncio.to_thread(mgmt.delete_connection, ConnectionId=cid)
    with pytest.raises(ConnectionClosed):
        await client.ws.recv()
    await eventually(lambda: stored(ddb, "grace") == [])


async def test_a_stale_connection_id_raises_gone_exception(mgmt: Any) -> None:
    with pytest.raises(mgmt.exceptions.GoneException):
        await asyncio.to_thread(mgmt.post_to_connection, ConnectionId="c0ffeec0ffee0=", Data=b"{}")
    with pytest.raises(mgmt.exceptions.GoneException):
        await asyncio.to_thread(mgmt.get_connection, ConnectionId="c0ffeec0ffee0=")


async def test_an_oversize_post_is_refused(stack: LocalRuntime, mgmt: Any, connect_player: Any) -> None:
    await connect_player("heidi")
    cid = connection_id_of(stack, "heidi")
    with pytest.raises(mgmt.exceptions.PayloadTooLargeException):
        await asyncio.to_thread(mgmt.post_to_connection, ConnectionId=cid, Data=b"x" * (128 * 1024 + 1))


async def test_an_abrupt_drop_still_runs_disconnect(
    stack: LocalRuntime, ddb: Any, connect_player: Any
) -> None:
    client = await connect_player("ivan")
    cid = connection_id_of(stack, "ivan")
    client.ws.transport.abort()  # no close frame: the TCP connection just dies
    await eventually(lambda: stored(ddb, "ivan") == [])
    assert stack.gateway is not None
    disconnects = [
        e
        for fn, e in stack.gateway.recent_events
        if fn == "disconnect" and e["requestContext"]["connectionId"] == cid
    ]
    assert len(disconnects) == 1
    assert disconnects[0]["requestContext"]["disconnectStatusCode"] == 1006


async def test_idle_connections_are_closed_with_1001(
    stack: LocalRuntime, ddb: Any, connect_player: Any
) -> None:
    assert stack.gateway is not None
    saved = stack.gateway.limits
    stack.gateway.limits = Limits(idle_timeout=0.5)
    try:
        client = await connect_player("judy")
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(client.ws.recv(), 10)
        assert client.ws.close_code == 1001
    finally:
        stack.gateway.limits = saved
    await eventually(lambda: stored(ddb, "judy") == [])


async def test_events_have_api_gateway_shapes(stack: LocalRuntime, connect_player: Any) -> None:
    """Every event the gateway produced validates against powertools' API Gateway WebSocket models."""
    client = await connect_player("ken")
    cid = connection_id_of(stack, "ken")
    await client.request({"action": "ping", "id": "shape"})
    await client.ws.close(1000, "bye")
    assert stack.gateway is not None

    def mine(fn: str) -> list[dict[str, Any]]:
        return [
            e
            for f, e in stack.gateway.recent_events  # type: ignore[union-attr]
            if f == fn and e["requestContext"]["connectionId"] == cid
        ]

    await eventually(lambda: mine("disconnect"))
    (connect_event,) = mine("connect")
    APIGatewayWebSocketConnectEventModel.model_validate(connect_event)
    assert connect_event["requestContext"]["authorizer"]["playerId"] == "ken"
    (message_event,) = mine("message")
    parsed = APIGatewayWebSocketMessageEventModel.model_validate(message_event)
    assert parsed.request_context.route_key == "ping"
    assert message_event["requestContext"]["authorizer"]["playerId"] == "ken"
    (disconnect_event,) = mine("disconnect")
    dis = APIGatewayWebSocketDisconnectEventModel.model_validate(disconnect_event)
    assert dis.request_context.disconnect_status_code == 1000
    assert "bye" in dis.request_context.disconnect_reason
    (auth_event,) = [
        e
        for f, e in stack.gateway.recent_events
        if f == "authorizer" and e["requestContext"]["connectionId"] == cid
    ]
    assert auth_event["type"] == "REQUEST"
    assert auth_event["methodArn"].endswith("/local/$connect")


async def test_route_selection(stack: LocalRuntime) -> None:
    assert stack.gateway is not None
    select = stack.gateway.select_route
    assert select(json.dumps({"action": "ping"})) == "ping"
    assert select(json.dumps({"action": "nope"})) == "$default"
    assert select(json.dumps({"action": "$connect"})) == "$default"
    assert select("not json") == "$default"
    assert select(json.dumps([1])) == "$default"


async def test_local_health_and_metrics(stack: LocalRuntime) -> None:
    import urllib.request

    def get(path: str) -> Any:
        with urllib.request.urlopen(stack.http_url + path, timeout=10) as r:
            return json.loads(r.read())

    assert (await asyncio.to_thread(get, "/local/health"))["status"] == "ok"
    metrics = await asyncio.to_thread(get, "/local/metrics")
    assert metrics["functions"]["connect"]["invocations"] >= 1
    assert metrics["functions"]["connect"]["coldStarts"] >= 1
