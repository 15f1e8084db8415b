"""The actions stream: every accepted action becomes one Kinesis record, partitioned by match."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from backend.protocol import GameEvent

PUT_RECORDS_MAX = 500
PUT_RECORDS_ATTEMPTS = 5


def disconnect_event(
    match_id: str,
    player_id: str,
    connection_id: str,
    at_ms: int | None = None,
    *,
    reason: Literal["closed", "gone", "probe"] = "closed",
    released: bool = False,
) -> GameEvent:
    """The record that tells a match's processor a player's connection is gone (and whether their waiting
    seat was given back to matchmaking)."""
    return GameEvent(
        eventId=str(uuid.uuid4()),
        matchId=match_id,
        playerId=player_id,
        connectionId=connection_id,
        receivedAt=int(time.time() * 1000) if at_ms is None else at_ms,
        type="disconnect",
        reason=reason,
        released=released or None,
    )


def timer_event(match_id: str, player_id: str, timer: Literal["grace"], ref: int) -> GameEvent:
    """The record of a timer that is due (backend.store.timers)."""
    return GameEvent(
        eventId=str(uuid.uuid4()),
        matchId=match_id,
        playerId=player_id,
        receivedAt=int(time.time() * 1000),
        type="timer",
        timer=timer,
        ref=ref,
    )


class ActionStream:
    def __init__(self, client: Any, stream_name: str) -> None:
        self._kinesis = client
        self._stream = stream_name

    def publish(self, event: GameEvent) -> str:
        """One PutRecord; the partition key keeps a match's events in order. Returns the sequence number."""
        out = self._kinesis.put_record(
            StreamName=self._stream,
            PartitionKey=event.matchId,
            Data=event.model_dump_json(exclude_none=True).encode(),
        )
        return str(out["SequenceNumber"])

    def publish_many(self, events: list[GameEvent]) -> None:
        """PutRecords, 500 a call; the records Kinesis refused (throttling) are put again."""
        pending = [
            {"PartitionKey": e.matchId, "Data": e.model_dump_json(exclude_none=True).encode()} for e in events
        ]
        for _ in range(PUT_RECORDS_ATTEMPTS):
            if not pending:
                return
            failed: list[dict[str, Any]] = []
            for start in range(0, len(pending), PUT_RECORDS_MAX):
                chunk = pending[start : start + PUT_RECORDS_MAX]
                out = self._kinesis.put_records(StreamName=self._stream, Records=chunk)
                failed += [
                    r for r, answer in zip(chunk, out["Records"], strict=True) if "ErrorCode" in answer
                ]
            pending = failed
        if pending:
            raise RuntimeError(f"Kinesis refused {len(pending)} records {PUT_RECORDS_ATTEMPTS} times")
