"""End-to-end fixtures: the local runtime on free ports, and real WebSocket clients."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from websockets.asyncio.client import ClientConnection, connect

from local.runtime import LocalRuntime, RuntimeConfig
from tests.conftest import token_for

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def own_stack_config() -> RuntimeConfig:
    """A whole local stack of its own (embedded AWS endpoint included) on free ports."""
    return RuntimeConfig(
        ws_port=free_port(),
        http_port=free_port(),
        aws_port=free_port(),
        endpoint_url=None,
        poll_interval=0.05,
    )


@pytest_asyncio.fixture(scope="session")
async def stack(monkeypatch_session: pytest.MonkeyPatch) -> AsyncIterator[LocalRuntime]:
    monkeypatch_session.delenv("AWS_ENDPOINT_URL", raising=False)
    async with LocalRuntime(own_stack_config()) as runtime:
        yield runtime


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
