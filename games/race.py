"""A race to a target score: the `practice`, `duel` and `arena` modes (one seat, two, eight).

Players report points (`score`) and move around (`move`); the first to reach the mode's `targetScore`
wins. The points are the client's claim, so the mode declares plausibility bounds
(options.plausibility) and the rules refuse what exceeds them as `implausible`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import Field

from backend.errors import GameError
from backend.game.plugin import ActFrame, GameMode, Match

Coordinate = Annotated[int, Field(ge=0, le=1000)]


class Score(ActFrame):
    kind: Literal["score"]
    points: Annotated[int, Field(ge=1, le=100)]


class Move(ActFrame):
    kind: Literal["move"]
    x: Coordinate
    y: Coordinate


class Race(GameMode):
    actions = (Score, Move)
    reports_scores = True

    def configure(self, options: Mapping[str, Any]) -> None:
        target = options.get("targetScore")
        if not isinstance(target, int) or target < 1:
            raise ValueError("options.targetScore must be a positive integer")
        self.target = target

    def play(self, state: Match, player: str, action: ActFrame, at: int) -> Match | GameError:
        me = state.players[player]
        if isinstance(action, Score):
            assert self.plausibility is not None
            refusal = self.plausibility.refusal(state, me, action.points, at)
            if refusal is not None:
                return refusal
            me = replace(me, score=me.score + action.points)
        elif isinstance(action, Move):
            me = replace(me, x=action.x, y=action.y)
        return replace(state, players={**state.players, player: me})

    def ended(self, state: Match) -> tuple[bool, str | None]:
        # The first to reach the target: one action moves one player, so there is at most one.
        reached = [p for p, s in state.players.items() if s.score >= self.target]
        return (True, reached[0]) if reached else (False, None)


MODE = Race
