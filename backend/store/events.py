"""The events table: the immutable log of every applied action, in chunks of consecutive versions.

Key: matchId + version (the state version the first event of the chunk produced). Each event in a
chunk carries the version it produced. The leaderboard projector writes the events of each state write
of the hot path as one chunk (more if they span MAX_CHUNK_SPAN versions or more), cut from that write's
events alone: a write delivered again, in any window, rewrites the same chunks with the same bytes.
Chunks never span MAX_CHUNK_SPAN versions, so the chunks holding versions after a cursor are among
those starting less than MAX_CHUNK_SPAN before it; readers key events by version, so a chunk written
again with other boundaries (by an older version of this code) is not counted twice.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from backend.protocol import GameEvent
from backend.store import condition_failed

LOG_RETENTION = 30 * 24 * 3600
AUDIT_RETENTION = 365 * 24 * 3600
MAX_CHUNK_SPAN = 128  # a chunk holds versions first .. first + MAX_CHUNK_SPAN - 1 at most


def dump_events(events: list[tuple[int, GameEvent]]) -> str:
    """Events with the version each produced: a chunk's `events`, and the match item's `tail`."""
    return json.dumps([[v, e.model_dump(exclude_none=True)] for v, e in events], separators=(",", ":"))


def load_events(text: str) -> list[tuple[int, GameEvent]]:
    return [(int(v), GameEvent.model_validate(raw)) for v, raw in json.loads(text)]


def _chunks(events: list[tuple[int, GameEvent]]) -> list[list[tuple[int, GameEvent]]]:
    """Events in version order, cut so that no chunk spans MAX_CHUNK_SPAN versions or more."""
    chunks: list[list[tuple[int, GameEvent]]] = []
    for version, event in sorted(events, key=lambda ve: ve[0]):
        if not chunks or version - chunks[-1][0][0] >= MAX_CHUNK_SPAN:
            chunks.append([])
        chunks[-1].append((version, event))
    return chunks


class EventLog:
    def __init__(self, client: Any, table: str) -> None:
        self._ddb = client
        self._table = table

    def append(self, writes: list[tuple[str, list[tuple[int, GameEvent]]]]) -> None:
        """Writes each (match, events of one state write) as its chunks: BatchWriteItem, 25 a request."""
        chunks = [(match_id, chunk) for match_id, events in writes for chunk in _chunks(events)]
        items = [
            {
                "PutRequest": {
                    "Item": {
                        "matchId": {"S": match_id},
                        "version": {"N": str(chunk[0][0])},
                        "events": {"S": dump_events(chunk)},
                        # From the records, not the clock: a retried window writes the same bytes.
                        "ttl": {"N": str(chunk[-1][1].receivedAt // 1000 + LOG_RETENTION)},
                    }
                }
            }
            for match_id, chunk in chunks
        ]
        for start in range(0, len(items), 25):
            request: dict[str, Any] = {self._table: items[start : start + 25]}
            while request:
                out = self._ddb.batch_write_item(RequestItems=request)
                request = out.get("UnprocessedItems") or {}

    def read(
        self, match_id: str, after_version: int = 0, limit: int | None = None
    ) -> list[tuple[int, GameEvent]]:
        """Events of a match in order, each with the state version it produced."""
        # Keyed by version: a chunk rewritten by a retried (or bisected) batch must not count twice.
        found: dict[int, GameEvent] = {}

        def take(items: list[dict[str, Any]]) -> None:
            for item in items:
                for version, raw in json.loads(item["events"]["S"]):
                    if version > after_version:
                        found[int(version)] = GameEvent.model_validate(raw)

        # A chunk is keyed by its first version and spans fewer than MAX_CHUNK_SPAN versions: any chunk
        # holding a version after the cursor starts after cursor - MAX_CHUNK_SPAN.
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "matchId = :m AND version > :v",
            "ExpressionAttributeValues": {
                ":m": {"S": match_id},
                ":v": {"N": str(max(0, after_version - MAX_CHUNK_SPAN))},
            },
            "ConsistentRead": True,
        }
        while True:
            out = self._ddb.query(**kwargs)
            take(out["Items"])
            if "LastEvaluatedKey" not in out or (limit is not None and len(found) >= limit):
                ordered = sorted(found.items())
                return ordered[:limit] if limit is not None else ordered
            kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]

    def recent(self, match_id: str, count: int) -> list[tuple[int, GameEvent]]:
        """The last `count` events of a match, oldest first."""
        out = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="matchId = :m",
            ExpressionAttributeValues={":m": {"S": match_id}},
            ScanIndexForward=False,
            Limit=max(1, count),
        )
        found: dict[int, GameEvent] = {}
        for item in out["Items"]:
            for version, raw in json.loads(item["events"]["S"]):
                found.setdefault(int(version), GameEvent.model_validate(raw))
        return sorted(found.items())[-count:]

    def audit(self, actor: str, action: str, details: dict[str, Any]) -> None:
        """An operator's action, kept beside the game events (partition `audit#YYYY-MM-DD`)."""
        from botocore.exceptions import ClientError

        now_ms = int(time.time() * 1000)
        for _ in range(5):
            try:
                self._ddb.put_item(
                    TableName=self._table,
                    Item={
                        "matchId": {"S": "audit#" + time.strftime("%Y-%m-%d", time.gmtime(now_ms / 1000))},
                        # Microseconds of the day's partition; the condition makes a collision a retry.
                        "version": {"N": str(now_ms * 1000 + uuid.uuid4().int % 1000)},
                        "actor": {"S": actor},
                        "action": {"S": action},
                        "details": {"S": json.dumps(details)},
                        "ttl": {"N": str(now_ms // 1000 + AUDIT_RETENTION)},
                    },
                    ConditionExpression="attribute_not_exists(version)",
                )
                return
            except ClientError as exc:
                if not condition_failed(exc):
                    raise
        raise RuntimeError("could not write an audit record")

    def audit_log(self, day: str) -> list[dict[str, Any]]:
        out = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="matchId = :m",
            ExpressionAttributeValues={":m": {"S": f"audit#{day}"}},
        )
        return [
            {
                "at": int(i["version"]["N"]) // 1000,
                "actor": i["actor"]["S"],
                "action": i["action"]["S"],
                "details": json.loads(i["details"]["S"]),
            }
            for i in out["Items"]
        ]
