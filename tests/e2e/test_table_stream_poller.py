"""The local event source mapping of a DynamoDB table's stream, with tumbling windows: state passed from
one invocation to the next, the final invocation per window, windows by arrival time, early
termination past 1 MB, a failed invocation retried with the same state, and the on-failure destination.

The consumer (tests/fixtures/handlers.window_consumer) logs every invocation it gets. Windows are 2 s,
aligned to the clock; each group of writes starts early in a window, so that it falls in one.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import pytest_asyncio

from local.runtime import LocalRuntime, RuntimeConfig
from tests.e2e.conftest import eventually, free_port

pytestmark = pytest.mark.e2e
WINDOW = 2.0
TABLE = "tsm-test-table"


@pytest_asyncio.fixture
async def tsm(
    stack: LocalRuntime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[LocalRuntime, Path]]:
    log = tmp_path / "invocations.jsonl"
    log.touch()
    monkeypatch.setenv("BATCH_LOG", str(log))
    config = RuntimeConfig(
        ws_port=free_port(),
        http_port=free_port(),
        endpoint_url=stack.aws_endpoint,
        dynamodb="moto",  # its table on that endpoint too, with its change feed
        config_path=Path(__file__).parents[1] / "fixtures" / "tablestream.yml",
        poll_interval=0.05,
    )
    ddb = boto3.client("dynamodb", endpoint_url=stack.aws_endpoint, region_name="us-east-1")
    # A table of its own per test (and so a stream of its own): the runtime creates it.
    if TABLE in ddb.list_tables()["TableNames"]:
        ddb.delete_table(TableName=TABLE)
    async with LocalRuntime(config) as runtime:
        yield runtime, log


def invocations(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line]


async def write(runtime: LocalRuntime, keys: list[str], *, early_in_window: bool = True) -> None:
    """Puts one item per key, starting in the first quarter of a window."""
    if early_in_window:
        await asyncio.sleep((WINDOW - time.time() % WINDOW) % WINDOW + 0.05)
    ddb = boto3.client("dynamodb", endpoint_url=runtime.aws_endpoint, region_name="us-east-1")

    def _put() -> None:
        for key in keys:
            ddb.put_item(TableName=TABLE, Item={"k": {"S": key}})

    await asyncio.to_thread(_put)


async def closed(runtime: LocalRuntime, log: Path, windows: int) -> list[dict[str, Any]]:
    poller = runtime.pollers[0]

    def done() -> bool:
        return poller.idle() and sum(1 for i in invocations(log) if i["final"]) >= windows

    await eventually(done, timeout=30, interval=0.05)
    return invocations(log)


async def test_a_window_passes_state_along_and_ends_with_a_final_invocation(
    tsm: tuple[LocalRuntime, Path],
) -> None:
    runtime, log = tsm
    await write(runtime, [f"a{i}" for i in range(6)])  # batchSize 4: two invocations at least
    await write(runtime, ["b0", "b1"])  # the next window
    seen = await closed(runtime, log, windows=2)

    finals = [i for i, inv in enumerate(seen) if inv["final"]]
    first, second = seen[: finals[0] + 1], seen[finals[0] + 1 : finals[1] + 1]
    # Every invocation of a window gets the state the one before it returned; the first gets {}.
    assert first[0]["state"] == []
    carried: list[str] = []
    for inv in first[:-1]:
        assert inv["state"] == carried
        assert len(inv["keys"]) <= 4
        carried = carried + inv["keys"]
    assert sorted(carried + first[-1]["keys"]) == [f"a{i}" for i in range(6)]
    assert first[-1]["state"] == carried  # the final invocation has the whole window's state
    # The next window starts afresh, with its own bounds, one window later.
    assert second[0]["state"] == []
    assert sorted(k for inv in second for k in inv["keys"]) == ["b0", "b1"]
    assert {inv["window"]["start"] for inv in first} == {first[0]["window"]["start"]}
    assert second[0]["window"]["start"] == first[0]["window"]["end"] or (
        second[0]["window"]["start"] > first[0]["window"]["end"]
    )
    assert not any(inv["early"] for inv in seen)
    assert runtime.pollers[0].stats.windows == 2


async def test_a_failed_invocation_is_retried_with_the_same_state_and_records(
    tsm: tuple[LocalRuntime, Path],
) -> None:
    runtime, log = tsm
    await write(runtime, ["c0", "c1", "c2", "raise-once-c3"])
    seen = await closed(runtime, log, windows=1)
    failed = next(i for i, inv in enumerate(seen) if "raise-once-c3" in inv["keys"])
    again = seen[failed + 1]
    assert (again["keys"], again["state"]) == (seen[failed]["keys"], seen[failed]["state"])
    assert runtime.pollers[0].stats.retries == 1
    final = next(inv for inv in seen if inv["final"])
    assert sorted(final["state"]) == ["c0", "c1", "c2", "raise-once-c3"]


async def test_a_state_past_one_megabyte_ends_the_window_early(tsm: tuple[LocalRuntime, Path]) -> None:
    runtime, log = tsm
    await write(runtime, ["big-d0", "d1", "d2", "d3", "d4", "d5"])
    seen = await closed(runtime, log, windows=1)
    early = [i for i, inv in enumerate(seen) if inv["early"]]
    assert len(early) == 1
    ended = seen[early[0]]
    assert ended["final"] and ended["keys"] == [] and "big-d0" in ended["state"]
    # The window goes on with a fresh state, and ends as usual.
    rest = seen[early[0] + 1 :]
    assert rest and rest[0]["state"] == [] and rest[-1]["final"] and not rest[-1]["early"]
    assert sorted(k for inv in seen for k in inv["keys"]) == ["big-d0", "d1", "d2", "d3", "d4", "d5"]
    assert runtime.pollers[0].stats.windows_terminated_early == 1


async def test_a_batch_that_always_fails_goes_to_the_on_failure_destination(
    tsm: tuple[LocalRuntime, Path],
) -> None:
    runtime, log = tsm
    await write(runtime, ["raise-e0"])
    poller = runtime.pollers[0]
    await eventually(lambda: poller.stats.dead_lettered_batches >= 1 and poller.idle(), timeout=30)
    sqs = boto3.client("sqs", endpoint_url=runtime.aws_endpoint, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="tsm-test-dlq")["QueueUrl"]
    bodies = [
        json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    ]
    (info,) = [b["DDBStreamBatchInfo"] for b in bodies]
    assert info["batchSize"] == 1 and info["streamArn"].startswith("arn:aws:dynamodb:us-east-1:")
    assert bodies[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # Tried once and retried once (maximumRetryAttempts: 1), each time with the same state.
    tries = [inv for inv in invocations(log) if inv["keys"] == ["raise-e0"]]
    assert len(tries) == 2 and tries[0]["state"] == tries[1]["state"]


async def test_writes_across_a_window_boundary_close_each_window_once(tsm: tuple[LocalRuntime, Path]) -> None:
    runtime, log = tsm
    # Two writes a second for 3 s, starting just before a window's end: records arrive while a window
    # closes, and each must land in exactly one window, each window closing exactly once.
    await asyncio.sleep((WINDOW - time.time() % WINDOW) % WINDOW + WINDOW - 0.3)
    keys = [f"f{i:02d}" for i in range(12)]
    for key in keys:
        await write(runtime, [key], early_in_window=False)
        await asyncio.sleep(0.25)
    seen = await closed(runtime, log, windows=2)
    await eventually(runtime.pollers[0].idle, timeout=10)
    seen = invocations(log)
    finals = [inv["window"]["start"] for inv in seen if inv["final"]]
    assert len(finals) == len(set(finals)), f"a window closed twice: {finals}"
    by_window: dict[str, list[str]] = {}
    for inv in seen:
        by_window.setdefault(inv["window"]["start"], []).extend(inv["keys"])
    delivered = [k for ks in by_window.values() for k in ks]
    assert sorted(delivered) == keys  # each once, none lost
    # ... and no record of a window came after its final invocation (which may carry the last ones).
    for start in finals:
        final_at = max(i for i, inv in enumerate(seen) if inv["final"] and inv["window"]["start"] == start)
        assert all(
            i <= final_at for i, inv in enumerate(seen) if inv["window"]["start"] == start and inv["keys"]
        ), "; ".join(f"{inv['window']['start'][-3:]} {inv['keys']} {inv['final']}" for inv in seen)
