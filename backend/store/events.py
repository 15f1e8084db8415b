"""The events table: the immutable log of every applied action, in chunks of consecutive versions.

Key: matchId + version (the state version the first event of the chunk produced). Each event in a
chunk carries the version it produced. The leaderboard projector writes a window's events of a match
as one chunk (more if they span MAX_CHUNK_SPAN versions or more), each with a condition that no chunk
has that key yet: a window written again (a retry) finds its chunks there and writes nothing, and a
write delivered again in a later window either finds its chunk there or adds one that overlaps others
(every event was logged in its first window already). Chunks never span MAX_CHUNK_SPAN versions, so
the chunks holding versions after a cursor are among those starting less than MAX_CHUNK_SPAN before
it; readers key events by version, so overlapping chunks count each event once.

Every event carries its schema version (`v`), and every chunk the one it was written in (`schema`; none:
v1): readers read each known version through the upcaster (backend.protocol.upcast).

A chunk's `events` is zlib-compressed JSON (B): a window's events of a match repeat the same field
names and ids, and a write unit is a KB: compressed, a duel's chunk costs about a quarter of the units
(make bench: 9 to 2.1). Chunks written before that hold the JSON as a string (S), and readers take
either.
"""

from __future__ import annotations

import json
import time
import uuid
import zlib
from typing import Any

from backend.protocol import EVENT_SCHEMA_VERSION, GameEvent, read_event
from backend.store import ConditionFailed, conditional, pages

LOG_RETENTION = 30 * 24 * 3600
AUDIT_RETENTION = 365 * 24 * 3600
MAX_CHUNK_SPAN = 128  # a chunk holds versions first .. first + MAX_CHUNK_SPAN - 1 at most


def dump_events(events: list[tuple[int, GameEvent]]) -> str:
    """Events with the version each produced: a chunk's `events`, and the match item's `tail`."""
    return json.dumps([[v, e.model_dump(exclude_none=True)] for v, e in events], separators=(",", ":"))


def load_events(text: str) -> list[tuple[int, GameEvent]]:
    """Events as dump_events wrote them, of any schema version (read through the upcaster)."""
    return [(int(v), read_event(raw)) for v, raw in json.loads(text)]


def _packed(chunk: list[tuple[int, GameEvent]]) -> bytes:
    return zlib.compress(dump_events(chunk).encode(), 6)


def _events_of(item: dict[str, Any]) -> list[tuple[int, Any]]:
    """A chunk's raw [version, event] pairs: compressed (B), or, as written before compression, a
    string (S)."""
    value = item["events"]
    raw: list[tuple[int, Any]] = json.loads(value["S"] if "S" in value else zlib.decompress(value["B"]))
    return raw


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

    def append(self, writes: dict[str, list[list[tuple[int, GameEvent]]]]) -> int:
        """Logs each match's events, given as the state writes that applied them: all of them as one
        chunk (or more, by MAX_CHUNK_SPAN), one conditional PutItem each (1 write unit per KB). When a
        chunk's key is taken (a window written before; or one that holds a write delivered again beside
        new ones), each write's events go in chunks of their own instead, and those already there are
        left as they are. Returns how many chunks were written."""
        written = 0
        for match_id, match_writes in writes.items():
            merged = sorted({v: e for events in match_writes for v, e in events}.items())
            for chunk in _chunks(merged):
                if self._put_new(match_id, chunk):
                    written += 1
                    continue
                versions = {v for v, _ in chunk}
                for events in match_writes:
                    for part in _chunks([(v, e) for v, e in events if v in versions]):
                        written += self._put_new(match_id, part)
        return written

    def _put_new(self, match_id: str, chunk: list[tuple[int, GameEvent]]) -> bool:
        """Writes the chunk unless one with its key is there; True if written."""
        item = {
            "matchId": {"S": match_id},
            "version": {"N": str(chunk[0][0])},
            "events": {"B": _packed(chunk)},
            # The schema its events were written in (each event also carries its own `v`); items
            # written before this attribute existed hold v1 events, which readers upcast.
            "schema": {"N": str(EVENT_SCHEMA_VERSION)},
            # From the records, not the clock: a chunk is the same bytes whoever writes it.
            "ttl": {"N": str(chunk[-1][1].receivedAt // 1000 + LOG_RETENTION)},
        }
        out = conditional(
            self._ddb.put_item,
            TableName=self._table,
            Item=item,
            ConditionExpression="attribute_not_exists(version)",
        )
        return not isinstance(out, ConditionFailed)

    def read(
        self, match_id: str, after_version: int = 0, limit: int | None = None
    ) -> list[tuple[int, GameEvent]]:
        """Events of a match in order, each with the state version it produced."""
        # Keyed by version: a chunk rewritten by a retried (or bisected) batch must not count twice.
        found: dict[int, GameEvent] = {}

        def take(items: list[dict[str, Any]]) -> None:
            for item in items:
                for version, raw in _events_of(item):
                    if version > after_version:
                        found[int(version)] = read_event(raw)

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
        for page in pages(self._ddb.query, **kwargs):
            take(page["Items"])
            if limit is not None and len(found) >= limit:
                break
        ordered = sorted(found.items())
        return ordered[:limit] if limit is not None else ordered

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
            for version, raw in _events_of(item):
                found.setdefault(int(version), read_event(raw))
        return sorted(found.items())[-count:]

    def audit(self, actor: str, action: str, details: dict[str, Any]) -> None:
        """An operator's action, kept beside the game events (partition `audit#YYYY-MM-DD`)."""
        now_ms = int(time.time() * 1000)
        for _ in range(5):
            out = conditional(
                self._ddb.put_item,
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
            if not isinstance(out, ConditionFailed):
                return
        raise RuntimeError("could not write an audit record")

    def audit_page(
        self, day: str, limit: int, before: int | None = None
    ) -> tuple[list[dict[str, Any]], int | None]:
        """A day's audit records, newest first, `limit` at most, older than the key `before`; with the key
        to pass as `before` for the next page (None at the end)."""
        condition, values = "matchId = :m", {":m": {"S": f"audit#{day}"}}
        if before is not None:
            condition += " AND version < :v"
            values[":v"] = {"N": str(before)}
        out = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit + 1,
        )
        items = out["Items"][:limit]
        more = len(out["Items"]) > limit
        return [_audit(i) for i in items], (int(items[-1]["version"]["N"]) if more and items else None)

    def audit_log(self, day: str) -> list[dict[str, Any]]:
        out = self._ddb.query(
            TableName=self._table,
            KeyConditionExpression="matchId = :m",
            ExpressionAttributeValues={":m": {"S": f"audit#{day}"}},
        )
        return [_audit(i) for i in out["Items"]]


def _audit(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": int(item["version"]["N"]) // 1000,
        "actor": item["actor"]["S"],
        "action": item["action"]["S"],
        "details": json.loads(item["details"]["S"]),
    }
