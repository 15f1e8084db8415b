"""Sessions as players live them, over real sockets: a tab closed in a waiting match, a drop and a re-join
inside and after the reconnect grace, a `$disconnect` that never arrives, a second tab, too many
connections, a flood.

The local stage's grace is 3 s and its presence probe 2 s (custom.stages.local in serverless.yml), so
these wait seconds; nothing here asserts how long anything took.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from backend.config import GameSettings
from cli.ops import Ops
from local.runtime import LocalRuntime
from tests.e2e.conftest import Client, eventually

pytestmark = pytest.mark.e2e


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def settings(stack: LocalRuntime) -> GameSettings:
    """The settings every function of this stack was given (GAME_SETTINGS, from serverless.yml)."""
    return GameSettings.parse(stack.function_env(stack.service.functions["message"])["GAME_SETTINGS"])


async def join(client: Client, mode: str, ref: str = "j", **fields: Any) -> dict[str, Any]:
    joined = await client.request({"action": "join", "mode": mode, "id": ref, **fields})
    assert joined["type"] == "joined", joined
    return joined


async def duel(connect_player: Any) -> tuple[Client, Client, str]:
    """Two players in a running duel of their own, both having seen it run."""
    a = await connect_player(name("a"))
    b = await connect_player(name("b"))
    first = await join(a, "duel")
    second = await join(b, "duel")
    # Another test's waiting duel may have taken one of them: join again until they share one.
    while first["matchId"] != second["matchId"]:
        await a.request({"action": "leave", "matchId": first["matchId"], "id": "l"})
        first = await join(a, "duel", ref=f"j-{uuid.uuid4().hex[:4]}")
        if first["matchId"] != second["matchId"]:
            await b.request({"action": "leave", "matchId": second["matchId"], "id": "l"})
            second = await join(b, "duel", ref=f"j-{uuid.uuid4().hex[:4]}")
    mid = first["matchId"]
    for c in (a, b):
        await c.wait_for(lambda f: f.get("type") == "state" and f["status"] == "running", 20)
    return a, b, mid


def presence(player: str, kind: str) -> Any:
    return lambda f: f.get("type") == "presence" and f["playerId"] == player and f["presence"] == kind


async def test_a_tab_closed_in_a_waiting_match_releases_the_seat(
    stack: LocalRuntime, connect_player: Any
) -> None:
    ghost = await connect_player(name("ghost"))
    joined = await join(ghost, "duel")
    assert joined["status"] == "waiting"
    await ghost.ws.close()
    ops = Ops(stack.service, stack.aws_endpoint, stack.dynamodb_endpoint)

    async def released() -> bool:
        roster = await asyncio.to_thread(ops.matches.roster, joined["matchId"], consistent=True)
        return ghost.player not in roster.players

    await eventually(released)  # by its `$disconnect`, which the gateway invokes after the close
    other = await connect_player(name("next"))
    answer = await join(other, "duel", ref="j2")
    # The next joiner is never paired with a player who has no live connection.
    assert ghost.player not in answer["players"]
    assert answer["status"] == "waiting"


async def test_a_drop_and_a_rejoin_within_the_grace_keep_the_seat(
    stack: LocalRuntime, connect_player: Any
) -> None:
    a, b, mid = await duel(connect_player)
    await a.request({"action": "act", "kind": "score", "matchId": mid, "id": "s1", "points": 30})
    await a.wait_for(lambda f: f.get("type") == "state" and "s1" in f["applied"], 20)
    a.ws.transport.abort()  # a TCP abort: no close frame
    away = await b.wait_for(presence(a.player, "away"), 20)
    assert away["graceMs"] == settings(stack).mode("duel").grace_ms
    # Back on a new connection with a plain join (no matchId): the running match, not a new one.
    again = await connect_player(a.player)
    joined = await join(again, "duel", ref="j2")
    assert joined["matchId"] == mid
    state = await again.wait_for(lambda f: f.get("type") == "state" and f["matchId"] == mid, 20)
    assert state["players"][a.player]["score"] == 30
    await b.wait_for(presence(a.player, "back"), 20)
    # The grace that was running for the drop forfeits nothing: the match goes on and can be played.
    for i, points in enumerate((100, 70)):
        ack = await again.request(
            {"action": "act", "kind": "score", "matchId": mid, "id": f"s{i + 2}", "points": points}
        )
        assert ack["type"] == "ack", ack
    final = await b.wait_for(lambda f: f.get("type") == "state" and f["status"] == "finished", 20)
    assert final["winner"] == a.player
    assert final["players"][a.player]["presence"] == "here"


async def test_a_drop_past_the_grace_forfeits_and_the_other_player_wins(connect_player: Any) -> None:
    a, b, mid = await duel(connect_player)
    await a.ws.close()
    await b.wait_for(presence(a.player, "away"), 20)
    await b.wait_for(presence(a.player, "forfeited"), 30)
    final = await b.wait_for(lambda f: f.get("type") == "state" and f["status"] == "finished", 20)
    assert final["winner"] == b.player
    assert final["players"][a.player]["presence"] == "forfeited"
    # Too late: the seat is gone, and a plain join opens another match.
    again = await connect_player(a.player)
    refused = await again.request({"action": "join", "mode": "duel", "matchId": mid, "id": "late"})
    assert (refused["type"], refused.get("code")) in (("joined", None), ("error", "not_in_match"))
    if refused["type"] == "joined":
        rejected = await again.wait_for(lambda f: f.get("type") == "rejected", 20)
        assert rejected["code"] == "not_in_match"


async def test_a_lost_disconnect_is_found_by_the_presence_probe(
    stack: LocalRuntime, connect_player: Any
) -> None:
    assert stack.gateway is not None
    a, b, _mid = await duel(connect_player)
    lost = stack.gateway.stats["lostDisconnects"]
    stack.gateway.lose_disconnect_of.add(a.player)
    await a.ws.close()
    await eventually(lambda: stack.gateway.stats["lostDisconnects"] > lost)  # type: ignore[union-attr]
    # No `$disconnect` ran: the probe (GET @connections answers 410) ends the connection instead.
    await b.wait_for(presence(a.player, "away"), 30)


async def test_a_second_tab_takes_the_pushes_and_closing_the_first_changes_nothing(
    connect_player: Any,
) -> None:
    a, b, mid = await duel(connect_player)
    tab = await connect_player(a.player)
    await join(tab, "duel", ref="tab", matchId=mid)
    await a.ws.close()
    await b.request({"action": "act", "kind": "score", "matchId": mid, "id": "b1", "points": 5})
    await tab.wait_for(lambda f: f.get("type") == "state" and "b1" in f["applied"], 20)
    # The first tab's close was not the player's connection to the match: no presence change.
    await b.request({"action": "act", "kind": "score", "matchId": mid, "id": "b2", "points": 5})
    seen = await b.wait_for(lambda f: f.get("type") == "state" and "b2" in f["applied"], 20)
    assert seen["players"][a.player]["presence"] == "here"
    assert not [f for f in b.inbox if f.get("type") == "presence"]


async def test_connections_beyond_the_limit_close_the_oldest(
    stack: LocalRuntime, connect_player: Any
) -> None:
    limit = settings(stack).sessions.maxConnectionsPerPlayer
    player = name("tabs")
    tabs = [await connect_player(player) for _ in range(limit)]
    newest = await connect_player(player)
    closing = await tabs[0].wait_for(lambda f: f.get("type") == "closing", 20)
    assert closing["code"] == "too_many_connections"
    with pytest.raises(ConnectionClosed):
        await tabs[0].recv(20)
    for open_tab in [*tabs[1:], newest]:
        assert (await open_tab.request({"action": "ping", "id": "p"}))["type"] == "pong"


async def test_a_flood_gets_error_frames_then_closes_and_others_are_still_served(
    stack: LocalRuntime, connect_player: Any
) -> None:
    limits = settings(stack).sessions
    flooder = await connect_player(name("flood"))
    bystander = await connect_player(name("calm"))
    # The guard counts per execution environment (the local message function has up to 4, like the
    # stage's reserved concurrency): rounds of frames at once until the connection is closed, bounded.
    burst = limits.frameBurst + limits.floodClose
    answers: list[dict[str, Any]] = []

    async def read() -> None:
        while True:
            answers.append(await flooder.recv(30))

    reader = asyncio.create_task(read())
    with pytest.raises(ConnectionClosed):
        for round_ in range(25):
            frames = [json.dumps({"action": "ping", "id": f"p{round_}-{i}"}) for i in range(burst)]
            await asyncio.gather(*(flooder.ws.send(f) for f in frames))
            await asyncio.sleep(0)
        await reader
    with pytest.raises(ConnectionClosed):
        await reader
    # Typed frames, or the stage's throttle (API Gateway's own answer, serverless.yml's wsRate/wsBurst,
    # which a flood this size can reach): never a 5xx, never `Internal server error`.
    gateway = {a["message"] for a in answers if "type" not in a}
    assert gateway <= {"Too Many Requests"}, gateway
    kinds = {(a.get("type"), a.get("code")) for a in answers if "type" in a}
    assert kinds <= {("pong", None), ("error", "rate_limited"), ("closing", "rate_limited")}, kinds
    assert ("error", "rate_limited") in kinds
    assert ("closing", "rate_limited") in kinds
    assert (await bystander.request({"action": "ping", "id": "calm"}))["type"] == "pong"
