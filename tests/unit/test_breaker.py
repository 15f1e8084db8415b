"""The circuit breaker: closed, open, half-open, on a clock the test turns; where it is used (the pushes
through the Management API, the message route's data plane) with fakes; the metric its alarm watches."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from backend.breaker import CircuitBreaker, CircuitOpen, State, emit_transition
from backend.caller import Caller
from backend.errors import NotInMatch
from backend.ids import ConnectionId, PlayerId
from backend.protocol import Ack
from backend.push import Pusher
from backend.service import handle_frame


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Transitions:
    seen: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, breaker: CircuitBreaker, before: State, after: State) -> None:
        self.seen.append((before, after))


def breaker(clock: Clock, transitions: Transitions | None = None, **kw: Any) -> CircuitBreaker:
    return CircuitBreaker(
        "Downstream",
        failure_threshold=3,
        cooldown=5.0,
        clock=clock,
        listener=transitions or Transitions(),
        **kw,
    )


def test_it_opens_after_the_threshold_of_failures_in_a_row_and_sheds() -> None:
    clock, seen = Clock(), Transitions()
    b = breaker(clock, seen)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == "closed"
    b.success()  # a success in between: the count starts again
    for _ in range(2):
        b.failure()
    assert b.state == "closed"
    b.failure()
    assert b.state == "open" and seen.seen == [("closed", "open")] and b.opened == 1
    assert not b.allow() and not b.allow()
    assert b.shed == 2
    with pytest.raises(CircuitOpen, match=r"Downstream is failing; calls to it are shed for 5.0 s more"):
        b.check()
    clock.now += 4.9
    assert b.state == "open" and b.retry_after() == pytest.approx(0.1)


def test_after_the_cooldown_one_trial_goes_and_its_success_closes() -> None:
    clock, seen = Clock(), Transitions()
    b = breaker(clock, seen)
    for _ in range(3):
        b.failure()
    clock.now += 5.0
    assert b.state == "half_open"
    assert b.allow()  # the trial
    assert b.trial_in_flight
    assert not b.allow()  # one trial at a time
    b.success()
    assert b.state == "closed" and not b.trial_in_flight
    assert seen.seen == [("closed", "open"), ("half_open", "closed")]
    assert b.allow() and b.allow()


def test_a_failed_trial_opens_it_again_for_a_whole_cooldown() -> None:
    clock, seen = Clock(), Transitions()
    b = breaker(clock, seen)
    for _ in range(3):
        b.failure()
    clock.now += 6.0
    assert b.allow()
    b.failure()
    assert b.state == "open" and b.opened == 2
    assert b.retry_after() == pytest.approx(5.0)
    assert seen.seen == [("closed", "open"), ("half_open", "open")]
    clock.now += 5.0
    assert b.allow()
    b.success()
    assert b.state == "closed"


def test_late_answers_of_calls_made_before_it_opened_change_nothing() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failure()
    b.failure()  # a call that was in flight when it opened
    b.success()  # ... and one that succeeded late
    assert b.state == "open" and b.opened == 1


def test_a_cancelled_trial_hands_the_trial_to_the_next_call() -> None:
    clock = Clock()
    b = breaker(clock)
    for _ in range(3):
        b.failure()
    clock.now += 5.0
    assert b.allow()
    b.release()
    assert b.allow() and b.trial_in_flight


def test_the_default_listener_logs_and_emits_the_metric_the_alarm_watches(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAGE", "dev")
    clock = Clock()
    b = CircuitBreaker("ManagementApi", failure_threshold=1, cooldown=1.0, clock=clock)
    b.failure()
    clock.now += 1
    assert b.allow()
    b.success()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    metrics = [line for line in lines if "_aws" in line]
    assert len(metrics) == 1  # the open only
    (metric,) = metrics
    (directive,) = metric["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "GameBackend"
    assert directive["Metrics"] == [{"Name": "CircuitOpened", "Unit": "Count"}]
    # serverless.yml's alarms name exactly these dimensions (tests/deploy/test_alarms.py).
    assert sorted(directive["Dimensions"][0]) == ["Downstream", "Stage", "service"]
    assert (metric["Stage"], metric["Downstream"], metric["CircuitOpened"]) == ("dev", "ManagementApi", [1.0])
    logged = [
        (r.__dict__["from"], r.__dict__["to"])
        for r in caplog.records
        if r.__dict__.get("downstream") == "ManagementApi"
    ]
    assert logged == [("closed", "open"), ("half_open", "closed")]


def test_the_listener_is_the_default_one() -> None:
    assert CircuitBreaker("x")._listener is emit_transition


# --- the pushes ----------------------------------------------------------------------------------------


def _error(status: int, code: str) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PostToConnection",
    )


class GoneException(Exception):
    pass


class FakeManagementApi:
    """post_to_connection answering from `outcomes` per call (an exception to raise, or None)."""

    class exceptions:
        GoneException = GoneException

    def __init__(self) -> None:
        self.fail: BaseException | None = None
        self.posted: list[str] = []
        self.started = 0
        self.hold: asyncio.Event | None = None

    async def post_to_connection(self, ConnectionId: str, Data: bytes) -> None:
        self.started += 1
        if self.hold is not None:
            await self.hold.wait()
        if self.fail is not None:
            raise self.fail
        if ConnectionId.startswith("gone"):
            raise GoneException()
        self.posted.append(ConnectionId)


def pusher(clock: Clock) -> tuple[Pusher, FakeManagementApi]:
    p = Pusher("http://unused", "us-east-1", breaker=breaker(clock))
    api = FakeManagementApi()
    p._client = api
    return p, api


def test_pushes_are_shed_once_the_management_api_has_failed_enough_and_resume_after_a_trial() -> None:
    clock = Clock()
    p, api = pusher(clock)
    api.fail = _error(503, "ServiceUnavailable")
    first = p.send([(f"c{i}", "x") for i in range(3)])
    assert (first.sent, len(first.failed), first.shed) == (0, 3, [])
    assert p.breaker.state == "open"
    calls = api.started
    shed = p.send([("c9", "x"), ("c10", "x")])
    assert shed.shed == ["c9", "c10"] and api.started == calls  # never attempted
    api.fail = None
    clock.now += 5
    # Half-open: one push is the trial; the others wait for its answer instead of being shed.
    api.hold = asyncio.Event()
    loop_report: list[Any] = []

    async def go() -> None:
        task = asyncio.ensure_future(p.post_all([(f"d{i}", "x") for i in range(4)]))
        for _ in range(5):
            await asyncio.sleep(0)
        assert api.started == calls + 1  # only the trial is in flight
        assert api.hold is not None
        api.hold.set()
        loop_report.append(await task)

    p.run(go())
    (report,) = loop_report
    assert (report.sent, report.shed, report.failed) == (4, [], [])
    assert p.breaker.state == "closed"


def test_a_failed_trial_sheds_the_pushes_that_waited_for_it() -> None:
    clock = Clock()
    p, api = pusher(clock)
    api.fail = ReadTimeoutError(endpoint_url="http://x")
    p.send([(f"c{i}", "x") for i in range(3)])
    clock.now += 5
    report = p.send([(f"d{i}", "x") for i in range(4)])
    assert len(report.failed) == 1 and len(report.shed) == 3
    assert p.breaker.state == "open" and p.breaker.opened == 2


def test_gone_connections_and_request_errors_are_answers_not_failures() -> None:
    clock = Clock()
    p, api = pusher(clock)
    report = p.send([(f"gone{i}", "x") for i in range(5)])
    assert len(report.gone) == 5 and p.breaker.state == "closed"
    api.fail = _error(400, "BadRequestException")
    for _ in range(3):
        p.send([("c", "x")])
    assert p.breaker.state == "closed"
    api.fail = _error(429, "LimitExceededException")  # throttled: the API is overloaded
    p.send([(f"c{i}", "x") for i in range(3)])
    assert p.breaker.state == "open"


# --- the message route ----------------------------------------------------------------------------------


@dataclass
class FlakyRoutes:
    fail: BaseException | None = None
    handled: int = 0

    def handle(self, caller: Caller, frame: Any) -> Any:
        self.handled += 1
        if self.fail is not None:
            raise self.fail
        return Ack(id=frame.id)


CALLER = Caller(connection_id=ConnectionId("c"), player_id=PlayerId("alice"), role="player", received_at=1)
ACT = json.dumps({"action": "act", "kind": "score", "matchId": "m-" + "0" * 32, "id": "a1", "points": 1})


def send(routes: FlakyRoutes, b: CircuitBreaker, body: str = ACT) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(handle_frame(lambda: routes, CALLER, body, breaker=b))
    return answer


def test_the_message_route_sheds_frames_while_the_data_plane_fails_and_never_acks_a_shed_action() -> None:
    clock = Clock()
    b = breaker(clock)
    routes = FlakyRoutes(fail=_error(400, "ProvisionedThroughputExceededException"))
    for _ in range(3):
        answer = send(routes, b)
        assert (answer["type"], answer["code"]) == ("error", "unavailable")
    assert b.state == "open" and routes.handled == 3
    shed = send(routes, b)
    assert (shed["type"], shed["code"], shed["ref"]) == ("error", "unavailable", "a1")
    assert shed["message"] == "the game's data store is failing; retry in 5 s"
    assert routes.handled == 3  # nothing was called: nothing put on the stream, nothing acknowledged
    ping = send(routes, b, json.dumps({"action": "ping", "id": "p"}))
    assert ping["type"] == "pong"  # a ping needs no data plane
    routes.fail = None
    clock.now += 5
    assert send(routes, b) == {"type": "ack", "id": "a1"}  # the trial
    assert b.state == "closed"


def test_refusals_are_the_data_plane_answering() -> None:
    clock = Clock()
    b = breaker(clock)
    routes = FlakyRoutes(fail=NotInMatch("no"))
    for _ in range(5):
        assert send(routes, b)["code"] == "not_in_match"
    assert b.state == "closed"
