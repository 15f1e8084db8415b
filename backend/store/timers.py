"""The timers queue: what must happen later, as SQS messages delayed until it is due.

Two kinds of message, both consumed by the `timers` function (streams.timers):
- `timer`: an event the rules asked for (backend.game.rules.Timer: a dropped player's reconnect grace),
  for one match; when due, it goes on the actions stream as a `timer` record, in the match's order, and
  the rules apply it only if it still names what it was for;
- `probe`: a connection that joined a match is checked (GET @connections) every `presenceProbe`
  seconds, so that a connection whose `$disconnect` never arrived (API Gateway's is best effort) still
  ends in a disconnect.

SQS delays a message by at most 15 minutes (DelaySeconds 0-900, whole seconds): a message carries when
it is due (`dueAt`), and the consumer sends one that is not due yet back with the rest of its delay.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from typing import Any

MAX_DELAY_SECONDS = 900
BATCH = 10  # SendMessageBatch's limit


@dataclass(frozen=True)
class Due:
    """A timer of one match, as the processor schedules it."""

    match_id: str
    player: str
    timer: str
    ref: int
    delay_ms: int


def delay_seconds(due_at_ms: int, now_ms: int) -> int:
    """SQS's DelaySeconds for a message due at `due_at_ms`: rounded up (never early), at most 900."""
    return max(0, min(MAX_DELAY_SECONDS, math.ceil((due_at_ms - now_ms) / 1000)))


class TimerQueue:
    def __init__(self, client: Any, queue_name: str) -> None:
        self._sqs = client
        self._queue = queue_name
        self._url: str | None = None

    def url(self) -> str:
        if self._url is None:  # once per execution environment
            self._url = str(self._sqs.get_queue_url(QueueName=self._queue)["QueueUrl"])
        return self._url

    def schedule(self, timers: list[Due], now_ms: int | None = None) -> None:
        """One SendMessageBatch per 10 timers. Raises if SQS refused any: the caller must not write the
        state that expects them (it is retried, and schedules them again)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        bodies = []
        for t in timers:
            due = now_ms + t.delay_ms
            body = {"kind": "timer", "matchId": t.match_id, "playerId": t.player, "timer": t.timer}
            bodies.append(({**body, "ref": t.ref, "dueAt": due}, delay_seconds(due, now_ms)))
        self.send(bodies)

    def probe(self, connection_id: str, match_id: str, player: str, after_s: float) -> None:
        """Checks the connection `after_s` seconds from now (and then again, while it is in the match)."""
        now_ms = int(time.time() * 1000)
        due = now_ms + int(after_s * 1000)
        body = {
            "kind": "probe",
            "connectionId": connection_id,
            "matchId": match_id,
            "playerId": player,
            "dueAt": due,
        }
        self.send([(body, delay_seconds(due, now_ms))])

    def send(self, messages: list[tuple[dict[str, Any], int]]) -> None:
        """(body, DelaySeconds) pairs, 10 a call."""
        for start in range(0, len(messages), BATCH):
            chunk = messages[start : start + BATCH]
            entries = [
                {"Id": str(i), "MessageBody": json.dumps(body, separators=(",", ":")), "DelaySeconds": delay}
                for i, (body, delay) in enumerate(chunk)
            ]
            out = self._sqs.send_message_batch(QueueUrl=self.url(), Entries=entries)
            if out.get("Failed"):
                raise RuntimeError(f"SQS refused {len(out['Failed'])} timers: {out['Failed'][0]}")
