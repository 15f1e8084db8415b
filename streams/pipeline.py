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

import time
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


@dataclass
class MatchResult:
    """What one batch did to one match."""

    match_id: str
    before: Stored
    after: Stored | None = None
    applied: list[tuple[int, GameEvent]] = field(default_factory=list)
    rejected: list[tuple[GameEvent, rules.Refused]] = field(default_factory=list)
    ranks: dict[str, tuple[int, int]] = field(default_factory=dict)  # player -> (score, rank) on global
    error: Exception | None = None
    last_at: int | None = None

    @property
    def changed(self) -> bool:
        return self.after is not None


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


def advance(before: Stored, records: list[Staged], result: MatchResult) -> None:
    """Applies the new records to the state (pure). Fills result.after when anything must be written."""
    state = before.match
    high = before.seq
    for s in records:
        if s.sequence <= before.seq:
            continue  # applied by an earlier delivery of this record
        state, outcome = rules.apply(state, s.event)
        high = max(high, s.sequence)
        result.last_at = s.event.receivedAt
        if isinstance(outcome, rules.Applied):
            result.applied.append((state.version, s.event))
        elif isinstance(outcome, rules.Refused):
            result.rejected.append((s.event, outcome))
    totals = {p: pl.score for p, pl in state.players.items()}
    if result.applied or totals != {p: before.credited.get(p, 0) for p in totals}:
        result.after = Stored(state, seq=high, credited=totals)


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
                advance(before, records, result)
            results[match_id] = result

        changed = [r for r in results.values() if r.changed]
        failed: set[int] = set()
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
        """Leaderboards first, then the state: a crash in between is repaired by the retry."""
        assert r.after is not None
        match = r.after.match
        at = datetime.fromtimestamp((r.last_at or time.time() * 1000) / 1000, UTC)
        season = self.leaderboards.seasons(["global", match.mode])
        for player, total in r.after.credited.items():
            believed = r.before.credited.get(player, 0)
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
        self.matches.save(r.after, expected_version=r.before.match.version)
        at_key = board_key("global", "alltime", at, season["global"])
        for player in list(r.ranks):
            found = self.leaderboards.rank_of(at_key, player)
            if found is not None:
                r.ranks[player] = (found[1], found[0])


def state_frame(result: MatchResult) -> State:
    assert result.after is not None
    m = result.after.match
    return State(
        matchId=m.match_id,
        mode=m.mode,  # type: ignore[arg-type]
        version=m.version,
        status=m.status,
        players={p: PlayerState(score=s.score, x=s.x, y=s.y, left=s.left) for p, s in m.players.items()},
        winner=m.winner,
        applied=[e.actionId for _, e in result.applied if e.actionId],
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
