"""Helpers of the store tests: the Kinesis events Lambda hands the stream processor, one shard, in order;
and a cheaper setup of conftest's moto fixture.

A `Feed` plays the message Lambda: every call publishes one GameEvent as a record with the next sequence
number (large, increasing, not contiguous, as Kinesis gives them), partition key = matchId.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pytest

from backend.protocol import GameEvent

REGION = "us-east-1"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:123456789012:stream/gamebackend-local-actions"
# A real-looking shard sequence number: far beyond 64 bits, so any int64 shortcut would show.
FIRST_SEQUENCE = 49_590_338_271_490_256_608_559_692_538_361_571_095_921_575_989_136_588_898
SEQUENCE_STEP = 1_000_003
# Monday 2026-11-23 10:00 UTC: every event of a feed falls on this day and this ISO week unless moved.
START = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def record(data: str, partition_key: str, sequence: int) -> dict[str, Any]:
    """One Lambda Kinesis record; `data` is already base64."""
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": str(sequence),
            "data": data,
            "approximateArrivalTimestamp": 1_700_000_000.123,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"shardId-000000000000:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": f"arn:aws:iam::123456789012:role/gamebackend-local-{REGION}-processor",
        "awsRegion": REGION,
        "eventSourceARN": STREAM_ARN,
    }


def batch(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


def sequence_of(rec: dict[str, Any]) -> int:
    return int(rec["kinesis"]["sequenceNumber"])


def event_of(rec: dict[str, Any]) -> GameEvent:
    return GameEvent.model_validate_json(base64.b64decode(rec["kinesis"]["data"]))


def from_sequence(records: list[dict[str, Any]], lowest: int) -> list[dict[str, Any]]:
    """What Lambda redelivers after a partial failure: the shard's records from `lowest` on."""
    return [r for r in records if sequence_of(r) >= lowest]


class Feed:
    """The stream, as the message Lambda fills it."""

    def __init__(self, start: datetime = START) -> None:
        self._next_sequence = FIRST_SEQUENCE
        self._events = 0
        self.now_ms = int(start.timestamp() * 1000)
        self.records: list[dict[str, Any]] = []

    def _sequence(self) -> int:
        seq = self._next_sequence
        self._next_sequence += SEQUENCE_STEP
        return seq

    def at(self, when: datetime) -> Feed:
        """Later events are received at `when` (and one second apart after it)."""
        self.now_ms = int(when.timestamp() * 1000)
        return self

    def publish(
        self,
        match_id: str,
        player: str,
        event_type: str,
        action: str | None = None,
        *,
        connection: str | None = "",
        **fields: Any,
    ) -> dict[str, Any]:
        self._events += 1
        event = GameEvent(
            eventId=f"evt-{self._events}",
            matchId=match_id,
            playerId=player,
            connectionId=f"c-{player}" if connection == "" else connection,
            receivedAt=self.now_ms,
            type=event_type,  # type: ignore[arg-type]
            actionId=action,
            **fields,
        )
        self.now_ms += 1000
        rec = record(b64(event.model_dump_json(exclude_none=True)), match_id, self._sequence())
        self.records.append(rec)
        return rec

    def join(self, match_id: str, player: str, mode: str, action: str | None = None) -> dict[str, Any]:
        return self.publish(match_id, player, "join", action, mode=mode)

    def score(self, match_id: str, player: str, action: str, points: int) -> dict[str, Any]:
        return self.publish(match_id, player, "score", action, points=points)

    def move(self, match_id: str, player: str, action: str, x: int, y: int) -> dict[str, Any]:
        return self.publish(match_id, player, "move", action, x=x, y=y)

    def leave(self, match_id: str, player: str, action: str | None = None) -> dict[str, Any]:
        return self.publish(match_id, player, "leave", action)

    def retry(self, rec: dict[str, Any]) -> dict[str, Any]:
        """A client retry of an action: the same action id, published again as a new record."""
        self._events += 1
        event = event_of(rec).model_copy(update={"eventId": f"evt-{self._events}"})
        again = record(b64(event.model_dump_json(exclude_none=True)), event.matchId, self._sequence())
        self.records.append(again)
        return again

    def raw(self, partition_key: str, data: bytes | str | dict[str, Any]) -> dict[str, Any]:
        """A record with arbitrary data (base64-encoded here unless a str is given)."""
        if isinstance(data, dict):
            encoded = b64(json.dumps(data))
        elif isinstance(data, bytes):
            encoded = b64(data)
        else:
            encoded = data
        rec = record(encoded, partition_key, self._sequence())
        self.records.append(rec)
        return rec


@functools.cache
def _kept_client(service: str, endpoint: str | None, region: str) -> Any:
    import boto3

    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name=region)


def keep_resource_clients(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lets conftest's `aws` fixture create the tables, stream and queue with clients kept from one test
    to the next: building three botocore clients is most of a store test's setup time. moto's state is
    still new for every test (a client only holds credentials and a model, and moto intercepts every
    client created after it was imported)."""
    import local.aws

    monkeypatch.setattr(local.aws, "_boto", _kept_client)
