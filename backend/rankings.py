"""Reading the leaderboards: what the WebSocket `leaderboard` route and the admin API share.

A read names a board, a period and, optionally, a past season (a finished season stays readable), and
asks for a page: the top, the page after or before a cursor an earlier page gave out, or a page centred
on a player ("around me"). Every page comes back with its ranks and with cursors both ways while there
is more to read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from backend.errors import NotFound
from backend.game import ordering
from backend.game.boards import Board
from backend.game.ordering import Row
from backend.game.scoring import unpack
from backend.store.leaderboards import LeaderboardStore, Page


@dataclass(frozen=True)
class Target:
    board: Board
    period: str
    season: int
    key: str


def target(
    store: LeaderboardStore,
    board: str,
    period: str,
    season: int | None = None,
    *,
    now: datetime | None = None,
    max_age: float | None = None,
) -> Target:
    """The rows a read addresses: NotFound for a board, period or season that does not exist."""
    boards = store.boards
    if board not in boards:
        raise NotFound(f"no board {board!r} (boards: {', '.join(boards.names())})")
    spec = boards[board]
    if period not in {p.name for p in spec.periods}:
        raise NotFound(f"board {board} has no period {period!r} ({', '.join(p.name for p in spec.periods)})")
    current = store.seasons([board], **({} if max_age is None else {"max_age": max_age}))[board]
    if season is not None and season > current:
        raise NotFound(f"board {board} has no season {season} yet (current: {current})")
    chosen = current if season is None else season
    return Target(spec, period, chosen, spec.key(period, now or datetime.now(UTC), chosen))


def anchor(board: Board, sort: int, player_id: str) -> Row:
    """The row a cursor names, as the store pages from it."""
    if board.ranked_by_key:
        score, sub = unpack(board, sort)
        return Row(player_id, score, sub, sort)
    return Row(player_id, sort)


def read(
    store: LeaderboardStore, t: Target, limit: int, *, cursor: str | None = None, around: str | None = None
) -> Page:
    """A page of `limit` rows: from a cursor, centred on the player `around` (the top when they have no
    row), or the top."""
    if cursor is not None:
        direction, sort, player = ordering.decode(cursor)
        return store.page(t.board, t.key, limit, anchor=anchor(t.board, sort, player), direction=direction)
    if around is not None:
        above = (limit - 1) // 2
        found = store.around(t.board, t.key, around, before=above, after=limit - 1 - above)
        if found is not None:
            return Page(found.entries, found.more_before, found.more_after)
    return store.page(t.board, t.key, limit)


def cursors(page: Page) -> tuple[str | None, str | None]:
    """(prev, next): cursors for the pages before and after this one, where there are rows."""
    if not page.entries:
        return None, None
    prev = ordering.encode("before", page.entries[0][1]) if page.more_before else None
    nxt = ordering.encode("after", page.entries[-1][1]) if page.more_after else None
    return prev, nxt
