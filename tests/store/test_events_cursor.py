"""Reading the event log after a version that falls inside a chunk (a batch applied several events)."""

from __future__ import annotations

from typing import Any

from backend.protocol import GameEvent
from backend.store.events import EventLog

MATCH = "m-" + "c" * 32


def ev(n: int) -> GameEvent:
    return GameEvent(
        eventId=f"e{n}", matchId=MATCH, playerId="p", receivedAt=n, type="move", actionId=f"a{n}", x=n, y=n
    )


def test_a_cursor_inside_a_chunk_returns_the_rest_of_that_chunk(ddb: Any) -> None:
    log = EventLog(ddb, "gamebackend-local-events")
    log.append({MATCH: [[(1, ev(1))]]})
    log.append({MATCH: [[(2, ev(2)), (3, ev(3)), (4, ev(4))]]})
    log.append({MATCH: [[(5, ev(5))]]})
    assert [v for v, _ in log.read(MATCH, after_version=2)] == [3, 4, 5]
    assert [v for v, _ in log.read(MATCH, after_version=3, limit=1)] == [4]
    assert [v for v, _ in log.read(MATCH)] == [1, 2, 3, 4, 5]
    assert [e.eventId for _, e in log.recent(MATCH, 2)] == ["e4", "e5"]
