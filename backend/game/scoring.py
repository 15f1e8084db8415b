"""What a board's operator makes of a window's matches on one row, and the key a row sorts on with a
tie-break: pure, no I/O.

A window brings a row one `Contribution` per match (its total before and after the window, whether the
player had won it, when the window's last write of it was received). The operator decides what the row
then holds:

- `incr`: the sum of the player's match totals. Absolute per match: the row keeps, per match, the total
  it includes from it (`c_<match>` on its item), and a contribution adds only what is above it. Replays
  and retries add nothing twice; an old total never moves a row back.
- `best`: the best total of a finished match (in the board's order; with a subscore, the pair (total,
  won)). Only finished matches count: a running total is not a result (on an `asc` board the first
  points of every match would otherwise be the best). Idempotent by nature: a row only ever moves to
  something better.
- `set`: the total of the latest match, by the receive time of its last write (then the match id):
  the row keeps `setAt`, and only a later contribution replaces it.

`reachedAt` is when the row's score last changed (the first-to-reach tie-break). The subscore, on
boards that have one, is the matches won (incr: counted once per match, `w_<match>`; best and set: of
the match that gave the score).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from backend.game.boards import Board

# rankKey = score * KEY_SPAN + tie-break part: a board with a tie-break sorts on it. Epoch milliseconds
# stay below it until the year 2286; a subscore must too.
KEY_SPAN = 10**13


def match_key(match_id: str) -> str:
    """How a row names a match among its per-match credits and wins (an attribute-name-safe spelling)."""
    return match_id.replace("-", "_")


@dataclass(frozen=True)
class Contribution:
    """One match's part in one row for one window."""

    match_id: str
    believed: int  # the match total the row is believed to include already (before the window)
    total: int  # the match total after the window (for this row's day)
    at: int  # receive time (epoch ms) of the window's last write of the match for this day
    won_before: bool = False
    won: bool = False
    finished: bool = False  # the match is over (this is its final total)

    @property
    def stamp(self) -> str:
        """The order of `set`: later receive time wins, then the larger match id (a tie of milliseconds)."""
        return f"{self.at:013d}#{self.match_id}"


@dataclass(frozen=True)
class Held:
    """What a row holds (an absent row holds nothing); backend.store.leaderboards decodes it from its item."""

    exists: bool = False
    score: int = 0
    sub: int = 0
    reached: int = 0
    set_at: str = ""
    version: int = 0
    ranked: int | None = None
    told: int | None = None
    credits: dict[str, int] = field(default_factory=dict)  # match_key -> total included (incr)
    wins: dict[str, int] = field(default_factory=dict)  # match_key -> 1 once its win is counted (incr)


def _better(board: Board, a: tuple[int, int], b: tuple[int, int]) -> bool:
    """Whether (score, sub) a ranks strictly before b on this board."""
    if board.tie_break != "subscore":
        a, b = (a[0], 0), (b[0], 0)
    return a > b if board.descending else a < b


def apply(board: Board, held: Held, contributions: list[Contribution]) -> Held | None:
    """The row after these contributions, or None when they change nothing (a replay, a retry, a total
    that does not beat the row)."""
    if not contributions:
        return None
    wins = board.subscore == "wins"
    if not wins:  # a board without a subscore keeps none
        contributions = [replace(c, won=False, won_before=False) for c in contributions]
    if board.operator == "incr":
        return _incr(held, contributions)
    if board.operator == "best":
        results = [c for c in contributions if c.finished]
        if not results:
            return None
        pick = sorted(results, key=lambda c: (c.total, c.won), reverse=board.descending)[0]
        if held.exists and not _better(board, (pick.total, int(pick.won)), (held.score, held.sub)):
            return None
        return _moved(held, pick.total, int(pick.won), pick.at)
    latest = max(contributions, key=lambda c: c.stamp)  # "set"
    if held.exists and latest.stamp <= held.set_at:
        return None
    moved = _moved(held, latest.total, int(latest.won), latest.at)
    return replace(moved, set_at=latest.stamp)


def _moved(held: Held, score: int, sub: int, at: int) -> Held:
    reached = at if not held.exists or score != held.score else held.reached
    return replace(held, exists=True, score=score, sub=sub, reached=reached)


def _incr(held: Held, contributions: list[Contribution]) -> Held | None:
    credits, wins = dict(held.credits), dict(held.wins)
    added, won, at = 0, 0, held.reached
    for c in contributions:
        attr = match_key(c.match_id)
        base = credits.get(attr, c.believed)
        if c.total > base:
            added += c.total - base
            credits[attr] = c.total
            at = max(at, c.at)
        if c.won and not c.won_before and attr not in wins:
            wins[attr] = 1
            won += 1
    if not added and not won:
        return None
    return replace(
        held,
        exists=True,
        score=held.score + added,
        sub=held.sub + won,
        reached=at if added else held.reached,
        credits=credits,
        wins=wins,
    )


def rank_key(board: Board, score: int, sub: int, reached: int) -> int:
    """The number a board with a tie-break sorts its rows on: the score, then the tie-break, packed so
    that the board's order on it is the order of its rows."""
    first = (KEY_SPAN - 1 - reached) if board.descending else reached
    part = first if board.tie_break == "first" else sub
    if not 0 <= part < KEY_SPAN:
        raise ValueError(f"a tie-break value is 0 to {KEY_SPAN - 1}, not {part}")
    return score * KEY_SPAN + part


def unpack(board: Board, key: int) -> tuple[int, int | None]:
    """(score, subscore) from a rank key (the subscore only on boards that have one)."""
    score, part = divmod(key, KEY_SPAN)
    return score, (part if board.tie_break == "subscore" else None)
