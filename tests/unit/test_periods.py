"""Leaderboard periods as serverless.yml declares them (cron resets): UTC days, ISO weeks, and when a
period's rows may expire. The same keys and expiries as before periods were data."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from backend.game.boards import Boards
from local import slsconfig
from tests.conftest import ROOT

DECLARED = Boards.from_json(
    slsconfig.load(ROOT / "serverless.yml").functions["projector"].environment["LEADERBOARDS"]
)
RETENTION_AFTER_PERIOD = timedelta(days=35)


def period_id(period: str, at: datetime) -> str:
    return DECLARED["global"].period(period).period_id(at)


def period_end(period: str, at: datetime) -> datetime | None:
    return DECLARED["global"].period(period).end(at)


def expires_at(period: str, at: datetime) -> int | None:
    return DECLARED["global"].period(period).expires(at)


def board_key(board: str, period: str, at: datetime) -> str:
    return DECLARED[board].key(period, at)


PLUS2 = timezone(timedelta(hours=2))
MINUS5 = timezone(timedelta(hours=-5))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 11, 23, 0, 0, 0), "2026-11-23"),
        (utc(2026, 11, 23, 23, 59, 59, 999999), "2026-11-23"),
        (utc(2026, 11, 24, 0, 0, 0), "2026-11-24"),
        # 00:30 in UTC+2 is still the previous day in UTC.
        (datetime(2026, 11, 24, 0, 30, tzinfo=PLUS2), "2026-11-23"),
        # 23:30 in UTC-5 is already the next day in UTC.
        (datetime(2026, 11, 23, 23, 30, tzinfo=MINUS5), "2026-11-24"),
        (datetime(2027, 1, 1, 1, 0, tzinfo=PLUS2), "2026-12-31"),
    ],
)
def test_daily_ids_are_utc_days(at: datetime, expected: str) -> None:
    assert period_id("daily", at) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (utc(2026, 11, 23, 0, 0), "2026-W48"),  # a Monday
        (utc(2026, 11, 29, 23, 59, 59), "2026-W48"),  # the Sunday after
        (utc(2026, 11, 30, 0, 0), "2026-W49"),
        # 2026 has 53 ISO weeks; the days of 2027 before its first Monday still belong to 2026-W53.
        (utc(2026, 12, 31, 12, 0), "2026-W53"),
        (utc(2027, 1, 1, 0, 0), "2026-W53"),
        (utc(2027, 1, 3, 23, 59, 59), "2026-W53"),
        (utc(2027, 1, 4, 0, 0), "2027-W01"),
        # ... and the other way round: 2024-12-30 is in 2025's first ISO week.
        (utc(2024, 12, 29, 23, 59), "2024-W52"),
        (utc(2024, 12, 30, 0, 0), "2025-W01"),
        # Monday 00:30 in UTC+2 is Sunday 22:30 UTC: the previous week.
        (datetime(2027, 1, 4, 0, 30, tzinfo=PLUS2), "2026-W53"),
        # Sunday 21:00 in UTC-5 is Monday 02:00 UTC: the next week.
        (datetime(2027, 1, 3, 21, 0, tzinfo=MINUS5), "2027-W01"),
    ],
)
def test_weekly_ids_are_iso_weeks_in_utc(at: datetime, expected: str) -> None:
    assert period_id("weekly", at) == expected


def test_alltime_is_one_period() -> None:
    assert period_id("alltime", utc(2026, 1, 1)) == period_id("alltime", utc(2031, 7, 9)) == "all"
    assert period_end("alltime", utc(2026, 1, 1)) is None
    assert expires_at("alltime", utc(2026, 1, 1)) is None


def test_board_keys() -> None:
    at = datetime(2026, 11, 24, 0, 30, tzinfo=PLUS2)
    assert board_key("duel", "daily", at) == "duel#daily#2026-11-23"
    assert board_key("global", "weekly", at) == "global#weekly#2026-W48"
    assert board_key("arena", "alltime", at) == "arena#alltime#all"


@pytest.mark.parametrize(
    ("period", "at", "end"),
    [
        ("daily", utc(2026, 11, 23, 0, 0), utc(2026, 11, 24)),
        ("daily", utc(2026, 11, 23, 23, 59, 59), utc(2026, 11, 24)),
        ("daily", datetime(2026, 11, 24, 0, 30, tzinfo=PLUS2), utc(2026, 11, 24)),
        ("daily", utc(2026, 12, 31, 18, 0), utc(2027, 1, 1)),
        ("weekly", utc(2026, 11, 23, 0, 0), utc(2026, 11, 30)),  # Monday 00:00: a whole week left
        ("weekly", utc(2026, 11, 29, 23, 59, 59), utc(2026, 11, 30)),
        ("weekly", utc(2026, 12, 31, 12, 0), utc(2027, 1, 4)),
        ("weekly", datetime(2027, 1, 4, 0, 30, tzinfo=PLUS2), utc(2027, 1, 4)),
    ],
)
def test_period_end_is_the_next_utc_boundary(period: str, at: datetime, end: datetime) -> None:
    assert period_end(period, at) == end


@pytest.mark.parametrize("period", ["daily", "weekly"])
def test_rows_expire_after_their_period_ends_and_the_retention(period: str) -> None:
    start = utc(2026, 12, 28)  # a Monday, so the week and the first day start together
    instants = [start + timedelta(hours=h, minutes=17) for h in range(0, 24 * 7, 5)]
    for at in instants:
        end = period_end(period, at)
        assert end is not None
        assert end > at
        # Still in the same period one microsecond before its end, in the next one at the end.
        assert period_id(period, end - timedelta(microseconds=1)) == period_id(period, at)
        assert period_id(period, end) != period_id(period, at)
        expiry = expires_at(period, at)
        assert expiry is not None
        assert expiry == int((end + RETENTION_AFTER_PERIOD).timestamp())
        assert expiry > end.timestamp()
    # Every row of one period gets the same expiry, whenever in the period it was written.
    by_period: dict[str, set[int | None]] = {}
    for at in instants:
        by_period.setdefault(period_id(period, at), set()).add(expires_at(period, at))
    assert all(len(v) == 1 for v in by_period.values())
    assert len(by_period) == (7 if period == "daily" else 1)


def test_retention_outlasts_the_longest_period() -> None:
    assert all(
        timedelta(days=7) <= timedelta(days=p.keep_days) for p in DECLARED["global"].periods if p.reset
    )


def test_every_board_has_the_three_periods_and_only_global_pushes_ranks() -> None:
    assert [b.name for b in DECLARED] == ["global", "practice", "duel", "arena", "connect-four"]
    for board in DECLARED:
        assert [p.name for p in board.periods] == ["alltime", "daily", "weekly"]
        assert (board.operator, board.order, board.tie_break) == ("incr", "desc", "none")
        assert board.rank_frames == (("alltime",) if board.name == "global" else ())
        every = {"practice", "duel", "arena", "connect-four"}
        assert board.modes == (every if board.name == "global" else {board.name})
    raw = json.loads(
        slsconfig.load(ROOT / "serverless.yml", "prod").functions["message"].environment["LEADERBOARDS"]
    )
    assert Boards.parse(raw) == DECLARED  # every stage and function, the same boards


def test_an_unknown_period_is_an_error() -> None:
    with pytest.raises(KeyError):
        period_id("monthly", utc(2026, 1, 1))
