"""Wires the stores to real AWS clients, once per execution environment. Tests wire moto instead."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from backend.aws import client
from backend.config import settings

if TYPE_CHECKING:
    from backend.store.connections import ConnectionStore
    from backend.store.events import EventLog
    from backend.store.leaderboards import LeaderboardStore
    from backend.store.matches import MatchStore
    from backend.store.stream import ActionStream
    from backend.store.streamstats import DeadLetters, StreamStats


@cache
def connections() -> ConnectionStore:
    from backend.store.connections import ConnectionStore

    return ConnectionStore(client("dynamodb"), settings().connections_table)


@cache
def matches() -> MatchStore:
    from backend.store.matches import MatchStore

    return MatchStore(client("dynamodb"), settings().matches_table)


@cache
def leaderboards() -> LeaderboardStore:
    from backend.store.leaderboards import LeaderboardStore

    return LeaderboardStore(client("dynamodb"), settings().leaderboards_table)


@cache
def events() -> EventLog:
    from backend.store.events import EventLog

    return EventLog(client("dynamodb"), settings().events_table)


@cache
def stream() -> ActionStream:
    from backend.store.stream import ActionStream

    return ActionStream(client("kinesis"), settings().stream_name)


@cache
def stream_stats() -> StreamStats:
    from backend.store.streamstats import StreamStats

    s = settings()
    return StreamStats(client("cloudwatch"), s.stream_name, s.processor_function)


@cache
def dead_letters() -> DeadLetters:
    from backend.store.streamstats import DeadLetters

    return DeadLetters(client("sqs"))
