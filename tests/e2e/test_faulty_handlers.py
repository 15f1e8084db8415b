"""What a client sees when an integration misbehaves: API Gateway's answers, never a hang."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from websockets.asyncio.client import connect

from local.dynamodb_local import engine_from_env
from local.runtime import LocalRuntime, RuntimeConfig
from tests.e2e.conftest import Stacks, free_port

pytestmark = pytest.mark.e2e


@pytest_asyncio.fixture(scope="module")
async def faulty(stacks: Stacks) -> AsyncIterator[LocalRuntime]:
    # Shares the main stack's AWS endpoint; only the gateway and workers are its own.
    stack = await stacks.get(engine_from_env())
    config = RuntimeConfig(
        ws_port=free_port(),
        http_port=free_port(),
        endpoint_url=stack.aws_endpoint,
        dynamodb="moto",  # its tables, if any, on that endpoint too
        config_path=Path(__file__).parents[1] / "fixtures" / "faulty.yml",
    )
    async with LocalRuntime(config) as runtime:
        yield runtime


async def test_raise_none_timeout_then_still_serving(faulty: LocalRuntime) -> None:
    async with connect(faulty.ws_url, open_timeout=30) as ws:
        await ws.send("raise")
        answer = json.loads(await ws.recv())
        assert answer["message"] == "Internal server error"
        assert answer["connectionId"]

        await ws.send("sleep")  # the function's timeout is 1 s
        answer = json.loads(await ws.recv())
        assert answer["message"] == "Internal server error"

        await ws.send("none")  # no body: API Gateway sends nothing back
        await ws.send("hello")
        assert await ws.recv() == "echo:hello"
