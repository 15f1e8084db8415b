"""The leaderboards, as data: which boards exist, what feeds each, how it scores, sorts, breaks ties and
resets. Declared once, in serverless.yml (`custom.leaderboards`); every function gets it as the JSON
environment variable LEADERBOARDS (tools/leaderboards.cjs for a deploy, local/slsconfig.py locally).

    periods:                      # when rows start again from nothing: a new period is a new board key
      alltime: {}                                                # never
      daily:  {reset: "0 0 * * *", id: "%Y-%m-%d", keepDays: 35}  # a cron expression (UTC), see cron.py
    boards:
      global: {operator: incr, order: desc, tieBreak: none, periods: [alltime, daily], rankFrames: [alltime]}
      duel:   {modes: [duel], operator: best, order: desc, tieBreak: first, periods: [alltime]}

A board:
- `modes`: the matches that count on it (default: every mode);
- `operator`: what a player's row holds: `incr` the sum of their match totals, `best` their best match
  total, `set` the total of their latest match;
- `order`: `desc` (a higher score ranks first) or `asc`;
- `tieBreak`: `none` (equal scores share a rank, "1224"), `first` (of equal scores, the one reached
  first ranks first) or `subscore` (then the subscore, in the board's order; `subscore: wins`, the
  matches won, is the one source);
- `periods`: names from `periods`; `rankFrames`: the periods whose rank changes are pushed as `rank`.

A period's id is its start formatted with `id` (strftime, UTC); `keepDays` after its end, its rows expire.
A season reset (the admin API) is not a period: it is an admin action, and a finished season stays
readable.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Literal, cast

from backend.config import game_settings
from backend.game.cron import Cron, CronError
from backend.vocabulary import BOARD_NAME_PATTERN, PERIOD_NAME_PATTERN

ENV = "LEADERBOARDS"
NEVER = "all"  # the id of a period that never resets

Operator = Literal["incr", "best", "set"]
Order = Literal["desc", "asc"]
TieBreak = Literal["none", "first", "subscore"]
OPERATORS: tuple[Operator, ...] = ("incr", "best", "set")
ORDERS: tuple[Order, ...] = ("desc", "asc")
TIE_BREAKS: tuple[TieBreak, ...] = ("none", "first", "subscore")
SUBSCORES = ("wins",)


class BoardConfigError(ValueError):
    """custom.leaderboards cannot be understood; the message says where."""


@dataclass(frozen=True)
class Period:
    name: str
    reset: Cron | None  # None: the period never ends
    id_format: str
    keep_days: int

    def start(self, at: datetime) -> datetime | None:
        return self.reset.previous(at) if self.reset else None

    def period_id(self, at: datetime) -> str:
        start = self.start(at)
        return NEVER if start is None else start.strftime(self.id_format)

    def end(self, at: datetime) -> datetime | None:
        return self.reset.following(at) if self.reset else None

    def expires(self, at: datetime) -> int | None:
        """Epoch seconds after which a row of the period holding `at` may be deleted (DynamoDB TTL)."""
        end = self.end(at)
        return int((end + timedelta(days=self.keep_days)).timestamp()) if end else None


@dataclass(frozen=True)
class Board:
    name: str
    modes: frozenset[str]
    operator: Operator
    order: Order
    tie_break: TieBreak
    subscore: str | None
    periods: tuple[Period, ...]
    rank_frames: tuple[str, ...]

    @property
    def descending(self) -> bool:
        return self.order == "desc"

    @property
    def ranked_by_key(self) -> bool:
        """Whether rows of equal score are ordered by more than the player id (a tie-break)."""
        return self.tie_break != "none"

    def period(self, name: str) -> Period:
        for p in self.periods:
            if p.name == name:
                return p
        raise KeyError(name)

    def key(self, period: str, at: datetime, season: int = 0) -> str:
        """The key of one board's rows for one period. Season 0 is the first; a reset starts season 1, ..."""
        prefix = self.name if season == 0 else f"{self.name}@s{season}"
        return f"{prefix}#{period}#{self.period(period).period_id(at)}"


@dataclass(frozen=True)
class Boards:
    boards: dict[str, Board]

    def __contains__(self, name: object) -> bool:
        return name in self.boards

    def __getitem__(self, name: str) -> Board:
        return self.boards[name]

    def __iter__(self) -> Any:
        return iter(self.boards.values())

    def names(self) -> tuple[str, ...]:
        return tuple(self.boards)

    def for_mode(self, mode: str) -> list[Board]:
        """The boards a match of this mode counts on, in declaration order."""
        return [b for b in self.boards.values() if mode in b.modes]

    @classmethod
    def from_json(cls, text: str) -> Boards:
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise BoardConfigError(f"{ENV} is not JSON: {exc}") from None
        return cls.parse(raw)

    @classmethod
    def parse(cls, raw: Any) -> Boards:
        spec = _mapping(raw, "custom.leaderboards", {"periods", "boards"})
        periods = {
            name: _period(name, p)
            for name, p in _mapping(spec.get("periods"), "custom.leaderboards.periods").items()
        }
        boards = {
            name: _board(name, b, periods)
            for name, b in _mapping(spec.get("boards"), "custom.leaderboards.boards").items()
        }
        if not boards:
            raise BoardConfigError("custom.leaderboards.boards: declare at least one board")
        return cls(boards)


def _mapping(raw: Any, where: str, allowed: set[str] | None = None) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BoardConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
    if allowed is not None and set(raw) - allowed:
        raise BoardConfigError(
            f"{where}: unknown keys {sorted(set(raw) - allowed)} (allowed: {sorted(allowed)})"
        )
    return raw


def _one_of(raw: Any, where: str, choices: tuple[str, ...], default: str) -> str:
    value = default if raw is None else raw
    if value not in choices:
        raise BoardConfigError(f"{where}: {value!r} is not one of {', '.join(choices)}")
    return str(value)


def _period(name: str, raw: Any) -> Period:
    where = f"custom.leaderboards.periods.{name}"
    if not re.fullmatch(PERIOD_NAME_PATTERN, name):
        raise BoardConfigError(f"{where}: a period name matches {PERIOD_NAME_PATTERN}")
    spec = _mapping(raw or {}, where, {"reset", "id", "keepDays"})
    reset = None
    if spec.get("reset") is not None:
        try:
            reset = Cron.parse(str(spec["reset"]))
        except CronError as exc:
            raise BoardConfigError(f"{where}.reset: {exc}") from None
    id_format = str(spec.get("id", "%Y-%m-%dT%H%MZ"))
    if reset is not None and not re.fullmatch(r"[A-Za-z0-9%:_-]+", id_format):
        raise BoardConfigError(
            f"{where}.id: letters, digits, '%', ':', '_' and '-' only (it is part of a key)"
        )
    keep = spec.get("keepDays", 35)
    if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= 3650:
        raise BoardConfigError(f"{where}.keepDays: a whole number of days, 0 to 3650")
    if reset is None and ("id" in spec or "keepDays" in spec):
        raise BoardConfigError(f"{where}: a period without `reset` never ends: it takes no id or keepDays")
    return Period(name, reset, id_format, keep)


def _board(name: str, raw: Any, periods: dict[str, Period]) -> Board:
    where = f"custom.leaderboards.boards.{name}"
    if not re.fullmatch(BOARD_NAME_PATTERN, name):
        raise BoardConfigError(f"{where}: a board name matches {BOARD_NAME_PATTERN}")
    spec = _mapping(
        raw or {}, where, {"modes", "operator", "order", "tieBreak", "subscore", "periods", "rankFrames"}
    )
    # The stage's modes (custom.modes, in GAME_SETTINGS), which every function gets with the boards.
    known = tuple(game_settings().modes)
    modes_raw = spec.get("modes")
    if modes_raw is None:
        modes = frozenset(known)
    elif isinstance(modes_raw, list) and modes_raw and all(m in known for m in modes_raw):
        modes = frozenset(modes_raw)
    else:
        raise BoardConfigError(f"{where}.modes: a non-empty list of {', '.join(known)}, or left out for all")
    tie_break = cast(TieBreak, _one_of(spec.get("tieBreak"), f"{where}.tieBreak", TIE_BREAKS, "none"))
    subscore = spec.get("subscore")
    if tie_break == "subscore":
        subscore = _one_of(subscore, f"{where}.subscore", SUBSCORES, "wins")
    elif subscore is not None:
        raise BoardConfigError(f"{where}.subscore: only a board with tieBreak: subscore has one")
    names = spec.get("periods")
    if not isinstance(names, list) or not names or len(set(names)) != len(names):
        raise BoardConfigError(f"{where}.periods: a non-empty list of distinct names from periods")
    unknown = [p for p in names if p not in periods]
    if unknown:
        raise BoardConfigError(f"{where}.periods: {unknown} are not declared in custom.leaderboards.periods")
    frames = spec.get("rankFrames") or []
    if not isinstance(frames, list) or any(f not in names for f in frames):
        raise BoardConfigError(f"{where}.rankFrames: a list of this board's periods")
    return Board(
        name=name,
        modes=modes,
        operator=cast(Operator, _one_of(spec.get("operator"), f"{where}.operator", OPERATORS, "incr")),
        order=cast(Order, _one_of(spec.get("order"), f"{where}.order", ORDERS, "desc")),
        tie_break=tie_break,
        subscore=subscore,
        periods=tuple(periods[p] for p in names),
        rank_frames=tuple(frames),
    )


@cache
def configured() -> Boards:
    """The boards of this stage, from LEADERBOARDS (read once per execution environment)."""
    text = os.environ.get(ENV)
    if not text:
        raise BoardConfigError(f"{ENV} is not set: serverless.yml's custom.leaderboards, as JSON")
    return Boards.from_json(text)


def utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
