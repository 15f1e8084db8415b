"""The game's names, each spelled once: modes, boards, leaderboard periods and match statuses.

The Literal types are what pydantic validates and the OpenAPI document and JSON Schema list; the tuples
hold the same values for code that iterates over them. (Id grammars live in backend.ids.)
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# The wire protocol's version (backend.protocol): in `pong` and `joined`, and what `?protocol=` on
# connect must name when a client sends it. Here, so that `$connect` reads it without the models.
PROTOCOL_VERSION: Final = 2

ModeName = Literal["practice", "duel", "arena"]
GLOBAL_BOARD: Final = "global"  # every score counts towards it, whatever the mode
BoardName = Literal["global", ModeName]
PeriodName = Literal["alltime", "daily", "weekly"]
MatchStatus = Literal["waiting", "running", "finished"]

MODE_NAMES: tuple[ModeName, ...] = get_args(ModeName)
BOARD_NAMES: tuple[BoardName, ...] = get_args(BoardName)
PERIODS: tuple[PeriodName, ...] = get_args(PeriodName)
MATCH_STATUSES: tuple[MatchStatus, ...] = get_args(MatchStatus)
