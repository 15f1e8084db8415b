"""Boards as data: custom.leaderboards parsed, validated with a message that says where, and keyed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from backend.game.boards import BoardConfigError, Boards

PERIODS = {"alltime": {}, "daily": {"reset": "0 0 * * *", "id": "%Y-%m-%d"}, "hourly": {"reset": "0 * * * *"}}


def parse(boards: dict[str, Any], periods: dict[str, Any] | None = None) -> Boards:
    return Boards.parse({"periods": PERIODS if periods is None else periods, "boards": boards})


def test_defaults_are_todays_boards() -> None:
    board = parse({"global": {"periods": ["alltime"]}})["global"]
    assert (board.operator, board.order, board.tie_break, board.subscore) == ("incr", "desc", "none", None)
    assert board.modes == {"practice", "duel", "arena", "connect-four"}  # every mode of serverless.yml
    assert board.rank_frames == ()


def test_a_board_declares_every_feature() -> None:
    boards = parse(
        {
            "duel-best": {
                "modes": ["duel"],
                "operator": "best",
                "order": "asc",
                "tieBreak": "subscore",
                "subscore": "wins",
                "periods": ["alltime", "hourly"],
                "rankFrames": ["hourly"],
            },
            "global": {"periods": ["daily"], "tieBreak": "first"},
        }
    )
    b = boards["duel-best"]
    assert (b.operator, b.order, b.tie_break, b.subscore, b.rank_frames) == (
        "best",
        "asc",
        "subscore",
        "wins",
        ("hourly",),
    )
    assert [x.name for x in boards.for_mode("duel")] == ["duel-best", "global"]
    assert [x.name for x in boards.for_mode("arena")] == ["global"]
    at = datetime(2026, 11, 23, 10, 42, tzinfo=UTC)
    assert b.key("hourly", at) == "duel-best#hourly#2026-11-23T1000Z"  # the default id: the start's minute
    assert b.key("alltime", at, season=2) == "duel-best@s2#alltime#all"
    assert b.period("hourly").expires(at) == int(datetime(2026, 12, 28, 11, tzinfo=UTC).timestamp())
    assert b.period("alltime").expires(at) is None
    assert boards["global"].key("daily", at) == "global#daily#2026-11-23"


@pytest.mark.parametrize(
    ("boards", "periods", "problem"),
    [
        ({}, None, "at least one board"),
        ({"Global": {"periods": ["alltime"]}}, None, "boards.Global: a board name matches"),
        ({"g#1": {"periods": ["alltime"]}}, None, "a board name matches"),
        (
            {"g": {"periods": ["alltime"], "operator": "decr"}},
            None,
            "boards.g.operator: 'decr' is not one of",
        ),
        ({"g": {"periods": ["alltime"], "order": "up"}}, None, "boards.g.order"),
        ({"g": {"periods": ["alltime"], "tieBreak": "coin"}}, None, "boards.g.tieBreak"),
        ({"g": {"periods": ["alltime"], "subscore": "wins"}}, None, "only a board with tieBreak: subscore"),
        (
            {"g": {"periods": ["alltime"], "tieBreak": "subscore", "subscore": "kills"}},
            None,
            "boards.g.subscore",
        ),
        ({"g": {"periods": []}}, None, "boards.g.periods: a non-empty list"),
        ({"g": {"periods": ["alltime", "alltime"]}}, None, "distinct"),
        ({"g": {"periods": ["weekly"]}}, None, "\\['weekly'\\] are not declared"),
        (
            {"g": {"periods": ["alltime"], "rankFrames": ["daily"]}},
            None,
            "rankFrames: a list of this board's",
        ),
        ({"g": {"periods": ["alltime"], "modes": ["chess"]}}, None, "boards.g.modes"),
        ({"g": {"periods": ["alltime"], "modes": []}}, None, "boards.g.modes"),
        ({"g": {"periods": ["alltime"], "colour": "red"}}, None, "boards.g: unknown keys \\['colour'\\]"),
        ({"g": {"periods": ["p"]}}, {"p": {"reset": "0 0 31 2 *"}}, "periods.p.reset: .* never fires"),
        ({"g": {"periods": ["p"]}}, {"p": {"reset": "0 0 * * *", "id": "%Y#%m"}}, "periods.p.id"),
        ({"g": {"periods": ["p"]}}, {"p": {"reset": "0 0 * * *", "keepDays": -1}}, "periods.p.keepDays"),
        ({"g": {"periods": ["p"]}}, {"p": {"id": "%Y"}}, "periods.p: a period without `reset` never ends"),
        ({"g": {"periods": ["P"]}}, {"P": {}}, "periods.P: a period name matches"),
    ],
)
def test_a_bad_declaration_is_refused_saying_where(
    boards: dict[str, Any], periods: dict[str, Any] | None, problem: str
) -> None:
    with pytest.raises(BoardConfigError, match=problem):
        parse(boards, periods)


def test_the_environment_variable_must_be_json() -> None:
    with pytest.raises(BoardConfigError, match="LEADERBOARDS is not JSON"):
        Boards.from_json("{boards: 1")
    with pytest.raises(BoardConfigError, match="expected a mapping"):
        Boards.from_json("[1]")
