"""Each name of the game is spelled once (backend.vocabulary), and what derives from it agrees."""

from __future__ import annotations

import re
from typing import get_args

from backend import protocol
from backend.game.boards import configured
from backend.game.modes import MODES
from backend.vocabulary import (
    ALLTIME,
    BOARD_NAME_PATTERN,
    GLOBAL_BOARD,
    MODE_NAMES,
    PERIOD_NAME_PATTERN,
)


def test_every_mode_name_has_a_mode_and_every_mode_a_name() -> None:
    assert tuple(MODES) == MODE_NAMES
    assert all(mode.name == name for name, mode in MODES.items())


def test_the_declared_boards_are_the_global_board_and_one_per_mode() -> None:
    boards = configured()  # serverless.yml's custom.leaderboards, as every function reads it
    assert boards.names() == (GLOBAL_BOARD, *MODE_NAMES)
    assert all(re.fullmatch(BOARD_NAME_PATTERN, name) for name in boards.names())
    assert all(re.fullmatch(PERIOD_NAME_PATTERN, p.name) for b in boards for p in b.periods)
    assert all(ALLTIME in {p.name for p in b.periods} for b in boards)


def test_the_protocol_validates_the_same_names() -> None:
    assert get_args(protocol.Mode) == MODE_NAMES
    assert protocol.LeaderboardQuery.model_fields["board"].default == GLOBAL_BOARD
    assert protocol.LeaderboardQuery.model_fields["period"].default == ALLTIME
