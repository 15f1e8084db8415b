"""An API Gateway WebSocket API on one port: the WebSocket endpoint and its Management API.

    local.wsapi        what the API is: connections, route selection, the events and answers (data)
    local.management   the Management API (POST/GET/DELETE /@connections/{id}), HTTP by h11
    local.gateway      this module: the sockets, pumped by websockets

What it reproduces (see docs/local-runtime.md):
- `$connect`: the REQUEST authorizer runs first; Unauthorized -> 401, a Deny -> 403, an error -> 500;
  then the `$connect` integration, whose non-2xx answer refuses the upgrade. Nothing else runs for a
  refused socket.
- the authorizer's `context` reaches every later event of the connection as `requestContext.authorizer`.
- route selection on `$request.body.action`; not JSON, no action, or an unknown one -> `$default`.
- two-way routes (a route response in serverless.yml) send the integration's `body` back to the client;
  a failed integration answers `{"message": "Internal server error", ...}` as API Gateway does.
- integrations run concurrently, with no ordering between the messages of a connection.
- limits: 128 KB messages (larger closes the socket with 1009), the idle timeout and the maximum
  connection age (1001 "Going away"), and `$disconnect` on every close, clean or not, with
  `disconnectStatusCode` and `disconnectReason`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections import deque
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from local.lambdas import FunctionPool, Invocation
from local.management import HttpAwareConnection, ManagementApi, closer
from local.slsconfig import Service
from local.wsapi import (
    Limits,
    LiveConnection,
    WsApi,
    close_status,
    integration_status,
    new_connection_id,
    status_body,
)

log = logging.getLogger("local.gateway")

__all__ = ["Gateway", "Limits"]


class Gateway:
    def __init__(
        self,
        service: Service,
        pools: dict[str, FunctionPool],
        *,
        host: str = "127.0.0.1",
        port: int = 3001,
        limits: Limits | None = None,
    ) -> None:
        self.service = service
        self.pools = pools
        self.host = host
        self.port = port
        self.limits = limits or Limits()
        self.api = WsApi(service, self.domain)
        self.connections: dict[str, LiveConnection] = {}
        self._by_socket: dict[ServerConnection, str] = {}  # which connection a socket is, once accepted
        self._sockets: set[HttpAwareConnection] = set()  # every TCP connection open on the port
        self._server: Server | None = None
        self._janitor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stats = {
            "connects": 0,
            "refused": 0,
            "messages": 0,
            "posts": 0,
            "gone": 0,
            "throttled": 0,  # refused by Lambda (reserved concurrency; GAMEBACKEND_LOCAL_THROTTLE)
            "routeThrottled": 0,  # refused by the stage's or the route's throttle (serverless.yml)
            "lostDisconnects": 0,
        }
        # The last events handed to integrations, newest last: what a Lambda saw, for debugging and tests.
        self.recent_events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=500)
        # Players whose next `$disconnect` is lost, as API Gateway's is sometimes ("best effort"): a fault
        # for tests, like the embedded endpoint's (/_local/faults). The socket closes; nothing is invoked.
        self.lose_disconnect_of: set[str] = set()
        self.management = ManagementApi(
            self.connections, service.region, lambda: self.limits, self._send, closer(self._spawn), self.stats
        )

    @property
    def domain(self) -> str:
        return f"{self.host}:{self.port}"

    def select_route(self, body: str | None) -> str:
        return self.api.select_route(body)

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        gateway = self

        class Connection(HttpAwareConnection):
            management = gateway.management
            spawn = staticmethod(gateway._spawn)

            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                gateway._sockets.add(self)
                super().connection_made(transport)

            def connection_lost(self, exc: Exception | None) -> None:
                gateway._sockets.discard(self)
                super().connection_lost(exc)

        self._server = await serve(
            self._session,
            self.host,
            self.port,
            process_request=self._on_connect,
            create_connection=Connection,
            max_size=self.limits.max_message_bytes,
            # API Gateway does not ping clients; clients keep the socket alive (and the idle timer).
            ping_interval=None,
            # websockets' open_timeout bounds the whole handshake, and a Management API connection is
            # one that never ends it: every pusher's keep-alive connection was aborted 10 s after it
            # opened, a post in flight included (botocore then retried after up to a second). The
            # connections time the first request head themselves (Limits.handshake_timeout); the
            # $connect integration is bounded by its function's timeout, as on AWS.
            open_timeout=None,
            compression=None,
        )
        self._janitor = asyncio.create_task(self._enforce_timeouts())
        log.info(
            "WebSocket API on ws://%s (Management API on http://%s/@connections)", self.domain, self.domain
        )

    async def stop(self) -> None:
        if self._janitor:
            self._janitor.cancel()
        if self._server is not None:
            self._server.close(close_connections=True)
            for connection in list(self._sockets):
                connection.end_http()
            await self._server.wait_closed()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _invoke(self, fn: str, event: dict[str, Any]) -> Invocation:
        self.recent_events.append((fn, event))
        # API Gateway invokes synchronously: beyond a reserved concurrency (with the pool's throttling
        # on) Lambda refuses with TooManyRequestsException, which API Gateway does not retry. The
        # client gets what any failed integration gets: {"message": "Internal server error", ...}.
        result = await self.pools[fn].invoke(event, synchronous=True)
        if result.error_type == "TooManyRequestsException":
            self.stats["throttled"] += 1
        return result

    # --- $connect -------------------------------------------------------------------------------

    async def _on_connect(self, socket: ServerConnection, request: Request) -> Response | None:
        conn_id = new_connection_id()
        connected_at = int(time.time() * 1000)
        query = parse_qs(urlsplit(request.path).query)
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for name, value in request.headers.raw_items():
            headers[name] = value
            multi_headers.setdefault(name, []).append(value)
        source_ip = socket.remote_address[0] if socket.remote_address else "127.0.0.1"
        user_agent = request.headers.get("User-Agent", "")
        context = self.api.request_context(
            conn_id, connected_at, "$connect", "CONNECT", source_ip, user_agent
        )
        authorizer_ctx: dict[str, Any] = {}
        if self.api.authorizer:
            if self.api.missing_identity(headers, {k: v[-1] for k, v in query.items()}):
                self.stats["refused"] += 1
                return socket.respond(401, '{"message":"Unauthorized"}\n')
            verdict = self.api.authorized(
                await self._invoke(
                    self.api.authorizer, self.api.authorizer_event(context, headers, multi_headers, query)
                )
            )
            if isinstance(verdict, tuple):
                status, body = verdict
                if status == 500:
                    log.error("authorizer failed for %s", conn_id)
                self.stats["refused"] += 1
                return socket.respond(status, body)
            authorizer_ctx = verdict
            context["authorizer"] = authorizer_ctx
        fn = self.api.routes.get("$connect")
        if fn:
            result = await self._invoke(fn, self.api.connect_event(context, headers, multi_headers, query))
            status = integration_status(result)
            if not 200 <= status < 300:
                self.stats["refused"] += 1
                log.info("$connect refused %s with %s", conn_id, status)
                return socket.respond(status, status_body(status))
        # Accepted: the connection exists from now on, and $disconnect will be sent for it.
        self._by_socket[socket] = conn_id
        self.connections[conn_id] = LiveConnection(
            conn_id, socket, connected_at, source_ip, user_agent, authorizer_ctx
        )
        self.stats["connects"] += 1
        return None

    # --- messages -------------------------------------------------------------------------------

    async def _session(self, socket: ServerConnection) -> None:
        conn_id = self._by_socket[socket]
        conn = self.connections[conn_id]
        try:
            async for message in socket:
                conn.touch()
                self.stats["messages"] += 1
                # API Gateway invokes integrations concurrently: no ordering between messages.
                self._spawn(self._on_message(conn, message))
        except ConnectionClosed:
            pass
        finally:
            self.connections.pop(conn_id, None)
            self._by_socket.pop(socket, None)
            rcvd, sent = socket.protocol.close_rcvd, socket.protocol.close_sent
            code, reason = close_status(
                conn.closing_reason,
                (rcvd.code, rcvd.reason) if rcvd is not None else None,
                sent.code if sent is not None else None,
            )
            await self._disconnect(conn, code, reason)

    async def _disconnect(self, conn: LiveConnection, code: int, reason: str) -> None:
        fn = self.api.routes.get("$disconnect")
        if not fn:
            return
        player = str(conn.authorizer.get("playerId", ""))
        if player in self.lose_disconnect_of:
            self.lose_disconnect_of.discard(player)
            self.stats["lostDisconnects"] += 1
            log.info("$disconnect of %s lost (a fault injected for %s)", conn.connection_id, player)
            return
        result = await self._invoke(fn, self.api.disconnect_event(conn, code, reason))
        if not result.ok:
            log.error("$disconnect failed for %s: %s", conn.connection_id, result.error_message)

    async def _on_message(self, conn: LiveConnection, message: str | bytes) -> None:
        if isinstance(message, bytes):
            try:
                body: str = message.decode()
                encoded = False
            except UnicodeDecodeError:
                body, encoded = base64.b64encode(message).decode(), True
        else:
            body, encoded = message, False
        route = "$default" if encoded else self.api.select_route(body)
        fn = self.api.routes.get(route)
        if fn is None:
            await self._send(conn, self.api.no_route(conn.connection_id))
            return
        if not self.api.throttle.admit(route):
            self.stats["routeThrottled"] += 1
            await self._send(conn, self.api.throttled(conn.connection_id))
            return
        event = self.api.message_event(conn, route, body, encoded)
        result = await self._invoke(fn, event)
        reply = self.api.route_reply(route, result, conn.connection_id, event["requestContext"]["requestId"])
        if reply is None and route in self.api.two_way and result.ok:
            log.warning("route %s returned no body (%r); nothing sent to the client", route, result.result)
        if reply is not None:
            await self._send(conn, reply)

    async def _send(self, conn: LiveConnection, data: str | bytes) -> bool:
        try:
            await conn.socket.send(data)
            return True
        except ConnectionClosed:
            return False

    # --- limits ------------------------------------------------------------------------------------

    async def _enforce_timeouts(self) -> None:
        while True:
            tick = max(0.05, min(self.limits.idle_timeout, self.limits.max_connection_age) / 10)
            await asyncio.sleep(min(tick, 5.0))
            now, wall = time.monotonic(), time.time() * 1000
            for conn in list(self.connections.values()):
                if conn.expired(self.limits, now, wall) and conn.closing_reason is None:
                    conn.closing_reason = (1001, "Going away")
                    self._spawn(conn.socket.close(1001, "Going away"))
