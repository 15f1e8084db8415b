"""One Kinesis batch on the hot path: what the players are waiting for, and nothing else.

    records ─► decode ─► group by match (in order) ─► BatchGetItem matches
            ─► rules.apply per event (pure) ─► per match, concurrently:
                   UpdateItem the state (conditional on version) ─► push state / rejections / resyncs

Leaderboards, ranks and the event log are not written here: every state write carries the events it
applied (`tail`), and the matches table's stream hands each write, old and new image, to the
leaderboard projector (streams.projector), which aggregates a window of them before it writes.

Exactly once on at-least-once delivery:
- a match stores `seq`, the highest sequence number it has applied, in the same conditional write as
  its state; a redelivered record at or below it is skipped, so a replayed batch writes nothing;
- client retries of one action id are dropped by the rules (`seen`);
- the projector's credits are absolute per match (backend.store.leaderboards), so a redelivered image
  credits nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from backend.errors import MatchNotFound
from backend.game import rules
from backend.protocol import GameEvent, PlayerState, Rejected, State
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
    # Connections to tell where the match stands: re-joined players (they missed pushes), and senders of
    # an action applied before (a retry), with those action ids, so the retry is confirmed too.
    resync: dict[str, list[str]] = field(default_factory=dict)
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
    if (event.type == "leave" and not seated) or (
        event.type == "disconnect" and connections.get(player) == connection
    ):
        return {p: c for p, c in connections.items() if p != player}
    return connections


def advance(before: Stored, records: list[Staged], result: MatchResult) -> None:
    """Applies the new records to the state (pure), one Step per UTC day that changed something."""
    current = before
    state = before.match
    connections = before.connections
    high = before.seq
    events: list[tuple[int, GameEvent]] = []
    fresh = [s for s in records if s.sequence > before.seq]  # the others were applied by an earlier delivery
    for i, s in enumerate(fresh):
        state, outcome = rules.apply(state, s.event)
        connections = route(connections, state, s.event)
        high = max(high, s.sequence)
        if isinstance(outcome, rules.Applied):
            result.applied.append((state.version, s.event))
            events.append((state.version, s.event))
        elif isinstance(outcome, rules.Refused):
            result.rejected.append((s.event, outcome))
        elif s.event.connectionId and (s.event.type == "join" or outcome.duplicate):
            confirmed = result.resync.setdefault(s.event.connectionId, [])
            if outcome.duplicate and s.event.actionId:
                confirmed.append(s.event.actionId)
        last_of_day = i + 1 == len(fresh) or _day(fresh[i + 1].event.receivedAt) != _day(s.event.receivedAt)
        if last_of_day and (state != current.match or connections != current.connections):
            step = Step(current, Stored(state, seq=high, connections=connections), events, s.event.receivedAt)
            result.steps.append(step)
            current = step.after
            events = []


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
            out.append(
                (event.connectionId, rejected_frame(event, refusal).model_dump_json(exclude_none=True))
            )
    if result.before.exists:
        for connection_id, confirmed in result.resync.items():
            out.append(
                (connection_id, state_frame(result, applied=confirmed).model_dump_json(exclude_none=True))
            )
    if result.after is not None and result.after.match.version != result.before.match.version:
        # (A write that only moved a player's connection, a re-join, changed nothing the others see.)
        state = state_frame(result).model_dump_json(exclude_none=True)
        out.extend((connection_id, state) for connection_id in result.after.connections.values())
    return out


def state_frame(result: MatchResult, applied: list[str] | None = None) -> State:
    """The match as it stands after the batch; `applied` defaults to the batch's applied action ids."""
    m = (result.after or result.before).match
    return State(
        matchId=m.match_id,
        mode=m.mode,  # type: ignore[arg-type]
        version=m.version,
        status=m.status,
        players={p: PlayerState(score=s.score, x=s.x, y=s.y, left=s.left) for p, s in m.players.items()},
        winner=m.winner,
        applied=[e.actionId for _, e in result.applied if e.actionId] if applied is None else applied,
    )


def rejected_frame(event: GameEvent, refusal: rules.Refused) -> Rejected:
    return Rejected(
        id=refusal.action_id or event.eventId,
        code=refusal.code,
        message=refusal.message,
        matchId=event.matchId,
    )
