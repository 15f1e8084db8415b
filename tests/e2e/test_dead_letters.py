"""The dead-letter path end to end, on a stack of its own (it makes DynamoDB fail to cause an outage)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import boto3
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from cli.ops import Ops
from local.runtime import LocalRuntime
from tests.conftest import token_for
from tests.e2e.conftest import Client, eventually, faults, own_stack_config
from tests.e2e.test_game import join, score, state_where

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(scope="module")
async def isolated() -> AsyncIterator[LocalRuntime]:
    # On moto whatever the engine setting: the outage is a fault that the embedded moto injects.
    async with LocalRuntime(own_stack_config("moto")) as runtime:
        yield runtime


async def test_an_outage_dead_letters_the_batch_and_redrive_applies_it_once(isolated: LocalRuntime) -> None:
    rt = isolated
    ops = Ops(rt.service, rt.aws_endpoint, rt.dynamodb_endpoint)
    ws = await connect(f"{rt.ws_url}/?token={token_for('dl-player')}", open_timeout=30)
    player = Client(ws, "dl-player")
    try:
        mid = (await join(player, "practice"))["matchId"]
        await score(player, mid, "before", 10)
        await state_where(player, lambda s: "before" in s["applied"])

        # Outage: every write of a match's state fails; the batch fails until its retries run out.
        outage = {
            "operation": "UpdateItem",
            "resource": "gamebackend-local-matches",
            "code": "InternalServerError",
        }
        await asyncio.to_thread(faults, rt.dynamodb_endpoint, "POST", outage)
        await score(player, mid, "during", 25)
        poller = rt.pollers[0]
        await eventually(lambda: poller.stats.dead_lettered_batches >= 1, timeout=30)
        (listed,) = [ops.describe(m) for m in await asyncio.to_thread(ops.dlq_messages)]
        assert listed["kind"] == "batch" and listed["reason"] == "RetryAttemptsExhausted"

        # Fixed. Redrive puts the records back on the stream.
        assert (await asyncio.to_thread(faults, rt.dynamodb_endpoint, "DELETE"))["faults"] == []
        moved = await asyncio.to_thread(ops.redrive)
        assert moved == 1
        state = await state_where(player, lambda s: "during" in s["applied"])
        assert state["players"]["dl-player"]["score"] == 35
        assert await asyncio.to_thread(ops.dlq_messages) == []

        # Redriving again finds nothing; replaying the action again would be dropped as a duplicate.
        assert await asyncio.to_thread(ops.redrive) == 0
        stored = await asyncio.to_thread(ops.matches.load, mid)
        assert stored.match.players["dl-player"].score == 35
    finally:
        await ws.close()


async def test_poison_records_are_listed_and_can_be_put_back(isolated: LocalRuntime) -> None:
    rt = isolated
    ops = Ops(rt.service, rt.aws_endpoint, rt.dynamodb_endpoint)
    kinesis = boto3.client("kinesis", endpoint_url=rt.aws_endpoint, region_name="us-east-1")
    data = json.dumps({"v": 99, "matchId": "m-" + "9" * 32}).encode()
    await asyncio.to_thread(
        kinesis.put_record, StreamName="gamebackend-local-actions", PartitionKey="m-" + "9" * 32, Data=data
    )

    async def poisoned() -> list[dict[str, Any]]:
        return [
            ops.describe(m)
            for m in await asyncio.to_thread(ops.dlq_messages)
            if ops.describe(m)["kind"] == "poison"
        ]

    (entry,) = await eventually(poisoned, timeout=20)
    assert entry["reason"] == "unknown schema version 99"
    (message,) = [m for m in await asyncio.to_thread(ops.dlq_messages) if ops.describe(m)["kind"] == "poison"]
    record = json.loads(message["Body"])["record"]
    assert base64.b64decode(record["kinesis"]["data"]) == data  # the data travels with it

    # Put back unchanged, it is still poison: it returns to the queue, alone, and nothing else stalls.
    assert await asyncio.to_thread(ops.redrive) == 1
    await eventually(poisoned, timeout=20)
