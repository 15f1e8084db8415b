"""What a finished match earns its players: the settlement's rules (the match-end saga applies them).

Pure: scores in, placements and coins out. Placements rank by final score, ties sharing the better
place (1, 1, 3); a win is a first place in a match of two players or more. Coins by mode and place
are the game's to configure here; practice earns none, nor does a mode not listed (connect-four).
"""

from __future__ import annotations

from collections.abc import Mapping

from backend.vocabulary import ModeName

# Coins for the 1st, 2nd, ... place of a mode; a place past the end earns nothing.
REWARDS: dict[ModeName, tuple[int, ...]] = {
    "practice": (),
    "duel": (20, 5),
    "arena": (50, 25, 10, 5),
}


def placements(scores: Mapping[str, int]) -> dict[str, int]:
    """player -> place (1 = best), standard competition ranking."""
    ordered = sorted(scores.values(), reverse=True)
    return {player: 1 + ordered.index(score) for player, score in scores.items()}


def winners(scores: Mapping[str, int]) -> set[str]:
    if len(scores) < 2:
        return set()
    return {player for player, place in placements(scores).items() if place == 1}


def coins(mode: ModeName, scores: Mapping[str, int]) -> dict[str, int]:
    """player -> coins earned, for the players who earn some."""
    # A mode the table does not list earns nothing: modes are plug-ins that serverless.yml adds (a new
    # one must not stop its matches' settlement), and coins are granted by placement, which cannot tell
    # a connect-four draw (1 point each, both placed first) from a win.
    table = REWARDS.get(mode, ())
    out = {p: table[place - 1] for p, place in placements(scores).items() if place <= len(table)}
    return {p: c for p, c in out.items() if c > 0}
