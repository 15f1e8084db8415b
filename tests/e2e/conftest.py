"""End-to-end fixtures: the local runtime on free ports, and real WebSocket clients.

`stack` is one local runtime per DynamoDB engine for the whole session, started when first asked for.
Its engine is GAMEBACKEND_DYNAMODB's (moto unless set); a module marked `on_every_engine` runs each of
its tests on both engines (or on the one that GAMEBACKEND_DYNAMODB names).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from local.dynamodb_local import EngineUnavailable, engine_from_env
from local.runtime import LocalRuntime, RuntimeConfig
from tests.conftest import dynamodb_engines, free_port, token_for

pytestmark = pytest.mark.e2e

# For a module whose tests must hold on both engines: `pytestmark = [pytest.mark.e2e, on_every_engine]`.
on_every_engine = pytest.mark.parametrize("stack_engine", dynamodb_engines(), indirect=True)


def own_stack_config(dynamodb: str | None = None) -> RuntimeConfig:
    """A whole local stack of its own (embedded AWS endpoint, and DynamoDB Local for dynamodb="local")
    on free ports."""
    return RuntimeConfig(
        ws_port=free_port(),
        http_port=free_port(),
        aws_port=free_port(),
        endpoint_url=None,
        poll_interval=0.05,
        dynamodb=dynamodb or engine_from_env(),
        dynamodb_port=free_port(),
    )


class Stacks:
    """The session's local runtimes, one per engine, started on first use and stopped at the end."""

    def __init__(self) -> None:
        self.running: dict[str, LocalRuntime] = {}
        self.failed: dict[str, str] = {}

    async def get(self, engine: str) -> LocalRuntime:
        if engine in self.failed:
            pytest.fail(self.failed[engine], pytrace=False)
        if engine not in self.running:
            runtime = LocalRuntime(own_stack_config(engine))
            try:
                await runtime.__aenter__()
            except EngineUnavailable as exc:
                self.failed[engine] = f"{exc}; GAMEBACKEND_DYNAMODB=moto runs the suite on moto alone"
                pytest.fail(self.failed[engine], pytrace=False)
            self.running[engine] = runtime
        return self.running[engine]

    async def close(self) -> None:
        for runtime in self.running.values():
            await runtime.__aexit__(None, None, None)


@pytest_asyncio.fixture(scope="session")
async def stacks(monkeypatch_session: pytest.MonkeyPatch) -> AsyncIterator[Stacks]:
    monkeypatch_session.delenv("AWS_ENDPOINT_URL", raising=False)
    started = Stacks()
    yield started
    await started.close()


@pytest.fixture
def stack_engine(request: pytest.FixtureRequest) -> str:
    """The DynamoDB engine of the `stack` this test gets: on_every_engine's parameter, else the default."""
    return str(getattr(request, "param", None) or engine_from_env())


@pytest_asyncio.fixture
async def stack(stacks: Stacks, stack_engine: str) -> LocalRuntime:
    return await stacks.get(stack_engine)


@pytest.fixture(scope="session")
def monkeypatch_session() -> Any:
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


class Client:
    """A test client: a real WebSocket plus helpers to send frames and wait for a kind of answer."""

    def __init__(self, ws: ClientConnection, player: str) -> None:
        self.ws = ws
        self.player = player
        self.inbox: list[dict[str, Any]] = []

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def recv(self, timeout: float = 10.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        return frame

    async def wait_for(self, predicate: Any, timeout: float = 15.0) -> dict[str, Any]:
        """The first frame (already received or arriving) that matches; the others stay in the inbox."""
        for i, frame in enumerate(self.inbox):
            if predicate(frame):
                return self.inbox.pop(i)
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.recv(timeout)
                if predicate(frame):
                    return frame
                self.inbox.append(frame)

    async def request(self, frame: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        await self.send(frame)
        ref = frame.get("id")
        return await self.wait_for(
            lambda f: (
                f.get("ref") == ref
                or (f.get("type") == "ack" and f.get("id") == ref)
                or (ref is None and f.get("type") in ("pong", "error", "joined", "leaderboard", "left"))
            ),
            timeout,
        )


@pytest_asyncio.fixture
async def connect_player(stack: LocalRuntime) -> AsyncIterator[Any]:
    opened: list[ClientConnection] = []

    async def _connect(player: str, **kwargs: Any) -> Client:
        ws = await connect(f"{stack.ws_url}/?token={token_for(player, **kwargs)}", open_timeout=30)
        opened.append(ws)
        return Client(ws, player)

    yield _connect
    for ws in opened:
        await ws.close()


def management_api(stack: LocalRuntime) -> Any:
    """A client of the stack's Management API, signed (SigV4 for execute-api) as the functions' are:
    the local gateway refuses unsigned calls, as API Gateway does."""
    import boto3

    return boto3.client("apigatewaymanagementapi", endpoint_url=stack.management_url, region_name="us-east-1")


async def eventually(check: Any, timeout: float = 10.0, interval: float = 0.05) -> Any:
    """Polls `check` until it returns a truthy value (for effects that happen after a socket closes)."""
    async with asyncio.timeout(timeout):
        while True:
            value = await check() if asyncio.iscoroutinefunction(check) else check()
            if value:
                return value
            await asyncio.sleep(interval)


def faults(endpoint: str, method: str = "GET", rule: dict[str, Any] | None = None) -> dict[str, Any]:
    """The embedded AWS endpoint's injected faults (local.awsserver): POST one, DELETE all, GET them."""
    import urllib.request

    data = json.dumps(rule).encode() if rule is not None else None
    request = urllib.request.Request(f"{endpoint}/_local/faults", data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as answer:
        found: dict[str, Any] = json.loads(answer.read())
    return found
