"""Each name of the game is spelled once (backend.vocabulary), and what derives from it agrees."""

from __future__ import annotations

from typing import get_args

from backend import protocol
from backend.game.modes import MODES
from backend.vocabulary import BOARD_NAMES, GLOBAL_BOARD, MODE_NAMES, PERIODS


def test_every_mode_name_has_a_mode_and_every_mode_a_name() -> None:
    assert tuple(MODES) == MODE_NAMES
    assert all(mode.name == name for name, mode in MODES.items())


def test_the_boards_are_the_global_board_and_one_per_mode() -> None:
    assert (GLOBAL_BOARD, *MODE_NAMES) == BOARD_NAMES


def test_the_protocol_validates_the_same_names() -> None:
    assert get_args(protocol.Mode) == MODE_NAMES
    assert get_args(protocol.Period) == PERIODS
    assert protocol.LeaderboardQuery.model_fields["board"].default == GLOBAL_BOARD
