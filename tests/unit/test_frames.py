from __future__ import annotations

import json
from typing import Any

import pytest

from backend import frames
from backend.errors import InvalidMessage, MalformedFrame, UnknownAction
from backend.protocol import Join, LeaderboardQuery, Ping
from games.race import Move, Score


@pytest.mark.parametrize("body", [None, "", "garbage", "{", "[1,2]", '"text"', "42", "null"])
def test_non_objects_are_malformed(body: str | None) -> None:
    with pytest.raises(MalformedFrame):
        frames.decode(body)


@pytest.mark.parametrize(
    "raw", [{}, {"action": "fly"}, {"action": 3}, {"action": None}, {"action": "$default"}]
)
def test_missing_or_unknown_actions(raw: dict[str, object]) -> None:
    with pytest.raises(UnknownAction):
        frames.parse(raw)


@pytest.mark.parametrize(
    "raw",
    [
        {"action": "ping", "id": 5},
        {"action": "ping", "extra": 1},
        {"action": "join", "mode": "solo"},
        {"action": "act", "kind": "score", "matchId": "m-" + "0" * 32, "id": "a1", "points": 0},
        {"action": "act", "kind": "score", "matchId": "m-" + "0" * 32, "id": "a1", "points": 101},
        {"action": "act", "kind": "score", "matchId": "m-" + "0" * 32, "id": "a1", "points": "5"},
        {"action": "act", "kind": "jump", "matchId": "m-" + "0" * 32, "id": "a1"},
        {"action": "act", "kind": "move", "matchId": "nope", "id": "a1", "x": 1, "y": 2},
        {"action": "act", "kind": "move", "matchId": "m-" + "0" * 32, "x": 1, "y": 2},
        {"action": "leaderboard", "limit": 1000},
    ],
)
def test_wrong_fields_are_invalid(raw: dict[str, object]) -> None:
    with pytest.raises(InvalidMessage):
        frames.parse(raw)


def test_valid_frames_parse_to_their_models() -> None:
    mid = "m-" + "a" * 32
    assert isinstance(frames.parse({"action": "ping"}), Ping)
    assert isinstance(frames.parse({"action": "join", "mode": "duel", "id": "r1"}), Join)
    score = frames.parse({"action": "act", "kind": "score", "matchId": mid, "id": "a1", "points": 7})
    assert isinstance(score, Score) and score.points == 7
    assert isinstance(
        frames.parse({"action": "act", "kind": "move", "matchId": mid, "id": "a2", "x": 1, "y": 2}), Move
    )
    board = frames.parse({"action": "leaderboard"})
    assert isinstance(board, LeaderboardQuery) and (board.board, board.period, board.limit) == (
        "global",
        "alltime",
        10,
    )


def test_request_ref_only_echoes_sane_ids() -> None:
    assert frames.request_ref({"id": "abc"}) == "abc"
    assert frames.request_ref({"id": 5}) is None
    assert frames.request_ref({"id": "x" * 65}) is None
    assert (
        frames.request_ref(json.loads('{"id": "\\ud800"}')) is None
    )  # found by tests/store/test_fuzz_handlers.py
    assert frames.request_ref(json.loads("[1]")) is None


def test_error_messages_name_the_field() -> None:
    with pytest.raises(InvalidMessage) as err:
        frames.parse({"action": "act", "kind": "score", "matchId": "m-" + "0" * 32, "id": "a1", "points": 0})
    assert err.value.message.startswith("points:")


def test_dead_letter_batches_respect_sqs_limits() -> None:
    from streams.deadletter import _batches

    small = [{"Id": str(i), "MessageBody": "x" * 100} for i in range(23)]
    assert [len(b) for b in _batches(small)] == [10, 10, 3]
    large = [{"Id": str(i), "MessageBody": "x" * 150_000} for i in range(3)]
    assert [len(b) for b in _batches(large)] == [1, 1, 1]


@pytest.mark.parametrize(
    "body",
    [
        '{"action":"ping","id":' + "[" * 1000 + "]" * 1000 + "}",  # past the parser's own stack
        '{"action":"ping","id":' + "[" * 40 + "]" * 40 + "}",  # parses, but deeper than MAX_DEPTH
        "[" * 100_000 + "]" * 100_000,
        '{"action":"ping","id":NaN}',
        '{"action":"act","kind":"score","points":Infinity}',
        '{"action":"act","kind":"score","points":-1e400}',
        '{"action":"ping","id":' + "1" * 5000 + "}",  # over Python's 4,300-digit limit
    ],
    ids=["1000-deep", "40-deep", "100000-deep", "nan", "infinity", "-1e400", "5000-digits"],
)
def test_hostile_json_is_a_malformed_frame(body: str) -> None:
    with pytest.raises(MalformedFrame):
        frames.decode(body)


def test_json_within_the_depth_limit_still_reaches_validation() -> None:
    from backend import wirejson

    nested = '{"action":"ping","id":' + "[" * (wirejson.MAX_DEPTH - 1) + "]" * (wirejson.MAX_DEPTH - 1) + "}"
    with pytest.raises(InvalidMessage):
        frames.parse(frames.decode(nested))


def test_hostile_frames_get_their_error_frame_from_the_handler() -> None:
    from backend.caller import Caller
    from backend.service import handle_frame

    def no_routes() -> Any:
        raise AssertionError("a hostile frame never reaches the game's routes")

    caller = Caller(connection_id="c", player_id="alice", role="player", received_at=0)  # type: ignore[arg-type]
    for body in ("[" * 1000 + "]" * 1000, '{"action":"ping","id":' + "{" * 1000):
        answer = json.loads(handle_frame(no_routes, caller, body))
        assert (answer["type"], answer["code"]) == ("error", "malformed_frame"), answer
    # A lone surrogate parses, then could not be written back in the error's `ref`: the frame failed.
    answer = json.loads(handle_frame(no_routes, caller, '{"action":"ping","id":"\\ud800"}'))
    assert (answer["type"], answer["code"], answer.get("ref")) == ("error", "invalid_message", None), answer


def test_the_gateway_routes_hostile_json_to_default(service: object) -> None:
    from local.gateway import Gateway

    gateway = Gateway(service, {})  # type: ignore[arg-type]
    assert gateway.select_route('{"action":"ping"}') == "ping"
    for body in ("[" * 1000 + "]" * 1000, '{"action":"ping","x":' + "[" * 100_000 + "]" * 100_000 + "}"):
        assert gateway.select_route(body) == "$default"
