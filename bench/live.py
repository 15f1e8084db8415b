"""The local stack under bots: AWS calls per action (counted in the Lambda workers), and throughput.

A stack is `local.runtime.LocalRuntime` on free ports, with every function's log level at INFO (as on
the deployed stages, not DEBUG as on `local`) and, for the baseline, the `processor` function's handler
replaced by bench.baseline's. serverless.yml itself is read, never changed. Counting runs point the
stack at bench.meter (moto that bills capacity as DynamoDB does) and set GAMEBACKEND_COUNT_AWS_CALLS=1,
so every worker counts its botocore calls (local.worker.AwsCallCounter).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from backend.vocabulary import ModeName
from bench.procs import free_port
from local import aws, slsconfig
from local.runtime import ROOT, LocalRuntime, RuntimeConfig

BASELINE_HANDLER = "bench.baseline:handler"
COUNT_ENV = "GAMEBACKEND_COUNT_AWS_CALLS"


@dataclass
class Recorder:
    """Every invocation's duration, per function (FunctionStats keeps only the last 2,000)."""

    durations: dict[str, list[float]] = field(default_factory=dict)

    def attach(self, runtime: LocalRuntime) -> None:
        for name, pool in runtime.pools.items():
            self.durations[name] = []
            original = pool.invoke
            record = self.durations[name]

            async def invoke(
                event: Any, *args: Any, _original: Any = original, _record: Any = record, **kw: Any
            ) -> Any:
                inv = await _original(event, *args, **kw)
                if inv.ok or inv.duration_ms:
                    _record.append(inv.duration_ms)
                return inv

            setattr(pool, "invoke", invoke)  # noqa: B010 - an instance attribute shadows the method


@contextlib.asynccontextmanager
async def local_stack(
    *, baseline: bool = False, endpoint_url: str | None = None, counting: bool = False, dynamodb: str = "moto"
) -> AsyncIterator[tuple[LocalRuntime, Recorder]]:
    saved = {k: os.environ.get(k) for k in (COUNT_ENV, *aws.FAKE_CREDENTIALS, "AWS_ENDPOINT_URL")}
    os.environ.pop("AWS_ENDPOINT_URL", None)
    if counting:
        os.environ[COUNT_ENV] = "1"
    if endpoint_url is not None:
        os.environ.update(aws.FAKE_CREDENTIALS)
    config = RuntimeConfig(
        ws_port=free_port(),
        http_port=free_port(),
        aws_port=free_port(),
        endpoint_url=endpoint_url,
        idle_seconds=3600,
        dynamodb=dynamodb,
        dynamodb_port=free_port(),
        # The projector's windows as long as on the deployed stages (the local stage's are short for
        # the tests): what they cost is what a deployment is billed.
        windows_of="dev",
    )
    runtime = LocalRuntime(config)
    functions = runtime.service.functions
    for name, fn in list(functions.items()):
        handler = BASELINE_HANDLER if baseline and name == "processor" else fn.handler
        # The baseline does the cold path's work itself, record by record: no projector behind it.
        streams = () if baseline and name == "projector" else fn.streams
        functions[name] = replace(
            fn,
            handler=handler,
            streams=streams,
            environment={**fn.environment, "POWERTOOLS_LOG_LEVEL": "INFO"},
        )
    recorder = Recorder()
    try:
        async with runtime:
            recorder.attach(runtime)
            yield runtime, recorder
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


async def settle(runtime: LocalRuntime, timeout: float) -> bool:
    """Waits until every socket is closed, the stream is drained and no function is running."""
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        busy = (
            (runtime.gateway is not None and runtime.gateway.connections)
            or any(not p.idle() for p in runtime.pollers)
            or any(pool.stats.concurrent for pool in runtime.pools.values())
        )
        quiet = 0 if busy else quiet + 1
        if quiet >= 5:  # idle for 0.5 s: the last $disconnect has run too
            return True
        await asyncio.sleep(0.1)
    return False


def _counts(runtime: LocalRuntime) -> dict[str, dict[str, float]]:
    return {name: dict(pool.stats.aws_calls) for name, pool in runtime.pools.items()}


def _diff(
    after: dict[str, dict[str, float]], before: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for fn, calls in after.items():
        delta = {k: v - before.get(fn, {}).get(k, 0) for k, v in calls.items()}
        delta = {k: round(v, 3) for k, v in delta.items() if v}
        if delta:
            out[fn] = delta
    return out


def _poller(runtime: LocalRuntime) -> tuple[int, int]:
    """Batches and records of the hot path (the actions stream's mapping)."""
    hot = [
        p
        for p in runtime.pollers
        if isinstance(p.event, slsconfig.StreamEvent) and p.event.source == "kinesis"
    ]
    return (
        sum(p.stats.batches for p in hot),
        sum(p.stats.records for p in hot),
    )


async def play(
    runtime: LocalRuntime,
    recorder: Recorder,
    *,
    mode: ModeName,
    players: int,
    duration: float,
    seed: int,
    drain_timeout: float = 60.0,
) -> dict[str, Any]:
    """Bots play `mode` for `duration` s; returns what they saw and what the functions did meanwhile.
    The bots stay connected until every action they sent is applied or rejected (up to `drain_timeout`),
    so a slow processor still finds its players: the pushes, and the calls they cost, are the same."""
    from clients.bots import BotConfig, local_tokens, run_bots

    counts = _counts(runtime)
    durations = {fn: len(d) for fn, d in recorder.durations.items()}
    batches, records = _poller(runtime)
    config = BotConfig(
        url=runtime.ws_url,
        players=players,
        mode=mode,
        duration=duration,
        tokens=local_tokens(ROOT / "serverless.yml"),
        seed=seed,
        prefix=f"bench-{mode}-{seed}",
        grace=drain_timeout,
    )
    started = time.monotonic()
    report = await run_bots(config)
    played = time.monotonic() - started
    drained = await settle(runtime, drain_timeout)
    batches_after, records_after = _poller(runtime)
    return {
        "mode": mode,
        "players": players,
        "duration_s": duration,
        "played_s": round(played, 2),
        "drain_s": round(time.monotonic() - started - played, 2),
        "drained": drained,
        "bots": report.as_dict(),
        "calls": _diff(_counts(runtime), counts),
        "durations_ms": {fn: d[durations.get(fn, 0) :] for fn, d in recorder.durations.items()},
        "batches": batches_after - batches,
        "records": records_after - records,
    }


async def warm_up(runtime: LocalRuntime, recorder: Recorder, seconds: float = 4.0, tries: int = 1) -> None:
    """A short uncounted game, so the measured phases find warm Lambda environments (the bots give up on
    a match that does not start within a few seconds, which a cold processor can exceed). Up to `tries`
    games, until one gets an action applied."""
    for attempt in range(tries):
        phase = await play(
            runtime,
            recorder,
            mode="duel",
            players=4,
            duration=seconds,
            seed=999 + attempt,
            drain_timeout=30.0,
        )
        if phase["bots"]["applied"]:
            return
