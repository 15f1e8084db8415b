"""The local Lambda execution environments: cold/warm, errors, timeouts, concurrency, scale-in."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from local.lambdas import FORK_ENV, FunctionPool, forking

ROOT = str(Path(__file__).resolve().parents[2])
SNAP_START: list[bool] = [False]  # the way this test's environments start


@pytest.fixture(autouse=True, params=[False, True], ids=["init", "snapstart"])
def each_way_of_starting(request: pytest.FixtureRequest) -> None:
    """Every test runs twice: environments that import the handler each, and environments resumed
    from the function's snapshot (SnapStart)."""
    SNAP_START[0] = request.param


def pool(handler: str, **kw: object) -> FunctionPool:
    return FunctionPool(
        "test-fn",
        f"tests.fixtures.handlers:{handler}",
        env={"PYTHONPATH": ROOT},
        timeout=float(kw.pop("timeout", 5.0)),
        memory=128,
        cwd=ROOT,
        snap_start=SNAP_START[0],
        **kw,
    )  # type: ignore[arg-type]


async def test_first_call_is_cold_then_warm_in_the_same_process() -> None:
    p = pool("pid")
    try:
        first = await p.invoke({})
        second = await p.invoke({})
        assert first.ok and second.ok
        assert first.cold and not second.cold
        assert first.result["body"] == second.result["body"]  # same process, reused while warm
        assert 0 < first.result["remaining"] <= 5000
        assert first.result["requestId"] == first.request_id
        assert p.stats.cold_starts == 1 and p.stats.invocations == 2
    finally:
        await p.close()


async def test_a_raising_handler_is_an_error_and_the_worker_survives() -> None:
    p = pool("boom")
    try:
        result = await p.invoke({})
        assert not result.ok
        assert (result.error_type, result.error_message) == ("RuntimeError", "handler exploded")
        again = await p.invoke({})
        assert not again.ok and not again.cold
    finally:
        await p.close()


async def test_a_timeout_kills_the_worker_and_the_next_call_is_cold() -> None:
    p = pool("slow", timeout=0.5)
    try:
        result = await p.invoke({"sleep": 5})
        assert not result.ok and result.error_type == "Sandbox.Timedout"
        assert "timed out after 0.50 seconds" in (result.error_message or "")
        fast = await p.invoke({"sleep": 0})
        assert fast.ok and fast.cold
        assert p.stats.timeouts == 1
    finally:
        await p.close()


async def test_none_and_unserializable_results() -> None:
    p = pool("none")
    q = pool("unserializable")
    try:
        assert (await p.invoke({})).ok and (await p.invoke({})).result is None
        bad = await q.invoke({})
        assert not bad.ok and bad.error_type == "Runtime.MarshalError"
    finally:
        await p.close()
        await q.close()


async def test_an_import_error_is_an_init_error() -> None:
    p = FunctionPool(
        "broken",
        "tests.fixtures.broken_import:handler",
        env={"PYTHONPATH": ROOT},
        timeout=5,
        memory=128,
        cwd=ROOT,
        snap_start=SNAP_START[0],
    )
    try:
        result = await p.invoke({})
        assert not result.ok and result.error_type == "Runtime.InitError"
        assert "cannot be imported" in (result.error_message or "")
    finally:
        await p.close()


async def test_concurrency_scales_out_up_to_the_reserved_limit() -> None:
    p = pool("slow", max_concurrency=2)
    try:
        results = await asyncio.gather(*(p.invoke({"sleep": 0.3}) for _ in range(4)))
        assert all(r.ok for r in results)
        assert p.stats.max_concurrent == 4  # invocations in flight, two of them queued
        assert p.stats.cold_starts == 2  # never more environments than the limit
        assert p.stats.throttles >= 1
    finally:
        await p.close()


async def test_idle_environments_are_shut_down() -> None:
    p = pool("pid", idle_seconds=0.2)
    try:
        assert (await p.invoke({})).cold
        assert p.warm_workers() == 1
        await asyncio.sleep(0.6)
        assert p.warm_workers() == 0
        assert (await p.invoke({})).cold
    finally:
        await p.close()


@pytest.mark.parametrize("handler", ["pid"])
async def test_close_stops_every_process(handler: str) -> None:
    p = pool(handler)
    await p.invoke({})
    procs = [w.proc for w in p._all]
    await p.close()
    assert all(proc.returncode is not None for proc in procs)


async def test_fault_injection_kills_an_environment_mid_invocation_and_the_next_call_is_cold() -> None:
    p = pool("slow")
    try:
        running = asyncio.create_task(p.invoke({"sleep": 5}))
        killed = await p.kill_busy(within=5.0, after=0.05)
        assert killed is not None and killed["function"] == "test-fn" and killed["msInto"] >= 50
        result = await running
        assert not result.ok and result.error_type == "Runtime.ExitError"
        assert result.request_id == killed["requestId"]
        assert p.stats.killed == 1 and p.stats.errors == 1
        again = await p.invoke({"sleep": 0})
        assert again.ok and again.cold  # a new environment
    finally:
        await p.close()


async def test_fault_injection_kills_nothing_when_nothing_runs() -> None:
    p = pool("slow")
    try:
        assert await p.invoke({"sleep": 0}) is not None  # an idle, warm environment
        assert await p.kill_busy(within=0.2) is None
        assert p.stats.killed == 0
        assert (await p.invoke({"sleep": 0})).cold is False  # the idle one was left alone
    finally:
        await p.close()


async def test_environments_resumed_from_a_snapshot_share_its_init_and_run_the_restore_hooks() -> None:
    """With SnapStart the handler is imported once, by the snapshot process; each environment is a
    process of its own that ran the after-restore hooks (a new random state each); without it, every
    environment imports the handler itself."""
    p = pool("origin")
    try:
        gate = asyncio.Event()

        async def busy() -> dict[str, object]:
            inv = await p.invoke({"hold": 0.5})
            gate.set()
            return inv.result  # type: ignore[no-any-return]

        first, second = await asyncio.gather(busy(), busy())  # two at once: two environments
        assert first["pid"] != second["pid"]
        if SNAP_START[0]:
            assert first["importedBy"] == second["importedBy"] not in (first["pid"], second["pid"])
            assert first["restored"] == second["restored"] == 1
            assert first["random"] != second["random"]
        else:
            assert (first["importedBy"], second["importedBy"]) == (first["pid"], second["pid"])
            assert first["restored"] == second["restored"] == 0
        assert p.stats.cold_starts == 2
        # An environment that dies is replaced from the same snapshot.
        for w in list(p._all):
            w.kill()
        await asyncio.sleep(0.2)
        again = await p.invoke({})
        assert again.ok and again.cold
        assert (again.result["importedBy"] == first["importedBy"]) is SNAP_START[0]
    finally:
        await p.close()


async def test_the_benchmarks_call_counter_counts_the_calls_of_sessions_built_in_the_init() -> None:
    p = FunctionPool(
        "test-fn",
        "tests.fixtures.handlers:put_record",
        env={"PYTHONPATH": ROOT, "GAMEBACKEND_COUNT_AWS_CALLS": "1"},
        timeout=5.0,
        memory=128,
        cwd=ROOT,
        snap_start=SNAP_START[0],
    )
    try:
        for _ in range(2):
            assert (await p.invoke({})).ok
        assert p.stats.aws_calls == {"kinesis.PutRecord": 2}
    finally:
        await p.close()


def test_the_runtime_forks_except_on_macos_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FORK_ENV, raising=False)
    for platform, forks in (("linux", True), ("darwin", False)):
        monkeypatch.setattr(sys, "platform", platform)
        assert forking() is forks
        for chosen in ("0", "1"):
            monkeypatch.setenv(FORK_ENV, chosen)
            assert forking() is (chosen == "1")
        monkeypatch.delenv(FORK_ENV)


async def test_without_forking_each_environment_runs_the_snapstart_hooks_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(FORK_ENV, "0")
    SNAP_START[0] = True  # serverless.yml asks for SnapStart; the runtime does not fork
    p = pool("origin")
    try:
        first, second = await asyncio.gather(p.invoke({"hold": 0.5}), p.invoke({"hold": 0.5}))
        assert first.ok and second.ok and first.cold and second.cold
        a, b = first.result, second.result
        assert a["pid"] != b["pid"]
        assert (a["importedBy"], b["importedBy"]) == (a["pid"], b["pid"])  # each its own init
        assert a["restored"] == b["restored"] == 1  # and its after-restore hooks
    finally:
        await p.close()
