"""The leaderboard projector Lambda (the cold path): the matches table's stream in, boards and the event
log out, once per tumbling window.

The hot path (streams.processor) writes each match's state once per batch; the table's stream
(NEW_AND_OLD_IMAGES) hands every such write here. The event-source mapping delivers a window's records
in several invocations, passing `state` from one to the next; this function only folds them
(streams.projection) until the window's final invocation (`isFinalInvokeForWindow`, or
`isWindowTerminatedEarly` when the state passed 1 MB), which writes everything the window adds up to:

- the event log: a match's events of the window as one chunk (a conditional PutItem: a retried window
  finds it written);
- the leaderboard credits: per player whose total moved, one UpdateItem per (board, period) row,
  however many actions and matches the window holds; absolute per match, so a replayed window
  credits nothing twice, and a window that credited part of its rows before a crash is completed by
  its retry;
- settlement of finished matches: a `settled#<match>` marker, then their credit attributes are dropped
  from the all-time rows (which would otherwise grow with every match a player plays), and the
  match-end saga started for each (season statistics, rewards: streams.settlement), once per match;
- `rank` frames, to the players whose global all-time rank changed.

Derived from what the hot path applied, never from raw actions, which the rules may still refuse.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from backend import bootstrap, protocol, snapstart
from backend.aws import Deferred
from backend.game.periods import board_key, expires_at
from backend.ids import ConnectionId
from backend.protocol import Rank
from backend.push import Pusher
from backend.store.connections import ConnectionStore
from backend.store.events import EventLog
from backend.store.leaderboards import LeaderboardStore
from backend.telemetry import MetricUnit, logger, metrics, tracer
from backend.vocabulary import GLOBAL_BOARD as GLOBAL
from backend.vocabulary import PERIODS
from streams.deadletter import DeadLetters
from streams.projection import MatchWindow, Window, change_of
from streams.saga import MatchEndSaga, SettleRequest

# Credits are independent UpdateItems: this many run at once.
CREDIT_CONCURRENCY = 8
snapstart.warm("aiobotocore.session", "aiobotocore.config", models=protocol.models)


@dataclass
class _Row:
    board: str
    at: datetime  # picks the row's expiry
    period: str
    # match -> (what the row is believed to hold from it, what it must hold)
    credits: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Projector:
    leaderboards: LeaderboardStore
    events: EventLog
    connections: ConnectionStore
    pusher: Pusher
    dead_letters: DeadLetters
    saga: MatchEndSaga | None = None  # None where no state machine settles matches (MATCH_END_SAGA unset)

    def project(self, event: dict[str, Any]) -> dict[str, Any]:
        """One invocation of a tumbling window: fold its records; on the window's last, write it."""
        window = Window.from_state(event.get("state"))
        records = event.get("Records") or []
        folded, skipped, poison = 0, 0, []
        for record in records:
            try:
                change = change_of(record)
            except (KeyError, ValueError, TypeError) as exc:  # a write this code cannot read: never retried
                poison.append((f"unreadable image: {type(exc).__name__}: {exc}", record))
                continue
            if change is None:
                skipped += 1
            elif window.fold(change):
                folded += 1
        if poison:
            logger.error(
                "dead-lettering stream records that can never be projected", extra={"count": len(poison)}
            )
            self.dead_letters.send_records("unprojectable", poison, event.get("eventSourceARN"))
        metrics.add_metric(name="ProjectedChanges", unit=MetricUnit.Count, value=folded)
        metrics.add_metric(name="ProjectionPoison", unit=MetricUnit.Count, value=len(poison))
        final = bool(event.get("isFinalInvokeForWindow") or event.get("isWindowTerminatedEarly"))
        if not final:
            return {"state": window.to_state(), "batchItemFailures": []}
        written = self.flush(window)
        logger.info(
            "window written",
            extra={
                "window": event.get("window"),
                "early": bool(event.get("isWindowTerminatedEarly")),
                "records": len(records),
                "skipped": skipped,
                **written,
            },
        )
        for name, value in written.items():
            metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
        return {"state": {}, "batchItemFailures": []}

    @tracer.capture_method
    def flush(self, window: Window) -> dict[str, int]:
        """Writes what a window adds up to. Safe to run again with the same window (a retried invocation)."""
        boards = self.leaderboards
        logged = self.events.append(
            {m: list(w.writes.values()) for m, w in window.matches.items() if w.writes}
        )
        settled = boards.settled(list(window.matches))
        live = {m: w for m, w in window.matches.items() if m not in settled}
        # One job per player: each of their rows takes every match of the window in one write; players'
        # jobs run at once.
        rows = self._rows(live)
        jobs = sorted(rows.items())
        with ThreadPoolExecutor(CREDIT_CONCURRENCY) as pool:
            scores = list(pool.map(lambda job: self._credit(*job), jobs))
        moved = {player: score for (player, _), score in zip(jobs, scores, strict=True) if score is not None}
        finished = [m for m, w in window.matches.items() if w.finished]
        sagas = 0
        for match_id in finished:
            if match_id not in settled:
                boards.settle(match_id, window.matches[match_id].last_at)
            self._forget(match_id, window.matches[match_id])
            # Started whether or not it was settled before: a window retried after the marker was
            # written must still start it; the execution's name makes a second start a no-op.
            sagas += self._settle(match_id, window.matches[match_id])
        ranks = self._push_ranks(window, moved)
        return {
            "CreditedPlayers": len(jobs),
            "CreditedRows": sum(len(r) for _, r in jobs),
            "SettledMatches": len(finished),
            "SagasStarted": sagas,
            "RankFrames": ranks,
            "LoggedEvents": sum(len(w.events()) for w in window.matches.values()),
            "LogChunks": logged,
        }

    def _rows(self, matches: dict[str, MatchWindow]) -> dict[str, dict[str, _Row]]:
        """player -> board key -> what every match of the window brings to that row. A match's days on one
        row (the all-time row, or a week's row across midnight) become one credit, from the first day's
        belief to the last day's total."""
        boards = self.leaderboards
        out: dict[str, dict[str, _Row]] = {}
        for match_id, w in matches.items():
            season = boards.seasons([GLOBAL, w.mode])
            for day in w.days:
                at = datetime.fromtimestamp(day.last_at / 1000, UTC)
                for player, (believed, total) in day.totals.items():
                    for board in (GLOBAL, w.mode):
                        for period in PERIODS:
                            key = board_key(board, period, at, season[board])
                            row = out.setdefault(player, {}).setdefault(key, _Row(board, at, period))
                            first = row.credits.get(match_id, (believed, total))[0]
                            row.credits[match_id] = (first, total)
        return out

    def _credit(self, player: str, rows: dict[str, _Row]) -> int | None:
        """Every row of one player, each in one write for all its matches. Returns the player's new global
        all-time score when that row moved."""
        boards = self.leaderboards
        alltime: int | None = None
        for key, row in rows.items():
            score = boards.credit_matches(key, player, row.credits, expires=expires_at(row.period, row.at))
            if row.board == GLOBAL and row.period == "alltime" and score is not None:
                alltime = score
        return alltime

    def _forget(self, match_id: str, w: MatchWindow) -> None:
        """A settled match's credit attributes leave the all-time rows (daily and weekly rows expire)."""
        boards = self.leaderboards
        season = boards.seasons([GLOBAL, w.mode])
        at = datetime.now(UTC)  # the all-time key does not depend on the date
        totals = {player: t for day in w.days for player, (_, t) in day.totals.items()}
        for player, total in totals.items():
            for board in (GLOBAL, w.mode):
                boards.forget(board_key(board, "alltime", at, season[board]), player, match_id, total)

    def _settle(self, match_id: str, w: MatchWindow) -> int:
        if self.saga is None or not w.scores:
            return 0
        season = str(self.leaderboards.seasons([GLOBAL])[GLOBAL])
        return int(self.saga.start(SettleRequest(match_id, w.mode, season, dict(w.scores))))

    def _push_ranks(self, window: Window, moved: dict[str, int]) -> int:
        """`rank` frames to the players whose global all-time rank is not the one they were last told."""
        if not moved:
            return 0
        boards = self.leaderboards
        key = board_key(GLOBAL, "alltime", datetime.now(UTC), boards.seasons([GLOBAL])[GLOBAL])
        where = {p: c for w in window.matches.values() for p, c in w.connections.items()}
        frames: list[tuple[str, str]] = []
        for player in sorted(moved):
            standing = boards.standing(key, player)
            if standing is None or standing.told == standing.rank:
                continue
            if player in where:
                frame = Rank(
                    board=GLOBAL, period="alltime", playerId=player, score=standing.score, rank=standing.rank
                )
                frames.append((where[player], frame.model_dump_json()))
            boards.tell_rank(key, player, standing.rank)
        if frames:
            report = self.pusher.send(frames)
            for gone in report.gone:
                self.connections.delete(ConnectionId(gone))
        return len(frames)


def _build() -> Projector:
    from backend.config import settings

    arn = settings().match_end_saga
    return Projector(
        leaderboards=bootstrap.leaderboards(),
        events=bootstrap.events(),
        connections=bootstrap.connections(),
        pusher=bootstrap.pusher(),
        dead_letters=DeadLetters(Deferred("sqs"), os.environ["PROJECTOR_DLQ"]),
        saga=MatchEndSaga(Deferred("stepfunctions"), arn) if arn else None,
    )


root = bootstrap.Root(_build)


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return root().project(event)
