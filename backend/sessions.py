"""Connections ending: the one place that forgets a connection and tells its match.

A connection ends by `$disconnect` (best effort on API Gateway), is found gone by a push (410, which is
authoritative), or is found gone by a presence probe (streams.timers: the `$disconnect` never came).
Each way, its record is deleted and a `disconnect` record goes on the stream, so that the match, in order
with its other events, marks the player away (a running match holds the seat for the mode's reconnect
grace) and stops pushing there.

In a waiting match the seat is given back to matchmaking first (MatchStore.release_seat: conditional on
the roster's generation, so it never races a claim), unless the player is still attached to that match
on another connection; the record then says `released`, and the rules drop the player.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from backend.ids import ConnectionId, PlayerId
from backend.store.connections import Connection, ConnectionStore

if TYPE_CHECKING:
    from backend.protocol import GameEvent
    from backend.push import Gateway
    from backend.store.matches import MatchStore
    from backend.store.stream import ActionStream


@dataclass(frozen=True)
class Sessions:
    connections: ConnectionStore
    stream: ActionStream
    matches: MatchStore

    def close(self, connection_id: ConnectionId) -> Connection | None:
        """`$disconnect`: idempotent, a record already gone is fine. Returns what was recorded."""
        old = self.connections.delete(connection_id)
        if old is not None and old.match_id is not None:
            self.stream.publish(self._ended(old.match_id, old.player_id, old.connection_id, "closed"))
        return old

    def gone(self, match_id: str, owners: Iterable[tuple[str, str]], *, waiting: bool) -> None:
        """Connections a push found gone (410), as (connection id, player id) of one match: their seats
        released when the match is waiting, one PutRecords for all of them, then each record deleted."""
        owners = list(owners)
        events = [self._ended(match_id, player, conn, "gone", release=waiting) for conn, player in owners]
        self.stream.publish_many(events)
        for conn, _ in owners:
            self.connections.delete(ConnectionId(conn))

    def found_gone(self, conn: Connection) -> None:
        """A presence probe found the connection gone (its `$disconnect` never arrived)."""
        if conn.match_id is not None:
            self.stream.publish(self._ended(conn.match_id, conn.player_id, conn.connection_id, "probe"))
        self.connections.delete(conn.connection_id)

    def _ended(
        self,
        match_id: str,
        player: str,
        connection: str,
        reason: Literal["closed", "gone", "probe"],
        *,
        release: bool = True,
    ) -> GameEvent:
        def elsewhere() -> bool:
            # A second tab attached to the same match keeps the seat (the byPlayer index; only asked when
            # the match is open, so it costs nothing once a match runs).
            others = self.connections.of_player(PlayerId(player))
            return any(c.match_id == match_id and c.connection_id != connection for c in others)

        from backend.store.stream import disconnect_event

        released = release and self.matches.release_seat(match_id, player, unless=elsewhere) is not None
        return disconnect_event(match_id, player, connection, reason=reason, released=released)


@dataclass(frozen=True)
class Admission:
    """`$connect`'s limit of connections per player: a new connection beyond it closes the player's
    oldest ones (a player who opens a new tab, or whose old sockets died unseen, is never locked out)."""

    connections: ConnectionStore
    gateway: Gateway
    sessions: Callable[[], Sessions]
    max_per_player: int

    def admit(self, conn: Connection) -> list[str]:
        """Records the connection, then closes the player's oldest beyond the limit (first a `closing`
        frame, then DELETE @connections; its `$disconnect` follows). Returns the ids closed. A connection
        already gone (its `$disconnect` never came) ends here as a probe would end it."""
        self.connections.put(conn)
        others = sorted(
            (c for c in self.connections.of_player(conn.player_id) if c.connection_id != conn.connection_id),
            key=lambda c: (c.connected_at, c.connection_id),
        )
        excess = others[: max(0, len(others) + 1 - self.max_per_player)]
        if not excess:
            return []
        from backend.protocol import Closing, dump

        frame = dump(
            Closing(
                code="too_many_connections",
                message=f"more than {self.max_per_player} connections of this player: the oldest are closed",
            )
        )
        for old in excess:
            if not (self.gateway.post(old.connection_id, frame) and self.gateway.close(old.connection_id)):
                self.sessions().found_gone(old)
        return [c.connection_id for c in excess]
