"""Each name of the game is spelled once (backend.vocabulary), and what derives from it agrees."""

from __future__ import annotations

import re

from backend import protocol
from backend.game import modes
from backend.game.boards import configured
from backend.vocabulary import (
    ALLTIME,
    BOARD_NAME_PATTERN,
    GLOBAL_BOARD,
    MODE_NAME_PATTERN,
    PERIOD_NAME_PATTERN,
)


def test_every_declared_mode_loads_its_plugin_under_its_name() -> None:
    loaded = modes.configured()  # serverless.yml's custom.modes, as every function reads it
    assert loaded.names() and all(re.fullmatch(MODE_NAME_PATTERN, name) for name in loaded.names())
    assert all(loaded[name].name == name for name in loaded.names())


def test_the_declared_boards_are_the_global_board_and_one_per_mode() -> None:
    boards = configured()  # serverless.yml's custom.leaderboards, as every function reads it
    first, *per_mode = boards.names()
    assert first == GLOBAL_BOARD and sorted(per_mode) == sorted(modes.configured().names())
    assert all(re.fullmatch(BOARD_NAME_PATTERN, name) for name in boards.names())
    assert all(re.fullmatch(PERIOD_NAME_PATTERN, p.name) for b in boards for p in b.periods)
    assert all(ALLTIME in {p.name for p in b.periods} for b in boards)


def test_the_protocol_validates_the_same_names() -> None:
    assert protocol.Join.model_fields["mode"].metadata[0].pattern == MODE_NAME_PATTERN
    assert protocol.LeaderboardQuery.model_fields["board"].default == GLOBAL_BOARD
    assert protocol.LeaderboardQuery.model_fields["period"].default == ALLTIME
