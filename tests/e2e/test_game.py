"""Real matches over real sockets: join, play to the end, pushes to every player, exact leaderboards."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from backend.config import game_settings
from backend.game import modes
from cli.ops import Ops
from local.runtime import LocalRuntime
from tests.e2e.conftest import Client, eventually, on_every_engine

pytestmark = [pytest.mark.e2e, on_every_engine]


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def join(client: Client, mode: str, ref: str = "j", timeout: float = 10.0) -> dict[str, Any]:
    joined = await client.request({"action": "join", "mode": mode, "id": ref}, timeout)
    assert joined["type"] == "joined", joined
    return joined


async def score(client: Client, match_id: str, action_id: str, points: int) -> None:
    ack = await client.request(
        {"action": "act", "kind": "score", "matchId": match_id, "id": action_id, "points": points}
    )
    assert ack == {"type": "ack", "id": action_id}


async def state_where(client: Client, predicate: Any, timeout: float = 20) -> dict[str, Any]:
    return await client.wait_for(lambda f: f.get("type") == "state" and predicate(f), timeout)


async def my_entry(client: Client, board: str, period: str = "alltime") -> dict[str, Any] | None:
    answer = await client.request(
        {
            "action": "leaderboard",
            "board": board,
            "period": period,
            "around": True,
            "id": f"lb-{uuid.uuid4().hex[:6]}",
        }
    )
    assert answer["type"] == "leaderboard", answer
    me: dict[str, Any] | None = answer.get("me")
    return me


async def settled_entry(client: Client, board: str, period: str = "alltime", *, score: int) -> dict[str, Any]:
    """The caller's entry once the leaderboards show `score`: they are written off the players' path,
    within a window (custom.stages.local.leaderboardWindow) of the last action."""

    async def check() -> dict[str, Any] | None:
        me = await my_entry(client, board, period)
        return me if me is not None and me["score"] == score else None

    found: dict[str, Any] = await eventually(check, timeout=20, interval=0.25)
    return found


async def test_practice_match_played_to_the_end(connect_player: Any) -> None:
    solo = await connect_player(name("solo"))
    joined = await join(solo, "practice")
    assert (joined["mode"], joined["status"], joined["players"]) == ("practice", "running", [solo.player])
    mid = joined["matchId"]
    await state_where(solo, lambda s: s["status"] == "running")
    for i, points in enumerate([40, 35, 25]):  # target 100
        await score(solo, mid, f"s{i}", points)
        last = await state_where(solo, lambda s, i=i: f"s{i}" in s["applied"])
    assert (last["status"], last["winner"]) == ("finished", solo.player)
    await settled_entry(solo, "practice", score=100)
    for period in ("daily", "weekly"):
        assert (await my_entry(solo, "global", period))["score"] == 100  # type: ignore[index]


async def test_duel_both_players_see_every_state_and_the_winner(
    connect_player: Any, stack: LocalRuntime
) -> None:
    alice, bob = await connect_player(name("alice")), await connect_player(name("bob"))
    a = await join(alice, "duel", "ja")
    b = await join(bob, "duel", "jb")
    mid = a["matchId"]
    assert b["matchId"] == mid, "the second duellist joins the open duel"
    assert b["status"] == "running" and set(b["players"]) == {alice.player, bob.player}
    for client in (alice, bob):
        running = await state_where(client, lambda s: s["status"] == "running")
        assert set(running["players"]) == {alice.player, bob.player}

    await score(bob, mid, "b1", 50)
    for client in (alice, bob):
        s = await state_where(client, lambda s: "b1" in s["applied"])
        assert s["players"][bob.player]["score"] == 50
    await score(alice, mid, "a1", 100)
    await score(alice, mid, "a2", 100)
    for client in (alice, bob):
        end = await state_where(client, lambda s: s["status"] == "finished")
        assert end["winner"] == alice.player
        assert end["players"][alice.player]["score"] == 200
        assert end["players"][bob.player]["score"] == 50

    # An action after the end is refused by the processor and reported to its sender only.
    await score(bob, mid, "b2", 10)
    rejected = await bob.wait_for(lambda f: f.get("type") == "rejected")
    assert (rejected["id"], rejected["code"]) == ("b2", "match_not_running")

    await settled_entry(alice, "duel", score=200)
    assert (await my_entry(bob, "duel"))["score"] == 50  # type: ignore[index]
    assert (await my_entry(bob, "global", "daily"))["score"] == 50  # type: ignore[index]

    ops = Ops(stack.service, stack.aws_endpoint, stack.dynamodb_endpoint)
    equal, rebuilt, stored = await asyncio.to_thread(ops.replay, mid)
    assert equal, (rebuilt, stored)
    assert rebuilt["winner"] == alice.player

    # The stored matches through the current rules: the same results. Through a rules change (at most 20
    # points an action): this duel's result differs, and the replay says which actions it refuses.
    settings = game_settings()
    same = await asyncio.to_thread(ops.replay_many, modes.Modes.load(settings), mode="duel", limit=50)
    (this,) = [r for r in same if r["matchId"] == mid]
    assert not this["differs"] and this["refused"] == []
    assert this["stored"]["winner"] == alice.player
    capped = modes.Modes.load(settings, plugins={"duel": "tests.fixtures.race_capped"})
    changed = await asyncio.to_thread(ops.replay_one, mid, capped)
    assert changed["differs"] and changed["replayed"]["status"] == "running"
    assert {r["code"] for r in changed["refused"]} == {"implausible"}


async def test_one_action_id_sent_twice_is_applied_once(connect_player: Any) -> None:
    solo = await connect_player(name("twice"))
    mid = (await join(solo, "practice"))["matchId"]
    await score(solo, mid, "same", 30)
    await score(solo, mid, "same", 30)  # a client retry: acknowledged again, applied once
    await score(solo, mid, "next", 5)
    s = await state_where(solo, lambda s: "next" in s["applied"])
    assert s["players"][solo.player]["score"] == 35
    await settled_entry(solo, "practice", score=35)


async def test_actions_in_someone_elses_match_are_refused(connect_player: Any) -> None:
    owner, intruder = await connect_player(name("owner")), await connect_player(name("intruder"))
    mid = (await join(owner, "practice"))["matchId"]
    answer = await intruder.request(
        {"action": "act", "kind": "score", "matchId": mid, "id": "x", "points": 100}
    )
    assert (answer["type"], answer["code"], answer["ref"]) == ("error", "not_in_match", "x")
    answer = await intruder.request({"action": "join", "mode": "practice", "matchId": mid, "id": "steal"})
    assert (answer["type"], answer["code"]) == ("error", "not_in_match")
    answer = await intruder.request({"action": "leave", "matchId": mid, "id": "l"})
    assert answer["code"] == "not_in_match"
    # ...and nothing reached the owner's match.
    await score(owner, mid, "o1", 1)
    s = await state_where(owner, lambda s: "o1" in s["applied"])
    assert set(s["players"]) == {owner.player}
    assert s["players"][owner.player]["score"] == 1


async def test_a_duel_left_by_one_player_ends_and_the_other_wins(
    connect_player: Any, stack: LocalRuntime
) -> None:
    p1, p2 = await connect_player(name("l1")), await connect_player(name("l2"))
    mid = (await join(p1, "duel"))["matchId"]
    assert (await join(p2, "duel"))["matchId"] == mid
    await state_where(p1, lambda s: s["status"] == "running")
    assert (await p1.request({"action": "leave", "matchId": mid, "id": "bye1"}))["type"] == "left"
    s = await state_where(p2, lambda s: s["players"][p1.player]["left"])
    # A running match left with one player ends, and that player wins.
    assert (s["status"], s["winner"], s["players"][p1.player]["presence"]) == ("finished", p2.player, "left")
    assert (await p2.request({"action": "leave", "matchId": mid, "id": "bye2"}))["type"] == "left"
    # A connection that left is detached: its actions no longer reach the match.
    answer = await p2.request({"action": "act", "kind": "move", "matchId": mid, "id": "m", "x": 1, "y": 1})
    assert answer["code"] == "not_in_match"
    ops = Ops(stack.service, stack.aws_endpoint, stack.dynamodb_endpoint)
    stored = await asyncio.to_thread(ops.matches.load, mid)
    assert (stored.match.status, stored.match.winner) == ("finished", p2.player)


async def test_reconnecting_player_rejoins_its_match(connect_player: Any) -> None:
    player = name("back")
    first = await connect_player(player)
    mid = (await join(first, "practice"))["matchId"]
    await score(first, mid, "r1", 10)
    await state_where(first, lambda s: "r1" in s["applied"])
    await first.ws.close()
    second = await connect_player(player)
    again = await second.request({"action": "join", "mode": "practice", "matchId": mid, "id": "rj"})
    assert (again["type"], again["matchId"]) == ("joined", mid)
    await score(second, mid, "r2", 10)
    s = await state_where(second, lambda s: "r2" in s["applied"])
    assert s["players"][player]["score"] == 20


async def test_move_updates_position(connect_player: Any) -> None:
    solo = await connect_player(name("mover"))
    mid = (await join(solo, "practice"))["matchId"]
    ack = await solo.request({"action": "act", "kind": "move", "matchId": mid, "id": "mv", "x": 7, "y": 9})
    assert ack == {"type": "ack", "id": "mv"}
    s = await state_where(solo, lambda s: "mv" in s["applied"])
    assert (s["players"][solo.player]["x"], s["players"][solo.player]["y"]) == (7, 9)


async def test_simultaneous_joins_pair_up_and_never_overfill(
    connect_player: Any, stack: LocalRuntime
) -> None:
    players = [await connect_player(name("rush")) for _ in range(6)]
    # (A generous timeout: six joins racing for seats on a loaded machine, and DynamoDB Local is slow.)
    answers = await asyncio.gather(*(join(p, "duel", f"j{i}", timeout=45) for i, p in enumerate(players)))
    seats: dict[str, list[str]] = {}
    for p, a in zip(players, answers, strict=True):
        seats.setdefault(a["matchId"], []).append(p.player)
    # Six duellists joining at the same instant make three full duels: none left waiting alone.
    assert sorted(len(v) for v in seats.values()) == [2, 2, 2], seats
    ops = Ops(stack.service, stack.aws_endpoint, stack.dynamodb_endpoint)
    for match_id, members in seats.items():
        roster = await asyncio.to_thread(ops.matches.roster, match_id)
        assert sorted(roster.players) == sorted(members)


async def test_a_player_back_on_a_new_connection_gets_the_current_state(connect_player: Any) -> None:
    player = name("resync")
    first = await connect_player(player)
    mid = (await join(first, "practice"))["matchId"]
    await score(first, mid, "r1", 30)
    last = await state_where(first, lambda s: "r1" in s["applied"])
    await first.ws.close()
    second = await connect_player(player)
    assert (await second.request({"action": "join", "mode": "practice", "matchId": mid, "id": "back"}))[
        "type"
    ] == "joined"
    # The new connection is told where the match stands: the `state` of the player's return (if the
    # processor saw the first connection close) or a copy of the last one pushed (if not yet).
    state = await state_where(second, lambda s: s["matchId"] == mid)
    assert state["players"][player]["score"] == 30 and state["players"][player]["presence"] == "here"
    # The copy is the very frame of that version, whatever else its batch applied (the join too, when
    # both landed in one batch).
    assert state["applied"] == ["back"] or state == last, (state, last)


async def test_the_leaderboard_action_pages_both_ways_and_around_the_caller(
    stack: LocalRuntime, connect_player: Any
) -> None:
    """The WebSocket `leaderboard` action: the top, `next` and `prev` cursors, a page centred on the
    caller (start=me), ties sharing a rank, and clear errors for boards, periods, seasons and cursors
    that do not exist."""
    import boto3

    from backend.game.boards import configured
    from backend.store.leaderboards import LeaderboardStore
    from tests.leaderboard_fill import fill

    tag = uuid.uuid4().hex[:6]
    me = await connect_player(f"lb{tag}-me")
    board = configured()["duel"]
    ops = await ask(me, {"board": "duel", "period": "weekly", "limit": 1})
    key = board.key("weekly", datetime.now(UTC), ops["season"])
    # Far above any score a bot or another test reaches: these rows are the top of the board.
    base = 10**12
    points = [50, 40, 40, 40, 40, 30, 20, 20, 10, 5, 5]
    players = [f"lb{tag}-{i:02d}" for i in range(len(points))]
    players[3] = me.player
    scores = {p: base + s for p, s in zip(players, points, strict=True)}
    store = LeaderboardStore(
        boto3.client("dynamodb", endpoint_url=stack.dynamodb_endpoint, region_name="us-east-1"),
        "gamebackend-local-leaderboards",
    )
    await asyncio.to_thread(fill, store, board, key, scores)
    ordered = sorted(scores, key=lambda p: (-scores[p], p))
    rank = {p: 1 + sum(1 for q in scores if scores[q] > scores[p]) for p in scores}
    expected = [[rank[p], p, scores[p]] for p in ordered]

    def rows(answer: dict[str, Any]) -> list[list[Any]]:
        assert answer["type"] == "leaderboard", answer
        return [[e["rank"], e["playerId"], e["score"]] for e in answer["entries"]]

    # Forwards, four at a time, then backwards from the last page: the same pages.
    pages = [await ask(me, {"board": "duel", "period": "weekly", "limit": 4})]
    assert "prev" not in pages[0]  # frames leave out what is None
    while len(pages) < 3:
        pages.append(
            await ask(me, {"board": "duel", "period": "weekly", "limit": 4, "cursor": pages[-1]["next"]})
        )
    # (The twelfth row, if any, is another test's: below all of these.)
    assert [row for page in pages for row in rows(page)][: len(expected)] == expected
    back = await ask(me, {"board": "duel", "period": "weekly", "limit": 4, "cursor": pages[2]["prev"]})
    assert rows(back) == rows(pages[1])
    assert [r[0] for r in expected[:5]] == [1, 2, 2, 2, 2]  # ties share a rank, the next skips ahead
    # Centred on the caller (two above, two below), and the caller's own entry.
    mine = await ask(me, {"board": "duel", "period": "weekly", "limit": 5, "start": "me", "around": True})
    at = ordered.index(me.player)
    assert rows(mine) == expected[max(0, at - 2) : at + 3]
    assert mine["me"] == {"rank": 2, "playerId": me.player, "score": base + 40}
    # A past or unknown season, board or period, and forged cursors: error frames, never silence.
    for query, code in (
        ({"board": "chess"}, "not_found"),
        ({"board": "duel", "period": "yearly"}, "not_found"),
        ({"board": "duel", "season": ops["season"] + 1}, "not_found"),
        ({"board": "duel", "cursor": "bm90LWEtY3Vyc29y"}, "bad_request"),
        ({"board": "duel", "cursor": pages[1]["next"], "start": "me"}, "invalid_message"),
        ({"board": "Duel"}, "invalid_message"),
    ):
        answer = await me.request({"action": "leaderboard", "id": "lb-bad", **query})
        assert (answer["type"], answer.get("code")) == ("error", code), (query, answer)


async def ask(client: Client, query: dict[str, Any]) -> dict[str, Any]:
    answer = await client.request({"action": "leaderboard", "id": f"lb-{uuid.uuid4().hex[:6]}", **query})
    assert answer["type"] == "leaderboard", answer
    return answer
