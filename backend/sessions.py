"""Connections ending: the one place that forgets a connection and tells its match.

A connection ends by `$disconnect` (best effort on API Gateway) or is found gone by a push (410, which is
authoritative). Either way its record is deleted and a `disconnect` record goes on the stream, so the
match, in order with its other events, stops pushing there.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backend.ids import ConnectionId
from backend.store.connections import Connection, ConnectionStore
from backend.store.stream import ActionStream, disconnect_event


@dataclass(frozen=True)
class Sessions:
    connections: ConnectionStore
    stream: ActionStream

    def close(self, connection_id: ConnectionId) -> Connection | None:
        """`$disconnect`: idempotent, a record already gone is fine. Returns what was recorded."""
        old = self.connections.delete(connection_id)
        if old is not None and old.match_id is not None:
            self.stream.publish(disconnect_event(old.match_id, old.player_id, old.connection_id))
        return old

    def gone(self, match_id: str, owners: Iterable[tuple[str, str]]) -> None:
        """Connections a push found gone (410), as (connection id, player id) of one match: one
        PutRecords for all of them, then each record deleted."""
        owners = list(owners)
        self.stream.publish_many([disconnect_event(match_id, player, conn) for conn, player in owners])
        for conn, _ in owners:
            self.connections.delete(ConnectionId(conn))
