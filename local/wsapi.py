"""What an API Gateway WebSocket API is, as plain data: its connections, its route selection, and the
events it hands its integrations. No sockets here (local.gateway pumps them), so all of it is tested
without any (tests/unit/test_wsapi.py).

The shapes are API Gateway's (docs/local-runtime.md): the `requestContext` of every event, the
`$connect`, REQUEST-authorizer, message and `$disconnect` events, the authorizer's policy, the
integration's answer, and the close status that `$disconnect` reports.
"""

from __future__ import annotations

import base64
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from local.lambdas import Invocation
from local.slsconfig import ACCOUNT_ID, Service

MAX_MESSAGE_BYTES = 128 * 1024
IDLE_TIMEOUT = 600.0
MAX_CONNECTION_AGE = 7200.0
HANDSHAKE_TIMEOUT = 10.0  # websockets' default open_timeout: a whole request head within it
API_ID = "localws"


@dataclass(frozen=True)
class Limits:
    max_message_bytes: int = MAX_MESSAGE_BYTES
    idle_timeout: float = IDLE_TIMEOUT
    max_connection_age: float = MAX_CONNECTION_AGE
    # A new TCP connection that has not sent a whole request head by then is dropped. Only until then:
    # a Management API connection lives on (keep-alive) however long after it, as AWS's endpoints do.
    handshake_timeout: float = HANDSHAKE_TIMEOUT


@dataclass
class LiveConnection:
    """A connection API Gateway accepted: what later events of it carry, and when it was last active."""

    connection_id: str
    socket: Any  # the transport's object for it (a websockets connection): local.gateway's business
    connected_at_ms: int
    source_ip: str
    user_agent: str
    authorizer: dict[str, Any]
    last_active: float = field(default_factory=time.monotonic)
    last_active_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    closing_reason: tuple[int, str] | None = None  # set when the gateway itself closes the socket

    def touch(self) -> None:
        self.last_active = time.monotonic()
        self.last_active_ms = int(time.time() * 1000)

    def expired(self, limits: Limits, now: float, wall_ms: float) -> bool:
        """Past API Gateway's idle timeout or maximum connection age (it then closes with 1001)."""
        too_old = wall_ms - self.connected_at_ms > limits.max_connection_age * 1000
        idle = now - self.last_active > limits.idle_timeout
        return too_old or idle


class Throttle:
    """API Gateway's stage and route throttling: a token bucket per route (for every client together),
    `rate` requests a second and `burst` at once; a route without settings of its own has the stage's
    default. A request beyond it is not integrated: the client gets API Gateway's own answer."""

    def __init__(
        self,
        default: tuple[float, float] | None,
        routes: dict[str, tuple[float, float]],
        clock: Any = time.monotonic,
    ) -> None:
        self.default = default
        self.routes = routes
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # route -> [tokens, at]

    def admit(self, route: str) -> bool:
        limits = self.routes.get(route, self.default)
        if limits is None:
            return True
        rate, burst = limits
        now = self._clock()
        bucket = self._buckets.setdefault(route, [burst, now])
        bucket[0] = min(burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if bucket[0] >= 1:
            bucket[0] -= 1
            return True
        return False


def new_connection_id() -> str:
    return base64.b64encode(os.urandom(11)).decode().replace("/", "_").replace("+", "-")


def request_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _request_id() -> str:
    return uuid.uuid4().hex[:16] + "="


class WsApi:
    """One stage of a WebSocket API, as serverless.yml declares it."""

    def __init__(self, service: Service, domain: str) -> None:
        self.service = service
        self.domain = domain
        self.routes = service.ws_route_table()
        self.throttle = Throttle(*service.websocket_throttles())
        self.two_way = {r for fn in service.functions.values() for r in fn.two_way_routes}
        connect_fn = service.functions.get(self.routes.get("$connect", ""))
        self.authorizer = connect_fn.authorizer if connect_fn else None
        self.identity_source = connect_fn.identity_source if connect_fn else ()

    # --- routes ---------------------------------------------------------------------------------

    def select_route(self, body: str | None) -> str:
        """`$request.body.action`: a JSON object's `action` naming a route; `$default` otherwise."""
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

    def method_arn(self, route: str) -> str:
        s = self.service
        return f"arn:aws:execute-api:{s.region}:{ACCOUNT_ID}:{API_ID}/{s.stage}/{route}"

    def missing_identity(self, headers: dict[str, str], query: dict[str, str]) -> bool:
        """API Gateway refuses (401) a `$connect` that lacks its authorizer's identity source, without
        calling the authorizer."""
        for source in self.identity_source:
            if source.startswith("route.request.querystring.") and not query.get(source.rsplit(".", 1)[1]):
                return True
            if source.startswith("route.request.header.") and not headers.get(source.rsplit(".", 1)[1]):
                return True
        return False

    # --- events -----------------------------------------------------------------------------------

    def request_context(
        self, conn_id: str, connected_at: int, route: str, event_type: str, source_ip: str, user_agent: str
    ) -> dict[str, Any]:
        now = int(time.time() * 1000)
        return {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": _request_id(),
            "requestTime": request_time(now),
            "messageDirection": "IN",
            "stage": self.service.stage,
            "connectedAt": connected_at,
            "requestTimeEpoch": now,
            "identity": {"sourceIp": source_ip, "userAgent": user_agent},
            "requestId": _request_id(),
            "domainName": self.domain,
            "connectionId": conn_id,
            "apiId": API_ID,
        }

    def connect_event(
        self,
        context: dict[str, Any],
        headers: dict[str, str],
        multi_headers: dict[str, list[str]],
        query: dict[str, list[str]],
    ) -> dict[str, Any]:
        qs = {k: v[-1] for k, v in query.items()}
        return {
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": qs or None,
            "multiValueQueryStringParameters": dict(query) or None,
            "requestContext": context,
            "isBase64Encoded": False,
        }

    def authorizer_event(
        self,
        context: dict[str, Any],
        headers: dict[str, str],
        multi_headers: dict[str, list[str]],
        query: dict[str, list[str]],
    ) -> dict[str, Any]:
        return {
            "type": "REQUEST",
            "methodArn": self.method_arn("$connect"),
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in query.items()},
            "multiValueQueryStringParameters": dict(query),
            "stageVariables": {},
            "requestContext": context,
        }

    def message_event(self, conn: LiveConnection, route: str, body: str, encoded: bool) -> dict[str, Any]:
        context = self.request_context(
            conn.connection_id, conn.connected_at_ms, route, "MESSAGE", conn.source_ip, conn.user_agent
        )
        context["messageId"] = _request_id()
        if conn.authorizer:
            context["authorizer"] = conn.authorizer
        return {"requestContext": context, "body": body, "isBase64Encoded": encoded}

    def disconnect_event(self, conn: LiveConnection, code: int, reason: str) -> dict[str, Any]:
        context = self.request_context(
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
        return {
            "headers": {"Host": self.domain, "x-api-key": "", "x-restapi": ""},
            "multiValueHeaders": {"Host": [self.domain], "x-api-key": [""], "x-restapi": [""]},
            "requestContext": context,
            "isBase64Encoded": False,
        }

    # --- answers ----------------------------------------------------------------------------------

    def authorized(self, result: Invocation) -> dict[str, Any] | tuple[int, str]:
        """The authorizer's context, or the status and body API Gateway refuses the upgrade with."""
        if not result.ok:
            if result.error_message == "Unauthorized":
                return 401, '{"message":"Unauthorized"}\n'
            return 500, '{"message":"Internal server error"}\n'
        policy = result.result if isinstance(result.result, dict) else {}
        if not policy_allows(policy, self.method_arn("$connect")):
            return 403, '{"message":"Forbidden"}\n'
        ctx = dict(policy.get("context") or {})
        ctx["principalId"] = policy.get("principalId", "")
        return ctx

    def route_reply(self, route: str, result: Invocation, conn_id: str, request_id: str) -> str | None:
        """What a route sends back to the client: the integration's `body` on a two-way route, API
        Gateway's own error when the integration failed, nothing on a one-way route."""
        if route not in self.two_way:
            return None
        if not result.ok:
            return json.dumps(
                {"message": "Internal server error", "connectionId": conn_id, "requestId": request_id}
            )
        if isinstance(result.result, dict):
            raw = result.result.get("body")
            return raw if isinstance(raw, str) else (json.dumps(raw) if raw is not None else None)
        if isinstance(result.result, str):
            return result.result
        return None

    @staticmethod
    def no_route(conn_id: str) -> str:
        return json.dumps({"message": "Forbidden", "connectionId": conn_id, "requestId": _request_id()})

    @staticmethod
    def throttled(conn_id: str) -> str:
        """A message beyond the stage's or the route's throttle. AWS documents a 429 "Too Many Requests"
        for throttled requests without showing a WebSocket frame: this is that answer in the shape of
        API Gateway's other untyped frames (clients must treat any `{"message": ...}` frame alike)."""
        return json.dumps(
            {"message": "Too Many Requests", "connectionId": conn_id, "requestId": _request_id()}
        )


def integration_status(result: Invocation) -> int:
    if not result.ok:
        return 500
    if isinstance(result.result, dict) and "statusCode" in result.result:
        try:
            return int(result.result["statusCode"])
        except (TypeError, ValueError):
            return 502
    return 200


def status_body(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return json.dumps({"message": phrase}) + "\n"


def close_status(
    closing_reason: tuple[int, str] | None, received: tuple[int, str] | None, sent_code: int | None
) -> tuple[int, str]:
    """`disconnectStatusCode` and `disconnectReason` of a closed connection: the gateway's own reason,
    else the client's close frame, else a message too big, else an abnormal closure."""
    if closing_reason:
        return closing_reason
    if received is not None:
        code, reason = received
        return code, f"Client-side close frame status code '{code}' and reason '{reason}'"
    if sent_code == 1009:
        return 1009, "Message too big"
    return 1006, "Connection was closed abnormally"


def _arn_matches(pattern: str, arn: str) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, arn) is not None


def policy_allows(policy: dict[str, Any], arn: str) -> bool:
    """IAM's rule for the authorizer's policy: an explicit Deny wins, else some Allow must match."""
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
