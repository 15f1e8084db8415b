"""Pushes frames to WebSocket connections through the API Gateway Management API, concurrently.

One aiobotocore client and one event loop live as long as the execution environment, so a warm
invocation pays for neither a TLS handshake nor client creation. A 410 (GoneException) means the
connection is gone: it is reported, not raised, and the caller forgets the connection.

The one port to the Management API: the processor, the projector and the admin API all go through it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

MAX_IN_FLIGHT = 64


@dataclass
class PushReport:
    sent: int = 0
    gone: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (connection id, error)


class Pusher:
    def __init__(self, endpoint_url: str, region: str | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._gate: asyncio.Semaphore | None = None

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        """Runs a coroutine that pushes (post_all) on the loop the client lives on, to its end."""
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(work)

    def send(self, messages: list[tuple[str, str]]) -> PushReport:
        """Sends every (connection id, data) pair; blocks until all are answered."""
        if not messages:
            return PushReport()
        return self.run(self.post_all(messages))

    async def _get_client(self) -> Any:
        if self._client is None:
            from aiobotocore.config import AioConfig
            from aiobotocore.session import get_session

            self._stack = contextlib.AsyncExitStack()
            config = AioConfig(
                max_pool_connections=MAX_IN_FLIGHT,
                connect_timeout=2,
                read_timeout=5,
                retries={"max_attempts": 2, "mode": "standard"},
            )
            self._client = await self._stack.enter_async_context(
                get_session().create_client(
                    "apigatewaymanagementapi",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=config,
                )
            )
        return self._client

    async def post_all(self, messages: list[tuple[str, str]]) -> PushReport:
        """Sends every (connection id, data) pair concurrently; MAX_IN_FLIGHT at most across every
        post_all running at the same time (they share the client's connection pool)."""
        report = PushReport()
        if not messages:
            return report
        client = await self._get_client()
        if self._gate is None:
            self._gate = asyncio.Semaphore(MAX_IN_FLIGHT)
        gate = self._gate

        async def post(connection_id: str, data: str) -> None:
            async with gate:
                try:
                    await client.post_to_connection(ConnectionId=connection_id, Data=data.encode())
                    report.sent += 1
                except client.exceptions.GoneException:
                    report.gone.append(connection_id)
                except Exception as exc:
                    report.failed.append((connection_id, f"{type(exc).__name__}: {exc}"))

        await asyncio.gather(*(post(cid, data) for cid, data in messages))
        return report

    def delete(self, connection_id: str) -> bool:
        """Closes a connection (DELETE @connections/{id}); False when it was already gone (410)."""

        async def delete() -> bool:
            client = await self._get_client()
            try:
                await client.delete_connection(ConnectionId=connection_id)
            except client.exceptions.GoneException:
                return False
            return True

        return self.run(delete())

    def close(self) -> None:
        if self._loop is not None and self._stack is not None:
            self._loop.run_until_complete(self._stack.aclose())
            self._loop.close()
        self._loop = self._stack = self._client = self._gate = None


class Gateway:
    """The Management API's synchronous calls, for functions that make a few of them (the timers'
    presence probes, `$connect`'s limit of connections per player, the message function's flood guard):
    a boto3 client (backend.aws.Deferred), no event loop."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def alive(self, connection_id: str) -> bool:
        """GET @connections/{id}: False when the connection is gone (410), whether or not its
        `$disconnect` ever came."""
        try:
            self._client.get_connection(ConnectionId=connection_id)
        except self._client.exceptions.GoneException:
            return False
        return True

    def post(self, connection_id: str, data: str) -> bool:
        """One frame; False when the connection is gone."""
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data.encode())
        except self._client.exceptions.GoneException:
            return False
        return True

    def close(self, connection_id: str) -> bool:
        """DELETE @connections/{id} (API Gateway closes it with 1000; the API takes no close code);
        False when it was already gone."""
        try:
            self._client.delete_connection(ConnectionId=connection_id)
        except self._client.exceptions.GoneException:
            return False
        return True
