"""Rows on a board as the projector leaves them: credited, then counted in the board's rank tree."""

from __future__ import annotations

import uuid

from backend.game.boards import Board
from backend.store.leaderboards import Contribution, LeaderboardStore


def fill(store: LeaderboardStore, board: Board, key: str, scores: dict[str, int], *, at: int = 1_000) -> None:
    """Each player's row brought to their score by one finished match of its own, and the tree synced."""
    held = {}
    for player, score in scores.items():
        done = store.credit_row(
            board,
            key,
            player,
            [Contribution(f"m-{uuid.uuid4().hex}", 0, score, at, finished=True)],
            expires=None,
        )
        assert done.held is not None
        held[player] = done.held
    store.sync(key, held, expires=None)
