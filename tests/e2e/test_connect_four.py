"""Connect four (games/connect_four.py) played whole over real WebSockets on the local runtime: a win, a
draw, illegal drops refused, a turn that runs out on the local stage's turn timer, a forfeit, and the
points the server decided on the `connect-four` board (the `leaderboard` frame and the admin API)."""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from local.runtime import LocalRuntime
from tests.conftest import token_for
from tests.e2e.conftest import Client
from tests.e2e.test_game import join, my_entry, name, settled_entry, state_where

pytestmark = pytest.mark.e2e
MODE = "connect-four"
ids = itertools.count(1)


class Match:
    """Two players in one match, and the newest state they were both pushed."""

    def __init__(self, first: Client, second: Client, mid: str, state: dict[str, Any]) -> None:
        self.first, self.second, self.mid, self.state = first, second, mid, state
        self.players = {first.player: first, second.player: second}

    async def play(self, columns: list[int]) -> dict[str, Any]:
        """Drops into these columns in turn, each by the player whose turn the newest state says it
        is; the state that applied the last one, as both players were pushed it."""
        for column in columns:
            mover = self.players[self.state["game"]["turn"]]
            action_id = await drop(mover, self.mid, column)
            # The mover first: a refusal is pushed to them only.
            others = [c for c in self.players.values() if c is not mover]
            seen = [await applied(c, action_id) for c in (mover, *others)]
            assert seen[0] == seen[1]  # both players are pushed the same state
            self.state = seen[0]
        return self.state


async def applied(client: Client, action_id: str) -> dict[str, Any]:
    """The state that applied the action; a `rejected` for it fails the test with its reason (a turn
    timer that ran out on a loaded machine says so, instead of a bare timeout)."""
    frame = await client.wait_for(
        lambda f: (
            (f.get("type") == "state" and action_id in f["applied"])
            or (f.get("type") == "rejected" and f.get("id") == action_id)
        ),
        timeout=20,
    )
    assert frame["type"] == "state", f"{action_id} refused: {frame}"
    return frame


async def pair(connect_player: Any) -> Match:
    """Two new players in one new match: the first opens it (a waiting match another test left is
    joined, left, and looked for again), the second takes the other seat."""
    first, second = await connect_player(name("c4a")), await connect_player(name("c4b"))
    joined = await join(first, MODE)
    while joined["status"] != "waiting" or joined["players"] != [first.player]:
        await first.request({"action": "leave", "matchId": joined["matchId"], "id": f"l{next(ids)}"})
        joined = await join(first, MODE, ref=f"j{next(ids)}")
    mid = joined["matchId"]
    other = await join(second, MODE)
    assert other["matchId"] == mid and other["status"] == "running", other
    for client in (first, second):
        start = await state_where(client, lambda s: s["matchId"] == mid and s["status"] == "running")
        assert start["mode"] == MODE
        assert start["game"]["seats"] == [first.player, second.player]  # the first joiner moves first
        assert start["game"]["turn"] == first.player and start["game"]["ply"] == 1
    return Match(first, second, mid, start)


async def drop(client: Client, mid: str, column: int) -> str:
    action_id = f"d{next(ids)}"
    ack = await client.request(
        {"action": "act", "kind": "drop", "matchId": mid, "id": action_id, "column": column}
    )
    assert ack == {"type": "ack", "id": action_id}, ack
    return action_id


async def admin_board(stack: LocalRuntime, board: str) -> list[tuple[str, int]]:
    def get() -> Any:
        request = urllib.request.Request(
            f"{stack.http_url}/admin/leaderboards/{board}?period=alltime&limit=100",
            headers={"Authorization": f"Bearer {token_for('ops', admin=True)}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.loads(answer.read())
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{err.code}: {err.read()[:300]!r}") from None

    body = await asyncio.to_thread(get)
    return [(e["playerId"], e["score"]) for e in body["entries"]]


async def test_a_win_with_illegal_drops_refused_and_three_points_on_the_board(
    stack: LocalRuntime, connect_player: Any
) -> None:
    match = await pair(connect_player)
    alice, bob, mid = match.first, match.second, match.mid

    # Out of turn: acknowledged by the message route (it is a well-formed drop), refused by the rules.
    early = await drop(bob, mid, 3)
    rejected = await bob.wait_for(lambda f: f.get("type") == "rejected" and f.get("id") == early)
    assert rejected["code"] == "illegal_move" and "not your turn" in rejected["message"], rejected
    # Off the board: refused before it is published.
    answer = await alice.request(
        {"action": "act", "kind": "drop", "matchId": mid, "id": f"d{next(ids)}", "column": 7}
    )
    assert answer["type"] == "error" and answer["code"] == "invalid_message", answer

    # Alice fills column 0 three high; bob answers in column 1 (the refused drop changed nothing).
    state = await match.play([0, 1, 0, 1, 0, 1])
    assert state["game"]["board"][0] == [0, 0, 0] and state["game"]["board"][3] == []
    assert state["status"] == "running" and state["game"]["turn"] == alice.player
    assert {p: s["score"] for p, s in state["players"].items()} == {alice.player: 0, bob.player: 0}

    state = await match.play([0])  # the fourth: vertical
    assert (state["status"], state["winner"]) == ("finished", alice.player)
    assert state["game"]["result"] == "four" and state["game"]["line"] == [[0, 0], [0, 1], [0, 2], [0, 3]]
    assert {p: s["score"] for p, s in state["players"].items()} == {alice.player: 3, bob.player: 0}

    # After the end: refused as match_not_running.
    late = await drop(bob, mid, 5)
    rejected = await bob.wait_for(lambda f: f.get("type") == "rejected" and f.get("id") == late)
    assert rejected["code"] == "match_not_running", rejected

    # The points the server decided reach the mode's board: as the player reads it, and the admin.
    assert (await settled_entry(alice, MODE, score=3))["playerId"] == alice.player
    board = await admin_board(stack, MODE)
    assert (alice.player, 3) in board
    assert all(player != bob.player for player, _ in board)  # a loss credits nothing


async def test_a_full_board_is_a_draw_worth_one_point_each(connect_player: Any) -> None:
    match = await pair(connect_player)
    alice, bob = match.first, match.second
    # The draw of the unit tests (tests/unit/test_connect_four.py): pairs of columns, then column 6.
    columns: list[int] = []
    for pair_of_columns in ((0, 1), (2, 3), (4, 5)):
        for rows in range(3):
            a, b = pair_of_columns if rows % 2 == 0 else pair_of_columns[::-1]
            columns += [a, b, b, a]
    columns += [6] * 6
    state = await match.play(columns)
    assert (state["status"], state.get("winner"), state["game"]["result"]) == ("finished", None, "draw")
    assert all(len(column) == 6 for column in state["game"]["board"])
    assert {p: s["score"] for p, s in state["players"].items()} == {alice.player: 1, bob.player: 1}
    for client in (alice, bob):
        await settled_entry(client, MODE, score=1)


def local_turn_seconds(service: Any) -> float:
    """custom.modes.connect-four.options.turnSeconds on the local stage, as every function gets it."""
    settings = service.functions["message"].environment["GAME_SETTINGS"]["Fn::ToJsonString"]
    return float(settings["modes"][MODE]["options"]["turnSeconds"])


async def test_a_turn_that_runs_out_loses_the_match(service: Any, connect_player: Any) -> None:
    turn_seconds = local_turn_seconds(service)
    assert 0 < turn_seconds <= 15, "the local stage's turn timer should be short (custom.stages.local)"
    match = await pair(connect_player)
    alice, bob, mid = match.first, match.second, match.mid
    state = await match.play([3])
    assert state["game"]["turn"] == bob.player and state["game"]["deadline"] > 0
    # Bob does not move: the local stage's turn timer (custom.stages.local.turnSeconds) runs out.
    over = await state_where(alice, lambda s: s["status"] == "finished", timeout=turn_seconds + 20)
    assert (over["winner"], over["game"]["result"]) == (alice.player, "timeout")
    assert {p: s["score"] for p, s in over["players"].items()} == {alice.player: 3, bob.player: 0}
    assert (await state_where(bob, lambda s: s["status"] == "finished"))["version"] == over["version"]
    # Bob's late drop is refused; the timer, delivered at least once, ended the match once.
    late = await drop(bob, mid, 3)
    assert (await bob.wait_for(lambda f: f.get("id") == late and f.get("type") == "rejected"))["code"] == (
        "match_not_running"
    )
    await settled_entry(alice, MODE, score=3)


async def test_a_player_who_drops_and_does_not_come_back_forfeits(connect_player: Any) -> None:
    match = await pair(connect_player)
    alice, bob = match.first, match.second
    await match.play([2, 2])
    await bob.ws.close()
    away = await alice.wait_for(lambda f: f.get("type") == "presence" and f.get("presence") == "away")
    assert away["playerId"] == bob.player
    # The reconnect grace (custom.stages.local.reconnectGrace) runs out before alice's turn does.
    gone = await alice.wait_for(
        lambda f: f.get("type") == "presence" and f.get("presence") == "forfeited", timeout=30
    )
    assert gone["playerId"] == bob.player
    over = await state_where(alice, lambda s: s["status"] == "finished")
    assert (over["winner"], over["game"]["result"]) == (alice.player, "walkover")
    assert over["players"][alice.player]["score"] == 3


async def test_leaving_hands_the_other_player_the_win(connect_player: Any) -> None:
    match = await pair(connect_player)
    alice, bob, mid = match.first, match.second, match.mid
    left = await alice.request({"action": "leave", "matchId": mid, "id": f"l{next(ids)}"})
    assert left["type"] == "left", left
    over = await state_where(bob, lambda s: s["status"] == "finished")
    assert (over["winner"], over["game"]["result"]) == (bob.player, "walkover")
    assert {p: s["score"] for p, s in over["players"].items()} == {alice.player: 0, bob.player: 3}
    await settled_entry(bob, MODE, score=3)
    assert await my_entry(alice, MODE) is None  # a loss credits nothing
