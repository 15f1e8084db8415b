"""Leaderboard periods: UTC days and ISO weeks. A new period is a new key, so it starts empty by itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

RETENTION_AFTER_PERIOD = timedelta(days=35)


def period_id(period: str, at: datetime) -> str:
    at = at.astimezone(UTC)
    if period == "alltime":
        return "all"
    if period == "daily":
        return at.strftime("%Y-%m-%d")
    if period == "weekly":
        year, week, _ = at.isocalendar()
        return f"{year}-W{week:02d}"
    raise ValueError(f"unknown period {period!r}")


def period_end(period: str, at: datetime) -> datetime | None:
    at = at.astimezone(UTC)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "alltime":
        return None
    if period == "daily":
        return day + timedelta(days=1)
    if period == "weekly":
        return day + timedelta(days=7 - at.weekday())
    raise ValueError(f"unknown period {period!r}")


def board_key(board: str, period: str, at: datetime, season: int = 0) -> str:
    """The key of one board's rows for one period. Season 0 is the first; a reset starts season 1, ..."""
    prefix = board if season == 0 else f"{board}@s{season}"
    return f"{prefix}#{period}#{period_id(period, at)}"


def expires_at(period: str, at: datetime) -> int | None:
    """Epoch seconds after which a row of this period may be deleted (DynamoDB TTL)."""
    end = period_end(period, at)
    return int((end + RETENTION_AFTER_PERIOD).timestamp()) if end else None
