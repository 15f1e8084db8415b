"""`make bench`: every benchmark in one run, written to bench/results/latest.json and latest.md, and the
markdown spliced into docs/performance.md.

    .venv/bin/python -m bench            # the full run (under 10 minutes on a 2-core machine)
    .venv/bin/python -m bench --quick    # a smoke run: same code, small sizes; writes quick.json/.md

Sections, in this order (the ones most sensitive to noise first):
1. cold start: import time of each handler module vs boto3 (bench/coldstart.py);
2. the local stack: gateway overhead (bench/overhead.py), then throughput and latency with K concurrent
   bots (clients/bots.py), once with the tables on moto and once on DynamoDB Local, side by side;
3. fan-out to 1,000 sockets (bench/fanout.py);
4. replay: one deterministic workload through the processor (and the baseline) at batch sizes 1 to
   1,000: calls and CPU per record (bench/replay.py, in a child process);
5. bots on the local stack with every AWS call counted, current processor, then the naive baseline
   (bench/live.py, bench/baseline.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from backend.vocabulary import ModeName
from bench import report
from local import aws
from local.runtime import ROOT

RESULTS = Path(__file__).with_name("results")
DOC = ROOT / "docs" / "performance.md"
START, END = "<!-- bench:results:start -->", "<!-- bench:results:end -->"


@dataclass(frozen=True)
class Plan:
    cold_runs: int = 10
    cold_source_runs: int = 10
    ping_rounds: int = 5
    pings_per_round: int = 40
    throughput_players: tuple[int, ...] = (2, 8, 32)
    throughput_seconds: float = 12.0
    fanout_connections: int = 1000
    fanout_rounds: int = 3
    standin_connections: int = 500
    standin_delay_ms: float = 10.0
    standin_rounds: int = 2
    replay_batches: tuple[tuple[int, int], ...] = ((1, 50), (10, 200), (100, 300), (1000, 1000))
    replay_baseline_records: int = 300
    replay_messages: int = 100
    live_seconds: float = 12.0
    live_players: tuple[tuple[ModeName, int], ...] = (("practice", 8), ("duel", 16), ("arena", 16))


QUICK = Plan(
    cold_runs=2,
    cold_source_runs=1,
    ping_rounds=2,
    pings_per_round=10,
    throughput_players=(2, 4),
    throughput_seconds=4.0,
    fanout_connections=200,
    fanout_rounds=1,
    standin_connections=50,
    standin_rounds=1,
    replay_batches=((1, 10), (10, 30), (100, 100), (1000, 1000)),
    replay_baseline_records=30,
    replay_messages=10,
    live_seconds=4.0,
    live_players=(("practice", 2), ("duel", 4), ("arena", 8)),
)
# The matches in play at once in the replay: the live runs' bots divided by the seats.
REPLAY_MATCHES = {"duel": 8, "arena": 2}


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = None
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": mem_gb,
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_before": [round(x, 2) for x in os.getloadavg()],
    }


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- sections ------------------------------------------------------------------------------------


def cold_start(plan: Plan) -> dict[str, Any]:
    from bench import coldstart

    return coldstart.measure(plan.cold_runs, plan.cold_source_runs)


# The tables' engines the stack section runs on, in this order (local.dynamodb_local).
ENGINES = ("moto", "local")


async def stack_speed(plan: Plan) -> dict[str, Any]:
    """Gateway overhead once (it touches no table), then the throughput phases on every engine."""
    from local.dynamodb_local import EngineUnavailable

    out: dict[str, Any] = {"throughput": [], "engines": {}}
    for engine in ENGINES:
        try:
            await _stack_on(plan, engine, out)
            out["engines"][engine] = "measured"
        except EngineUnavailable as exc:
            out["engines"][engine] = f"not run: {exc}"
            _log(f"stack on {engine}: {out['engines'][engine]}")
    return out


async def _stack_on(plan: Plan, engine: str, out: dict[str, Any]) -> None:
    from bench import live, overhead
    from clients.bots import local_tokens

    async with live.local_stack(dynamodb=engine) as (runtime, recorder):
        if "gateway_overhead" not in out:
            token = await local_tokens(ROOT / "serverless.yml")("bench-ping")
            out["gateway_overhead"] = await overhead.measure(
                f"{runtime.ws_url}/?token={token}", plan.ping_rounds, plan.pings_per_round
            )
            _log(f"gateway overhead: {out['gateway_overhead']['ratio_p50']}x")
        # Three tries: a new stack on a busy machine (and DynamoDB Local's new JVM) can miss the first.
        await live.warm_up(runtime, recorder, tries=3)
        for i, players in enumerate(plan.throughput_players):
            phase = await live.play(
                runtime,
                recorder,
                mode="duel",
                players=players,
                duration=plan.throughput_seconds,
                seed=100 + i,
            )
            bots = phase["bots"]
            out["throughput"].append(
                {
                    "engine": engine,
                    "players": players,
                    "mode": "duel",
                    "seconds": bots["elapsed"],
                    "sent": bots["sent"],
                    "applied": bots["applied"],
                    "rejected": bots["rejected"],
                    "lost": bots["lost"],
                    "actions_per_s": round(bots["applied"] / plan.throughput_seconds, 1),
                    "latency_ms": bots["latency_ms"],
                    "processor_batches": phase["batches"],
                    "records": phase["records"],
                }
            )
            _log(
                f"throughput on {engine} with {players} bots: "
                f"{out['throughput'][-1]['actions_per_s']} actions/s"
            )


def fan_out(plan: Plan) -> dict[str, Any]:
    from bench import fanout
    from bench.procs import standin

    out: dict[str, Any] = {}
    with fanout.sockets(plan.fanout_connections) as (url, ids, count):
        out["gateway"] = fanout.compare(url, ids, plan.fanout_rounds, count)
    with standin(plan.standin_delay_ms) as url:
        ids = [f"standin{i:05d}=" for i in range(plan.standin_connections)]
        out["standin"] = {**fanout.compare(url, ids, plan.standin_rounds), "delay_ms": plan.standin_delay_ms}
    return out


def replay_cases(plan: Plan) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for mode, matches in REPLAY_MATCHES.items():
        for batch, records in plan.replay_batches:
            cases.append(
                {
                    "variant": "current",
                    "mode": mode,
                    "concurrent": matches,
                    "batch": batch,
                    "records": records,
                    "skip": 100,
                }
            )
        cases.append(
            {
                "variant": "baseline",
                "mode": mode,
                "concurrent": matches,
                "batch": 100,
                "records": plan.replay_baseline_records,
                "skip": 100,
            }
        )
    cases.append(
        {
            "variant": "message",
            "mode": "duel",
            "concurrent": 8,
            "batch": 1,
            "records": plan.replay_messages,
            "skip": 100,
        }
    )
    return cases


def replay(plan: Plan) -> dict[str, Any]:
    from bench.procs import metered_moto, standin

    with metered_moto() as aws_url, standin() as management, tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.json"
        out = Path(tmp) / "out.json"
        spec.write_text(json.dumps({"aws": aws_url, "management": management, "cases": replay_cases(plan)}))
        subprocess.run(
            [sys.executable, "-m", "bench.replay", str(spec), str(out)],
            cwd=str(ROOT),
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        result: dict[str, Any] = json.loads(out.read_text())
        return result


async def live_counts(plan: Plan) -> dict[str, Any]:
    from bench import live
    from bench.procs import metered_moto

    out: dict[str, Any] = {}
    for variant in ("current", "baseline"):
        phases = []
        with metered_moto() as url:
            async with live.local_stack(baseline=variant == "baseline", endpoint_url=url, counting=True) as (
                runtime,
                recorder,
            ):
                await live.warm_up(runtime, recorder)
                for i, (mode, players) in enumerate(plan.live_players):
                    phase = await live.play(
                        runtime, recorder, mode=mode, players=players, duration=plan.live_seconds, seed=i + 1
                    )
                    phases.append(phase)
                    _log(f"live {variant} {mode}: {phase['records']} records in {phase['batches']} batches")
                memory = {name: pool.memory for name, pool in runtime.pools.items()}
        out[variant] = {"phases": phases, "memory_mb": memory}
    return out


# --- the run ---------------------------------------------------------------------------------------


def run(plan: Plan, quick: bool) -> dict[str, Any]:
    os.environ.update(aws.FAKE_CREDENTIALS)  # the senders in this process talk to local endpoints only
    os.environ.pop("AWS_ENDPOINT_URL", None)
    began = time.monotonic()
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine(),
        "plan": dataclasses.asdict(plan),
    }
    timings: dict[str, float] = {}

    def section(name: str, fn: Any) -> None:
        t = time.monotonic()
        _log(f"{name} ...")
        results[name] = fn()
        timings[name] = round(time.monotonic() - t, 1)
        _log(f"{name} done in {timings[name]} s")

    section("cold_start", lambda: cold_start(plan))
    section("stack", lambda: asyncio.run(stack_speed(plan)))
    section("fanout", lambda: fan_out(plan))
    section("replay", lambda: replay(plan))
    section("live", lambda: asyncio.run(live_counts(plan)))
    results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    results["section_seconds"] = timings
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    results["analysis"] = report.analyse(results)
    _compact(results)
    return results


def _compact(results: dict[str, Any]) -> None:
    """Every invocation's duration served the analysis; the published JSON keeps their summary."""
    for run in results["live"].values():
        for phase in run["phases"]:
            phase["durations_ms"] = {
                fn: {
                    "invocations": len(d),
                    "mean": round(statistics.fmean(d), 2),
                    "p50": round(statistics.median(d), 2),
                    "max": round(max(d), 2),
                    "billed_ms": sum(math.ceil(x) for x in d),
                }
                for fn, d in phase["durations_ms"].items()
                if d
            }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke test of the bench itself")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    results = run(plan, args.quick)
    name = "quick" if args.quick else "latest"
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=1) + "\n")
    markdown = report.render(results)
    (RESULTS / f"{name}.md").write_text(markdown)
    if not args.quick and DOC.exists():
        text = DOC.read_text()
        if START in text and END in text:
            head, rest = text.split(START, 1)
            _, tail = rest.split(END, 1)
            DOC.write_text(f"{head}{START}\n{report.for_docs(markdown)}\n{END}{tail}")
    _log(f"wrote bench/results/{name}.json and {name}.md in {results['elapsed_s']} s")
    return 0
