"""The game rules: `apply(state, event) -> (state, outcome)`. Pure: no I/O, no clock, no randomness.

The processor, the replay command and the tests all run these same functions, so a match rebuilt from
its event log equals the stored match by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from backend.errors import GameError, MatchFull, MatchNotRunning, NotInMatch
from backend.game.modes import MODES
from backend.protocol import GameEvent
from backend.vocabulary import MatchStatus

Status = MatchStatus
# How many recent action ids are remembered per player to drop client retries. A retry is sent within
# seconds of the original (the SDK re-sends unacknowledged actions after a reconnect), long before
# this many newer actions of the same player.
SEEN_PER_PLAYER = 256


@dataclass(frozen=True)
class Player:
    score: int = 0
    x: int = 0
    y: int = 0
    left: bool = False


@dataclass(frozen=True)
class Match:
    match_id: str
    mode: str
    status: Status = "waiting"
    version: int = 0
    players: dict[str, Player] = field(default_factory=dict)
    winner: str | None = None
    seen: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def seats(self) -> int:
        return MODES[self.mode].seats


@dataclass(frozen=True)
class Applied:
    action_id: str | None


@dataclass(frozen=True)
class Ignored:
    """Nothing to do, and nothing wrong: a duplicate, or a join of a player already in."""

    reason: str
    duplicate: bool = False  # an action id the player already had applied


@dataclass(frozen=True)
class Refused:
    """The rules refuse the event: `error` is its member of the error tree (backend.errors), whose
    `code` the `rejected` frame carries."""

    action_id: str | None
    error: GameError

    @property
    def code(self) -> str:
        return self.error.code

    @property
    def message(self) -> str:
        return self.error.message


Outcome = Applied | Ignored | Refused


def new_match(match_id: str, mode: str) -> Match:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}")
    return Match(match_id=match_id, mode=mode)


def _bump(state: Match, **changes: object) -> Match:
    return replace(state, version=state.version + 1, **changes)  # type: ignore[arg-type]


def _remember(state: Match, player: str, action_id: str) -> dict[str, tuple[str, ...]]:
    recent = (*state.seen.get(player, ()), action_id)[-SEEN_PER_PLAYER:]
    return {**state.seen, player: recent}


def apply(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    if event.matchId != state.match_id:
        raise ValueError(f"event for {event.matchId} applied to {state.match_id}")
    handler = _HANDLERS[event.type]
    return handler(state, event)


def _join(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    pid = event.playerId
    player = state.players.get(pid)
    if player is not None and player.left and state.status != "finished":
        # Back after leaving (or after a dropped connection that the client turned into a leave).
        return _bump(state, players={**state.players, pid: replace(player, left=False)}), Applied(
            event.actionId
        )
    if player is not None:
        return state, Ignored("already in the match")
    if state.status != "waiting":
        message = f"the match is {state.status}"
        refusal = MatchNotRunning(message) if state.status == "finished" else MatchFull(message)
        return state, Refused(event.actionId, refusal)
    if len(state.players) >= state.seats:
        return state, Refused(event.actionId, MatchFull("the match has no free seat"))
    players = {**state.players, pid: Player()}
    status: Status = "running" if len(players) == state.seats else "waiting"
    return _bump(state, players=players, status=status), Applied(event.actionId)


def _leave(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    pid = event.playerId
    player = state.players.get(pid)
    if player is None or player.left:
        return state, Ignored("not in the match")
    players = {**state.players, pid: replace(player, left=True)}
    status = state.status
    if all(p.left for p in players.values()):
        status = "finished"
    return _bump(state, players=players, status=status), Applied(event.actionId)


def _playable(state: Match, event: GameEvent) -> Refused | Ignored | None:
    player = state.players.get(event.playerId)
    if player is None or player.left:
        return Refused(event.actionId, NotInMatch("the player is not in this match"))
    if event.actionId is not None and event.actionId in state.seen.get(event.playerId, ()):
        return Ignored("duplicate action id", duplicate=True)
    if state.status != "running":
        return Refused(event.actionId, MatchNotRunning(f"the match is {state.status}"))
    return None


def _score(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    blocked = _playable(state, event)
    if blocked is not None:
        return state, blocked
    assert event.points is not None and event.actionId is not None
    player = state.players[event.playerId]
    updated = replace(player, score=player.score + event.points)
    players = {**state.players, event.playerId: updated}
    won = updated.score >= MODES[state.mode].target_score
    return (
        _bump(
            state,
            players=players,
            seen=_remember(state, event.playerId, event.actionId),
            status="finished" if won else state.status,
            winner=event.playerId if won else state.winner,
        ),
        Applied(event.actionId),
    )


def _move(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    blocked = _playable(state, event)
    if blocked is not None:
        return state, blocked
    assert event.x is not None and event.y is not None and event.actionId is not None
    player = state.players[event.playerId]
    players = {**state.players, event.playerId: replace(player, x=event.x, y=event.y)}
    return (
        _bump(state, players=players, seen=_remember(state, event.playerId, event.actionId)),
        Applied(event.actionId),
    )


def _disconnect(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    # The game goes on: where the player's pushes go is the processor's business (streams.pipeline).
    return state, Ignored("a connection closed")


def _end(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    if state.status == "finished":
        return state, Ignored("already finished")
    return _bump(state, status="finished"), Applied(event.actionId)


_HANDLERS = {
    "join": _join,
    "leave": _leave,
    "score": _score,
    "move": _move,
    "end": _end,
    "disconnect": _disconnect,
}
