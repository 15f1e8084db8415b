"""One Kinesis batch on the hot path: what the players are waiting for, and nothing else.

    records ─► decode ─► group by match (in order) ─► BatchGetItem matches
            ─► rules.apply per event (pure) ─► per match, concurrently:
                   [timers the rules asked for: SQS] ─► UpdateItem the state (conditional on version)
                   ─► push state / presence / rejections / confirmations / copies for re-joins

Leaderboards, ranks and the event log are not written here: every state write carries the events it
applied (`tail`), and the matches table's stream hands each write, old and new image, to the
leaderboard projector (streams.projector), which aggregates a window of them before it writes.

Exactly once on at-least-once delivery:
- a match stores `seq`, the highest sequence number it has applied, in the same conditional write as
  its state, for every batch with a record of it it had not seen (refused and ignored ones too); a
  redelivered record at or below it is skipped, so a replayed batch writes and pushes nothing (not even
  its rejections again);
- timers are scheduled before the write that expects them: a failed write is retried and schedules them
  again (the rules apply a timer once, by what it names), and a written one never lacks its timers;
- client retries of one action id are dropped by the rules (`seen`);
- the projector's credits are absolute per match (backend.store.leaderboards), so a redelivered image
  credits nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from backend.errors import MatchNotFound
from backend.game import rules
from backend.protocol import Confirmed, GameEvent, PlayerState, PresenceChange, Rejected, State
from backend.store.matches import MatchStore, Stored
from streams.decode import Poison, Staged


@dataclass(frozen=True)
class Step:
    """One conditional write of a match: the records of one UTC day. A batch spanning midnight writes
    twice, so that each write's `lastAt` names the day every point of it was scored on, and the
    projector credits each day's rows with exactly that day's points."""

    before: Stored
    after: Stored
    events: list[tuple[int, GameEvent]]  # the events this write applied, with the version each produced
    last_at: int  # receivedAt of the step's last record: the same on every retry


@dataclass
class MatchResult:
    """What one batch did to one match."""

    match_id: str
    before: Stored
    steps: list[Step] = field(default_factory=list)
    applied: list[tuple[int, GameEvent]] = field(default_factory=list)
    rejected: list[tuple[GameEvent, rules.Refused]] = field(default_factory=list)
    # Presence changes the other players are told of: (version, event, the rules' outcome).
    presence: list[tuple[int, GameEvent, rules.Applied]] = field(default_factory=list)
    timers: list[rules.Timer] = field(default_factory=list)  # to schedule before the write
    # Senders of an action applied before (a retry), with those ids: a `confirmed` frame each.
    confirmed: dict[str, list[str]] = field(default_factory=dict)
    # Connections that re-joined a match they are seated in, and that the batch's own `state` will not
    # reach: a copy of the match's last `state` frame each (they missed pushes).
    resync: set[str] = field(default_factory=set)
    error: Exception | None = None

    @property
    def after(self) -> Stored | None:
        return self.steps[-1].after if self.steps else None

    @property
    def changed(self) -> bool:
        return bool(self.steps)


@dataclass
class BatchPlan:
    """Every match of a batch, with what its writes and pushes are to be."""

    matches: dict[str, MatchResult]
    records: dict[str, list[Staged]]  # per match, its records in the batch
    poison: list[Poison]

    def failed_sequences(self) -> set[int]:
        """The records of the matches that failed (in the rules or at their write)."""
        return {s.sequence for r in self.matches.values() if r.error for s in self.records[r.match_id]}


def group(staged: Iterable[Staged]) -> dict[str, list[Staged]]:
    by_match: dict[str, list[Staged]] = {}
    for s in staged:
        by_match.setdefault(s.event.matchId, []).append(s)
    return by_match


def _day(ms: int) -> int:
    return ms // 86_400_000


def route(connections: dict[str, str], state: rules.Match, event: GameEvent) -> dict[str, str]:
    """Where each player's pushes go, after `event`: the connection a seated player last joined from.
    A second connection that joins (a second tab, a reconnect) takes the pushes over from the first."""
    player, connection = event.playerId, event.connectionId
    seated = player in state.players and not state.players[player].left
    if event.type == "join" and connection and seated and connections.get(player) != connection:
        return {**connections, player: connection}
    if (event.type in ("leave", "timer") and not seated) or (
        event.type == "disconnect" and connections.get(player) == connection
    ):
        return {p: c for p, c in connections.items() if p != player}
    if player not in state.players and player in connections:  # a waiting seat released
        return {p: c for p, c in connections.items() if p != player}
    return connections


def _stale(connections: dict[str, str], event: GameEvent) -> bool:
    """A `disconnect` of a connection that is not where the player's pushes go (an older tab, a
    connection that already dropped): nothing for the rules, which read every disconnect as "the player's
    connection closed"."""
    return event.type == "disconnect" and connections.get(event.playerId) != event.connectionId


def step(
    state: rules.Match, connections: dict[str, str], event: GameEvent
) -> tuple[rules.Match, dict[str, str], rules.Outcome]:
    """One record: the rules (unless it is a stale connection's `disconnect`), then where pushes go."""
    if _stale(connections, event):
        outcome: rules.Outcome = rules.Ignored("not the player's current connection")
    else:
        state, outcome = rules.apply(state, event)
    return state, route(connections, state, event), outcome


def advance(before: Stored, records: list[Staged], result: MatchResult) -> None:
    """Applies the new records to the state (pure), one Step per UTC day that has any."""
    current = before
    state = before.match
    connections = before.connections
    high = before.seq
    events: list[tuple[int, GameEvent]] = []
    fresh = [s for s in records if s.sequence > before.seq]  # the others were applied by an earlier delivery
    for i, s in enumerate(fresh):
        event = s.event
        state, connections, outcome = step(state, connections, event)
        high = max(high, s.sequence)
        if isinstance(outcome, rules.Applied):
            result.applied.append((state.version, event))
            events.append((state.version, event))
            result.timers.extend(outcome.timers)
            if outcome.presence:
                result.presence.append((state.version, event, outcome))
        elif isinstance(outcome, rules.Refused):
            result.rejected.append((event, outcome))
        elif event.connectionId and outcome.duplicate and event.actionId:
            result.confirmed.setdefault(event.connectionId, []).append(event.actionId)
        elif event.connectionId and event.type == "join":
            result.resync.add(event.connectionId)
        last_of_day = i + 1 == len(fresh) or _day(fresh[i + 1].event.receivedAt) != _day(event.receivedAt)
        if last_of_day:
            # Written even when nothing changed but `seq`: a redelivery then finds every record applied,
            # and sends nothing (its rejections included) a second time.
            pushed = _pushed(result) if state.version != before.match.version else before.pushed
            after = Stored(state, seq=high, connections=connections, pushed=pushed)
            result.steps.append(Step(current, after, events, event.receivedAt))
            current = after
            events = []


def _pushed(result: MatchResult) -> tuple[str, ...]:
    return tuple(e.actionId for _, e in result.applied if e.actionId)


def plan(matches: MatchStore, staged: list[Staged], poison: list[Poison]) -> BatchPlan:
    """Reads the batch's matches (one BatchGetItem per 100) and applies the rules: no write yet."""
    by_match = group(staged)
    stored = matches.load_many(list(by_match))
    results: dict[str, MatchResult] = {}
    for match_id, records in by_match.items():
        before = stored.get(match_id)
        if before is None:
            # No such match (matchmaking always creates it first): refuse, never invent one.
            result = MatchResult(match_id, Stored(rules.Match(match_id, "practice"), 0, exists=False))
            result.rejected = [
                (s.event, rules.Refused(s.event.actionId, MatchNotFound("no such match"))) for s in records
            ]
        else:
            result = MatchResult(match_id, before)
            try:
                advance(before, records, result)
            except Exception as exc:  # a bug in the rules must not stop the other matches
                result = MatchResult(match_id, before, error=exc)
        results[match_id] = result
    return BatchPlan(results, by_match, poison)


def commit(matches: MatchStore, result: MatchResult) -> None:
    """The match's writes, in order: one per step (one per UTC day the batch spans)."""
    for step in result.steps:
        matches.save(
            step.after, expected_version=step.before.match.version, events=step.events, last_at=step.last_at
        )


def messages(result: MatchResult) -> list[tuple[str, str]]:
    """(connection id, frame) for everything this batch has to tell about one committed match."""
    out: list[tuple[str, str]] = []
    for event, refusal in result.rejected:
        if event.connectionId:
            out.append((event.connectionId, dump(rejected_frame(event, refusal))))
    now = result.after or result.before
    for connection_id, ids in result.confirmed.items():
        confirmed = Confirmed(matchId=now.match.match_id, ids=ids, version=now.match.version)
        out.append((connection_id, dump(confirmed)))
    changed = now.match.version != result.before.match.version
    broadcast = set(now.connections.values()) if changed else set()
    if result.before.exists:
        # A copy of the last state frame (the same `applied`): a version names one content.
        copy = dump(state_frame(now.match, list(now.pushed)))
        out.extend((connection_id, copy) for connection_id in sorted(result.resync - broadcast))
    if changed:
        # (A write that only moved a player's connection, a re-join, changed nothing the others see.)
        state = dump(state_frame(now.match, list(_pushed(result))))
        out.extend((connection_id, state) for connection_id in now.connections.values())
    for version, event, outcome in result.presence:
        grace = next((t.delay_ms for t in outcome.timers if t.player == event.playerId), None)
        frame = PresenceChange(
            matchId=event.matchId,
            playerId=event.playerId,
            presence=outcome.presence,  # type: ignore[arg-type]
            version=version,
            graceMs=grace,
        )
        data = dump(frame)
        out.extend((c, data) for p, c in now.connections.items() if p != event.playerId)
    return out


def dump(frame: Rejected | Confirmed | State | PresenceChange) -> str:
    return frame.model_dump_json(exclude_none=True)


def state_frame(m: rules.Match, applied: list[str]) -> State:
    """The match as it stands, in the `state` frame of its version."""
    return State(
        matchId=m.match_id,
        mode=m.mode,
        version=m.version,
        status=m.status,
        players={
            p: PlayerState(score=s.score, x=s.x, y=s.y, left=s.left, presence=s.presence)
            for p, s in m.players.items()
        },
        winner=m.winner,
        applied=applied,
        game=dict(m.game) if m.game else None,
    )


def rejected_frame(event: GameEvent, refusal: rules.Refused) -> Rejected:
    return Rejected(
        id=refusal.action_id or event.eventId,
        code=refusal.code,
        message=refusal.message,
        matchId=event.matchId,
    )
