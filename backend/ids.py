"""Identifier types, so that signatures say what they take, and the grammar of each id.

Player ids come from tokens (`sub`) and end up in table keys, frames and admin URLs
(`/admin/leaderboards/{board}/players/{playerId}`), so they must survive a URL path unchanged:

    player id   1-64 of  A-Z a-z 0-9 _ . -   the first a letter, a digit or `_`

That rules out `.` and `..` (which curl, browsers and proxies resolve away as path segments, so an
operator could never reach such a player), a leading `-` (read as an option by command-line tools) and a
leading `.`. Every id is matched whole: the patterns are anchored with `^...$`, which the OpenAPI
document and pydantic (whose regex `$` is the end of the text) read as "the whole value", and Python code
uses `fullmatch`, never `re.match`, whose `$` also matches before a trailing newline.
"""

from __future__ import annotations

import re
from typing import NewType

ConnectionId = NewType("ConnectionId", str)
PlayerId = NewType("PlayerId", str)
MatchId = NewType("MatchId", str)

PLAYER_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
MATCH_ID_PATTERN = r"^m-[0-9a-f]{32}$"
ACTION_ID_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
# What API Gateway hands out (base64-like, e.g. "L0SM9cOFvHcCIhw="), and what the local gateway mints.
CONNECTION_ID_PATTERN = r"^[A-Za-z0-9_=+-]{1,128}$"

_PLAYER_ID = re.compile(PLAYER_ID_PATTERN)


def is_player_id(value: object) -> bool:
    """True for a str that is a whole player id (not one followed by a newline)."""
    return isinstance(value, str) and _PLAYER_ID.fullmatch(value) is not None
