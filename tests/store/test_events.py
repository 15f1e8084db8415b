"""The events table against moto: chunks of applied events, read back in version order."""

from __future__ import annotations

from typing import Any

import pytest

from backend.protocol import GameEvent
from backend.store.events import MAX_CHUNK_SPAN, EventLog, dump_events

TABLE = "gamebackend-local-events"
M1 = "m-" + "1" * 32
M2 = "m-" + "2" * 32


@pytest.fixture
def log(ddb: Any) -> EventLog:
    return EventLog(ddb, TABLE)


def ev(match_id: str, n: int, kind: str = "score") -> GameEvent:
    fields: dict[str, Any] = {"score": {"points": n}, "move": {"x": n, "y": n + 1}}.get(kind, {})
    return GameEvent(
        eventId=f"e-{match_id[-4:]}-{n}",
        matchId=match_id,
        playerId=f"p{n % 3}",
        connectionId=f"c{n}" if n % 2 else None,
        receivedAt=1_700_000_000_000 + n,
        type=kind,  # type: ignore[arg-type]
        actionId=None if kind in ("join", "end") else f"a{n}",
        **fields,
    )


def chunk(match_id: str, first: int, last: int) -> list[tuple[int, GameEvent]]:
    return [(v, ev(match_id, v)) for v in range(first, last + 1)]


def test_append_then_read_in_order_with_versions(log: EventLog, ddb: Any) -> None:
    join = ev(M1, 1, "join")
    move = ev(M1, 2, "move")
    log.append({M1: [[(1, join), (2, move), (3, ev(M1, 3))]], M2: [chunk(M2, 1, 2)]})
    assert log.read(M1) == [(1, join), (2, move), (3, ev(M1, 3))]
    assert log.read(M2) == chunk(M2, 1, 2)
    # One item per (match, batch), keyed by the first version of the chunk.
    items = ddb.query(
        TableName=TABLE,
        KeyConditionExpression="matchId = :m",
        ExpressionAttributeValues={":m": {"S": M1}},
    )["Items"]
    assert [i["version"]["N"] for i in items] == ["1"]


def test_chunks_read_back_in_version_order_whatever_the_write_order(log: EventLog) -> None:
    log.append({M1: [chunk(M1, 12, 12)]})
    log.append({M1: [chunk(M1, 4, 11)]})
    log.append({M1: [chunk(M1, 1, 3)]})
    assert log.read(M1) == chunk(M1, 1, 12)
    assert log.read(M1, after_version=3) == chunk(M1, 4, 12)
    assert log.read(M1, after_version=11) == chunk(M1, 12, 12)
    assert log.read(M1, after_version=12) == []
    assert log.read(M1, limit=4) == chunk(M1, 1, 4)
    assert log.read(M1, after_version=3, limit=2) == chunk(M1, 4, 5)


def test_after_version_inside_a_chunk(log: EventLog) -> None:
    log.append({M1: [chunk(M1, 1, 3)]})
    log.append({M1: [chunk(M1, 4, 11)]})
    log.append({M1: [chunk(M1, 12, 12)]})
    # A chunk is keyed by its first version: the one holding after_version + 1 starts before it.
    assert log.read(M1, after_version=6) == chunk(M1, 7, 12)
    assert log.read(M1, after_version=4) == chunk(M1, 5, 12)
    assert log.read(M1, after_version=2, limit=4) == chunk(M1, 3, 6)


def test_matches_do_not_mix_and_an_unknown_match_has_no_events(log: EventLog) -> None:
    log.append({M1: [chunk(M1, 1, 3)], M2: [chunk(M2, 1, 5)]})
    log.append({M2: [chunk(M2, 6, 6)]})
    assert [v for v, _ in log.read(M1)] == [1, 2, 3]
    assert [v for v, _ in log.read(M2)] == [1, 2, 3, 4, 5, 6]
    assert all(e.matchId == M2 for _, e in log.read(M2))
    assert log.read("m-" + "9" * 32) == []


def test_append_writes_every_non_empty_chunk(log: EventLog, ddb: Any) -> None:
    log.append({M1: [], M2: [chunk(M2, 1, 1)]})
    log.append({})
    assert log.read(M1) == []
    assert ddb.scan(TableName=TABLE)["Count"] == 1
    # More matches than one BatchWriteItem takes (25).
    ids = [f"m-{n:032x}" for n in range(3, 33)]
    log.append({m: [chunk(m, 1, 2)] for m in ids})
    assert all(log.read(m) == chunk(m, 1, 2) for m in ids)


def test_a_rewritten_shorter_chunk_is_not_double_counted(log: EventLog) -> None:
    # A batch wrote versions 4..7, then failed before its state write; the retry (a bisected batch)
    # rewrites the chunk at version 4 with fewer events, and the rest arrives in a later chunk.
    log.append({M1: [chunk(M1, 1, 3)]})
    log.append({M1: [chunk(M1, 4, 7)]})
    log.append({M1: [chunk(M1, 4, 5)]})
    log.append({M1: [chunk(M1, 6, 8)]})
    assert log.read(M1) == chunk(M1, 1, 8)
    assert log.read(M1, after_version=5) == chunk(M1, 6, 8)


def test_a_window_written_again_or_with_old_writes_logs_each_event_once(log: EventLog, ddb: Any) -> None:
    log.append({M1: [chunk(M1, 1, 2)]})
    log.append({M1: [chunk(M1, 1, 2)]})  # the same window, written again (a retry): nothing new
    assert ddb.scan(TableName=TABLE)["Count"] == 1
    # A later window: that write delivered again, beside a new one. Their merged chunk's key is taken,
    # so each write goes on its own: the old one is there, the new one is added.
    log.append({M1: [chunk(M1, 1, 2), chunk(M1, 3, 4)]})
    assert log.read(M1) == chunk(M1, 1, 4)
    # Chunks that overlap under different keys count each version once.
    log.append({M1: [chunk(M1, 5, 7), chunk(M1, 8, 9)]})
    log.append({M1: [chunk(M1, 8, 9)]})  # an old write again, alone: its own chunk, overlapping
    assert log.read(M1) == chunk(M1, 1, 9)
    assert log.read(M1, after_version=7) == chunk(M1, 8, 9)
    assert log.read(M1, limit=5) == chunk(M1, 1, 5)


def test_a_write_spanning_more_versions_than_a_chunk_holds_is_cut(log: EventLog, ddb: Any) -> None:
    last = 2 * MAX_CHUNK_SPAN + 10

    def chunk(match_id: str, first: int, last: int) -> list[tuple[int, GameEvent]]:
        return [(v, ev(match_id, v, "move")) for v in range(first, last + 1)]

    log.append({M1: [chunk(M1, 1, last)]})
    keys = sorted(int(i["version"]["N"]) for i in ddb.scan(TableName=TABLE)["Items"])
    assert keys == [1, 1 + MAX_CHUNK_SPAN, 1 + 2 * MAX_CHUNK_SPAN]
    for cursor in (0, 1, MAX_CHUNK_SPAN, MAX_CHUNK_SPAN + 5, last - 1):
        assert log.read(M1, after_version=cursor) == chunk(M1, cursor + 1, last), cursor


def test_a_cursor_finds_versions_in_an_earlier_chunk_that_an_overlapping_one_hides(log: EventLog) -> None:
    # Two chunks hold version 8 onwards differently cut: (1..10) and, nearer the cursor, (5..7).
    log.append({M1: [chunk(M1, 1, 10)]})
    log.append({M1: [chunk(M1, 5, 7)]})
    assert log.read(M1, after_version=8) == chunk(M1, 9, 10)
    assert log.read(M1, after_version=6, limit=2) == chunk(M1, 7, 8)


def test_a_chunk_is_stored_compressed_and_a_string_chunk_of_before_reads(log: EventLog, ddb: Any) -> None:
    events = chunk(M1, 1, 60)
    log.append({M1: [events]})
    item = ddb.get_item(TableName=TABLE, Key={"matchId": {"S": M1}, "version": {"N": "1"}})["Item"]
    stored = bytes(item["events"]["B"])
    # A write unit is a KB: what the log saves is the compressed size against the JSON's.
    assert len(stored) * 4 < len(dump_events(events))
    # A chunk written before compression holds the JSON as a string: both read back alike.
    ddb.put_item(
        TableName=TABLE,
        Item={
            "matchId": {"S": M2},
            "version": {"N": "1"},
            "events": {"S": dump_events(chunk(M2, 1, 3))},
            "schema": {"N": "3"},
        },
    )
    assert log.read(M1) == events
    assert log.read(M2) == chunk(M2, 1, 3) and log.recent(M2, 2) == chunk(M2, 2, 3)
