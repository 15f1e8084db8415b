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
- the rank trees: each board's counters of rows per score, moved in the same transactions as the rows
  they count (`ranked`), so a rank costs the same few reads however large the board;
- `rank` frames, to the players whose rank changed on a board and period that pushes them (the
  global all-time board, as serverless.yml declares it).

Which boards a match counts on, and how (operator, order, tie-break, periods), is data:
serverless.yml's custom.leaderboards (backend/game/boards.py).

Derived from what the hot path applied, never from raw actions, which the rules may still refuse.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from backend import bootstrap, protocol, snapstart
from backend.aws import Deferred
from backend.game.boards import Board, Period
from backend.ids import ConnectionId
from backend.protocol import Rank
from backend.push import Pusher
from backend.store.connections import ConnectionStore
from backend.store.events import EventLog
from backend.store.leaderboards import Contribution, Credited, LeaderboardStore
from backend.telemetry import MetricUnit, logger, metrics, tracer
from backend.vocabulary import GLOBAL_BOARD as GLOBAL
from streams.deadletter import DeadLetters
from streams.projection import MatchWindow, Window, change_of
from streams.saga import MatchEndSaga, SettleRequest

# Credits are independent UpdateItems: this many run at once.
CREDIT_CONCURRENCY = 8
snapstart.warm("aiobotocore.session", "aiobotocore.config", models=protocol.models)


@dataclass
class _Row:
    """What a window brings to one row: every match's contribution, for one board and period."""

    board: Board
    period: Period
    at: datetime  # picks the row's expiry
    contributions: dict[str, Contribution] = field(default_factory=dict)  # by match

    def add(self, c: Contribution) -> None:
        """A match's days on one row (the all-time row, or a week's row across midnight) become one
        contribution: from the first day's belief to the last day's total."""
        first = self.contributions.get(c.match_id)
        if first is not None:
            c = replace(c, believed=first.believed, won_before=first.won_before)
        # (A match's later day carries its finish and win: the merged contribution keeps them.)
        self.contributions[c.match_id] = c


Plan = dict[str, dict[str, _Row]]  # board key -> player -> row


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
        plan = self._plan(live)
        # One job per player: each of their rows takes every match of the window in one write; players'
        # jobs run at once. Then each board's rank tree takes the rows that moved.
        by_player: dict[str, list[tuple[str, _Row]]] = {}
        for key, players in plan.items():
            for player, row in players.items():
                by_player.setdefault(player, []).append((key, row))
        jobs = sorted(by_player.items())
        with ThreadPoolExecutor(CREDIT_CONCURRENCY) as pool:
            results = list(pool.map(lambda job: self._credit(*job), jobs))
            credited = {k: v for result in results for k, v in result.items()}
            moves = sum(pool.map(lambda key: self._sync(key, plan[key], credited), sorted(plan)))
        finished = [m for m, w in window.matches.items() if w.finished]
        sagas = 0
        for match_id in finished:
            if match_id not in settled:
                boards.settle(match_id, window.matches[match_id].last_at)
            self._forget(match_id, window.matches[match_id])
            # Started whether or not it was settled before: a window retried after the marker was
            # written must still start it; the execution's name makes a second start a no-op.
            sagas += self._settle(match_id, window.matches[match_id])
        ranks = self._push_ranks(window, plan, credited)
        return {
            "CreditedPlayers": len(jobs),
            "CreditedRows": sum(len(r) for _, r in jobs),
            "RankMoves": moves,
            "SettledMatches": len(finished),
            "SagasStarted": sagas,
            "RankFrames": ranks,
            "LoggedEvents": sum(len(w.events()) for w in window.matches.values()),
            "LogChunks": logged,
        }

    def _plan(self, matches: dict[str, MatchWindow]) -> Plan:
        """board key -> player -> what every match of the window brings to that row. Points count on the
        boards of their match's mode, in the period and the season of the day's last write."""
        boards = self.leaderboards
        config = boards.boards
        history = boards.season_history(list(config.names()), max_age=0)
        out: Plan = {}
        for match_id, w in matches.items():
            for i, day in enumerate(w.days):
                at = datetime.fromtimestamp(day.last_at / 1000, UTC)
                last = i == len(w.days) - 1  # a win counts on the day of the match's last write
                for player, (believed, total) in day.totals.items():
                    c = Contribution(
                        match_id,
                        believed,
                        total,
                        day.last_at,
                        won_before=w.winner_before == player,
                        won=last and w.winner == player,
                        finished=last and w.finished,
                    )
                    for board in config.for_mode(w.mode):
                        season = history[board.name].at(day.last_at)
                        for period in board.periods:
                            key = board.key(period.name, at, season)
                            rows = out.setdefault(key, {})
                            rows.setdefault(player, _Row(board, period, at)).add(c)
        return out

    def _credit(self, player: str, rows: list[tuple[str, _Row]]) -> dict[tuple[str, str], Credited]:
        """Every row of one player, each in one write for all its matches."""
        boards = self.leaderboards
        return {
            (key, player): boards.credit_row(
                row.board, key, player, list(row.contributions.values()), expires=row.period.expires(row.at)
            )
            for key, row in rows
        }

    def _sync(self, key: str, rows: dict[str, _Row], credited: dict[tuple[str, str], Credited]) -> int:
        """The board's rank tree brought to the rows the window credited (a row whose credit was a no-op
        is read: a retry must finish what a crash left between a credit and the tree)."""
        boards = self.leaderboards
        held = {p: credited[(key, p)].held for p in rows}
        unknown = [p for p, h in held.items() if h is None]
        known = {p: h for p, h in held.items() if h is not None}
        if unknown:
            known.update(boards.rows(key, unknown))
        row = next(iter(rows.values()))
        return boards.sync(key, known, expires=row.period.expires(row.at))

    def _forget(self, match_id: str, w: MatchWindow) -> None:
        """A settled match's per-match attributes leave the rows of periods that never end (the others
        expire with their period)."""
        boards = self.leaderboards
        config = boards.boards
        history = boards.season_history([b.name for b in config.for_mode(w.mode)])
        at = datetime.fromtimestamp(w.last_at / 1000, UTC)
        totals = {player: t for day in w.days for player, (_, t) in day.totals.items()}
        for board in config.for_mode(w.mode):
            if board.operator != "incr":
                continue
            season = history[board.name].at(w.last_at)
            for period in board.periods:
                if period.reset is None:
                    key = board.key(period.name, at, season)
                    for player, total in totals.items():
                        boards.forget(key, player, match_id, total)

    def _settle(self, match_id: str, w: MatchWindow) -> int:
        if self.saga is None or not w.scores:
            return 0
        season = str(self.leaderboards.seasons([GLOBAL])[GLOBAL])
        return int(self.saga.start(SettleRequest(match_id, w.mode, season, dict(w.scores))))

    def _push_ranks(self, window: Window, plan: Plan, credited: dict[tuple[str, str], Credited]) -> int:
        """`rank` frames to the players whose rank on a board's `rankFrames` periods moved and is not the
        one they were last told."""
        boards = self.leaderboards
        where = {p: c for w in window.matches.values() for p, c in w.connections.items()}
        frames: list[tuple[str, str]] = []
        for key, rows in sorted(plan.items()):
            for player, row in sorted(rows.items()):
                done = credited[(key, player)]
                if row.period.name not in row.board.rank_frames or not done.moved or done.held is None:
                    continue
                standing = boards.standing(row.board, key, player, done.held)
                if standing is None or standing.told == standing.rank:
                    continue
                if player in where:
                    frame = Rank(
                        board=row.board.name,
                        period=row.period.name,
                        playerId=player,
                        score=standing.score,
                        rank=standing.rank,
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
