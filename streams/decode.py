"""Kinesis records -> game events, or the reason a record can never be processed."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from backend import wirejson
from backend.protocol import EVENT_SCHEMA_VERSIONS, GameEvent, read_event


@dataclass(frozen=True)
class Staged:
    sequence: int
    partition_key: str
    event: GameEvent


@dataclass(frozen=True)
class Poison:
    """A record no retry can fix: it goes to the dead-letter queue with its data, alone."""

    sequence: int
    partition_key: str
    reason: str
    record: dict[str, Any]


def decode(record: dict[str, Any]) -> Staged | Poison:
    kinesis = record["kinesis"]
    seq = int(kinesis["sequenceNumber"])
    key = kinesis["partitionKey"]
    try:
        # Strict (backend.wirejson): a record nested past the parser's stack raised RecursionError and
        # failed the whole batch, again on every retry, instead of going to the dead-letter queue.
        raw = wirejson.loads(base64.b64decode(kinesis["data"]))
    except ValueError as exc:  # binascii.Error, wirejson.NotJson
        return Poison(seq, key, f"undecodable: {exc}", record)
    if not isinstance(raw, dict):
        return Poison(seq, key, "not a JSON object", record)
    if raw.get("v") not in EVENT_SCHEMA_VERSIONS:
        return Poison(seq, key, f"unknown schema version {raw.get('v')!r}", record)
    try:
        # Records of an earlier schema (in flight during a deploy, or redriven from the DLQ) are read
        # through the upcaster: the rules only ever see the current version.
        event: GameEvent = read_event(raw)
    except ValidationError as exc:
        return Poison(seq, key, f"invalid event: {exc.errors()[0]['msg']}", record)
    if event.matchId != key:
        return Poison(seq, key, "partition key is not the event's match", record)
    return Staged(seq, key, event)
