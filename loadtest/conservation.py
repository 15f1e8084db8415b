"""The conservation check: every acknowledged score action is on the leaderboards exactly once.

After the load, once the stream has drained:
- totals: for each load-test player, the score of the global all-time board (admin API,
  `GET /admin/leaderboards/global/players/{playerId}`) equals the points of that player's
  acknowledged score actions, minus those the processor rejected (a `rejected` push: an action that
  raced the end of its match), plus those never answered (a timeout, a throttle's error, the player
  stopped first) that the match's event log shows applied (`GET /admin/matches/{id}/events`). A score
  below that is a lost action, above it an action applied twice;
- no double apply: no state push listed an action id twice, across frames of different versions;
- the dead-letter queue got nothing during the run (`cli.ops.Ops.dlq_messages`), and locally the
  stream poller dead-lettered nothing either;
- something was measured at all (at least one acknowledged score).

Draining: locally, `/local/metrics` must show every stream with no record behind and none in flight,
and no leaderboard window open (the boards are written when a window closes).
On a deployed stage (no /local/metrics; /admin/stats' streamLagMs is a 5-minute maximum) the totals are
polled until they match or `settle` seconds pass.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from loadtest.ledger import PlayerLedger


@dataclass
class Endpoints:
    admin_url: (
        str  # the HTTP API, e.g. http://127.0.0.1:3000 or https://{id}.execute-api.{region}.amazonaws.com
    )
    admin_token: str
    metrics_url: str | None = None  # http://…/local/metrics; None for a deployed stage
    stage: str = "local"
    aws_endpoint: str | None = None  # for the DLQ; None = the account's default endpoints
    config: Path = Path("serverless.yml")


def http_json(url: str, token: str | None = None, timeout: float = 15.0) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        body = exc.read()
        try:
            return exc.code, json.loads(body or b"null")
        except ValueError:
            return exc.code, body.decode(errors="replace")


def local_metrics(endpoints: Endpoints) -> dict[str, Any] | None:
    if not endpoints.metrics_url:
        return None
    try:
        status, body = http_json(endpoints.metrics_url, timeout=5)
    except (OSError, ValueError):
        return None
    return body if status == 200 and isinstance(body, dict) else None


def stream_backlog(metrics: dict[str, Any]) -> int:
    """Records not handled yet, over every stream: the actions stream's, and the matches table's, whose
    leaderboard window counts while it is open (its credits are written when it closes)."""
    return sum(
        int(s.get("recordsBehind", 0)) + int(s.get("inflight", 0)) + int(bool(s.get("windowOpen")))
        for s in metrics.get("streams", [])
    )


def dead_lettered(metrics: dict[str, Any] | None) -> int:
    return sum(int(s.get("deadLetteredRecords", 0)) for s in (metrics or {}).get("streams", []))


def wait_drained(endpoints: Endpoints, timeout: float) -> tuple[bool | None, float]:
    """(True, seconds) once every stream is empty twice in a row; (False, timeout) if it never is;
    (None, 0) when the stack has no /local/metrics (a deployed stage)."""
    began = time.monotonic()
    if local_metrics(endpoints) is None:
        return None, 0.0
    quiet = 0
    while time.monotonic() - began < timeout:
        metrics = local_metrics(endpoints)
        quiet = quiet + 1 if metrics is not None and stream_backlog(metrics) == 0 else 0
        if quiet >= 2:
            return True, time.monotonic() - began
        time.sleep(0.5)
    return False, time.monotonic() - began


def board_score(endpoints: Endpoints, player: str) -> int:
    """The player's score on the global all-time board (0 when the player has no row)."""
    url = (
        f"{endpoints.admin_url.rstrip('/')}/admin/leaderboards/global/players/{quote(player)}?period=alltime"
    )
    last: Any = None
    for attempt in range(4):
        try:
            status, body = http_json(url, endpoints.admin_token)
        except OSError as exc:
            last = exc
        else:
            if status == 200:
                return int(body["score"])
            if status == 404 and isinstance(body, dict) and body.get("error", {}).get("code") == "not_found":
                return 0
            last = f"HTTP {status}: {body}"
            if status in (401, 403):
                break
        time.sleep(0.5 * (attempt + 1))
    raise RuntimeError(f"cannot read {player}'s standing: {last}")


def applied_ids(endpoints: Endpoints, match_id: str) -> dict[str, str]:
    """actionId -> playerId of every event the match's log holds (the admin API, a page at a time)."""
    base = f"{endpoints.admin_url.rstrip('/')}/admin/matches/{quote(match_id)}/events?limit=100"
    found: dict[str, str] = {}
    cursor: str | None = None
    while True:
        status, body = http_json(base + (f"&cursor={quote(cursor)}" if cursor else ""), endpoints.admin_token)
        if status != 200:
            raise RuntimeError(f"cannot read the event log of {match_id}: HTTP {status}: {body}")
        for e in body["events"]:
            if e.get("actionId"):
                found[str(e["actionId"])] = str(e["playerId"])
        cursor = body.get("nextCursor")
        if not cursor:
            return found


def settle_ambiguous(endpoints: Endpoints, ledgers: list[PlayerLedger]) -> dict[str, int]:
    """player -> points of the score actions that may or may not have reached the stream (never
    acknowledged, nor seen applied or rejected) and that their matches' event logs show applied."""
    out: dict[str, int] = {}
    for ledger in ledgers:
        ambiguous = ledger.ambiguous()
        if not ambiguous:
            continue
        applied: dict[str, str] = {}
        for match_id in ledger.matches:
            applied.update(applied_ids(endpoints, match_id))
        out[ledger.player] = sum(a.points for a in ambiguous if applied.get(a.id) == ledger.player)
    return out


def board_scores(endpoints: Endpoints, players: list[str], workers: int = 4) -> dict[str, int]:
    with ThreadPoolExecutor(workers) as pool:
        return dict(zip(players, pool.map(lambda p: board_score(endpoints, p), players), strict=True))


def dlq_ids(endpoints: Endpoints) -> set[str]:
    from cli.ops import Ops
    from local import slsconfig

    service = slsconfig.load(endpoints.config, endpoints.stage)
    ops = Ops(service, endpoints.aws_endpoint)
    return {str(m["MessageId"]) for m in ops.dlq_messages(limit=1000)}


@dataclass
class PlayerRow:
    player: str
    acked: int  # points of acknowledged score actions
    rejected: int  # ... of those, rejected by the processor
    expected: int
    board: int | None = None
    unresolved: int = 0  # acknowledged score actions whose outcome never arrived
    ambiguous: int = 0  # points of score actions never acknowledged that may be on the stream
    ambiguous_applied: int = 0  # ... of those, the points their matches' event logs show applied

    @property
    def diff(self) -> int | None:
        return None if self.board is None else self.board - self.expected

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "diff": self.diff}


@dataclass
class Verdict:
    checks: list[dict[str, Any]] = field(default_factory=list)
    players: list[PlayerRow] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c["ok"] is not False for c in self.checks)

    def add(self, name: str, ok: bool | None, detail: str) -> None:
        self.checks.append({"name": name, "ok": ok, "detail": detail})

    def to_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": self.checks,
            "players": [p.to_json() for p in self.players],
        }

    def lines(self) -> list[str]:
        mark = {True: "PASS", False: "FAIL", None: "SKIP"}
        return [f"  [{mark[c['ok']]}] {c['name']}: {c['detail']}" for c in self.checks]


def check(
    ledgers: list[PlayerLedger],
    endpoints: Endpoints,
    *,
    drain_timeout: float = 120.0,
    settle: float = 10.0,
    dlq_before: set[str] | None = None,
    dead_lettered_before: int | None = None,
) -> Verdict:
    verdict = Verdict()

    drained, waited = wait_drained(endpoints, drain_timeout)
    if drained is None:
        verdict.add("drained", None, f"no /local/metrics here: totals are polled for up to {settle:g} s")
    else:
        verdict.add(
            "drained",
            drained,
            f"stream empty after {waited:.1f} s" if drained else f"records still behind after {waited:.0f} s",
        )

    rows = {
        p.player: PlayerRow(
            p.player,
            acked=p.acked_points(),
            rejected=p.rejected_points(),
            expected=p.expected_points(),
            unresolved=len(p.unresolved()),
            ambiguous=sum(a.points for a in p.ambiguous()),
        )
        for p in ledgers
    }
    verdict.players = sorted(rows.values(), key=lambda r: r.player)
    # An action sent but never answered (a timeout, a throttle's error, the player stopped first) may
    # be on the stream: the event log says whether it was applied, and then it counts.
    try:
        for name, points in settle_ambiguous(endpoints, ledgers).items():
            rows[name].ambiguous_applied = points
            rows[name].expected += points
    except RuntimeError as exc:
        verdict.add("totals", False, str(exc))
        return verdict
    scored = [name for name, r in rows.items() if r.acked or r.ambiguous]
    acked_actions = sum(1 for p in ledgers for a in p.actions.values() if a.kind == "score" and a.acked)
    verdict.add(
        "activity",
        acked_actions > 0,
        f"{acked_actions} acknowledged score actions by {len(scored)} of {len(ledgers)} players",
    )

    # Totals, polled until they match (a deployed stage may still be catching up) or settle runs out.
    try:
        deadline = time.monotonic() + (settle if drained is not False else 0)
        pending = list(scored)
        while pending:
            for name, score in board_scores(endpoints, pending).items():
                rows[name].board = score
            pending = [n for n in pending if (rows[n].diff or 0) < 0]  # above: it will never come down
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(1.0)
        for name, r in rows.items():
            if name not in scored:
                r.board = 0
    except RuntimeError as exc:
        verdict.add("totals", False, str(exc))
        return verdict
    lost = [r for r in rows.values() if (r.diff or 0) < 0]
    extra = [r for r in rows.values() if (r.diff or 0) > 0]
    total_expected = sum(r.expected for r in rows.values())
    total_board = sum(r.board or 0 for r in rows.values())
    if not lost and not extra:
        verdict.add(
            "totals",
            True,
            f"{len(scored)} players: board == acknowledged - rejected for each ({total_board} points)",
        )
    else:
        parts = [
            f"{r.player}: board {r.board}, expected {r.expected} (acked {r.acked} - rejected {r.rejected}"
            + (f" + {r.ambiguous_applied} unanswered but logged as applied" if r.ambiguous_applied else "")
            + f"), {r.diff:+d}"
            + (f", {r.unresolved} without outcome" if r.unresolved else "")
            for r in sorted(lost + extra, key=lambda r: r.player)
        ]
        verdict.add(
            "totals",
            False,
            f"{len(lost)} players short, {len(extra)} over (board {total_board}, expected {total_expected}): "
            + "; ".join(parts),
        )

    duplicates = [(p.player, d) for p in ledgers for d in p.duplicates]
    over = [r.player for r in extra]
    verdict.add(
        "applied once",
        not duplicates and not over,
        "no action id in two state pushes, no board above its acknowledged points"
        if not duplicates and not over
        else f"{len(duplicates)} action ids pushed as applied twice {duplicates[:5]}; over: {over[:10]}",
    )

    if dlq_before is None:
        verdict.add("dead letters", None, "DLQ not checked (--skip-dlq)")
    else:
        try:
            new = dlq_ids(endpoints) - dlq_before
        except Exception as exc:
            verdict.add("dead letters", False, f"cannot read the DLQ: {type(exc).__name__}: {exc}")
        else:
            metrics_now = local_metrics(endpoints)
            poller = (
                dead_lettered(metrics_now) - dead_lettered_before
                if metrics_now is not None and dead_lettered_before is not None
                else 0
            )
            verdict.add(
                "dead letters",
                not new and poller == 0,
                f"{len(new)} new DLQ messages, {poller} records dead-lettered by the poller"
                + (f" ({len(dlq_before)} older messages were already there)" if dlq_before else ""),
            )
    return verdict
