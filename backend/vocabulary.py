"""The game's names, each spelled once: modes and match statuses, and the grammar of board and period names.

The Literal types are what pydantic validates and the OpenAPI document and JSON Schema list; the tuples
hold the same values for code that iterates over them. (Id grammars live in backend.ids.) Boards and
leaderboard periods are data, declared in serverless.yml's custom.leaderboards (backend.game.boards):
only their grammar and the defaults of the `leaderboard` frame are here.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

# The wire protocol's version (backend.protocol): in `pong` and `joined`, and what `?protocol=` on
# connect must name when a client sends it. Here, so that `$connect` reads it without the models.
PROTOCOL_VERSION: Final = 2

# Modes are data (serverless.yml custom.modes, each a plug-in: backend.game.modes): only their grammar here.
MODE_NAME_PATTERN: Final = r"^[a-z][a-z0-9-]{0,31}$"
ModeName = str
GLOBAL_BOARD: Final = "global"  # the board a `leaderboard` frame reads when it names none
ALLTIME: Final = "alltime"  # likewise, the period
MatchStatus = Literal["waiting", "running", "finished"]
# Board and period names end up in table keys, between `#` separators, and in admin URLs.
BOARD_NAME_PATTERN: Final = r"^[a-z][a-z0-9-]{0,31}$"
PERIOD_NAME_PATTERN: Final = r"^[a-z][a-z0-9-]{0,15}$"

MATCH_STATUSES: tuple[MatchStatus, ...] = get_args(MatchStatus)
