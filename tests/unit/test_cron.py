"""Cron expressions for period resets, against a minute-by-minute reading of the same expression."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.game.cron import Cron, CronError
from tests.fuzz import examples


def fires(cron: Cron, at: datetime) -> bool:
    """The definition, read literally: does the expression match this minute?"""
    dom = at.day in cron.days
    dow = (at.isoweekday() % 7) in cron.weekdays
    if cron.any_day and cron.any_weekday:
        day = True
    elif cron.any_day:
        day = dow
    elif cron.any_weekday:
        day = dom
    else:
        day = dom or dow
    return at.minute in cron.minutes and at.hour in cron.hours and at.month in cron.months and day


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "at", "previous", "following"),
    [
        ("0 0 * * *", utc(2026, 11, 23, 10, 5), utc(2026, 11, 23), utc(2026, 11, 24)),
        ("0 0 * * *", utc(2026, 11, 23), utc(2026, 11, 23), utc(2026, 11, 24)),  # a fire is its own start
        ("0 0 * * 1", utc(2026, 11, 29, 23, 59, 59), utc(2026, 11, 23), utc(2026, 11, 30)),
        ("0 0 * * 7", utc(2026, 11, 30, 1), utc(2026, 11, 29), utc(2026, 12, 6)),  # 7 is Sunday too
        ("30 6 1 * *", utc(2026, 3, 1, 6, 29), utc(2026, 2, 1, 6, 30), utc(2026, 3, 1, 6, 30)),
        ("*/15 * * * *", utc(2026, 1, 1, 0, 44, 30), utc(2026, 1, 1, 0, 30), utc(2026, 1, 1, 0, 45)),
        ("0 12 29 2 *", utc(2027, 6, 1), utc(2024, 2, 29, 12), utc(2028, 2, 29, 12)),
        # Both day fields restricted: either matches (the 13th, or any Friday).
        ("0 0 13 * 5", utc(2026, 11, 12, 12), utc(2026, 11, 6), utc(2026, 11, 13)),
        ("0 0 1-7/3 1,7 *", utc(2026, 7, 5), utc(2026, 7, 4), utc(2026, 7, 7)),
    ],
)
def test_previous_and_following_fires(
    expression: str, at: datetime, previous: datetime, following: datetime
) -> None:
    cron = Cron.parse(expression)
    assert cron.previous(at) == previous
    assert cron.following(at) == following


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("0 0 * *", "5 fields"),
        ("0 0 * * * *", "5 fields"),
        ("60 0 * * *", "outside 0-59"),
        ("0 24 * * *", "outside 0-23"),
        ("0 0 0 * *", "outside 1-31"),
        ("0 0 * 13 *", "outside 1-12"),
        ("0 0 * * 8", "outside 0-7"),
        ("0 0 * * MON", "not a number"),
        ("*/0 * * * *", "bad step"),
        ("5-1 * * * *", "outside"),
        ("0 0 31 2 *", "never fires"),
        ("@daily", "5 fields"),
    ],
)
def test_bad_expressions_are_refused_with_the_reason(expression: str, problem: str) -> None:
    with pytest.raises(CronError, match=problem):
        Cron.parse(expression)


FIELD = st.one_of(
    st.just("*"),
    st.integers(0, 5).map(str),
    st.tuples(st.integers(0, 3), st.integers(3, 6)).map(lambda t: f"{t[0]}-{t[1]}"),
    st.integers(1, 4).map(lambda n: f"*/{n}"),
)


@st.composite
def expressions(draw: st.DrawFn) -> str:
    minute = draw(st.sampled_from(["0", "*/20", "5,35", "59"]))
    hour = draw(st.sampled_from(["0", "*/6", "23", "1-3"]))
    day = draw(st.sampled_from(["*", "1", "15", "28", "1-10/3", "31"]))
    month = draw(st.sampled_from(["*", "1", "2,8", "*/5"]))
    weekday = draw(st.sampled_from(["*", "0", "1", "1-5", "6,7"]))
    return f"{minute} {hour} {day} {month} {weekday}"


@examples(200)
@given(expressions(), st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2030, 12, 31)))
def test_a_period_is_the_time_between_two_consecutive_fires(expression: str, naive: datetime) -> None:
    try:
        cron = Cron.parse(expression)
    except CronError:
        return  # "31" in a month without one, alone: refused, as it never fires
    at = naive.replace(tzinfo=UTC)
    start, end = cron.previous(at), cron.following(at)
    assert start <= at < end
    assert fires(cron, start) and fires(cron, end)
    # No fire in between: checked minute by minute over short periods, at the ends of long ones.
    span = int((end - start).total_seconds() // 60)
    minutes = range(1, span) if span < 3000 else [*range(1, 1500), *range(span - 1500, span)]
    assert not any(fires(cron, start + timedelta(minutes=m)) for m in minutes)
