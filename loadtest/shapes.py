"""Load shapes, selectable by name, each bounded in users and in time.

A shape is a list of stages. Each stage holds `users` from its start until `until` seconds after the
test started, reached at `rate` users per second; the test ends after the last stage. The locustfile
turns the selected shape into Locust's `LoadTestShape`; the report uses the same stages to find the
plateaus (for the ramp's knee).

    smoke   4 users for ~8 s: the bounded version that runs inside `make test`
    steady  20 users for 60 s
    spike   5 users -> 50 within ~5 s -> hold 40 s -> back to 5 (about 100 s in all)
    ramp    5, 10, 15 ... 60 users, 15 s per step (about 3 minutes): where p99 passes 250 ms
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_USERS = 500  # no shape, scaled or not, goes beyond this
MAX_SECONDS = 1800


@dataclass(frozen=True)
class Stage:
    until: float  # seconds since the start of the test
    users: int
    rate: float  # users started (or stopped) per second to get there


@dataclass(frozen=True)
class Shape:
    name: str
    description: str
    stages: tuple[Stage, ...]

    @property
    def duration(self) -> float:
        return self.stages[-1].until

    @property
    def peak(self) -> int:
        return max(s.users for s in self.stages)

    def at(self, elapsed: float) -> Stage | None:
        """The stage in force `elapsed` seconds into the test, or None once the shape is over."""
        for stage in self.stages:
            if elapsed < stage.until:
                return stage
        return None

    def scaled(self, peak: int | None) -> Shape:
        """The same shape with every stage's users multiplied so that the peak is `peak`."""
        if not peak or peak == self.peak:
            return self
        factor = peak / self.peak
        stages = tuple(
            Stage(s.until, max(1, round(s.users * factor)), max(1.0, s.rate * factor)) for s in self.stages
        )
        return Shape(self.name, f"{self.description} (scaled to a peak of {peak})", stages)

    def check(self) -> None:
        if self.peak > MAX_USERS or self.duration > MAX_SECONDS:
            raise ValueError(f"shape {self.name}: at most {MAX_USERS} users and {MAX_SECONDS} s")
        if any(b.until <= a.until for a, b in zip(self.stages, self.stages[1:], strict=False)):
            raise ValueError(f"shape {self.name}: stages must end in order")


def _ramp(start: int, step: int, top: int, hold: float, rate: float) -> tuple[Stage, ...]:
    stages, until, users = [], 0.0, start
    while users <= top:
        until += hold
        stages.append(Stage(until, users, rate))
        users += step
    return tuple(stages)


SHAPES: dict[str, Shape] = {
    "smoke": Shape("smoke", "4 users for about 8 s", (Stage(8, 4, 4.0),)),
    "steady": Shape("steady", "20 users for 60 s", (Stage(60, 20, 4.0),)),
    "spike": Shape(
        "spike",
        "5 users, then 10x (50) within about 5 s, held 40 s, then back to 5",
        (Stage(20, 5, 5.0), Stage(65, 50, 10.0), Stage(100, 5, 10.0)),
    ),
    "ramp": Shape("ramp", "5 to 60 users, 5 more every 15 s, to find the knee", _ramp(5, 5, 60, 15.0, 5.0)),
}


def get(name: str, peak: int | None = None) -> Shape:
    try:
        shape = SHAPES[name].scaled(peak)
    except KeyError:
        raise ValueError(f"unknown shape {name!r}; expected one of {', '.join(SHAPES)}") from None
    shape.check()
    return shape
