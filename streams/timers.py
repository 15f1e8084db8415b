"""The timers function: the timers queue in (SQS, messages delayed until due), `timer` records on the
actions stream and presence probes out (backend.store.timers says what the queue holds).

- a due `timer` becomes a `timer` record (PutRecords, one for the batch), partitioned by its match, so
  the processor applies it in order with the match's other events; the rules apply it only if it still
  names what it was for (a dropped player who came back is not forfeited), so SQS's at-least-once
  delivery costs nothing;
- a `probe` reads the connection's record: gone or moved to another match, it stops; else GET
  @connections: alive, it is checked again `presenceProbe` seconds later; gone (410), the connection
  ends as a lost `$disconnect` should have ended it (backend.sessions);
- a message not due yet (SQS delays 15 minutes at most) goes back with the rest of its delay.

A message that fails is reported in `batchItemFailures`: SQS delivers it again after the queue's
visibility timeout, and after `maxReceiveCount` receives the queue's redrive policy moves it to the
timers' dead-letter queue.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from backend import bootstrap, snapstart
from backend.config import game_settings
from backend.ids import ConnectionId
from backend.protocol import GameEvent
from backend.push import Gateway
from backend.sessions import Sessions
from backend.store.connections import ConnectionStore
from backend.store.stream import ActionStream, timer_event
from backend.store.timers import TimerQueue, delay_seconds
from backend.telemetry import MetricUnit, logger, metrics, tracer

EARLY_MS = 999  # SQS delays in whole seconds: a message up to this early is due


@dataclass(frozen=True)
class Timers:
    queue: TimerQueue
    stream: ActionStream
    connections: ConnectionStore
    sessions: Sessions
    gateway: Gateway
    probe_every: float

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        now = int(time.time() * 1000)
        failed: list[str] = []
        due: list[tuple[str, GameEvent]] = []
        later: list[tuple[str, dict[str, Any]]] = []
        counts = {"TimersDue": 0, "TimersDeferred": 0, "Probes": 0, "ProbesGone": 0}
        for record in event.get("Records") or []:
            message_id = str(record["messageId"])
            try:
                body = json.loads(record["body"])
                if int(body["dueAt"]) > now + EARLY_MS:
                    later.append((message_id, body))
                elif body["kind"] == "timer":
                    due.append(
                        (
                            message_id,
                            timer_event(body["matchId"], body["playerId"], body["timer"], body["ref"]),
                        )
                    )
                elif body["kind"] == "probe":
                    counts["Probes"] += 1
                    counts["ProbesGone"] += self.probe(body)
                else:
                    raise ValueError(f"unknown kind {body['kind']!r}")
            except Exception:
                logger.exception("timer message failed", extra={"messageId": message_id})
                failed.append(message_id)
        if due:
            try:
                self.stream.publish_many([e for _, e in due])
                counts["TimersDue"] = len(due)
            except Exception:
                logger.exception("could not put due timers on the stream")
                failed += [m for m, _ in due]
        if later:
            try:
                self.queue.send([(body, delay_seconds(int(body["dueAt"]), now)) for _, body in later])
                counts["TimersDeferred"] = len(later)
            except Exception:
                logger.exception("could not defer timers")
                failed += [m for m, _ in later]
        for name, value in counts.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    def probe(self, body: dict[str, Any]) -> int:
        """1 when the probe found the connection gone (and ended it), else 0."""
        conn = self.connections.get(ConnectionId(body["connectionId"]))
        if conn is None or conn.match_id != body["matchId"]:
            return 0  # it ended ($disconnect came), or joined another match (which probes it itself)
        if self.gateway.alive(conn.connection_id):
            self.queue.probe(conn.connection_id, body["matchId"], conn.player_id, self.probe_every)
            return 0
        logger.info("a connection's $disconnect never came", extra={"connectionId": conn.connection_id})
        self.sessions.found_gone(conn)
        return 1


def _build() -> Timers:
    return Timers(
        queue=bootstrap.timers(),
        stream=bootstrap.stream(),
        connections=bootstrap.connections(),
        sessions=bootstrap.sessions(),
        gateway=bootstrap.gateway(),
        probe_every=game_settings().sessions.presenceProbe,
    )


root = bootstrap.Root(_build)
snapstart.warm("backend.store.matches", models=lambda: [GameEvent])


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return root().handle(event)
