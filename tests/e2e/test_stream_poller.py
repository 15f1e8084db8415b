"""The local Kinesis event source mapping: batches, order per key, partial failures, bisection, DLQ."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import pytest_asyncio

from local.dynamodb_local import engine_from_env
from local.runtime import LocalRuntime, RuntimeConfig
from tests.e2e.conftest import Stacks, eventually, free_port

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(scope="module")
async def esm(
    stacks: Stacks, tmp_path_factory: pytest.TempPathFactory, monkeypatch_session: pytest.MonkeyPatch
) -> AsyncIterator[tuple[LocalRuntime, Path]]:
    stack = await stacks.get(engine_from_env())
    log = tmp_path_factory.mktemp("esm") / "batches.jsonl"
    log.touch()
    monkeypatch_session.setenv("BATCH_LOG", str(log))
    config = RuntimeConfig(
        ws_port=free_port(),
        http_port=free_port(),
        endpoint_url=stack.aws_endpoint,
        dynamodb="moto",  # its tables, if any, on that endpoint too
        config_path=Path(__file__).parents[1] / "fixtures" / "stream.yml",
        poll_interval=0.05,
    )
    async with LocalRuntime(config) as runtime:
        yield runtime, log


def batches(log: Path) -> list[list[list[str]]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line]


async def put(runtime: LocalRuntime, records: list[tuple[str, str]]) -> list[str]:
    kinesis = boto3.client("kinesis", endpoint_url=runtime.aws_endpoint, region_name="us-east-1")

    def _put() -> list[str]:
        return [
            kinesis.put_record(StreamName="esm-test-stream", PartitionKey=k, Data=d.encode())[
                "SequenceNumber"
            ]
            for k, d in records
        ]

    return await asyncio.to_thread(_put)


def dlq_bodies(runtime: LocalRuntime) -> list[dict[str, Any]]:
    sqs = boto3.client("sqs", endpoint_url=runtime.aws_endpoint, region_name="us-east-1")
    url = sqs.get_queue_url(QueueName="esm-test-dlq")["QueueUrl"]
    out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [json.loads(m["Body"]) for m in out.get("Messages", [])]


async def test_order_partial_failure_bisection_and_dlq(esm: tuple[LocalRuntime, Path]) -> None:
    runtime, log = esm
    poller = runtime.pollers[0]
    records = [(f"key{i % 3}", f"ok{i}") for i in range(12)]
    records[5] = ("key2", "fail")  # reported as a batch item failure every time
    records[9] = ("key0", "raise")  # fails whole invocations: bisected down to itself
    seqs = await put(runtime, records)
    await eventually(lambda: poller.idle() and poller.stats.dead_lettered_batches >= 2, timeout=30)

    delivered = [rec for batch in batches(log) for rec in batch]
    # Every good record reached the function, and per partition key the first deliveries are in order.
    good = {d for _, _, d in delivered if d.startswith("ok")}
    assert good == {d for _, d in records if d.startswith("ok")}
    for key in ("key0", "key1", "key2"):
        firsts: list[int] = []
        for k, seq, _ in delivered:
            if k == key and int(seq) not in firsts:
                firsts.append(int(seq))
        assert firsts == sorted(firsts), key
    # Batches never exceed batchSize, and records of one key always travel in the same lane.
    assert max(len(b) for b in batches(log)) <= 8

    assert poller.stats.bisections >= 1
    assert poller.stats.partial_failures >= 1
    infos = [m["KinesisBatchInfo"] for m in dlq_bodies(runtime)]
    conditions = {m["requestContext"]["condition"] for m in dlq_bodies(runtime)}
    assert conditions == {"RetryAttemptsExhausted"}
    # The raising record ends alone in the DLQ after bisection; the reported failure's batch from it on.
    assert any(i["startSequenceNumber"] == i["endSequenceNumber"] == seqs[9] for i in infos)
    assert any(i["startSequenceNumber"] == seqs[5] for i in infos)
    assert all(i["streamArn"].endswith(":stream/esm-test-stream") for i in infos)
