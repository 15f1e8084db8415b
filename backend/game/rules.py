"""The game rules, as the rest of the backend calls them: `apply(state, event) -> (state, outcome)`.

Pure: no I/O, no clock, no randomness. Each match is played by its mode's plug-in (backend.game.plugin,
loaded by backend.game.modes from serverless.yml's custom.modes); this module only finds it. The
processor, the replay command and the tests all run these same functions, so a match rebuilt from its
event log equals the stored match by construction.
"""

from __future__ import annotations

from backend.game import modes
from backend.game.plugin import (
    SEEN_PER_PLAYER,
    TOKEN,
    Applied,
    GameMode,
    Ignored,
    Match,
    Outcome,
    Player,
    Refused,
    Status,
    Timer,
)
from backend.protocol import GameEvent

__all__ = [
    "SEEN_PER_PLAYER",
    "TOKEN",
    "Applied",
    "GameMode",
    "Ignored",
    "Match",
    "Outcome",
    "Player",
    "Refused",
    "Status",
    "Timer",
    "apply",
    "new_match",
]


def new_match(match_id: str, mode: str, *, using: modes.Modes | None = None) -> Match:
    found = using or modes.configured()
    if mode not in found:
        raise ValueError(f"unknown mode {mode!r}")
    return found[mode].initial(match_id)


def apply(state: Match, event: GameEvent, *, using: modes.Modes | None = None) -> tuple[Match, Outcome]:
    """The match after `event`, and what became of it (GameMode.apply of the match's mode)."""
    return (using or modes.configured())[state.mode].apply(state, event)
