"""The use cases behind the message route: join, act, leave, leaderboard.

The message Lambda decides only what it can decide cheaply (shape, membership through the caller's
connection record) and hands everything that needs match state to the stream processor, through one
Kinesis record per action. `GameRoutes` holds exactly what the use cases use; the message handler
builds it once per execution environment (its composition root), tests build it from moto or fakes.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from backend import rankings
from backend.caller import Caller
from backend.config import game_settings
from backend.errors import InvalidMessage, MatchFull, MatchNotFound, NotInMatch, StaleState, Unavailable
from backend.game import modes
from backend.game.plugin import ActFrame
from backend.ids import MatchId
from backend.protocol import (
    Ack,
    Entry,
    GameEvent,
    Join,
    Joined,
    Leaderboard,
    LeaderboardQuery,
    Leave,
    Left,
)
from backend.store.connections import ConnectionStore
from backend.store.leaderboards import LeaderboardStore, Row
from backend.store.matches import MatchStore, Roster
from backend.store.stream import ActionStream
from backend.store.timers import TimerQueue

MATCHMAKING_ATTEMPTS = 12


def new_match_id() -> str:
    return "m-" + uuid.uuid4().hex


def _event(caller: Caller, match_id: str, type_: str, **fields: object) -> GameEvent:
    return GameEvent.model_validate(
        {
            "eventId": str(uuid.uuid4()),
            "matchId": match_id,
            "playerId": caller.player_id,  # from the authorizer, never from the frame
            "connectionId": caller.connection_id,
            "receivedAt": caller.received_at,
            "type": type_,
            **{k: v for k, v in fields.items() if v is not None},
        }
    )


@dataclass(frozen=True)
class GameRoutes:
    """The message route's use cases, and exactly what they use."""

    matches: MatchStore
    connections: ConnectionStore
    stream: ActionStream
    leaderboards: LeaderboardStore
    timers: TimerQueue
    probe_every: float  # seconds between presence probes of a connection in a match

    def handle(self, caller: Caller, frame: BaseModel) -> BaseModel:
        route = ROUTES.get(ActFrame if isinstance(frame, ActFrame) else type(frame))
        if route is None:  # a frame model the protocol added without a route here: a bug, not the client's
            raise TypeError(f"no route for {type(frame).__name__}")
        return route(self, caller, frame)

    def matchmake(self, mode: str, player: str) -> Roster:
        """A seat in the mode's filling match, or a new match. Every joiner of a mode goes through one lobby
        item, so players who join at the same moment are paired instead of each opening a match; seats are
        claimed with a conditional write, so a match is never overfilled."""
        store = self.matches
        if game_settings().mode(mode).seats == 1:
            return store.create(new_match_id(), mode, player)
        for attempt in range(MATCHMAKING_ATTEMPTS):
            current = store.lobby(mode)
            if current is not None:
                try:
                    roster = store.roster(current, consistent=True)
                except MatchNotFound:
                    # Its opener won the lobby an instant ago and is still creating it.
                    time.sleep(0.01 * (attempt + 1))
                    continue
                if player in roster.players and roster.status != "finished" and player not in roster.out:
                    return roster  # already seated there (a retried join)
                if not roster.full and roster.status in (None, "waiting"):
                    try:
                        return store.claim_seat(roster, player)
                    except (StaleState, MatchFull):
                        continue
            candidate = new_match_id()
            if store.replace_lobby(mode, current, candidate):
                return store.create(candidate, mode, player)
        raise Unavailable("matchmaking is busy; join again")

    def seat(self, mode: str, player: str) -> Roster:
        """The player's running match of this mode, if they are still in one (a plain `join` after a
        reconnect must not open a second match while the first holds their seat); else matchmaking."""
        current = self.matches.seat_of(player, mode)
        if current is not None:
            try:
                roster = self.matches.roster(current, consistent=True)
            except MatchNotFound:
                roster = None
            if (
                roster
                and roster.status == "running"
                and player in roster.players
                and player not in roster.out
            ):
                return roster
        roster = self.matchmake(mode, player)
        if roster.match_id != current:
            self.matches.take_seat(player, mode, roster.match_id)
        return roster

    def join(self, caller: Caller, frame: Join) -> BaseModel:
        if frame.matchId is not None:
            roster = self.matches.roster(frame.matchId)
            if caller.player_id not in roster.players:
                held = roster.open and self.matches.seat_of(caller.player_id, roster.mode) == roster.match_id
                if not held:
                    raise NotInMatch("the player never joined this match")
                # Their waiting seat was released (they dropped): a seat again, where matchmaking finds one.
                roster = self.seat(roster.mode, caller.player_id)
        else:
            if frame.mode not in modes.configured():
                names = ", ".join(modes.configured().names())
                raise InvalidMessage(f"mode: unknown mode {frame.mode!r}; this stage's modes are {names}")
            roster = self.seat(frame.mode, caller.player_id)
        if self.connections.attach_match(caller.connection_id, MatchId(roster.match_id), roster.mode):
            # Checked every probe_every seconds while it is in the match: a lost $disconnect still ends it.
            self.timers.probe(caller.connection_id, roster.match_id, caller.player_id, self.probe_every)
        # Published on a re-join too: if the first join's record was lost, this one seats the player; if not,
        # the processor ignores it (or, from a new connection, moves the player's pushes there). The roster
        # goes with it: the rules drop from a waiting match the players it no longer holds.
        roster_fields: dict[str, object] = (
            {"roster": list(roster.players), "rosterGen": roster.gen} if roster.gen else {}
        )
        self.stream.publish(
            _event(caller, roster.match_id, "join", actionId=frame.id, mode=roster.mode, **roster_fields)
        )
        # The processor sets running/finished; until it has applied this join, a full roster is about to run.
        status = (
            roster.status
            if roster.status not in (None, "waiting")
            else ("running" if roster.full else "waiting")
        )
        # Validated rather than constructed: mode and status come from the table as plain strings.
        return Joined.model_validate(
            {
                "matchId": roster.match_id,
                "mode": roster.mode,
                "players": list(roster.players),
                "status": status,
                "ref": frame.id,
            }
        )

    def _require_membership(self, caller: Caller, match_id: str) -> str | None:
        """The match's mode, as the connection record has it (None in a record older than that)."""
        conn = self.connections.get(caller.connection_id)
        if conn is None or conn.match_id != match_id:
            raise NotInMatch("this connection has not joined that match")
        return conn.mode

    def act(self, caller: Caller, frame: ActFrame) -> BaseModel:
        mode = self._require_membership(caller, frame.matchId)
        if mode is not None and mode in modes.configured() and frame.kind not in modes.mode(mode).kinds:
            kinds = ", ".join(modes.mode(mode).kinds)
            raise InvalidMessage(f"kind: {mode} has no action {frame.kind!r}; its actions are {kinds}")
        event = _event(caller, frame.matchId, "act", actionId=frame.id, kind=frame.kind, args=frame.args())
        self.stream.publish(event)
        return Ack(id=frame.id)

    def leave(self, caller: Caller, frame: Leave) -> BaseModel:
        self._require_membership(caller, frame.matchId)
        # A waiting seat goes back to matchmaking (conditional on the roster's generation), and the record
        # says so: the rules then drop the player instead of marking them left.
        released = self.matches.release_seat(frame.matchId, caller.player_id) is not None
        self.stream.publish(
            _event(caller, frame.matchId, "leave", actionId=frame.id, released=True if released else None)
        )
        self.connections.detach_match(caller.connection_id, MatchId(frame.matchId))
        return Left(matchId=frame.matchId, ref=frame.id)

    def leaderboard(self, caller: Caller, frame: LeaderboardQuery) -> BaseModel:
        store = self.leaderboards
        t = rankings.target(store, frame.board, frame.period, frame.season)
        page = rankings.read(
            store,
            t,
            frame.limit,
            cursor=frame.cursor,
            around=caller.player_id if frame.start == "me" else None,
        )
        prev, nxt = rankings.cursors(page)
        me = around = None
        if frame.around:
            found = store.around(t.board, t.key, caller.player_id)
            if found is not None:
                me = _entry(*found.me)
                around = [_entry(rank, row) for rank, row in found.entries]
        return Leaderboard(
            board=frame.board,
            period=frame.period,
            season=t.season,
            entries=[_entry(rank, row) for rank, row in page.entries],
            next=nxt,
            prev=prev,
            me=me,
            around=around,
            ref=frame.id,
        )


def _entry(rank: int, row: Row) -> Entry:
    return Entry(rank=rank, playerId=row.player_id, score=row.score, subscore=row.subscore)


# The static route table: every client frame but `ping` (answered by backend.service), by its model.
ROUTES: dict[type[BaseModel], Callable[[GameRoutes, Caller, Any], BaseModel]] = {
    Join: GameRoutes.join,
    ActFrame: GameRoutes.act,  # every mode's actions (subclasses of ActFrame)
    Leave: GameRoutes.leave,
    LeaderboardQuery: GameRoutes.leaderboard,
}
