"""An API Gateway WebSocket API on one port: the WebSocket endpoint and its Management API.

What it reproduces (see shared AWS facts in docs/local-runtime.md):
- `$connect`: the REQUEST authorizer runs first; Unauthorized -> 401, a Deny -> 403, an error -> 500;
  then the `$connect` integration, whose non-2xx answer refuses the upgrade. Nothing else runs for a
  refused socket.
- the authorizer's `context` reaches every later event of the connection as `requestContext.authorizer`.
- route selection on `$request.body.action`; not JSON, no action, or an unknown one -> `$default`.
- two-way routes (a route response in serverless.yml) send the integration's `body` back to the client;
  a failed integration answers `{"message": "Internal server error", ...}` as API Gateway does.
- limits: 128 KB messages (larger closes the socket with 1009), the idle timeout and the maximum
  connection age (1001 "Going away"), and `$disconnect` on every close, clean or not, with
  `disconnectStatusCode` and `disconnectReason`.
- the Management API: `POST|GET|DELETE /@connections/{id}`; an unknown id answers 410 with the
  `GoneException` error type, so botocore raises `GoneException` exactly as on AWS. As on AWS, a request
  must be SigV4-signed for `execute-api` (botocore clients sign by themselves; an unsigned request gets
  403 `MissingAuthenticationTokenException`), and `DELETE` answers at once, without waiting for the
  client's side of the close handshake.

The socket layer is websockets; plain HTTP requests for the Management API are answered on the same
port by intercepting the request head before websockets parses it (websockets refuses request bodies).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from local.lambdas import FunctionPool, Invocation
from local.slsconfig import ACCOUNT_ID, Service

log = logging.getLogger("local.gateway")

MAX_MESSAGE_BYTES = 128 * 1024
IDLE_TIMEOUT = 600.0
MAX_CONNECTION_AGE = 7200.0
API_ID = "localws"
_CONNECTIONS_PATH = re.compile(r"^(?:/[^/@]+)?/@connections/([^/?]+)$")
# The shape of a SigV4 Authorization header. Its signature is not recomputed here (the local stack has no
# IAM): what this catches is the code that does not sign, or signs for another service or region.
_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=[^/\s,]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=[0-9a-f]{64}"
)


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = MAX_MESSAGE_BYTES
    idle_timeout: float = IDLE_TIMEOUT
    max_connection_age: float = MAX_CONNECTION_AGE


@dataclass
class LiveConnection:
    connection_id: str
    socket: ServerConnection
    connected_at_ms: int
    source_ip: str
    user_agent: str
    authorizer: dict[str, Any]
    last_active: float = field(default_factory=time.monotonic)
    last_active_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    closing_reason: tuple[int, str] | None = None  # set when the gateway itself closes the socket


def new_connection_id() -> str:
    return base64.b64encode(os.urandom(11)).decode().replace("/", "_").replace("+", "-")


def _request_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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
        self.routes = service.ws_route_table()
        self.two_way = {r for fn in service.functions.values() for r in fn.two_way_routes}
        connect_fn = service.functions.get(self.routes.get("$connect", ""))
        self.authorizer = connect_fn.authorizer if connect_fn else None
        self.connections: dict[str, LiveConnection] = {}
        self._server: Server | None = None
        self._janitor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.stats = {"connects": 0, "refused": 0, "messages": 0, "posts": 0, "gone": 0, "throttled": 0}
        # The last events handed to integrations, newest last: what a Lambda saw, for debugging and tests.
        self.recent_events: deque[tuple[str, dict[str, Any]]] = deque(maxlen=500)

    @property
    def domain(self) -> str:
        return f"{self.host}:{self.port}"

    # --- lifecycle --------------------------------------------------------------------------------

    async def start(self) -> None:
        gateway = self

        class Connection(_HttpAwareConnection):
            owner = gateway

        self._server = await serve(
            self._session,
            self.host,
            self.port,
            process_request=self._on_connect,
            create_connection=Connection,
            max_size=self.limits.max_message_bytes,
            # API Gateway does not ping clients; clients keep the socket alive (and the idle timer).
            ping_interval=None,
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
            await self._server.wait_closed()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, 5)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- events, shaped as API Gateway shapes them -----------------------------------------------

    def _request_context(
        self, conn_id: str, connected_at: int, route: str, event_type: str, source_ip: str, user_agent: str
    ) -> dict[str, Any]:
        now = int(time.time() * 1000)
        return {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": uuid.uuid4().hex[:16] + "=",
            "requestTime": _request_time(now),
            "messageDirection": "IN",
            "stage": self.service.stage,
            "connectedAt": connected_at,
            "requestTimeEpoch": now,
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "requestId": uuid.uuid4().hex[:16] + "=",
            "domainName": self.domain,
            "connectionId": conn_id,
            "apiId": API_ID,
        }

    def _method_arn(self, route: str) -> str:
        return f"arn:aws:execute-api:{self.service.region}:{ACCOUNT_ID}:{API_ID}/{self.service.stage}/{route}"

    @staticmethod
    def _headers(request: Request) -> tuple[dict[str, str], dict[str, list[str]]]:
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in request.headers.raw_items():
            single[name] = value
            multi.setdefault(name, []).append(value)
        return single, multi

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
        headers, multi_headers = self._headers(request)
        source_ip = socket.remote_address[0] if socket.remote_address else "127.0.0.1"
        user_agent = request.headers.get("User-Agent", "")
        context = self._request_context(conn_id, connected_at, "$connect", "CONNECT", source_ip, user_agent)
        qs = {k: v[-1] for k, v in query.items()}
        mqs = {k: list(v) for k, v in query.items()}
        authorizer_ctx: dict[str, Any] = {}
        if self.authorizer:
            verdict = await self._authorize(context, headers, multi_headers, qs, mqs, socket)
            if isinstance(verdict, Response):
                self.stats["refused"] += 1
                return verdict
            authorizer_ctx = verdict
            context["authorizer"] = authorizer_ctx
        event = {
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": qs or None,
            "multiValueQueryStringParameters": mqs or None,
            "requestContext": context,
            "isBase64Encoded": False,
        }
        fn = self.routes.get("$connect")
        if fn:
            result = await self._invoke(fn, event)
            status = _integration_status(result)
            if not 200 <= status < 300:
                self.stats["refused"] += 1
                log.info("$connect refused %s with %s", conn_id, status)
                return socket.respond(status, _status_body(status))
        # Accepted: the connection exists from now on, and $disconnect will be sent for it.
        socket.connection_id = conn_id  # type: ignore[attr-defined]
        self.connections[conn_id] = LiveConnection(
            conn_id, socket, connected_at, source_ip, user_agent, authorizer_ctx
        )
        self.stats["connects"] += 1
        return None

    async def _authorize(
        self,
        context: dict[str, Any],
        headers: dict[str, str],
        multi_headers: dict[str, list[str]],
        qs: dict[str, str],
        mqs: dict[str, list[str]],
        socket: ServerConnection,
    ) -> dict[str, Any] | Response:
        fn = self.service.functions[self.routes["$connect"]]
        # A missing identity source is refused by API Gateway itself, without calling the authorizer.
        for source in fn.identity_source:
            if source.startswith("route.request.querystring.") and not qs.get(source.rsplit(".", 1)[1]):
                return socket.respond(401, '{"message":"Unauthorized"}\n')
            if source.startswith("route.request.header.") and not headers.get(source.rsplit(".", 1)[1]):
                return socket.respond(401, '{"message":"Unauthorized"}\n')
        event = {
            "type": "REQUEST",
            "methodArn": self._method_arn("$connect"),
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": qs,
            "multiValueQueryStringParameters": mqs,
            "stageVariables": {},
            "requestContext": context,
        }
        assert self.authorizer is not None
        result = await self._invoke(self.authorizer, event)
        if not result.ok:
            if result.error_message == "Unauthorized":
                return socket.respond(401, '{"message":"Unauthorized"}\n')
            log.error("authorizer failed: %s: %s", result.error_type, result.error_message)
            return socket.respond(500, '{"message":"Internal server error"}\n')
        policy = result.result if isinstance(result.result, dict) else {}
        if not _policy_allows(policy, self._method_arn("$connect")):
            return socket.respond(403, '{"message":"Forbidden"}\n')
        ctx = dict(policy.get("context") or {})
        ctx["principalId"] = policy.get("principalId", "")
        return ctx

    # --- messages -------------------------------------------------------------------------------

    async def _session(self, socket: ServerConnection) -> None:
        conn_id: str = socket.connection_id  # type: ignore[attr-defined]
        conn = self.connections[conn_id]
        try:
            async for message in socket:
                conn.last_active = time.monotonic()
                conn.last_active_ms = int(time.time() * 1000)
                self.stats["messages"] += 1
                # API Gateway invokes integrations concurrently: no ordering between messages.
                self._spawn(self._on_message(conn, message))
        except ConnectionClosed:
            pass
        finally:
            self.connections.pop(conn_id, None)
            code, reason = self._close_status(conn)
            await self._disconnect(conn, code, reason)

    def _close_status(self, conn: LiveConnection) -> tuple[int, str]:
        if conn.closing_reason:
            return conn.closing_reason
        sock = conn.socket
        rcvd = sock.protocol.close_rcvd
        if rcvd is not None:
            return rcvd.code, f"Client-side close frame status code '{rcvd.code}' and reason '{rcvd.reason}'"
        sent = sock.protocol.close_sent
        if sent is not None and sent.code == 1009:
            return 1009, "Message too big"
        return 1006, "Connection was closed abnormally"

    async def _disconnect(self, conn: LiveConnection, code: int, reason: str) -> None:
        fn = self.routes.get("$disconnect")
        if not fn:
            return
        context = self._request_context(
            conn.connection_id,
            conn.connected_at_ms,
            "$disconnect",
            "DISCONNECT",
            conn.source_ip,
            conn.user_agent,
        )
        context["disconnectStatusCode"] = code
        context["disconnectReason"] = reason
        if conn.authorizer:
            context["authorizer"] = conn.authorizer
        event = {
            "headers": {"Host": self.domain, "x-api-key": "", "x-restapi": ""},
            "multiValueHeaders": {"Host": [self.domain], "x-api-key": [""], "x-restapi": [""]},
            "requestContext": context,
            "isBase64Encoded": False,
        }
        result = await self._invoke(fn, event)
        if not result.ok:
            log.error("$disconnect failed for %s: %s", conn.connection_id, result.error_message)

    def select_route(self, body: str | None) -> str:
        if body is None:
            return "$default"
        try:
            frame = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's stack
            return "$default"
        action = frame.get("action") if isinstance(frame, dict) else None
        if isinstance(action, str) and action in self.routes and not action.startswith("$"):
            return action
        return "$default"

    async def _on_message(self, conn: LiveConnection, message: str | bytes) -> None:
        if isinstance(message, bytes):
            try:
                body: str = message.decode()
                encoded = False
            except UnicodeDecodeError:
                body, encoded = base64.b64encode(message).decode(), True
        else:
            body, encoded = message, False
        route = "$default" if encoded else self.select_route(body)
        fn = self.routes.get(route)
        if fn is None:
            await self._send(
                conn,
                json.dumps(
                    {
                        "message": "Forbidden",
                        "connectionId": conn.connection_id,
                        "requestId": uuid.uuid4().hex[:16] + "=",
                    }
                ),
            )
            return
        context = self._request_context(
            conn.connection_id, conn.connected_at_ms, route, "MESSAGE", conn.source_ip, conn.user_agent
        )
        context["messageId"] = uuid.uuid4().hex[:16] + "="
        if conn.authorizer:
            context["authorizer"] = conn.authorizer
        event = {"requestContext": context, "body": body, "isBase64Encoded": encoded}
        result = await self._invoke(fn, event)
        if route not in self.two_way:
            return
        if not result.ok:
            reply: str | None = json.dumps(
                {
                    "message": "Internal server error",
                    "connectionId": conn.connection_id,
                    "requestId": context["requestId"],
                }
            )
        elif isinstance(result.result, dict):
            raw = result.result.get("body")
            reply = raw if isinstance(raw, str) else (json.dumps(raw) if raw is not None else None)
        elif isinstance(result.result, str):
            reply = result.result
        else:
            reply = None
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
            now = time.monotonic()
            wall = time.time() * 1000
            for conn in list(self.connections.values()):
                too_old = wall - conn.connected_at_ms > self.limits.max_connection_age * 1000
                idle = now - conn.last_active > self.limits.idle_timeout
                if (too_old or idle) and conn.closing_reason is None:
                    conn.closing_reason = (1001, "Going away")
                    self._spawn(conn.socket.close(1001, "Going away"))

    # --- the Management API ------------------------------------------------------------------------

    def _refuse_unsigned(self, headers: Headers) -> tuple[int, dict[str, str], bytes] | None:
        """API Gateway's answers to a Management API call that is not signed for execute-api."""
        header = headers.get("Authorization", "")
        if not header:
            return _error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
        sig = _SIGV4.fullmatch(header.strip())
        if sig is None or "host" not in sig["signed"].split(";") or not headers.get("X-Amz-Date"):
            return _error(
                403,
                "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'Signature', 'SignedHeaders' (with host) "
                "and an X-Amz-Date header (AWS Signature Version 4)",
            )
        if sig["service"] != "execute-api":
            return _error(
                403,
                "InvalidSignatureException",
                "Credential should be scoped to correct service: 'execute-api'.",
            )
        if sig["region"] != self.service.region:
            return _error(
                403,
                "InvalidSignatureException",
                f"Credential should be scoped to a valid region: '{self.service.region}'.",
            )
        return None

    async def management(
        self, method: str, path: str, body: bytes, headers: Headers | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        refusal = self._refuse_unsigned(headers if headers is not None else Headers())
        if refusal is not None:
            return refusal
        m = _CONNECTIONS_PATH.match(urlsplit(path).path)
        if not m:
            return _error(404, "NotFoundException", f"no route for {method} {path}")
        conn = self.connections.get(unquote(m.group(1)))
        if conn is None:
            self.stats["gone"] += 1
            return _error(410, "GoneException", None)
        if method == "POST":
            if len(body) > self.limits.max_message_bytes:
                return _error(413, "PayloadTooLargeException", "Message too long")
            try:
                data: str | bytes = body.decode()
            except UnicodeDecodeError:
                data = body
            if not await self._send(conn, data):
                self.stats["gone"] += 1
                return _error(410, "GoneException", None)
            self.stats["posts"] += 1
            return 200, {}, b""
        if method == "GET":
            info = {
                "connectedAt": _iso(conn.connected_at_ms),
                "lastActiveAt": _iso(conn.last_active_ms),
                "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
            }
            return 200, {"Content-Type": "application/json"}, json.dumps(info).encode()
        if method == "DELETE":
            conn.closing_reason = (1000, "Connection closed by the server")
            # AWS answers at once and closes in the background. Waiting here for the close handshake
            # would hang the caller (the admin function's kick) on a client that has stopped reading,
            # for websockets' close timeout, past the Lambda's own.
            self._spawn(conn.socket.close(1000, ""))
            return 204, {}, b""
        return _error(405, "MethodNotAllowedException", f"{method} is not allowed")


def _error(status: int, error_type: str, message: str | None) -> tuple[int, dict[str, str], bytes]:
    headers = {"Content-Type": "application/json", "x-amzn-errortype": error_type}
    return status, headers, json.dumps({"message": message}).encode()


def _integration_status(result: Invocation) -> int:
    if not result.ok:
        return 500
    if isinstance(result.result, dict) and "statusCode" in result.result:
        try:
            return int(result.result["statusCode"])
        except (TypeError, ValueError):
            return 502
    return 200


def _status_body(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return json.dumps({"message": phrase}) + "\n"


def _arn_matches(pattern: str, arn: str) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, arn) is not None


def _policy_allows(policy: dict[str, Any], arn: str) -> bool:
    statements = (policy.get("policyDocument") or {}).get("Statement") or []
    allowed = False
    for st in statements:
        resources = st.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if not any(_arn_matches(r, arn) for r in resources):
            continue
        if st.get("Effect") == "Deny":
            return False
        if st.get("Effect") == "Allow":
            allowed = True
    return allowed


class _HttpAwareConnection(ServerConnection):
    """A websockets connection that answers plain HTTP requests (the Management API) itself.

    The request head is buffered until complete. A WebSocket upgrade is handed to websockets
    unchanged; anything else is parsed here and answered, one request per connection.
    """

    owner: Gateway
    _MAX_HEAD = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._mode = "sniff"
        self._buffer = b""
        self._head: tuple[str, str, Headers] | None = None

    def data_received(self, data: bytes) -> None:
        if self._mode == "ws":
            super().data_received(data)
            return
        if self._mode == "done":
            return
        self._buffer += data
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > self._MAX_HEAD:
                    self._reply(
                        *_error(431, "RequestHeaderFieldsTooLarge", "Request Header Fields Too Large")
                    )
                return
            head = self._parse_head(self._buffer[:end])
            if head is None:
                self._reply(*_error(400, "BadRequestException", "Bad Request"))
                return
            method, path, headers = head
            if "websocket" in headers.get("Upgrade", "").lower():
                self._mode = "ws"
                buffered, self._buffer = self._buffer, b""
                super().data_received(buffered)
                return
            self._head = head
            self._buffer = self._buffer[end + 4 :]
        method, path, headers = self._head
        try:
            length = int(headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0:
            self._reply(*_error(400, "BadRequestException", "Bad Request: invalid Content-Length"))
            return
        if length > self.owner.limits.max_message_bytes * 2:
            self._reply(*_error(413, "PayloadTooLargeException", "Message too long"))
            return
        if len(self._buffer) < length:
            return
        body = self._buffer[:length]
        self._mode = "done"
        self.owner._spawn(self._answer(method, path, body, headers))

    @staticmethod
    def _parse_head(raw: bytes) -> tuple[str, str, Headers] | None:
        try:
            lines = raw.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = Headers()
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip()] = value.strip()
        except ValueError:
            return None
        return method.upper(), path, headers

    async def _answer(self, method: str, path: str, body: bytes, request_headers: Headers) -> None:
        try:
            status, headers, payload = await self.owner.management(method, path, body, request_headers)
        except Exception:
            log.exception("Management API request failed")
            status, headers, payload = _error(500, "InternalServerErrorException", "internal error")
        self._reply(status, headers, payload)

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self._mode = "done"
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        lines = [
            f"HTTP/1.1 {status} {phrase}",
            f"Content-Length: {len(body)}",
            "Connection: close",
            f"x-amzn-RequestId: {uuid.uuid4()}",
        ]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        self.transport.close()
