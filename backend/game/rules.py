"""The game rules: `apply(state, event) -> (state, outcome)`. Pure: no I/O, no clock, no randomness.

The processor, the replay command and the tests all run these same functions, so a match rebuilt from
its event log equals the stored match by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from backend.config import ModeSettings, game_settings
from backend.errors import GameError, MatchFull, MatchNotRunning, NotInMatch, RateLimited
from backend.game.modes import MODES
from backend.protocol import GameEvent, Presence
from backend.vocabulary import MatchStatus

Status = MatchStatus
# How many recent action ids are remembered per player to drop client retries. A retry is sent within
# seconds of the original (the SDK re-sends unacknowledged actions after a reconnect), long before
# this many newer actions of the same player.
SEEN_PER_PLAYER = 256
TOKEN = 1000  # an action, in the thousandths the rate-limit bucket counts in (integers replay exactly)


@dataclass(frozen=True)
class Player:
    score: int = 0
    x: int = 0
    y: int = 0
    left: bool = False  # out of the game: left it, or forfeited it
    # The version at which the player's connection dropped, while their seat is held (0: connected). A
    # grace timer names it, so that it forfeits this absence only, once.
    away: int = 0
    forfeited: bool = False
    # The player's action bucket (custom.modes: actionsPerSecond, actionBurst), in thousandths of an
    # action (-1: full, never drawn from), refilled by the receive times of their actions.
    tokens: int = -1
    at: int = 0  # receivedAt of the last action the bucket counted

    @property
    def presence(self) -> Presence:
        if self.forfeited:
            return "forfeited"
        if self.left:
            return "left"
        return "away" if self.away else "here"

    @property
    def active(self) -> bool:
        """Still in the game (connected or not)."""
        return not self.left


@dataclass(frozen=True)
class Match:
    match_id: str
    mode: str
    status: Status = "waiting"
    version: int = 0
    players: dict[str, Player] = field(default_factory=dict)
    winner: str | None = None
    seen: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The newest roster generation an applied join carried (matchmaking's; backend.store.matches): a
    # waiting match drops the players that a newer roster no longer holds (their seats were released).
    roster_gen: int = 0

    @property
    def seats(self) -> int:
        return MODES[self.mode].seats

    @property
    def settings(self) -> ModeSettings:
        return game_settings().mode(self.mode)


@dataclass(frozen=True)
class Timer:
    """An event the rules want back later: `kind` for `player`, naming `ref`, in `delay_ms`. The
    processor schedules it before it writes the state that expects it; when due it comes back as a
    `timer` event, which the rules apply only if it still names what it was for (so, once)."""

    kind: str
    player: str
    ref: int
    delay_ms: int


@dataclass(frozen=True)
class Applied:
    action_id: str | None
    # What the other players are told (a `presence` frame): away, back, forfeited, left.
    presence: str | None = None
    timers: tuple[Timer, ...] = ()


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
    """The match after `event`, and what became of it. Only an Applied event changes the state (and
    bumps its version): an Ignored or Refused one returns `state` itself, so a match rebuilt from its
    event log (which holds the applied events) equals the stored one.

    A `disconnect` is applied as "the player's current connection closed": the caller (streams.pipeline,
    which knows where each player's pushes go) passes only those, never a stale connection's."""
    if event.matchId != state.match_id:
        raise ValueError(f"event for {event.matchId} applied to {state.match_id}")
    handler = _HANDLERS[event.type]
    after, outcome = handler(state, event)
    if not isinstance(outcome, Applied) and after is not state:
        raise AssertionError(f"{event.type} changed the match without being applied")
    return after, outcome


def _without(state: Match, gone: list[str]) -> Match:
    """The match without these players at all (waiting seats released: as if they never joined)."""
    return replace(
        state,
        players={p: s for p, s in state.players.items() if p not in gone},
        seen={p: s for p, s in state.seen.items() if p not in gone},
    )


def _settle(state: Match) -> Match:
    """A running match left with too few players ends: the last one in it wins. A match every player is
    out of is over."""
    if state.status == "finished":
        return state
    active = [p for p, s in state.players.items() if s.active]
    if state.players and not active:
        return replace(state, status="finished")
    if state.status == "running" and state.seats > 1 and len(active) == 1:
        return replace(state, status="finished", winner=state.winner or active[0])
    return state


def _graces(state: Match, players: list[str]) -> tuple[Timer, ...]:
    grace = state.settings.grace_ms
    return tuple(Timer("grace", p, state.players[p].away, grace) for p in players)


def _join(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    pid = event.playerId
    gen = max(state.roster_gen, event.rosterGen or 0)
    seated = _reconciled(state, event)
    player = seated.players.get(pid)
    if player is not None:
        if player.forfeited:
            return state, Refused(event.actionId, NotInMatch("the player forfeited this match"))
        if state.status == "finished":
            return state, Ignored("the match is over")
        if player.away or player.left:
            # Back: on a new connection within the grace (or after leaving a match that goes on).
            back = replace(player, away=0, left=False)
            after = _bump(seated, players={**seated.players, pid: back}, roster_gen=gen)
            return after, Applied(event.actionId, presence="back")
        if seated is not state:
            return _bump(seated, roster_gen=gen), Applied(event.actionId)
        return state, Ignored("already in the match")
    if state.status != "waiting":
        message = f"the match is {state.status}"
        refusal = MatchNotRunning(message) if state.status == "finished" else MatchFull(message)
        return state, Refused(event.actionId, refusal)
    if len(seated.players) >= state.seats:
        return state, Refused(event.actionId, MatchFull("the match has no free seat"))
    players = {**seated.players, pid: Player()}
    status: Status = "running" if len(players) == state.seats else "waiting"
    after = _bump(seated, players=players, status=status, roster_gen=gen)
    # Players who dropped while the match waited, and whose seats could not be released (the roster had
    # filled): their grace starts now.
    away = [p for p, s in players.items() if s.away and s.active] if status == "running" else []
    return _settle(after), Applied(event.actionId, timers=_graces(after, away))


def _reconciled(state: Match, event: GameEvent) -> Match:
    """A waiting match, without the players a newer roster than any applied join's no longer holds: their
    seats were released (the roster is matchmaking's; its generation orders the joins' snapshots)."""
    if state.status != "waiting" or event.roster is None or (event.rosterGen or 0) <= state.roster_gen:
        return state
    gone = [p for p in state.players if p not in event.roster and p != event.playerId]
    return _without(state, gone) if gone else state


def _leave(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    pid = event.playerId
    player = state.players.get(pid)
    if player is None or player.left:
        return state, Ignored("not in the match")
    if state.status == "waiting" and event.released:
        return _bump(_without(state, [pid])), Applied(event.actionId, presence="left")
    players = {**state.players, pid: replace(player, left=True, away=0)}
    return _settle(_bump(state, players=players)), Applied(event.actionId, presence="left")


def _disconnect(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    pid = event.playerId
    player = state.players.get(pid)
    if player is None or player.left or player.away or state.status == "finished":
        return state, Ignored("nobody to mark away")
    if state.status == "waiting" and event.released:
        # Matchmaking already gave the seat back: the player is out, as if they had never joined.
        return _bump(_without(state, [pid])), Applied(None, presence="left")
    marker = state.version + 1
    after = _bump(state, players={**state.players, pid: replace(player, away=marker)})
    timers = _graces(after, [pid]) if state.status == "running" else ()
    return after, Applied(None, presence="away", timers=timers)


def _timer(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    pid = event.playerId
    player = state.players.get(pid)
    # Only the absence it was scheduled for: a player who came back (and maybe dropped again since) is
    # not forfeited by an old timer, and a timer delivered twice finds the player forfeited already.
    if state.status != "running" or player is None or player.left or player.away != event.ref:
        return state, Ignored("the timer is not due for anything")
    forfeited = replace(player, away=0, left=True, forfeited=True)
    return _settle(_bump(state, players={**state.players, pid: forfeited})), Applied(
        None, presence="forfeited"
    )


def _playable(state: Match, event: GameEvent) -> Refused | Ignored | None:
    player = state.players.get(event.playerId)
    if player is None or player.left:
        return Refused(event.actionId, NotInMatch("the player is not in this match"))
    if event.actionId is not None and event.actionId in state.seen.get(event.playerId, ()):
        return Ignored("duplicate action id", duplicate=True)
    if state.status != "running":
        return Refused(event.actionId, MatchNotRunning(f"the match is {state.status}"))
    return None


def _drawn(state: Match, player: Player, event: GameEvent) -> Player | None:
    """The player with one action drawn from their bucket, or None when it is empty. Refilled by the time
    between this action's receive time and the last one counted (never backwards: the stream orders a
    match's actions, not their clocks), so a replay refuses exactly the same actions."""
    limits = state.settings
    full = limits.actionBurst * TOKEN
    elapsed = max(0, event.receivedAt - player.at)
    tokens = full if player.tokens < 0 else min(full, player.tokens + int(elapsed * limits.actionsPerSecond))
    if tokens < TOKEN:
        return None
    return replace(player, tokens=tokens - TOKEN, at=max(player.at, event.receivedAt))


def _score(state: Match, event: GameEvent) -> tuple[Match, Outcome]:
    blocked = _playable(state, event)
    if blocked is not None:
        return state, blocked
    assert event.points is not None and event.actionId is not None
    player = _drawn(state, state.players[event.playerId], event)
    if player is None:
        return state, Refused(event.actionId, RateLimited("too many actions; slow down"))
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
    player = _drawn(state, state.players[event.playerId], event)
    if player is None:
        return state, Refused(event.actionId, RateLimited("too many actions; slow down"))
    players = {**state.players, event.playerId: replace(player, x=event.x, y=event.y)}
    return (
        _bump(state, players=players, seen=_remember(state, event.playerId, event.actionId)),
        Applied(event.actionId),
    )


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
    "timer": _timer,
}
