"""One Kinesis batch: apply every match's new events, write each match once, credit leaderboards once.

    records ─► decode ─► group by match (in order) ─► BatchGetItem matches
            ─► rules.apply per event (pure) ─► BatchWriteItem event-log chunks
            ─► per match: leaderboard credits, then the state (conditional on version)
            ─► pushes: state to the match, rejections to their senders, ranks to the scorers

Exactly once on at-least-once delivery:
- a match stores `seq`, the highest sequence number it has applied, in the same conditional write as
  its state; a redelivered record at or below it is skipped;
- client retries of one action id are dropped by the rules (`seen`);
- leaderboard rows are credited before the state is written, each row from the match's own totals
  (see backend.store.leaderboards), so a crash between the two re-applies what is missing and nothing
  else, and a replayed batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend.game import rules
from backend.game.periods import PERIODS, board_key, expires_at
from backend.protocol import GameEvent, PlayerState, Rank, Rejected, State
from backend.store.events import EventLog
from backend.store.leaderboards import LeaderboardStore
from backend.store.matches import MatchStore, Stored
from streams.decode import Poison, Staged


@dataclass(frozen=True)
class Step:
    """One conditional write of a match: the records of one UTC day. A batch spanning midnight writes
    twice, so each day's leaderboard rows are credited with exactly that day's points, even when a
    retry brings more records than the attempt that crashed."""

    before: Stored
    after: Stored
    last_at: int  # receivedAt of the step's last record: picks the period rows, the same on every retry


@dataclass
class MatchResult:
    """What one batch did to one match."""

    match_id: str
    before: Stored
    steps: list[Step] = field(default_factory=list)
    applied: list[tuple[int, GameEvent]] = field(default_factory=list)
    rejected: list[tuple[GameEvent, rules.Refused]] = field(default_factory=list)
    ranks: dict[str, tuple[int, int]] = field(default_factory=dict)  # player -> (score, rank) on global
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
class BatchOutcome:
    matches: dict[str, MatchResult]
    poison: list[Poison]
    failed_sequences: set[int]


def group(staged: Iterable[Staged]) -> dict[str, list[Staged]]:
    by_match: dict[str, list[Staged]] = {}
    for s in staged:
        by_match.setdefault(s.event.matchId, []).append(s)
    return by_match


def _day(ms: int) -> int:
    return ms // 86_400_000


def advance(before: Stored, records: list[Staged], result: MatchResult) -> None:
    """Applies the new records to the state (pure), one Step per UTC day that changed something."""
    current = before
    state = before.match
    high = before.seq
    fresh = [s for s in records if s.sequence > before.seq]  # the others were applied by an earlier delivery
    for i, s in enumerate(fresh):
        state, outcome = rules.apply(state, s.event)
        high = max(high, s.sequence)
        if isinstance(outcome, rules.Applied):
            result.applied.append((state.version, s.event))
        elif isinstance(outcome, rules.Refused):
            result.rejected.append((s.event, outcome))
        elif s.event.connectionId and (s.event.type == "join" or outcome.duplicate):
            confirmed = result.resync.setdefault(s.event.connectionId, [])
            if outcome.duplicate and s.event.actionId:
                confirmed.append(s.event.actionId)
        last_of_day = i + 1 == len(fresh) or _day(fresh[i + 1].event.receivedAt) != _day(s.event.receivedAt)
        if not last_of_day:
            continue
        totals = {p: pl.score for p, pl in state.players.items()}
        if state.version != current.match.version or totals != {
            p: current.credited.get(p, 0) for p in totals
        }:
            step = Step(current, Stored(state, seq=high, credited=totals), s.event.receivedAt)
            result.steps.append(step)
            current = step.after


class Pipeline:
    def __init__(self, matches: MatchStore, leaderboards: LeaderboardStore, events: EventLog) -> None:
        self.matches = matches
        self.leaderboards = leaderboards
        self.events = events

    def run(self, staged: list[Staged], poison: list[Poison]) -> BatchOutcome:
        by_match = group(staged)
        stored = self.matches.load_many(list(by_match))
        results: dict[str, MatchResult] = {}
        for match_id, records in by_match.items():
            before = stored.get(match_id)
            if before is None:
                # No such match (matchmaking always creates it first): refuse, never invent one.
                result = MatchResult(match_id, Stored(rules.Match(match_id, "practice"), 0, {}, exists=False))
                result.rejected = [
                    (s.event, rules.Refused(s.event.actionId, "match_not_found", "no such match"))
                    for s in records
                ]
            else:
                result = MatchResult(match_id, before)
                try:
                    advance(before, records, result)
                except Exception as exc:  # a bug in the rules must not stop the other matches
                    result = MatchResult(match_id, before, error=exc)
            results[match_id] = result

        changed = [r for r in results.values() if r.changed]
        failed: set[int] = {s.sequence for r in results.values() if r.error for s in by_match[r.match_id]}
        try:
            self.events.append({r.match_id: r.applied for r in changed})
        except Exception as exc:
            for r in changed:
                r.error = exc
        for r in changed:
            if r.error is None:
                try:
                    self._commit(r)
                except Exception as exc:
                    r.error = exc
            if r.error is not None:
                failed.update(s.sequence for s in by_match[r.match_id])
        return BatchOutcome(results, poison, failed)

    def _commit(self, r: MatchResult) -> None:
        for step in r.steps:
            self.commit_step(r, step)
        final = r.steps[-1].after if r.steps else None
        if final is not None and final.match.status == "finished" and r.before.match.status != "finished":
            self._forget_credits(final)
        self.fill_ranks(r)

    def fill_ranks(self, r: MatchResult) -> None:
        """Turns the scores the credits returned into (score, rank) on the global all-time board."""
        if r.ranks and r.steps:
            at = datetime.fromtimestamp(r.steps[-1].last_at / 1000, UTC)
            key = board_key("global", "alltime", at, self.leaderboards.seasons(["global"])["global"])
            for player in list(r.ranks):
                found = self.leaderboards.rank_of(key, player)
                if found is not None:
                    r.ranks[player] = (found[1], found[0])

    def _forget_credits(self, final: Stored) -> None:
        """The match is finished and saved with its final totals: its credit attributes on the all-time
        rows have done their job (daily and weekly rows expire with their period)."""
        match = final.match
        season = self.leaderboards.seasons(["global", match.mode])
        at = datetime.now(UTC)  # the all-time key does not depend on the date
        for player, total in final.credited.items():
            if total:
                for board in ("global", match.mode):
                    key = board_key(board, "alltime", at, season[board])
                    self.leaderboards.forget(key, player, match.match_id, total)

    def commit_step(self, r: MatchResult, step: Step) -> None:
        """Leaderboards first, then the state: a crash in between is repaired by the retry."""
        match = step.after.match
        at = datetime.fromtimestamp(step.last_at / 1000, UTC)
        season = self.leaderboards.seasons(["global", match.mode])
        for player, total in step.after.credited.items():
            believed = step.before.credited.get(player, 0)
            if total == believed:
                continue
            for board in ("global", match.mode):
                for period in PERIODS:
                    score = self.leaderboards.credit(
                        board_key(board, period, at, season[board]),
                        player,
                        match.match_id,
                        believed=believed,
                        total=total,
                        expires=expires_at(period, at),
                    )
                    if board == "global" and period == "alltime" and score is not None:
                        r.ranks[player] = (score, 0)
        self.matches.save(step.after, expected_version=step.before.match.version)


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


def rank_frame(player: str, score: int, rank: int) -> Rank:
    return Rank(board="global", period="alltime", playerId=player, score=score, rank=rank)


def as_dicts(frames: list[Any]) -> list[str]:
    return [f.model_dump_json(exclude_none=True) for f in frames]
