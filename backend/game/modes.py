"""The game modes, in one table: seats, the score that wins, and the board they count towards."""

from __future__ import annotations

from dataclasses import dataclass

from backend.vocabulary import ModeName


@dataclass(frozen=True)
class Mode:
    name: ModeName
    seats: int  # a match is `waiting` until it has this many players, then `running`
    target_score: int  # the first player to reach it wins and the match is `finished`


MODES: dict[str, Mode] = {
    "practice": Mode("practice", seats=1, target_score=100),
    "duel": Mode("duel", seats=2, target_score=200),
    "arena": Mode("arena", seats=8, target_score=300),
}
