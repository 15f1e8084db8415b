"""How the bench judges its targets (bench/report.py), on made-up figures."""

from __future__ import annotations

from typing import Any

from bench import report


def _row(variant: str, mode: str, batch: int, requests: float, writes: float) -> dict[str, Any]:
    return {
        "variant": variant,
        "mode": mode,
        "batch": batch,
        "per_action": {"dynamodb_requests": requests, "dynamodb_writes": writes},
    }


def _results(fan_ratio: float, worst_cold: float) -> dict[str, Any]:
    cold = {
        "boto3 (alone)": {"median_ms": 100.0, "vs_boto3": 1.0},
        "message": {"median_ms": 100 * worst_cold, "vs_boto3": worst_cold},
        "connect": {"median_ms": 110.0, "vs_boto3": 1.1},
    }
    return {
        "cold_start": {"cached": cold, "source": cold},
        "fanout": {
            "gateway": {"connections": 1000, "ratio": fan_ratio},
            "standin": {"delay_ms": 10.0, "ratio": 30.0},
        },
    }


def test_targets_are_met_only_when_every_case_meets_them() -> None:
    rows = [
        _row("current", "duel", 100, 1.0, 0.08),
        _row("current", "arena", 1000, 0.5, 0.12),
        _row("current", "duel", 10, 9.0, 5.0),  # below batch 100: not judged
        _row("current", "practice", 100, 9.0, 5.0),  # one player: not judged
        _row("baseline", "duel", 100, 12.0, 6.0),
        _row("baseline", "arena", 100, 12.0, 6.0),
    ]
    got = report.targets({"replay": rows}, _results(fan_ratio=12.0, worst_cold=1.4))
    met = {t["target"].split(" (")[0]: t["met"] for t in got}
    assert met == {
        "<= 0.1 DynamoDB write requests per action": False,  # arena B=1000 writes 0.12
        ">= 10x fewer DynamoDB requests than the baseline": True,  # 12x and 24x
        "cold start: no handler over 1.5x boto3's import time": True,
        "fan-out to 1000 connections: concurrent >= 10x faster than sequential": True,
    }
    assert "duel B=100: 0.080, arena B=1000: 0.120" in got[0]["measured"]
    slow = report.targets({"replay": rows}, _results(fan_ratio=1.1, worst_cold=2.5))
    assert [t["met"] for t in slow[2:]] == [False, False, False]
    assert "worst message 2.50x" in slow[2]["measured"]


def test_the_docs_get_the_results_one_heading_level_down() -> None:
    markdown = "# Benchmark results\n\nRun ...\n\n## Targets\n\n| a |\n"
    assert report.for_docs(markdown) == "Run ...\n\n### Targets\n\n| a |"


def _bots(players: int, p50: float, p99: float, lost: int = 0) -> dict[str, Any]:
    return {"players": players, "latency_ms": {"p50": p50, "p99": p99}, "lost": lost, "actions_per_s": 50.0}


def _live(wru_per_action: float, cost: float) -> dict[str, Any]:
    duel = {
        "mode": "duel",
        "per_action": {"dynamodb_wru": wru_per_action},
        "wru_per_1000_by_function": {"processor": 1000 * wru_per_action},
        "mean_batch": 3.0,
    }
    return {"current": {"phases": [duel], "pooled": {"cost_per_million": {"total": cost}}}}


def _realtime(results: dict[str, Any], analysis: dict[str, Any]) -> dict[str, bool]:
    return {t["target"].split(":")[0]: t["met"] for t in report._realtime_targets(analysis, results)}


def test_the_real_time_targets() -> None:
    fast = {"stack": {"throughput": [_bots(2, 20.0, 80.0), _bots(32, 60.0, 140.0)]}}
    assert _realtime(fast, {"live": _live(0.6, 3.5)}) == {
        "2 bots in one duel": True,
        "32 bots at the bots' default pace": True,
        "DynamoDB write units per 1,000 actions, live duels": True,  # 600 <= 3,228 / 5
        "estimated cost per million actions below $4.00": True,
    }
    slow = {"stack": {"throughput": [_bots(2, 31.0, 80.0), _bots(32, 60.0, 151.0)]}}
    assert _realtime(slow, {"live": _live(0.7, 4.0)}) == {
        "2 bots in one duel": False,  # p50 31 ms
        "32 bots at the bots' default pace": False,  # p99 151 ms
        "DynamoDB write units per 1,000 actions, live duels": False,  # 700 > 645.6
        "estimated cost per million actions below $4.00": False,  # not below
    }
    lossy = {"stack": {"throughput": [_bots(2, 10.0, 20.0, lost=1), _bots(32, 10.0, 20.0, lost=1)]}}
    assert not any(_realtime(lossy, {}).values())


def _phase(engine: str | None, players: int, per_s: float) -> dict[str, Any]:
    phase: dict[str, Any] = {
        "players": players,
        "actions_per_s": per_s,
        "latency_ms": {"p50": 10.0, "p99": 20.0},
        "lost": 0,
        "processor_batches": 5,
    }
    if engine:
        phase["engine"] = engine
    return phase


def test_the_stack_throughput_puts_the_engines_side_by_side() -> None:
    stack = {"throughput": [_phase("moto", 8, 40.0), _phase("local", 8, 55.5), _phase("moto", 32, 90.0)]}
    headers, rows = report.throughput_side_by_side(stack)
    assert headers[:3] == ["bots (duel)", "actions applied/s moto", "actions applied/s DynamoDB Local"]
    assert rows[0][:3] == [8, "40.0", "55.5"]
    assert rows[1][:3] == [32, "90.0", "-"]  # not measured on DynamoDB Local
    # Results from before the second engine have no engine: they were moto's.
    headers, rows = report.throughput_side_by_side({"throughput": [_phase(None, 4, 12.0)]})
    assert headers[1] == "actions applied/s moto" and rows == [[4, "12.0", "10", "20", 0, 5]]


def test_the_real_time_targets_are_judged_on_the_default_engine() -> None:
    local = {**_bots(2, 500.0, 900.0), "engine": "local"}
    results = {"stack": {"throughput": [{**_bots(2, 20.0, 80.0), "engine": "moto"}, local]}}
    assert _realtime(results, {"live": _live(0.6, 3.5)})["2 bots in one duel"] is True
