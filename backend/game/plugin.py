"""The interface a game mode implements: a plug-in that `serverless.yml` names per mode.

A mode is a Python module exposing `MODE`, a subclass of `GameMode` (docs/game-modes.md walks through
writing one). `custom.modes.<name>` names the module (`plugin`), the seats, the limits and the mode's own
`options`; `backend.game.modes` loads it. Everything that knows game rules goes through this class only:
the processor applies events with `apply`, the message route validates `act` frames with `actions`, and
the leaderboard projector credits what `credits` says.

Every method is pure: no I/O, no clock, no randomness. Time comes from the events (`receivedAt`, set by
the server when it received the frame) and from timers the rules schedule, which come back as `timer`
events. So the processor, `gamebackend replay` and the tests run the same functions, and a match rebuilt
from its event log equals the stored match.

`GameMode.apply` handles the lifecycle every mode shares (joins, leaves, disconnects and their reconnect
grace, per-player action rate, duplicate action ids, match duration, the last player standing) and calls
the hooks a mode overrides for its game: `start`, `play`, `ended`, `schedule`, `timeout`, `credits`. A
mode may override `apply` itself for full control.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from backend.errors import (
    GameError,
    Implausible,
    InvalidMessage,
    MatchFull,
    MatchNotRunning,
    NotInMatch,
    RateLimited,
)
from backend.ids import ACTION_ID_PATTERN, MATCH_ID_PATTERN
from backend.protocol import KIND_PATTERN
from backend.vocabulary import MatchStatus

if TYPE_CHECKING:
    from backend.config import ModeSettings
    from backend.protocol import GameEvent, Presence

Status = MatchStatus
# How many recent action ids are remembered per player to drop client retries. A retry is sent within
# seconds of the original (the SDK re-sends unacknowledged actions after a reconnect), long before
# this many newer actions of the same player.
SEEN_PER_PLAYER = 256
TOKEN = 1000  # an action, in the thousandths the rate-limit bucket counts in (integers replay exactly)
GRACE = "grace"  # a dropped player's reconnect grace ran out
DURATION = "duration"  # the match's time (custom.modes.<mode>.matchSeconds) ran out


# --- the state ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Player:
    score: int = 0  # what the rules say the player has: the boards are credited from it (`credits`)
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
    actions: int = 0  # actions of the player the rules applied (what plausibility counts)

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
    # The mode's own state (a board, whose turn it is): JSON-compatible, never mutated in place. It is in
    # the `state` frame as `game`, so it must be what every player may see.
    game: Mapping[str, Any] = field(default_factory=dict)
    started_at: int = 0  # receivedAt of the event that started the match (0: not started)


@dataclass(frozen=True)
class Timer:
    """An event the rules want back later: `kind` for `player`, naming `ref`, in `delay_ms`. The
    processor schedules it before it writes the state that expects it; when due it comes back as a
    `timer` event, which the rules apply only if it still names what it was for (so, once)."""

    kind: str
    player: str
    ref: int
    delay_ms: int


# --- what became of an event ----------------------------------------------------------------------


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


# --- a mode's actions: the `act` frames it accepts ------------------------------------------------


class ActFrame(BaseModel):
    """The `act` frame: a mode's actions subclass it, with `kind: Literal["..."]` and their fields. What
    the fields may hold is checked here, by the message function, before anything is published; what
    the match makes of them is the rules' (`GameMode.play`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, defer_build=True)

    action: Literal["act"]
    kind: str
    matchId: Annotated[str, Field(pattern=MATCH_ID_PATTERN)]
    id: Annotated[str, Field(pattern=ACTION_ID_PATTERN, description="client-chosen id, echoed back")] = Field(
        description="action id, unique per player; a repeated id is applied once"
    )

    ENVELOPE: ClassVar[frozenset[str]] = frozenset({"action", "kind", "matchId", "id"})

    def args(self) -> dict[str, Any]:
        """The action's own fields: what the stream record carries (GameEvent.args)."""
        return self.model_dump(exclude=set(self.ENVELOPE))


def kind_of(model: type[ActFrame]) -> str:
    """The `kind` an action model declares (its Literal's one value)."""
    annotation = model.model_fields["kind"].annotation
    values: tuple[Any, ...] = tuple(getattr(annotation, "__args__", ()))
    if len(values) != 1 or not isinstance(values[0], str) or not re.match(KIND_PATTERN, values[0]):
        raise TypeError(f"{model.__name__}.kind must be one Literal string matching {KIND_PATTERN}")
    return str(values[0])


# --- reported scores -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Plausibility:
    """How much a client may claim, in a mode whose actions report a score (`GameMode.reports_scores`).
    Checked against the server's receive times, so a replay refuses exactly the same actions."""

    pointsPerAction: int  # at most this many points in one action
    pointsPerSecond: float  # a player's match total grows at most this fast from the match's start ...
    pointsAtStart: int  # ... above this allowance (what one may score in the first instant)
    actionsPerSecond: float  # a player's scoring actions, on average since the start, at most this many
    actionsAtStart: int = 1  # ... above this allowance

    @classmethod
    def parse(cls, raw: Any, where: str) -> Plausibility:
        if not isinstance(raw, Mapping):
            raise ValueError(f"{where}: `plausibility` must be an object")
        known = {"pointsPerAction", "pointsPerSecond", "pointsAtStart", "actionsPerSecond", "actionsAtStart"}
        unknown = set(raw) - known
        missing = known - {"actionsAtStart"} - set(raw)
        if unknown or missing:
            raise ValueError(f"{where}: plausibility unknown {sorted(unknown)}, missing {sorted(missing)}")
        return cls(
            pointsPerAction=int(raw["pointsPerAction"]),
            pointsPerSecond=float(raw["pointsPerSecond"]),
            pointsAtStart=int(raw["pointsAtStart"]),
            actionsPerSecond=float(raw["actionsPerSecond"]),
            actionsAtStart=int(raw.get("actionsAtStart", 1)),
        )

    def refusal(self, state: Match, player: Player, points: int, at: int) -> Implausible | None:
        """Why claiming `points` at receive time `at` is implausible, or None. `player` is as `play` gets
        it: this action already counted in `actions`."""
        if points > self.pointsPerAction:
            return Implausible(f"at most {self.pointsPerAction} points in one action")
        # Whole milliseconds and integer arithmetic: the same answer on every machine and every replay.
        elapsed_ms = max(0, at - state.started_at)
        if (player.score + points - self.pointsAtStart) * 1000 > self.pointsPerSecond * elapsed_ms:
            return Implausible(f"more than {self.pointsPerSecond:g} points per second of the match")
        if (player.actions - self.actionsAtStart) * 1000 > self.actionsPerSecond * elapsed_ms:
            return Implausible(f"more than {self.actionsPerSecond:g} scoring actions per second")
        return None


# --- the mode ------------------------------------------------------------------------------------


class GameMode:
    """A game mode. Subclass it, declare `actions`, override the hooks of your game; `MODE = YourMode`
    in the module `serverless.yml` names. One instance per mode name (`practice` and `duel` may be two
    instances of one class, with different seats and options)."""

    # The `act` frames this mode accepts (subclasses of ActFrame, each with its own `kind`).
    actions: ClassVar[tuple[type[ActFrame], ...]] = ()
    # True when an action carries a score the client claims: the mode must then declare plausibility
    # bounds (options.plausibility) and refuse what exceeds them (`Plausibility.refusal`).
    reports_scores: ClassVar[bool] = False

    def __init__(self, name: str, seats: int, settings: ModeSettings, options: Mapping[str, Any]) -> None:
        if seats < 1:
            raise ValueError(f"mode {name}: seats must be at least 1")
        self.name = name
        self.seats = seats
        self.settings = settings
        self.options = dict(options)
        self.kinds: dict[str, type[ActFrame]] = {kind_of(m): m for m in self.actions}
        # Built once, not per event: `apply` runs for every record of every batch.
        self._handlers: dict[str, Callable[[Match, GameEvent], tuple[Match, Outcome]]] = {
            "join": self._join,
            "leave": self._leave,
            "act": self._act,
            "end": self._end,
            "disconnect": self._disconnect,
            "timer": self._timer,
        }
        self.plausibility: Plausibility | None = None
        if self.reports_scores:
            if "plausibility" not in self.options:
                raise ValueError(
                    f"mode {name} accepts reported scores: declare options.plausibility "
                    "(pointsPerAction, pointsPerSecond, pointsAtStart, actionsPerSecond)"
                )
            self.plausibility = Plausibility.parse(self.options["plausibility"], f"mode {name}")
        self.configure(self.options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, seats={self.seats})"

    # --- hooks: what a mode writes -------------------------------------------------------------------

    def configure(self, options: Mapping[str, Any]) -> None:
        """Reads the mode's own options (custom.modes.<mode>.options); raise ValueError for a bad one."""

    def start(self, state: Match) -> Match:
        """The game at the start, for the roster in `state.players` (every seat taken; `status` is
        `running`). Typically sets `game`."""
        return state

    def play(self, state: Match, player: str, action: ActFrame, at: int) -> Match | GameError:
        """One action of a seated player in a running match, received at `at` (epoch ms): the match after
        it, or the GameError it is refused with. The version, the action id and the rate limit are the
        base's: change only what the game changes."""
        return InvalidMessage(f"{self.name} has no action {action.kind!r}")

    def ended(self, state: Match) -> tuple[bool, str | None]:
        """After an applied action: is the match over, and who won (None: nobody, a draw)."""
        return False, None

    def decide(self, state: Match) -> str | None:
        """The winner of a match stopped before its end (its time ran out): the one highest score."""
        active = {p: s.score for p, s in state.players.items() if not s.forfeited}
        if not active:
            return None
        best = max(active.values())
        leaders = [p for p, score in active.items() if score == best]
        return leaders[0] if len(leaders) == 1 else None

    def schedule(self, before: Match, after: Match) -> tuple[Timer, ...]:
        """Timers of the mode's own kinds that an applied event calls for (a turn timer when the turn
        moved). Each names what it is for in `ref`, so `timeout` can tell a stale one."""
        return ()

    def timeout(self, state: Match, kind: str, player: str, ref: int) -> Match | None:
        """A timer of the mode's own kind is due: the match after it, or None when it no longer names
        anything (the turn moved on). A timer is delivered at least once: it must apply once."""
        return None

    def credits(self, state: Match) -> dict[str, int]:
        """What the match credits each player on the boards that list this mode (absolute totals for the
        match so far: the projector credits the difference). Default: the players' scores."""
        return {p: s.score for p, s in state.players.items()}

    # --- the event function ------------------------------------------------------------------------

    def initial(self, match_id: str) -> Match:
        """The match before any event."""
        return Match(match_id=match_id, mode=self.name)

    def apply(self, state: Match, event: GameEvent) -> tuple[Match, Outcome]:
        """The match after `event`, and what became of it. Only an Applied event changes the state (and
        bumps its version): an Ignored or Refused one returns `state` itself, so a match rebuilt from its
        event log (which holds the applied events) equals the stored one.

        A `disconnect` is applied as "the player's current connection closed": the caller
        (streams.pipeline, which knows where each player's pushes go) passes only those."""
        if event.matchId != state.match_id:
            raise ValueError(f"event for {event.matchId} applied to {state.match_id}")
        after, outcome = self._handlers[event.type](state, event)
        if not isinstance(outcome, Applied):
            if after is not state:
                raise AssertionError(f"{event.type} changed the match without being applied")
            return after, outcome
        if after.status == "running" and state.status != "running":
            after = replace(self.start(after), started_at=event.receivedAt)
            outcome = replace(outcome, timers=(*outcome.timers, *self._duration(after)))
        extra = self.schedule(state, after) if after.status == "running" else ()
        if extra:
            outcome = replace(outcome, timers=(*outcome.timers, *extra))
        return after, outcome

    # --- the lifecycle -----------------------------------------------------------------------------

    def _duration(self, state: Match) -> tuple[Timer, ...]:
        seconds = self.settings.matchSeconds
        if not seconds:
            return ()
        # Named by the start's receive time: one per match, so a timer delivered twice ends it once.
        first = next(iter(state.players))
        return (Timer(DURATION, first, state.started_at, int(seconds * 1000)),)

    def _graces(self, state: Match, players: list[str]) -> tuple[Timer, ...]:
        grace = self.settings.grace_ms
        return tuple(Timer(GRACE, p, state.players[p].away, grace) for p in players)

    def _settle(self, state: Match) -> Match:
        """A running match left with too few players ends: the last one in it wins. A match every player
        is out of is over."""
        if state.status == "finished":
            return state
        active = [p for p, s in state.players.items() if s.active]
        if state.players and not active:
            return replace(state, status="finished")
        if state.status == "running" and self.seats > 1 and len(active) == 1:
            return replace(state, status="finished", winner=state.winner or active[0])
        return state

    def _join(self, state: Match, event: GameEvent) -> tuple[Match, Outcome]:
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
        if len(seated.players) >= self.seats:
            return state, Refused(event.actionId, MatchFull("the match has no free seat"))
        players = {**seated.players, pid: Player()}
        status: Status = "running" if len(players) == self.seats else "waiting"
        after = _bump(seated, players=players, status=status, roster_gen=gen)
        # Players who dropped while the match waited, and whose seats could not be released (the roster
        # had filled): their grace starts now.
        away = [p for p, s in players.items() if s.away and s.active] if status == "running" else []
        return self._settle(after), Applied(event.actionId, timers=self._graces(after, away))

    def _leave(self, state: Match, event: GameEvent) -> tuple[Match, Outcome]:
        pid = event.playerId
        player = state.players.get(pid)
        if player is None or player.left:
            return state, Ignored("not in the match")
        if state.status == "waiting" and event.released:
            return _bump(_without(state, [pid])), Applied(event.actionId, presence="left")
        players = {**state.players, pid: replace(player, left=True, away=0)}
        return self._settle(_bump(state, players=players)), Applied(event.actionId, presence="left")

    def _disconnect(self, state: Match, event: GameEvent) -> tuple[Match, Outcome]:
        pid = event.playerId
        player = state.players.get(pid)
        if player is None or player.left or player.away or state.status == "finished":
            return state, Ignored("nobody to mark away")
        if state.status == "waiting" and event.released:
            # Matchmaking already gave the seat back: the player is out, as if they had never joined.
            return _bump(_without(state, [pid])), Applied(None, presence="left")
        marker = state.version + 1
        after = _bump(state, players={**state.players, pid: replace(player, away=marker)})
        timers = self._graces(after, [pid]) if state.status == "running" else ()
        return after, Applied(None, presence="away", timers=timers)

    def _timer(self, state: Match, event: GameEvent) -> tuple[Match, Outcome]:
        assert event.timer is not None and event.ref is not None
        if state.status != "running":
            return state, Ignored("the match is not running")
        if event.timer == GRACE:
            return self._grace(state, event)
        if event.timer == DURATION:
            if event.ref != state.started_at:
                return state, Ignored("not this match's duration")
            return _bump(state, status="finished", winner=self.decide(state)), Applied(None)
        after = self.timeout(state, event.timer, event.playerId, event.ref)
        if after is None:
            return state, Ignored("the timer is not due for anything")
        return self._over(_bump(after)), Applied(None)

    def _grace(self, state: Match, event: GameEvent) -> tuple[Match, Outcome]:
        pid = event.playerId
        player = state.players.get(pid)
        # Only the absence it was scheduled for: a player who came back (and maybe dropped again since)
        # is not forfeited by an old timer, and a timer delivered twice finds the player forfeited already.
        if player is None or player.left or player.away != event.ref:
            return state, Ignored("the timer is not due for anything")
        forfeited = replace(player, away=0, left=True, forfeited=True)
        return self._settle(_bump(state, players={**state.players, pid: forfeited})), Applied(
            None, presence="forfeited"
        )

    def _playable(self, state: Match, event: GameEvent) -> Refused | Ignored | None:
        player = state.players.get(event.playerId)
        if player is None or player.left:
            return Refused(event.actionId, NotInMatch("the player is not in this match"))
        if event.actionId is not None and event.actionId in state.seen.get(event.playerId, ()):
            return Ignored("duplicate action id", duplicate=True)
        if state.status != "running":
            return Refused(event.actionId, MatchNotRunning(f"the match is {state.status}"))
        return None

    def parse(self, event: GameEvent) -> ActFrame | GameError:
        """The action a record carries, validated again by this mode's model (a record published under
        another version of the mode must not reach `play` malformed)."""
        assert event.kind is not None
        model = self.kinds.get(event.kind)
        if model is None:
            return InvalidMessage(f"{self.name} has no action {event.kind!r}")
        try:
            return model.model_validate(
                {
                    "action": "act",
                    "kind": event.kind,
                    "matchId": event.matchId,
                    "id": event.actionId,
                    **(event.args or {}),
                }
            )
        except ValidationError as exc:
            return InvalidMessage(f"{event.kind}: {exc.errors()[0]['msg']}")

    def _act(self, state: Match, event: GameEvent) -> tuple[Match, Outcome]:
        blocked = self._playable(state, event)
        if blocked is not None:
            return state, blocked
        assert event.actionId is not None
        action = self.parse(event)
        if isinstance(action, GameError):
            return state, Refused(event.actionId, action)
        drawn = self._drawn(state, state.players[event.playerId], event)
        if drawn is None:
            return state, Refused(event.actionId, RateLimited("too many actions; slow down"))
        counted = replace(drawn, actions=drawn.actions + 1)
        result = self.play(
            replace(state, players={**state.players, event.playerId: counted}),
            event.playerId,
            action,
            event.receivedAt,
        )
        if isinstance(result, GameError):
            return state, Refused(event.actionId, result)
        after = _bump(result, seen=_remember(state, event.playerId, event.actionId))
        return self._over(after), Applied(event.actionId)

    def _over(self, state: Match) -> Match:
        if state.status == "finished":
            return state
        over, winner = self.ended(state)
        return replace(state, status="finished", winner=winner) if over else state

    def _drawn(self, state: Match, player: Player, event: GameEvent) -> Player | None:
        """The player with one action drawn from their bucket, or None when it is empty. Refilled by the
        time between this action's receive time and the last one counted (never backwards: the stream
        orders a match's actions, not their clocks), so a replay refuses exactly the same actions."""
        limits = self.settings
        full = limits.actionBurst * TOKEN
        elapsed = max(0, event.receivedAt - player.at)
        tokens = (
            full if player.tokens < 0 else min(full, player.tokens + int(elapsed * limits.actionsPerSecond))
        )
        if tokens < TOKEN:
            return None
        return replace(player, tokens=tokens - TOKEN, at=max(player.at, event.receivedAt))

    def _end(self, state: Match, event: GameEvent) -> tuple[Match, Outcome]:
        if state.status == "finished":
            return state, Ignored("already finished")
        return _bump(state, status="finished"), Applied(event.actionId)


def _bump(state: Match, **changes: object) -> Match:
    return replace(state, version=state.version + 1, **changes)  # type: ignore[arg-type]


def _remember(state: Match, player: str, action_id: str) -> dict[str, tuple[str, ...]]:
    recent = (*state.seen.get(player, ()), action_id)[-SEEN_PER_PLAYER:]
    return {**state.seen, player: recent}


def _without(state: Match, gone: list[str]) -> Match:
    """The match without these players at all (waiting seats released: as if they never joined)."""
    return replace(
        state,
        players={p: s for p, s in state.players.items() if p not in gone},
        seen={p: s for p, s in state.seen.items() if p not in gone},
    )


def _reconciled(state: Match, event: GameEvent) -> Match:
    """A waiting match, without the players a newer roster than any applied join's no longer holds:
    their seats were released (the roster is matchmaking's; its generation orders the joins' snapshots)."""
    if state.status != "waiting" or event.roster is None or (event.rosterGen or 0) <= state.roster_gen:
        return state
    gone = [p for p in state.players if p not in event.roster and p != event.playerId]
    return _without(state, gone) if gone else state
