"""API Gateway's Management API for a WebSocket API, on the WebSocket API's own port.

    POST   /@connections/{id}   send data to the connection
    GET    /@connections/{id}   its connectedAt, lastActiveAt and identity
    DELETE /@connections/{id}   close it (answered at once, as on AWS)

An unknown id answers 410 with the `GoneException` error type, so botocore raises `GoneException`
exactly as on AWS. A request must be SigV4-signed for `execute-api` in the stage's region: botocore
clients sign by themselves, and a request that does not gets the 403 AWS answers (the signature itself
is not recomputed: there is no IAM here; what this catches is code that forgets to sign, or signs for
another service or region).

HTTP is parsed by h11 (a tested HTTP/1.1 state machine, not a hand-written parser): keep-alive, so a
pusher reuses its connection; bodies by Content-Length or chunked. A request that asks to upgrade to
a WebSocket is handed, bytes and all, to websockets.

Faults, for tests and load runs (local only, like the embedded AWS endpoint's; `POST /local/faults`
with `"target": "management"`, see local.faults): the next matching calls to a live connection answer
a 5xx or a 429 storm (after `delayMs`, to stand for a slow failure), or 410, in which case the
connection is dropped too (abnormally, code 1006), as a client whose network went away: on AWS a 410 is
the truth about the connection, and a test of 410s must not leave a live socket behind one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import h11
from websockets.asyncio.server import ServerConnection

from local.wsapi import Limits, LiveConnection, iso

log = logging.getLogger("local.management")

_CONNECTIONS_PATH = re.compile(r"^(?:/[^/@]+)?/@connections/([^/?]+)$")
# The shape of a SigV4 Authorization header.
_SIGV4 = re.compile(
    r"AWS4-HMAC-SHA256 Credential=[^/\s,]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request,"
    r"\s*SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=[0-9a-f]{64}"
)
MAX_HEAD = 16 * 1024


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def error(status: int, error_type: str, message: str | None) -> Answer:
    return Answer(
        status,
        {"Content-Type": "application/json", "x-amzn-errortype": error_type},
        json.dumps({"message": message}).encode(),
    )


# What API Gateway's Management API names its errors (botocore raises these as modelled exceptions
# where it models them: GoneException, LimitExceededException).
FAULT_TYPES = {
    410: "GoneException",
    429: "LimitExceededException",
    500: "InternalServerErrorException",
    502: "BadGatewayException",
    503: "ServiceUnavailableException",
    504: "GatewayTimeoutException",
}


@dataclass
class Fault:
    status: int
    count: int = -1  # calls it still fails; -1: until it expires or is cleared
    until: float | None = None  # time.monotonic() after which it no longer applies
    method: str = "POST"  # or "*"
    delay_ms: int = 0
    injected: int = 0

    def to_json(self) -> dict[str, Any]:
        left = None if self.until is None else max(0.0, round(self.until - time.monotonic(), 2))
        return {
            "status": self.status,
            "count": self.count,
            "secondsLeft": left,
            "method": self.method,
            "delayMs": self.delay_ms,
            "injected": self.injected,
        }


@dataclass
class ManagementFaults:
    rules: list[Fault] = field(default_factory=list)
    injected: dict[int, int] = field(default_factory=dict)  # status -> calls answered with it
    dropped: int = 0  # connections dropped by an injected 410
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, spec: dict[str, Any]) -> Fault:
        status = int(spec.get("status", 503))
        if status not in FAULT_TYPES:
            raise ValueError(f"status must be one of {sorted(FAULT_TYPES)}")
        seconds = spec.get("seconds")
        count = int(spec.get("count", -1 if seconds else 1))
        if count == 0 or count < -1:
            raise ValueError("count must be positive, or -1 (until the fault expires or is cleared)")
        if count == -1 and not seconds:
            raise ValueError("a fault without a count needs `seconds`: it would never end")
        method = str(spec.get("method", "POST")).upper()
        if method not in ("POST", "GET", "DELETE", "*"):
            raise ValueError("method must be POST, GET, DELETE or *")
        fault = Fault(
            status=status,
            count=count,
            until=time.monotonic() + float(seconds) if seconds else None,
            method=method,
            delay_ms=max(0, int(spec.get("delayMs", 0))),
        )
        with self._lock:
            self.rules.append(fault)
        return fault

    def take(self, method: str) -> Fault | None:
        now = time.monotonic()
        with self._lock:
            self.rules = [r for r in self.rules if r.until is None or r.until > now]
            for rule in self.rules:
                if rule.method not in ("*", method):
                    continue
                if rule.count > 0:
                    rule.count -= 1
                    if rule.count == 0:
                        self.rules.remove(rule)
                rule.injected += 1
                self.injected[rule.status] = self.injected.get(rule.status, 0) + 1
                return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def listing(self) -> dict[str, Any]:
        with self._lock:
            self.rules = [r for r in self.rules if r.until is None or r.until > time.monotonic()]
            return {
                "faults": [r.to_json() for r in self.rules],
                "injected": {str(k): v for k, v in sorted(self.injected.items())},
                "dropped": self.dropped,
            }


def refuse_unsigned(headers: dict[str, str], region: str) -> Answer | None:
    """API Gateway's answers to a Management API call that is not signed for execute-api."""
    header = headers.get("authorization", "")
    if not header:
        return error(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    sig = _SIGV4.fullmatch(header.strip())
    if sig is None or "host" not in sig["signed"].split(";") or not headers.get("x-amz-date"):
        return error(
            403,
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'Signature', 'SignedHeaders' (with host) "
            "and an X-Amz-Date header (AWS Signature Version 4)",
        )
    if sig["service"] != "execute-api":
        return error(
            403, "InvalidSignatureException", "Credential should be scoped to correct service: 'execute-api'."
        )
    if sig["region"] != region:
        return error(
            403, "InvalidSignatureException", f"Credential should be scoped to a valid region: '{region}'."
        )
    return None


class ManagementApi:
    """The calls, against the gateway's own map of connections."""

    def __init__(
        self,
        connections: dict[str, LiveConnection],
        region: str,
        limits: Callable[[], Limits],
        send: Callable[[LiveConnection, str | bytes], Awaitable[bool]],
        close: Callable[[LiveConnection], None],
        stats: dict[str, int],
    ) -> None:
        self.connections = connections
        self.region = region
        self.limits = limits
        self.send = send
        self.close = close
        self.stats = stats
        self.faults = ManagementFaults()

    async def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        refusal = refuse_unsigned(headers, self.region)
        if refusal is not None:
            return refusal
        m = _CONNECTIONS_PATH.match(urlsplit(path).path)
        if not m:
            return error(404, "NotFoundException", f"no route for {method} {path}")
        conn = self.connections.get(unquote(m.group(1)))
        if conn is None:
            self.stats["gone"] += 1
            return error(410, "GoneException", None)
        fault = self.faults.take(method) if self.faults.rules else None
        if fault is not None:
            return await self._inject(fault, conn)
        if method == "POST":
            if len(body) > self.limits().max_message_bytes:
                return error(413, "PayloadTooLargeException", "Message too long")
            try:
                data: str | bytes = body.decode()
            except UnicodeDecodeError:
                data = body
            if not await self.send(conn, data):
                self.stats["gone"] += 1
                return error(410, "GoneException", None)
            self.stats["posts"] += 1
            return Answer(200, {}, b"")
        if method == "GET":
            info = {
                "connectedAt": iso(conn.connected_at_ms),
                "lastActiveAt": iso(conn.last_active_ms),
                "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
            }
            return Answer(200, {"Content-Type": "application/json"}, json.dumps(info).encode())
        if method == "DELETE":
            # AWS answers at once and closes in the background. Waiting here for the close handshake
            # would hang the caller (the admin function's kick) on a client that has stopped reading.
            self.close(conn)
            return Answer(204, {}, b"")
        return error(405, "MethodNotAllowedException", f"{method} is not allowed")

    async def _inject(self, fault: Fault, conn: LiveConnection) -> Answer:
        if fault.delay_ms:
            await asyncio.sleep(fault.delay_ms / 1000)
        if fault.status == 410:
            # The connection is gone for real: dropped without a close frame, as a lost network drops it.
            self.connections.pop(conn.connection_id, None)
            transport = getattr(conn.socket, "transport", None)
            if transport is not None:
                transport.abort()
            self.faults.dropped += 1
            self.stats["gone"] += 1
            return error(410, "GoneException", None)
        return error(fault.status, FAULT_TYPES[fault.status], "injected by the local runtime")


class HttpAwareConnection(ServerConnection):
    """A websockets connection that serves plain HTTP requests (the Management API) itself.

    Bytes go to h11 first. A first request asking for a WebSocket upgrade hands everything received
    to websockets, unchanged; any other request is answered here, and the connection stays open for
    the next one (HTTP/1.1 keep-alive), one request at a time.
    """

    management: ManagementApi
    spawn: Callable[[Any], None]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._http = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._mode = "sniff"  # sniff -> ws | http -> done
        self._raw = b""  # every byte, until the first request has told what this connection is
        self._request: h11.Request | None = None
        self._body: list[bytes] = []
        self._busy = False
        self._silent: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        # Only until the first request head: what comes after it (a WebSocket, or keep-alive HTTP) has
        # limits of its own.
        timeout = self.management.limits().handshake_timeout
        self._silent = asyncio.get_running_loop().call_later(timeout, self._too_slow)

    def _too_slow(self) -> None:
        if self._mode == "sniff":
            self.transport.abort()

    def _no_timer(self) -> None:
        if self._silent is not None:
            self._silent.cancel()
            self._silent = None

    def _decided(self, mode: str) -> None:
        self._mode = mode
        self._no_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._no_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._mode == "ws":
            super().data_received(data)
            return
        if self._mode == "done":
            return
        if self._mode == "sniff":
            self._raw += data
        self._http.receive_data(data)
        self._pump()

    def eof_received(self) -> None:
        if self._mode == "ws":
            super().eof_received()
            return
        self._http.receive_data(b"")
        self._pump()

    def _pump(self) -> None:
        while not self._busy and self._mode not in ("ws", "done"):
            try:
                event = self._http.next_event()
            except h11.RemoteProtocolError as exc:
                status = exc.error_status_hint
                self._reply(
                    error(
                        status,
                        "BadRequestException" if status != 431 else "RequestHeaderFieldsTooLarge",
                        str(exc),
                    )
                )
                self._finish()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.ConnectionClosed):
                self._finish()
                return
            if isinstance(event, h11.Request):
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
                if self._mode == "sniff" and "websocket" in headers.get("upgrade", "").lower():
                    self._decided("ws")
                    raw, self._raw = self._raw, b""
                    super().data_received(raw)
                    return
                self._decided("http")
                self._raw = b""
                self._request, self._body = event, []
            elif isinstance(event, h11.Data):
                self._body.append(bytes(event.data))
                if sum(map(len, self._body)) > 2 * self.management.limits().max_message_bytes:
                    self._reply(error(413, "PayloadTooLargeException", "Message too long"))
                    self._finish()
                    return
            elif isinstance(event, h11.EndOfMessage) and self._request is not None:
                request, body = self._request, b"".join(self._body)
                self._request, self._body, self._busy = None, [], True
                self.spawn(self._answer(request, body))
                return

    async def _answer(self, request: h11.Request, body: bytes) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in request.headers}
        try:
            answer = await self.management.handle(
                request.method.decode("latin-1").upper(), request.target.decode("latin-1"), headers, body
            )
        except Exception:
            log.exception("Management API request failed")
            answer = error(500, "InternalServerErrorException", "internal error")
        self._reply(answer)
        self._busy = False
        if self._http.our_state is h11.MUST_CLOSE or self._http.their_state is h11.MUST_CLOSE:
            self._finish()
            return
        try:
            self._http.start_next_cycle()
        except h11.LocalProtocolError:
            self._finish()
            return
        self._pump()

    def _reply(self, answer: Answer) -> None:
        headers = [
            ("Content-Length", str(len(answer.body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
            *answer.headers.items(),
        ]
        try:
            out = self._http.send(h11.Response(status_code=answer.status, headers=headers))
            out += self._http.send(h11.Data(data=answer.body)) if answer.body else b""
            out += self._http.send(h11.EndOfMessage())
        except h11.LocalProtocolError:
            # Before a request was read (an unparsable head): a plain answer, then the end.
            head = f"HTTP/1.1 {answer.status} \r\nContent-Length: {len(answer.body)}\r\n"
            out = (head + "Connection: close\r\n\r\n").encode() + answer.body
        self.transport.write(out)

    def _finish(self) -> None:
        self._mode = "done"
        self.transport.close()

    def end_http(self) -> None:
        """Closes the connection if it is not a WebSocket: websockets' server closes only those, and
        waits for every other connection to end by itself (a pusher's keep-alive one never does)."""
        if self._mode in ("sniff", "http"):
            self._finish()


def closer(spawn: Callable[[Any], None]) -> Callable[[LiveConnection], None]:
    """The gateway's way to close a connection at once: reason recorded, close handshake in the
    background."""

    def close(conn: LiveConnection) -> None:
        conn.closing_reason = (1000, "Connection closed by the server")
        spawn(conn.socket.close(1000, ""))

    return close
