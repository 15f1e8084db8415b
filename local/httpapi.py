"""An API Gateway HTTP API (payload format 2.0) for the `httpApi` routes of serverless.yml.

Also serves the local runtime's own endpoints under `/local/` (health and metrics), which exist only
here and never on AWS.

Every error this layer answers itself is JSON, `{"message": ...}`, as API Gateway's own are: an unknown
route (404), a function error (500), a body over 10 MB (413), and what aiohttp's parser refuses before any
handler runs (400 for a malformed request line or header, 431 for a header over 10 KB), which aiohttp
would otherwise answer in plain text.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from local.lambdas import FunctionPool
from local.slsconfig import Service

log = logging.getLogger("local.http")
API_ID = "localhttp"
MAX_BODY = 10 * 1024 * 1024  # API Gateway HTTP APIs accept up to 10 MB
MAX_LINE = 10240  # request lines and headers: API Gateway takes up to 10 KB; aiohttp's default stops at 8 KB
LocalRoute = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class _JsonErrors(RequestHandler):
    """aiohttp's connection handler, with its own error answers in API Gateway's JSON shape."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp does: too late for any answer
            raise ConnectionError("Response is sent already, cannot send another response")
        if status >= 500:
            log.exception("Error handling request", exc_info=exc)
        else:  # the client's mistake, answered: not an error of the runtime's
            log.debug("refused a malformed request with %s: %s", status, exc)
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = "Error"
        detail = (message or "").strip().splitlines()[0][:200] if message and status < 500 else ""
        response = web.json_response({"message": f"{reason}: {detail}" if detail else reason}, status=status)
        response.force_close()
        return response


class _Server(web.Server):
    def __init__(self, handler: LocalRoute, **kwargs: Any) -> None:
        super().__init__(handler, request_factory=self._request, **kwargs)
        self._handler_args = kwargs

    def __call__(self) -> RequestHandler:
        return _JsonErrors(self, loop=asyncio.get_running_loop(), **self._handler_args)

    def _request(self, message: Any, payload: Any, protocol: Any, writer: Any, task: Any) -> web.BaseRequest:
        return web.BaseRequest(
            message, payload, protocol, writer, task, asyncio.get_running_loop(), client_max_size=MAX_BODY
        )


def _compile(path: str) -> re.Pattern[str]:
    # /admin/matches/{matchId} and greedy {proxy+}
    pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
    pattern = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", pattern)
    return re.compile(f"^{pattern}$")


class HttpApi:
    def __init__(
        self, service: Service, pools: dict[str, FunctionPool], *, host: str = "127.0.0.1", port: int = 3000
    ) -> None:
        self.service = service
        self.pools = pools
        self.host = host
        self.port = port
        self.routes: list[tuple[str, str, re.Pattern[str], str]] = []
        for fn in service.functions.values():
            for method, path in fn.http_routes:
                self.routes.append((method, path, _compile(path), fn.name))
        self.local_routes: dict[str, LocalRoute] = {}
        self._runner: web.ServerRunner | None = None

    def add_local_route(self, path: str, handler: LocalRoute) -> None:
        self.local_routes[path] = handler

    async def start(self) -> None:
        # aiohttp's low-level server: every path reaches _dispatch (control characters too), and its
        # parser's errors are answered in JSON (_JsonErrors).
        server = _Server(self._dispatch, access_log=None, max_line_size=MAX_LINE, max_field_size=MAX_LINE)
        self._runner = web.ServerRunner(server)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        log.info("HTTP API on http://%s:%s", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _match(self, method: str, path: str) -> tuple[str, str, dict[str, str]] | None:
        allowed = False
        for route_method, route_path, regex, fn in self.routes:
            m = regex.match(path)
            if not m:
                continue
            allowed = True
            if route_method in (method, "*", "ANY"):
                return fn, f"{route_method} {route_path}", m.groupdict()
        return ("", "", {}) if allowed else None

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        local = self.local_routes.get(request.path)
        if local is not None:
            return await local(request)
        found = self._match(request.method, request.path)
        if found is None or not found[0]:
            return web.json_response({"message": "Not Found"}, status=404)
        fn, route_key, params = found
        try:
            event = await self._event(request, route_key, params)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response({"message": "Request Entity Too Large"}, status=413)
        result = await self.pools[fn].invoke(event)
        if not result.ok:
            return web.json_response({"message": "Internal Server Error"}, status=500)
        return _response(result.result)

    async def _event(
        self, request: web.BaseRequest, route_key: str, params: dict[str, str]
    ) -> dict[str, Any]:
        raw = await request.read()
        now = int(time.time() * 1000)
        text_types = ("json", "text", "xml", "x-www-form-urlencoded", "javascript")
        is_text = not raw or any(t in request.content_type for t in text_types)
        headers: dict[str, str] = {}
        for k, v in request.headers.items():
            key = k.lower()
            headers[key] = f"{headers[key]},{v}" if key in headers else v
        query: dict[str, str] = {}
        for k, v in request.query.items():
            query[k] = f"{query[k]},{v}" if k in query else v
        peer = request.transport.get_extra_info("peername") if request.transport else None
        # Text goes as is; anything else, or "text" that is not UTF-8, base64-encoded, as API Gateway does.
        body, encoded = None, False
        if raw:
            try:
                body = raw.decode() if is_text else None
            except UnicodeDecodeError:
                body = None
            if body is None:
                body, encoded = base64.b64encode(raw).decode(), True
        return {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": request.path,
            "rawQueryString": request.query_string,
            "cookies": [f"{k}={v}" for k, v in request.cookies.items()] or None,
            "headers": headers,
            "queryStringParameters": query or None,
            "pathParameters": params or None,
            "requestContext": {
                "accountId": "000000000000",
                "apiId": API_ID,
                "domainName": f"{self.host}:{self.port}",
                "domainPrefix": API_ID,
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "protocol": f"HTTP/{request.version.major}.{request.version.minor}",
                    "sourceIp": peer[0] if peer else "127.0.0.1",
                    "userAgent": request.headers.get("User-Agent", ""),
                },
                "requestId": uuid.uuid4().hex,
                "routeKey": route_key,
                "stage": "$default",
                "time": datetime.fromtimestamp(now / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": now,
            },
            "body": body,
            "isBase64Encoded": encoded,
        }


def _response(result: Any) -> web.Response:
    """Payload format 2.0: a dict with statusCode is used as is; anything else is a JSON 200."""
    if not isinstance(result, dict) or "statusCode" not in result:
        return web.Response(status=200, text=json.dumps(result), content_type="application/json")
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    response = web.Response(status=int(result["statusCode"]), body=data)
    for k, v in (result.get("headers") or {}).items():
        response.headers[k] = str(v)
    for cookie in result.get("cookies") or []:
        response.headers.add("Set-Cookie", cookie)
    if "Content-Type" not in response.headers and "content-type" not in response.headers:
        response.headers["Content-Type"] = "application/json"
    return response
