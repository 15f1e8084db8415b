"""Identifier types, so that signatures say what they take."""

from __future__ import annotations

from typing import NewType

ConnectionId = NewType("ConnectionId", str)
PlayerId = NewType("PlayerId", str)
MatchId = NewType("MatchId", str)
ActionId = NewType("ActionId", str)

# Player ids come from tokens and end up in keys and frames: keep them short and boring.
PLAYER_ID_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
MATCH_ID_PATTERN = r"^m-[0-9a-f]{32}$"
ACTION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
