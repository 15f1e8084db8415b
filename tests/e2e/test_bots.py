"""The bot runner against the local stack: in-process, and as `gamebackend bots` in a subprocess."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from pathlib import Path

import pytest

from cli.ops import Ops
from clients.bots import BotConfig, local_tokens, percentile, run_bots
from gamebackend_client import GameClient
from local.runtime import LocalRuntime
from tests.conftest import token_for
from tests.e2e.conftest import eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 90), percentile(values, 99)) == (50, 90, 99)
    assert percentile([7.0], 99) == 7.0
    assert percentile([], 50) is None


async def warm_up(stack: LocalRuntime) -> None:
    """One action through the whole pipeline, so that the bots' seconds are not spent on cold starts
    (when this module runs alone on a fresh stack)."""
    async with GameClient(stack.ws_url, token_for(f"warm-{uuid.uuid4().hex[:8]}"), request_timeout=30) as c:
        await c.join("practice")
        await c.applied((await c.move(1, 1)).id, timeout=30)


async def test_bots_play_duels_and_lose_nothing(stack: LocalRuntime) -> None:
    await warm_up(stack)
    lines: list[str] = []
    config = BotConfig(
        url=stack.ws_url,
        players=4,
        mode="duel",
        duration=4.0,
        tokens=local_tokens(ROOT / "serverless.yml"),
        interval=0.05,
        grace=10.0,
        seed=7,
    )
    report = await run_bots(config, live=lines.append)
    assert not report.failures, report.failures
    assert report.sent >= 8 and report.sent == report.acked + sum(report.errors.values())
    assert not report.errors, report.errors
    assert report.lost == 0
    assert report.applied + report.rejected == report.acked, "an acknowledged action was never applied"
    # The only refusal a bot can meet: an action that raced the winning one.
    assert set(report.rejections) <= {"match_not_running"}
    assert len(report.latencies_ms) == report.applied
    assert report.matches  # at least one duel ran (on a cold stack, the first joins take seconds)
    assert lines and "applied" in lines[-1]
    assert "p99" in report.summary() and report.ok

    # The bots left what was not over: no match of theirs stays open for a human to be seated in.
    ops = Ops(stack.service, stack.aws_endpoint, stack.dynamodb_endpoint)

    async def all_finished() -> bool:
        stored = [await asyncio.to_thread(ops.matches.load, mid) for mid in report.joined]
        return all(s.match.status == "finished" for s in stored)

    await eventually(all_finished, timeout=15)


async def _bots_cli(*args: str) -> tuple[int, str, str]:
    """`gamebackend bots` in a subprocess, awaited: the stack serves it from this test's event loop."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cli",
        "bots",
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_bots_command_reports_counts_and_latencies(stack: LocalRuntime) -> None:
    args = ("--players", "2", "--mode", "practice", "--duration", "3", "--url", stack.ws_url, "--json")
    code, stdout, stderr = await _bots_cli(*args)
    assert code == 0, stdout + stderr
    report = json.loads(stdout)
    assert report["ok"] and report["lost"] == 0 and not report["failures"]
    assert report["applied"] + report["rejected"] == report["acked"] > 0
    assert report["finished"] >= 1, "a practice bot plays to the end, then joins the next match"
    assert report["latency_ms"]["p50"] is not None
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p90"] <= report["latency_ms"]["p99"]
    # The human summary goes to stderr when --json takes stdout.
    assert "action->state p50" in stderr and "lost 0" in stderr


async def test_bots_command_fails_clearly_on_a_refused_token(stack: LocalRuntime) -> None:
    args = ("--players", "1", "--duration", "1", "--url", stack.ws_url, "--token-cmd", "echo not-a-jwt")
    code, stdout, _ = await _bots_cli(*args)
    assert code == 1
    assert "AuthError" in stdout and "401" in stdout and "not retrying" in stdout


async def test_bots_play_connect_four_on_their_turns_only(stack: LocalRuntime) -> None:
    await warm_up(stack)
    args = ("--players", "2", "--mode", "connect-four", "--duration", "6", "--url", stack.ws_url)
    code, stdout, stderr = await _bots_cli(*args, "--seed", "3", "--interval", "0.02", "--json")
    assert code == 0, stdout + stderr
    report = json.loads(stdout)
    assert report["ok"] and report["lost"] == 0 and not report["failures"], report
    # A bot drops only on its turn, into a column with room, once a turn: the rules refuse none of it.
    assert report["rejected"] == 0 and not report["errors"], report
    assert report["applied"] == report["acked"] == report["sent"] >= 7  # at least a game's worth
    assert report["finished"] >= 1, "two bots play a game of connect four to its end within seconds"
