"""A circuit breaker per downstream and execution environment: closed, open, half-open.

    closed     every call goes through; `failure_threshold` failures in a row open it
    open       every call is shed at once (CircuitOpen), for `cooldown` seconds
    half-open  after the cool-down: one call goes through as the trial (the others are shed, or wait
               for it: backend.push); its success closes the circuit, its failure opens it again

A failure is the downstream failing (a 5xx, a throttle, a timeout, a dropped connection), after the
SDK's own retries; an answer that says the request itself was wrong (a 4xx, a 410, a lost condition) is
the downstream working, and counts as a success. The state lives in the execution environment: each
environment learns on its own, and a failing downstream costs it `failure_threshold` failed calls
before it sheds. Shared state (in DynamoDB, say) would need the very downstream that is failing.

Each transition is logged, and an open emits the `CircuitOpened` metric (dimensions `Stage` and
`Downstream`), which the stage's `…-circuit-open-*` alarms watch (docs/operations.md#circuit-open).
Pure apart from the clock, which tests pass in.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]
Listener = Callable[["CircuitBreaker", State, State], None]

FAILURE_THRESHOLD = 5
COOLDOWN_SECONDS = 5.0


class CircuitOpen(Exception):
    """The downstream is being shed: the call was not made."""

    def __init__(self, breaker: CircuitBreaker) -> None:
        self.downstream = breaker.name
        self.retry_after = breaker.retry_after()
        super().__init__(f"{breaker.name} is failing; calls to it are shed for {self.retry_after:.1f} s more")


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        failure_threshold: int = FAILURE_THRESHOLD,
        cooldown: float = COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        listener: Listener | None = None,
    ) -> None:
        if failure_threshold < 1 or cooldown <= 0:
            raise ValueError("a breaker needs a failure threshold of at least 1 and a positive cool-down")
        self.name = name
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._listener = listener if listener is not None else emit_transition
        self._failures = 0  # in a row, while closed
        self._opened_at: float | None = None
        self._trial = False  # a half-open trial call is in flight
        self.opened = 0  # times it opened, for tests and reports
        self.shed = 0  # calls refused

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.cooldown:
            return "half_open"
        return "open"

    @property
    def trial_in_flight(self) -> bool:
        return self._trial and self.state == "half_open"

    def retry_after(self) -> float:
        """Seconds until the breaker lets a trial through (0 when it would now)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self._opened_at + self.cooldown - self._clock())

    def allow(self) -> bool:
        """Whether a call may be made now. In half-open, True once (the trial) until it reports."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial:
            self._trial = True
            return True
        self.shed += 1
        return False

    def check(self) -> None:
        """`allow()`, raising CircuitOpen for a call that must be shed."""
        if not self.allow():
            raise CircuitOpen(self)

    def release(self) -> None:
        """A trial call that ended without an answer (cancelled): the next call is the trial."""
        self._trial = False

    def success(self) -> None:
        before = self.state
        self._failures = 0
        if self._opened_at is not None and (before == "half_open" or self._trial):
            self._opened_at = None
            self._trial = False
            self._listener(self, before, "closed")

    def failure(self) -> None:
        before = self.state
        if self._opened_at is not None:
            if before == "half_open" or self._trial:
                self._trip(before)  # the trial failed: open again, for a whole cool-down
            return  # a call started before it opened: already counted as open
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._trip(before)

    def _trip(self, before: State) -> None:
        self._opened_at = self._clock()
        self._trial = False
        self._failures = 0
        self.opened += 1
        self._listener(self, before, "open")


def emit_transition(breaker: CircuitBreaker, before: State, after: State) -> None:
    """The default listener: a log line per transition, and the `CircuitOpened` metric on an open."""
    from backend.telemetry import MetricUnit, logger

    logger.warning(
        "circuit breaker %s: %s -> %s",
        breaker.name,
        before,
        after,
        extra={"downstream": breaker.name, "from": before, "to": after, "opened": breaker.opened},
    )
    if after != "open":
        return
    from aws_lambda_powertools.metrics import single_metric

    dimensions = {"Stage": os.environ.get("STAGE", "local"), "Downstream": breaker.name}
    # A metric of its own, printed at once: the alarm's dimensions are these two, not the function's.
    with single_metric(
        name="CircuitOpened",
        unit=MetricUnit.Count,
        value=1,
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "GameBackend"),
        default_dimensions=dimensions,
    ):
        pass
