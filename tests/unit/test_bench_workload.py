"""The bench's deterministic workload (bench/workload.py) and its import-time parsing (bench/coldstart.py)."""

from __future__ import annotations

import base64
import json
from typing import Any

from backend.game import modes
from backend.protocol import GameEvent
from bench import coldstart, workload


def test_the_workload_is_deterministic_and_valid() -> None:
    a = workload.generate("duel", concurrent=3, count=400, seed=7)
    b = workload.generate("duel", concurrent=3, count=400, seed=7)
    assert a.events == b.events
    assert len(a.events) == 400
    for event in a.events:
        GameEvent.model_validate(event)
    kinds = a.kinds
    assert kinds["join"] >= 6 and kinds["act:score"] > kinds["act:move"] > 0


def test_every_match_opens_with_its_joins_and_stops_at_the_target() -> None:
    work = workload.generate("arena", concurrent=2, count=2000, seed=1)
    target = int(modes.mode("arena").options["targetScore"])
    by_match: dict[str, list[dict[str, object]]] = {}
    for e in work.events:
        by_match.setdefault(str(e["matchId"]), []).append(e)
    assert len(by_match) > 2  # matches finished and were replaced
    for planned in work.matches:
        events = by_match.get(planned.match_id, [])
        seats = modes.mode("arena").seats
        joins = [e for e in events[:seats] if e["type"] == "join"]
        assert len(joins) == min(seats, len(events))
        scores: dict[str, int] = {}
        for e in events:
            assert max(scores.values(), default=0) < target  # nothing after the winning score
            if e["type"] == "act" and e["kind"] == "score":
                points = int(e["args"]["points"])  # type: ignore[index]
                scores[str(e["playerId"])] = scores.get(str(e["playerId"]), 0) + points


def test_records_are_kinesis_event_source_records_in_order() -> None:
    work = workload.generate("practice", concurrent=2, count=30)
    records = work.records(10, 20)
    assert len(records) == 10
    sequences = [int(r["kinesis"]["sequenceNumber"]) for r in records]
    assert sequences == sorted(sequences) and sequences[0] == workload.SEQUENCE_BASE + 10
    first = json.loads(base64.b64decode(records[0]["kinesis"]["data"]))
    assert first == work.events[10] and records[0]["kinesis"]["partitionKey"] == first["matchId"]


def test_importtime_lines_are_attributed_to_the_module_that_imported_them() -> None:
    stderr = "\n".join(
        [
            "import time: self [us] | cumulative | imported package",
            "import time:       100 |        100 |     jwt.algorithms",
            "import time:       200 |        300 |   jwt",
            "import time:        50 |         50 |     pydantic",
            "import time:       100 |        150 |   backend.protocol",
            "import time:        10 |        460 | backend.handlers.message",
        ]
    )
    rows = coldstart.parse_importtime(stderr)
    parents = {name: parent for name, _, parent in rows}
    assert parents == {
        "jwt.algorithms": "jwt",
        "jwt": "backend.handlers.message",
        "pydantic": "backend.protocol",
        "backend.protocol": "backend.handlers.message",
        "backend.handlers.message": None,
    }
    assert rows[1][1] == 0.3


def test_the_message_replay_sends_the_act_frame_each_record_came_from() -> None:
    """The replay's `message` case invokes the message route once per `act` a client sent: each frame
    must be what the route parses into that record's kind and arguments."""
    from backend import frames
    from bench.replay import _frame_event

    work = workload.generate("duel", concurrent=2, count=200, seed=3)
    acts = [e for e in work.events if e["type"] == "act"]
    assert len(acts) > 100
    for record in acts:
        event = _frame_event(record)
        frame: Any = frames.parse(json.loads(event["body"]))
        assert (frame.kind, frame.matchId, frame.id) == (
            record["kind"],
            record["matchId"],
            record["actionId"],
        )
        assert frame.args() == record["args"]
        assert event["requestContext"]["authorizer"]["playerId"] == record["playerId"]
