"""Pushes frames to WebSocket connections through the API Gateway Management API, concurrently.

One aiobotocore client and one event loop live as long as the execution environment, so a warm
invocation pays for neither a TLS handshake nor client creation. A 410 (GoneException) means the
connection is gone: it is reported, not raised, and the caller forgets the connection.

The one port to the Management API: the processor, the projector and the admin API all go through it.

Pushes go through a circuit breaker (backend.breaker, downstream `ManagementApi`): once the Management
API has failed `FAILURE_THRESHOLD` pushes in a row (5xx, 429, timeouts; not 410s), every push is shed
for the cool-down, reported in `shed` and never attempted. A push is best effort and carries the
match's whole state, so a shed push loses no action: the match is written before it is pushed, the
next push (or a re-join) brings the client up to date, and the client tells the gap by the `version`.
What shedding saves is the players' time: a batch no longer waits for timeouts and retries against a
failing API (and stops adding to the account's API Gateway request rate, which the players' own
frames share). After the cool-down, the first push is the trial, and the pushes that come while it is
in flight wait for its answer (one round trip) instead of being shed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from backend.aws import aio_session, downstream_failing, user_agent
from backend.breaker import CircuitBreaker

T = TypeVar("T")

MAX_IN_FLIGHT = 64


@dataclass
class PushReport:
    sent: int = 0
    gone: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (connection id, error)
    shed: list[str] = field(default_factory=list)  # not attempted: the circuit was open

    def add(self, other: PushReport) -> None:
        self.sent += other.sent
        self.gone += other.gone
        self.failed += other.failed
        self.shed += other.shed


class Pusher:
    def __init__(
        self, endpoint_url: str, region: str | None = None, breaker: CircuitBreaker | None = None
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.breaker = breaker if breaker is not None else CircuitBreaker("ManagementApi")
        self._trial_done: asyncio.Event | None = None
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

            self._stack = contextlib.AsyncExitStack()
            config = AioConfig(
                max_pool_connections=MAX_IN_FLIGHT,
                connect_timeout=2,
                read_timeout=5,
                retries={"max_attempts": 2, "mode": "standard"},
                user_agent=user_agent(),
            )
            self._client = await self._stack.enter_async_context(
                aio_session().create_client(
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
            if not await self._admitted():
                report.shed.append(connection_id)
                return
            async with gate:
                try:
                    await client.post_to_connection(ConnectionId=connection_id, Data=data.encode())
                    report.sent += 1
                    self._answered(None)
                except client.exceptions.GoneException:
                    report.gone.append(connection_id)
                    self._answered(None)  # an authoritative answer: the API is working
                except Exception as exc:
                    report.failed.append((connection_id, f"{type(exc).__name__}: {exc}"))
                    self._answered(exc)
                except BaseException:  # cancelled: no answer to judge by, but the trial is over
                    self.breaker.release()
                    self._answered_nothing()
                    raise

        await asyncio.gather(*(post(cid, data) for cid, data in messages))
        return report

    async def _admitted(self) -> bool:
        """Whether the breaker lets a push through now. A push that finds a half-open trial in flight
        waits for its answer, then asks again."""
        while self.breaker.trial_in_flight and self._trial_done is not None:
            await self._trial_done.wait()
        if not self.breaker.allow():
            return False
        if self.breaker.trial_in_flight:
            self._trial_done = asyncio.Event()
        return True

    def _answered(self, exc: BaseException | None) -> None:
        if exc is not None and downstream_failing(exc):
            self.breaker.failure()
        else:
            self.breaker.success()
        self._answered_nothing()

    def _answered_nothing(self) -> None:
        if self._trial_done is not None and not self.breaker.trial_in_flight:
            self._trial_done.set()
            self._trial_done = None

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
        self._loop = self._stack = self._client = self._gate = self._trial_done = None


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
