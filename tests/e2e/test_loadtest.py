"""The load test, bounded: `python -m loadtest.run --shape smoke` against the test stack, the
conservation check failing when it should, and the local Lambda throttle as API Gateway answers it.

The stack runs in pytest's event loop, so nothing here blocks it: Locust runs in a subprocess
(asyncio.create_subprocess_exec) and the synchronous check runs in a thread.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from loadtest import conservation, shapes
from loadtest.ledger import Action, PlayerLedger
from local import slsconfig
from local.runtime import LocalRuntime
from tests.conftest import token_for

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def endpoints(stack: LocalRuntime) -> conservation.Endpoints:
    return conservation.Endpoints(
        admin_url=stack.http_url,
        admin_token=token_for("loadtest-admin", admin=True),
        metrics_url=f"{stack.http_url}/local/metrics",
        aws_endpoint=stack.aws_endpoint,
        config=ROOT / "serverless.yml",
    )


def test_every_shape_is_bounded() -> None:
    for name, shape in shapes.SHAPES.items():
        shape.check()
        assert shape.peak <= 100 and shape.duration <= 300, name
        assert shape.at(shape.duration) is None and shape.at(0) is not None
    spike = shapes.get("spike")
    assert [s.users for s in spike.stages] == [5, 50, 5]  # baseline, 10x, back
    assert shapes.get("spike", peak=20).peak == 20
    with pytest.raises(ValueError, match="unknown shape"):
        shapes.get("tsunami")


def read_report(reports: Path) -> dict[str, Any]:
    """The run's summary.json, once every file of the report is there."""
    [run] = [p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()]
    for name in ("report.html", "locust_stats.csv", "locust_stats_history.csv", "plot.png", "summary.md"):
        assert (run / name).stat().st_size > 0, name
    summary: dict[str, Any] = json.loads((run / "summary.json").read_text())
    return summary


async def test_smoke_load_test_loses_and_doubles_nothing(stack: LocalRuntime, tmp_path: Path) -> None:
    """A few seconds of six players (duels and practice), throttling on: some message invocations are
    throttled, retried with the same id, and every acknowledged point still lands exactly once."""
    message = stack.pools["message"]
    throttling = message.throttle_sync
    message.throttle_sync = True
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loadtest.run",
            "--shape=smoke",
            "--peak=6",
            f"--host={stack.ws_url}",
            f"--admin-url={stack.http_url}",
            f"--aws-endpoint={stack.aws_endpoint}",
            "--start-stack=never",
            f"--reports={tmp_path}",
            "--think=0.05,0.25",
            "--modes=practice:1,duel:2",
            "--outcome-grace=10",
            "--drain-timeout=60",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout=100)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
    finally:
        message.throttle_sync = throttling
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text

    summary = await asyncio.to_thread(read_report, tmp_path)
    assert summary["passed"], text
    checks = {c["name"]: c["ok"] for c in summary["conservation"]["checks"]}
    assert checks == {
        "drained": True,
        "activity": True,
        "totals": True,
        "applied once": True,
        "dead letters": True,
    }, summary["conservation"]["checks"]
    requests = summary["requests"]
    assert requests["connect"]["ok"] == 6 and requests["join"]["ok"] >= 6
    assert requests["ack"]["ok"] >= 10 and requests["push"]["ok"] >= 10
    assert set(requests["ack"]["failures"]) <= {"ErrorFrame", "RequestTimeout"}, requests["ack"]
    players = summary["conservation"]["players"]
    assert len(players) == 6 and all(p["player"].startswith(f"lt-{summary['runId']}-") for p in players)
    assert all(p["board"] == p["expected"] for p in players)
    assert summary["backend"]["functions"]["message"]["reservedConcurrency"] == MESSAGE_CONCURRENCY


async def test_the_check_names_a_player_whose_points_are_missing(stack: LocalRuntime) -> None:
    """An acknowledged score the board never got (the client lies here) fails `totals` by player."""
    player = f"lt-fake{uuid.uuid4().hex[:6]}-1"
    ledger = PlayerLedger(player)
    ledger.actions["a1"] = Action("a1", "score", points=5, acked=True, outcome="applied")
    ledger.actions["a2"] = Action("a2", "score", points=7, acked=True, outcome="rejected", code="x")
    verdict = await asyncio.to_thread(
        conservation.check, [ledger], endpoints(stack), drain_timeout=30, settle=0.5, dlq_before=None
    )
    assert not verdict.passed
    checks = {c["name"]: c for c in verdict.checks}
    assert checks["totals"]["ok"] is False
    assert f"{player}: board 0, expected 5 (acked 12 - rejected 7), -5" in checks["totals"]["detail"]
    assert checks["dead letters"]["ok"] is None


async def test_an_unanswered_action_counts_if_its_match_logged_it(
    stack: LocalRuntime, connect_player: Any
) -> None:
    """A score sent but never answered (the player stopped while it was in flight) is looked up in
    its match's event log: counted when the stream had it, not when it never left the client."""
    player = f"lt-unans{uuid.uuid4().hex[:6]}-1"
    client = await connect_player(player)
    joined = await client.request({"action": "join", "mode": "practice", "id": "j"})
    match_id = joined["matchId"]
    ack = await client.request(
        {"action": "act", "kind": "score", "matchId": match_id, "id": "sent", "points": 7}
    )
    assert ack == {"type": "ack", "id": "sent"}
    ledger = PlayerLedger(player, matches=[match_id])
    # The ledger as a player stopped mid-request leaves it: neither action was answered.
    ledger.actions["sent"] = Action("sent", "score", points=7, attempts=1, maybe=True)
    ledger.actions["lost"] = Action("lost", "score", points=11, attempts=1, maybe=True)
    verdict = await asyncio.to_thread(
        conservation.check, [ledger], endpoints(stack), drain_timeout=30, settle=0.5, dlq_before=None
    )
    checks = {c["name"]: c for c in verdict.checks}
    assert checks["totals"]["ok"] is True, checks["totals"]
    (row,) = verdict.players
    assert (row.board, row.expected, row.ambiguous_applied) == (7, 7, 7)


# The message function's reserved concurrency on the local stage.
MESSAGE_CONCURRENCY = (
    slsconfig.load(ROOT / "serverless.yml", "local").functions["message"].reserved_concurrency
)


async def test_a_throttled_message_gets_api_gateways_error(stack: LocalRuntime, connect_player: Any) -> None:
    """Beyond the message function's reserved concurrency (8 locally), a frame is refused at once:
    Lambda's TooManyRequestsException, which API Gateway answers as any failed integration."""
    assert MESSAGE_CONCURRENCY, "the local stage reserves the message function's concurrency"
    message = stack.pools["message"]
    throttling = message.throttle_sync
    client = await connect_player(f"thr-{uuid.uuid4().hex[:8]}")
    assert (await client.request({"action": "ping", "id": "warm"}))["type"] == "pong"
    before = (message.stats.throttles, message.stats.invocations, stack.gateway.stats["throttled"])
    message.throttle_sync = True
    try:
        frames = 8 * MESSAGE_CONCURRENCY
        await asyncio.gather(*(client.send({"action": "ping", "id": f"p{i}"}) for i in range(frames)))
        answers = [await client.recv(15) for _ in range(frames)]
    finally:
        message.throttle_sync = throttling
    pongs = [a for a in answers if a.get("type") == "pong"]
    refused = [a for a in answers if "type" not in a]
    assert len(pongs) + len(refused) == frames, answers
    assert refused, "nothing was throttled"
    assert all(set(a) == {"message", "connectionId", "requestId"} for a in refused)
    assert {a["message"] for a in refused} == {"Internal server error"}
    throttles, invocations, gateway = before
    assert message.stats.throttles - throttles == len(refused)
    assert message.stats.invocations - invocations == len(pongs)  # a throttled call never ran
    assert stack.gateway.stats["throttled"] - gateway == len(refused)
    snapshot = message.stats.snapshot()
    assert snapshot["reservedConcurrency"] == MESSAGE_CONCURRENCY
    assert snapshot["environments"] <= MESSAGE_CONCURRENCY
    assert sum(row[3] for row in snapshot["perSecond"]) >= len(refused)
