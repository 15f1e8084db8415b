"""Composition roots: how each entry point gets its collaborators.

Every Lambda handler module builds, once per execution environment, the one object that holds exactly
the collaborators its function uses (a `Root`), and hands it to the domain code; nothing below a handler
looks a collaborator up. Tests build the same objects from moto clients or fakes.

The builders below make one store each, on a client that is created on its first call
(`backend.aws.Deferred`): a root can hold every store its function may use and pay only for the clients
its requests touch. After a SnapStart restore every root is built again (backend.snapstart).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, Generic, TypeVar

from backend.aws import Deferred
from backend.config import settings

if TYPE_CHECKING:
    from backend.push import Gateway, Pusher
    from backend.sessions import Sessions
    from backend.store.connections import ConnectionStore
    from backend.store.events import EventLog
    from backend.store.leaderboards import LeaderboardStore
    from backend.store.matches import MatchStore
    from backend.store.stream import ActionStream
    from backend.store.streamstats import QueueDepths, StreamStats
    from backend.store.timers import TimerQueue

T = TypeVar("T")


class Root(Generic[T]):
    """An entry point's object graph, built on first use and kept for the execution environment."""

    _all: ClassVar[list[Root[object]]] = []

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        Root._all.append(self)  # type: ignore[arg-type]

    def __call__(self) -> T:
        if self._value is None:
            self._value = self._build()
        return self._value

    def reset(self) -> None:
        self._value = None

    @classmethod
    def reset_all(cls) -> None:
        """Every root is built again on its next use (after a restore; between tests)."""
        for root in cls._all:
            root.reset()


def connections() -> ConnectionStore:
    from backend.store.connections import ConnectionStore

    return ConnectionStore(Deferred("dynamodb"), settings().connections_table)


def matches() -> MatchStore:
    from backend.store.matches import MatchStore

    return MatchStore(Deferred("dynamodb"), settings().matches_table)


def leaderboards() -> LeaderboardStore:
    from backend.store.leaderboards import LeaderboardStore

    return LeaderboardStore(Deferred("dynamodb"), settings().leaderboards_table)


def events() -> EventLog:
    from backend.store.events import EventLog

    return EventLog(Deferred("dynamodb"), settings().events_table)


def stream() -> ActionStream:
    from backend.store.stream import ActionStream

    return ActionStream(Deferred("kinesis"), settings().stream_name)


def timers() -> TimerQueue:
    from backend.store.timers import TimerQueue

    return TimerQueue(Deferred("sqs"), settings().timer_queue)


def sessions() -> Sessions:
    """How a connection ends: the stores a `$disconnect`, a 410 or a presence probe touch."""
    from backend.sessions import Sessions

    return Sessions(connections(), stream(), matches())


def stream_stats() -> StreamStats:
    from backend.store.streamstats import StreamStats

    s = settings()
    return StreamStats(Deferred("cloudwatch"), s.stream_name, s.processor_function)


def queue_depths() -> QueueDepths:
    from backend.store.streamstats import QueueDepths

    return QueueDepths(Deferred("sqs"))


def gateway() -> Gateway:
    from backend.push import Gateway

    return Gateway(Deferred("apigatewaymanagementapi", settings().ws_api_endpoint))


def pusher() -> Pusher:
    import os

    from backend.push import Pusher

    return Pusher(settings().ws_api_endpoint, os.environ.get("AWS_REGION"))
