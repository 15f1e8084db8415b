"""Pages of a board in rank order, and their cursors: pure, no I/O.

Rank order is the board's sort key (the score, or on a board with a tie-break its rank key), best first
in the board's order, then the player id. A page's ranks come from the rank tree for its first row
(how many rows are better, how many share its key) and, after that, from the page itself: every key
group between the first and the last lies wholly on the page.

A cursor names a row and a direction: the page strictly after it, or strictly before it. It holds no
rank (ranks are computed again for every page, so a forged cursor cannot forge one), and it is taken back
only in the exact shape a page gave out.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from backend.ids import PLAYER_ID_PATTERN

Direction = Literal["after", "before"]
MAX_KEY = 10**38 - 1  # what a DynamoDB number holds


@dataclass(frozen=True)
class Row:
    player_id: str
    score: int
    subscore: int | None = None
    key: int | None = None  # the sort key when it is not the score (a board with a tie-break)

    @property
    def sort(self) -> int:
        return self.score if self.key is None else self.key


def order(rows: list[Row], descending: bool) -> list[Row]:
    """Rows in rank order, each player once."""
    unique = {r.player_id: r for r in rows}.values()
    return sorted(unique, key=lambda r: (-r.sort if descending else r.sort, r.player_id))


def precedes(a: Row, b: Row, descending: bool) -> bool:
    """Whether a comes strictly before b in rank order."""
    ka = (-a.sort if descending else a.sort, a.player_id)
    kb = (-b.sort if descending else b.sort, b.player_id)
    return ka < kb


def ranked(rows: list[Row], better: int, group: int) -> list[tuple[int, Row]]:
    """Competition ranks ("1224") of rows in rank order, given that `better` rows of the board come
    before the first row's key and `group` rows share that key (the first included)."""
    if not rows:
        return []
    first = rows[0].sort
    on_page = sum(1 for r in rows if r.sort == first)
    following = better + max(group, on_page) + 1  # the rank of the key group after the first
    out: list[tuple[int, Row]] = []
    current, count = None, 0
    for row in rows:
        if row.sort == first:
            out.append((better + 1, row))
            continue
        if row.sort != current:
            following += count
            current, count = row.sort, 0
        out.append((following, row))
        count += 1
    return out


# --- cursors -----------------------------------------------------------------------------------------


def encode(direction: Direction, row: Row) -> str:
    raw = json.dumps(["a" if direction == "after" else "b", row.sort, row.player_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str) -> tuple[Direction, int, str]:
    """(direction, sort key, player id) of a cursor a page gave out; BadRequest for anything else."""
    from backend.errors import BadRequest

    try:
        raw: Any = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise BadRequest("invalid cursor") from None
    if not (
        isinstance(raw, list)
        and len(raw) == 3
        and raw[0] in ("a", "b")
        and isinstance(raw[1], int)
        and not isinstance(raw[1], bool)
        and 0 <= raw[1] <= MAX_KEY
        and isinstance(raw[2], str)
        and re.fullmatch(PLAYER_ID_PATTERN, raw[2])
    ):
        raise BadRequest("invalid cursor")
    return ("after" if raw[0] == "a" else "before"), raw[1], raw[2]
