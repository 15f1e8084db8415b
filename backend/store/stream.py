"""The actions stream: every accepted action becomes one Kinesis record, partitioned by match."""

from __future__ import annotations

from typing import Any

from backend.protocol import GameEvent


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
