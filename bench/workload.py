"""A deterministic stream of game actions, shaped like what clients/bots.py sends.

`concurrent` matches of one mode are always in play. Each match starts with the join of every seat,
then its players act in turn at random, as the bots do: three actions in four score 1-20 points, the
others move. A match that reaches the mode's target score is finished, and a new match with new players
takes its place. Records come in stream order, all matches interleaved, as one Kinesis lane would see
them. Every match and connection the records name is listed, so a replay can create them first (as
matchmaking and `$connect` would have).
"""

from __future__ import annotations

import base64
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

from backend.game import modes
from backend.protocol import EVENT_SCHEMA_VERSION

SEQUENCE_BASE = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000
START_MS = 1_795_392_000_000  # 2026-11-23T00:00:00Z: one UTC day and week for the whole replay
STEP_MS = 50  # 20 actions a second in all: every player stays under the modes' rate limit


@dataclass
class Seat:
    player_id: str
    connection_id: str


@dataclass
class PlannedMatch:
    match_id: str
    mode: str
    seats: list[Seat]


@dataclass
class Workload:
    mode: str
    concurrent: int
    matches: list[PlannedMatch] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # GameEvent payloads, in stream order

    @property
    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.events:
            name = f"act:{e['kind']}" if e["type"] == "act" else e["type"]
            out[name] = out.get(name, 0) + 1
        return out

    def records(self, start: int = 0, stop: int | None = None) -> list[dict[str, Any]]:
        """Kinesis event-source records (what Lambda passes to the processor) for events[start:stop]."""
        out = []
        for i, event in enumerate(self.events[start:stop], start):
            sequence = str(SEQUENCE_BASE + i)
            out.append(
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": event["matchId"],
                        "sequenceNumber": sequence,
                        "data": base64.b64encode(json.dumps(event).encode()).decode(),
                        "approximateArrivalTimestamp": event["receivedAt"] / 1000,
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"shardId-000000000000:{sequence}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": "arn:aws:iam::000000000000:role/bench",
                    "awsRegion": "us-east-1",
                    "eventSourceARN": "arn:aws:kinesis:us-east-1:000000000000:stream/bench",
                }
            )
        return out


def generate(mode: str, concurrent: int, count: int, seed: int = 1) -> Workload:
    """`count` records of `concurrent` matches of `mode` at a time."""
    rng = random.Random(f"{seed}-{mode}-{concurrent}")
    rules = modes.mode(mode)
    seats = rules.seats
    target = int(rules.options["targetScore"])
    work = Workload(mode, concurrent)
    serial = 0

    def new_match() -> tuple[PlannedMatch, dict[str, int], list[dict[str, Any]]]:
        nonlocal serial
        match_id = "m-" + uuid.UUID(int=rng.getrandbits(128)).hex
        planned = PlannedMatch(match_id, mode, [])
        for _ in range(seats):
            serial += 1
            planned.seats.append(Seat(f"p{serial:05d}", f"c{serial:05d}="))
        work.matches.append(planned)
        joins = [{"type": "join", "mode": mode, "seat": s} for s in planned.seats]
        return planned, {s.player_id: 0 for s in planned.seats}, joins

    live = [new_match() for _ in range(concurrent)]
    while len(work.events) < count:
        slot = rng.randrange(concurrent)
        planned, scores, pending = live[slot]
        if pending:  # the joins come first, in seat order
            step = pending.pop(0)
            seat = step["seat"]
            fields: dict[str, Any] = {"type": "join", "mode": mode}
        else:
            seat = rng.choice(planned.seats)
            if rng.random() < 0.75:
                points = rng.randint(1, 20)
                fields = {"type": "act", "kind": "score", "args": {"points": points}}
                scores[seat.player_id] += points
            else:
                fields = {
                    "type": "act",
                    "kind": "move",
                    "args": {"x": rng.randint(0, 1000), "y": rng.randint(0, 1000)},
                }
        i = len(work.events)
        work.events.append(
            {
                "v": EVENT_SCHEMA_VERSION,
                "eventId": str(uuid.UUID(int=rng.getrandbits(128))),
                "matchId": planned.match_id,
                "playerId": seat.player_id,
                "connectionId": seat.connection_id,
                "receivedAt": START_MS + i * STEP_MS,
                "actionId": f"a{i}",
                **fields,
            }
        )
        if max(scores.values()) >= target:  # finished: the bots move on to a new match
            live[slot] = new_match()
    return work
