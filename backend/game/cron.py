"""Cron expressions (the five standard fields, in UTC): when a leaderboard period resets.

    minute hour day-of-month month day-of-week      "0 0 * * *" (daily), "0 0 * * 1" (Mondays)

Each field is `*`, a number, a range `a-b`, a list `a,b,c`, or any of these with a step `/n`
(`*/15`, `10-50/20`). Day of week is 0-7 (0 and 7 are Sunday). As in cron, when both day of month
and day of week are restricted (neither is `*`), a day matches if either does. No names (`MON`,
`JAN`), no `@daily`, no seconds: a period's boundaries are whole minutes.

A period is the time between two consecutive fires: `previous(at)` is its start (the latest fire at or
before `at`) and `following(at)` its end (the first fire after `at`). Pure: no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# Far enough for any expression that fires at all ("0 0 29 2 *" fires every 4 years, or 8 around a
# century not divisible by 400); an expression that never fires ("0 0 31 2 *") is refused at parse.
_SEARCH_DAYS = 366 * 9
_FIELDS = (
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day of month", 1, 31),
    ("month", 1, 12),
    ("day of week", 0, 7),
)


class CronError(ValueError):
    """The expression is not a five-field cron expression this module understands."""


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{name}: bad step in {part!r}")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        else:
            first, dash, last = body.partition("-")
            if not first.isdigit() or (dash and not last.isdigit()):
                raise CronError(f"{name}: {part!r} is not a number, a range or *")
            start = int(first)
            end = int(last) if dash else (high if step_text else start)
        if not low <= start <= end <= high:
            raise CronError(f"{name}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday, as cron counts
    any_day: bool  # day of month is `*`
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        parts = expression.split()
        if len(parts) != 5:
            raise CronError(f"{expression!r}: a cron expression has 5 fields (minute hour day month weekday)")
        minutes, hours, days, months, weekdays = (
            _field(text, name, low, high) for text, (name, low, high) in zip(parts, _FIELDS, strict=True)
        )
        cron = cls(
            expression=expression,
            minutes=minutes,
            hours=hours,
            days=days,
            months=months,
            weekdays=frozenset(d % 7 for d in weekdays),
            any_day=parts[2] == "*",
            any_weekday=parts[4] == "*",
        )
        if cron._next_day(datetime(2000, 1, 1, tzinfo=UTC).date(), 1) is None:
            raise CronError(f"{expression!r} never fires")
        return cron

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = (day.isoweekday() % 7) in self.weekdays
        if self.any_day and self.any_weekday:
            return True
        if self.any_day:
            return dow
        if self.any_weekday:
            return dom
        return dom or dow

    def _next_day(self, day: date, direction: int) -> date | None:
        """The first matching day from `day` on, going forwards (1) or backwards (-1)."""
        for _ in range(_SEARCH_DAYS):
            if self._day_matches(day):
                return day
            day = day + timedelta(days=direction)
        return None

    def previous(self, at: datetime) -> datetime:
        """The latest fire at or before `at` (UTC, to the minute)."""
        at = at.astimezone(UTC).replace(second=0, microsecond=0)
        day = self._next_day(at.date(), -1)
        while day is not None:
            same_day = day == at.date()
            for hour in sorted(self.hours, reverse=True):
                if same_day and hour > at.hour:
                    continue
                for minute in sorted(self.minutes, reverse=True):
                    if same_day and hour == at.hour and minute > at.minute:
                        continue
                    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
            day = self._next_day(day - timedelta(days=1), -1)
        raise CronError(f"{self.expression!r} did not fire in the {_SEARCH_DAYS} days before {at}")

    def following(self, at: datetime) -> datetime:
        """The first fire strictly after `at`."""
        at = at.astimezone(UTC)
        after = at.replace(second=0, microsecond=0)
        day = self._next_day(after.date(), 1)
        while day is not None:
            same_day = day == after.date()
            for hour in sorted(self.hours):
                if same_day and hour < after.hour:
                    continue
                for minute in sorted(self.minutes):
                    candidate = datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)
                    if candidate > at:
                        return candidate
            day = self._next_day(day + timedelta(days=1), 1)
        raise CronError(f"{self.expression!r} does not fire in the {_SEARCH_DAYS} days after {at}")
