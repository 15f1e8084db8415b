"""The Python SDK against the local stack: a whole match, typed errors, a socket dropped mid-match with
nothing lost or counted twice, heartbeats, and auth failures that are never retried."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from cli.ops import Ops
from gamebackend_client import ActionRejected, AuthError, GameClient, ServerError, errors
from gamebackend_client.protocol import Ack, Joined, Leaderboard, Left, Pong, Rank, State
from local.runtime import LocalRuntime
from tests.conftest import token_for
from tests.e2e.conftest import eventually, management_api

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def connection_ids(stack: LocalRuntime, player: str) -> list[str]:
    assert stack.gateway is not None
    return [
        c.connection_id for c in stack.gateway.connections.values() if c.authorizer.get("playerId") == player
    ]


def delete_connection(stack: LocalRuntime, connection_id: str) -> int:
    """What a backend does to kick a client: DELETE @connections/{id} on the Management API."""
    answer = management_api(stack).delete_connection(ConnectionId=connection_id)
    return int(answer["ResponseMetadata"]["HTTPStatusCode"])


async def test_practice_match_played_to_the_end(stack: LocalRuntime) -> None:
    player = name("sdk")
    async with GameClient(stack.ws_url, token_for(player)) as client:
        seen: list[Any] = []

        async def collect() -> None:
            async for event in client.events():
                seen.append(event)

        collector = asyncio.create_task(collect())
        assert isinstance(await client.ping(), Pong)
        joined = await client.join("practice")
        assert isinstance(joined, Joined)
        assert (joined.mode, joined.players) == ("practice", [player])
        await client.wait_state(lambda s: s.status == "running")

        for points in (40, 35, 25):  # the practice target is 100
            ack = await client.score(points)
            assert isinstance(ack, Ack)
            state = await client.applied(ack.id)
            assert ack.id in state.applied
        assert (state.status, state.winner, state.players[player].score) == ("finished", player, 100)
        assert client.state == state

        async def settled() -> Leaderboard | None:
            # The boards are written off the players' path, within a window of the last action.
            board = await client.leaderboard("practice", around=True)
            assert isinstance(board, Leaderboard)
            return board if board.me is not None and board.me.score == 100 else None

        board = await eventually(settled, timeout=20, interval=0.25)
        assert board.me is not None and board.me.playerId == player
        assert isinstance(await client.leave(), Left)
        assert client.match_id is None

        await eventually(lambda: any(isinstance(e, Rank) and e.score == 100 for e in seen))
        assert any(isinstance(e, State) and e.status == "finished" for e in seen)
    await asyncio.wait_for(collector, 5)  # the event stream ends when the client closes


async def test_server_errors_and_rejections_are_typed(stack: LocalRuntime) -> None:
    owner, intruder = name("own"), name("intr")
    async with (
        GameClient(stack.ws_url, token_for(owner)) as a,
        GameClient(stack.ws_url, token_for(intruder)) as b,
    ):
        mid = (await a.join("practice")).matchId
        with pytest.raises(ServerError) as caught:
            await b.score(100, match_id=mid)
        assert caught.value.code == "not_in_match"
        assert isinstance(caught.value, errors.NotInMatch) and isinstance(caught.value, errors.Forbidden)

        await a.applied((await a.score(100)).id)  # wins the practice match
        late = await a.score(1)  # acknowledged by the message route, refused by the processor
        with pytest.raises(ActionRejected) as refused:
            await a.applied(late.id)
        assert refused.value.code == "match_not_running"
        assert isinstance(refused.value, errors.MatchNotRunning)


@pytest.mark.parametrize("how", ["management_api", "transport"])
async def test_socket_dropped_mid_match_loses_and_doubles_nothing(stack: LocalRuntime, how: str) -> None:
    player = name(f"drop{how[0]}")
    points = [3, 5, 7, 2, 9, 4, 6, 8, 1, 5, 7, 3]  # 60 < 100: the match keeps running
    async with GameClient(stack.ws_url, token_for(player), backoff_base=0.05) as client:
        mid = (await client.join("practice")).matchId
        await client.wait_state(lambda s: s.status == "running")
        first = connection_ids(stack, player)
        assert len(first) == 1

        # Half the actions are in flight when the socket goes: some acknowledged, some not.
        early = [asyncio.create_task(client.score(p)) for p in points[:6]]
        await asyncio.sleep(0)  # sent, not answered yet
        if how == "management_api":
            assert await asyncio.to_thread(delete_connection, stack, first[0]) == 204
        else:
            conn = client.connection
            assert conn is not None
            conn.transport.abort()  # a network failure: no close frame at all
        late = [asyncio.create_task(client.score(p)) for p in points[6:]]
        acks = await asyncio.gather(*early, *late)
        assert len({a.id for a in acks}) == len(points)
        assert client.reconnects == 1 and client.match_id == mid
        if how == "transport":  # aborted right after sending: no ack can have come back yet
            assert client.resent >= 1
        assert connection_ids(stack, player) != first

        # A last action after everything: its state shows the final totals.
        final = await client.applied((await client.move(10, 20)).id, timeout=20)
        assert final.players[player].score == sum(points), "an action was lost or applied twice"
        assert (final.players[player].x, final.players[player].y) == (10, 20)

        async def settled() -> bool:
            me = (await client.leaderboard("practice", around=True)).me
            return me is not None and me.score == sum(points)

        await eventually(settled, timeout=20, interval=0.25)

    ops = Ops(stack.service, stack.aws_endpoint, stack.dynamodb_endpoint)
    equal, rebuilt, _ = await asyncio.to_thread(ops.replay, mid)
    assert equal and rebuilt["players"][player]["score"] == sum(points)


async def test_heartbeats_keep_a_quiet_client_active(stack: LocalRuntime) -> None:
    player = name("beat")
    async with GameClient(stack.ws_url, token_for(player), heartbeat_interval=0.2) as client:
        assert stack.gateway is not None
        (conn,) = [c for c in stack.gateway.connections.values() if c.authorizer.get("playerId") == player]
        before = conn.last_active
        await asyncio.sleep(0.7)  # sends nothing itself
        assert conn.last_active > before, "no heartbeat reached the gateway"
        assert client.connected


async def test_refused_token_raises_auth_error_and_is_not_retried(stack: LocalRuntime) -> None:
    assert stack.gateway is not None
    refused = stack.gateway.stats["refused"]
    with pytest.raises(AuthError) as caught:
        async with GameClient(
            stack.ws_url, token_for(name("bad"), secret="not-the-secret-of-this-stack-at-all-0123456789")
        ):
            pass
    assert caught.value.status == 401
    assert "not retrying" in str(caught.value)
    await asyncio.sleep(0.5)
    assert stack.gateway.stats["refused"] == refused + 1


async def test_token_refused_on_reconnect_stops_the_client(stack: LocalRuntime) -> None:
    assert stack.gateway is not None
    player = name("expire")
    expired = token_for(player, now=time.time() - 3600, ttl=60)
    tokens = iter([token_for(player), expired])
    client = GameClient(stack.ws_url, lambda: next(tokens), backoff_base=0.01)
    await client.connect()
    try:
        await client.join("practice")
        refused = stack.gateway.stats["refused"]
        (conn_id,) = connection_ids(stack, player)
        await asyncio.to_thread(delete_connection, stack, conn_id)
        with pytest.raises(AuthError):
            async for _ in client.events():
                pass
        with pytest.raises(AuthError):
            await client.ping()
        await asyncio.sleep(0.5)
        assert stack.gateway.stats["refused"] == refused + 1, "an auth failure was retried"
    finally:
        await client.close()


async def test_the_example_in_docs_clients_md_works(
    stack: LocalRuntime, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = (ROOT / "docs" / "clients.md").read_text()
    code = re.search(r"<!-- sdk-example -->\n```python\n(.*?)```", doc, re.S)
    shown = re.search(r"Its output, the first time `alice` plays:\n\n```\n(.*?)```", doc, re.S)
    assert code and shown, "docs/clients.md lost its example or its output"
    namespace: dict[str, Any] = {"__name__": "docs_example"}  # not __main__: no token subprocess
    exec(compile(code.group(1), "docs/clients.md", "exec"), namespace)
    player = name("alice")
    await namespace["main"](stack.ws_url, token_for(player))
    printed = capsys.readouterr().out.replace(player, "alice").splitlines()
    expected = shown.group(1).splitlines()
    assert printed[:-1] == expected[:-1]
    # The rank depends on who else played practice on this stack; the total does not.
    assert re.fullmatch(r"practice board: rank \d+, 100 points in all", printed[-1]), printed[-1]
