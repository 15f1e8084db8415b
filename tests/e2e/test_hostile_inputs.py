"""Inputs that used to get a 5xx, a plain-text answer or no answer at all from the running local stack
(issue 16), each now refused with a 4xx, or an error frame, that carries a code. The same defects are
pinned in process by tests/unit/test_frames.py, tests/unit/test_auth.py and
tests/store/test_admin_inputs.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
from typing import Any

import pytest

from local.runtime import LocalRuntime
from tests.conftest import token_for
from tests.e2e.conftest import eventually, management_api
from tests.e2e.test_game import name

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    "frame",
    [
        "[" * 1000 + "]" * 1000,
        '{"action":"ping","id":"p1","x":' + "[" * 1000 + "]" * 1000 + "}",
        '{"action":"act","kind":"score","id":"a1","points":' + "{" * 2000,
        '{"action":"ping","id":NaN}',
    ],
    ids=["1000-deep-array", "1000-deep-member", "unclosed-2000-deep", "nan"],
)
async def test_a_deeply_nested_frame_gets_malformed_frame(
    stack: LocalRuntime, connect_player: Any, frame: str
) -> None:
    client = await connect_player(name("deep"))
    await client.send(frame)
    answer = await client.recv()
    assert (answer["type"], answer["code"]) == ("error", "malformed_frame"), answer
    # and the socket still serves the next frame
    assert (await client.request({"action": "ping", "id": "after"}))["type"] == "pong"


# --- raw HTTP: the layers that answer before any function runs ---------------------------------------


def raw_http(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Sends bytes as they are and reads the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a server may answer early
            sock.sendall(request)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split(" ")[1]), headers, body


def request(method: str, path: str, *headers: str, body: bytes = b"") -> bytes:
    """A request as written; `Host: 127.0.0.1` unless a Host header is given."""
    host = [] if any(h.lower().startswith("host:") for h in headers) else ["Host: 127.0.0.1"]
    lines = [f"{method} {path} HTTP/1.1", *host, "Connection: close", *headers]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


MALFORMED = [
    b"GARBAGE\r\n\r\n",
    b"GET /admin/health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
    request("GET", "/admin/health", "X-Big: " + "a" * 20_000),
    request("GET", "/admin/health?" + "q" * 20_000),
]


@pytest.mark.parametrize("data", MALFORMED, ids=["garbage", "header-line", "big-header", "long-line"])
async def test_the_http_api_answers_malformed_requests_in_json(stack: LocalRuntime, data: bytes) -> None:
    got, headers, body = await asyncio.to_thread(raw_http, stack.config.http_port, data)
    assert got in (400, 431), body
    assert headers["content-type"].startswith("application/json"), headers
    assert json.loads(body)["message"].startswith(("Bad Request", "Request Header Fields Too Large"))


async def test_a_body_over_10_mb_gets_413_in_json(stack: LocalRuntime) -> None:
    data = request(
        "POST",
        "/admin/broadcast",
        "Content-Type: application/json",
        body=b"[" + b"0," * (5 * 1024 * 1024) + b"0]",
    )
    got, headers, body = await asyncio.to_thread(raw_http, stack.config.http_port, data)
    assert got == 413, body
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body) == {"message": "Request Entity Too Large"}


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /@connections/x HTTP/1.1\r\nContent-Length: -5\r\n\r\n", 400),
        (b"GET /@connections/x HTTP/1.1\r\nX-Big: " + b"a" * 20_000, 431),
    ],
    ids=["garbage", "negative-length", "big-head"],
)
async def test_the_management_api_answers_malformed_requests_in_json(
    stack: LocalRuntime, data: bytes, status: int
) -> None:
    got, headers, body = await asyncio.to_thread(raw_http, stack.config.ws_port, data)
    assert got == status, body
    assert headers["content-type"] == "application/json" and headers["x-amzn-errortype"]
    assert json.loads(body)["message"]


@pytest.mark.parametrize(
    ("authorization", "error_type"),
    [
        (None, "MissingAuthenticationTokenException"),
        ("Bearer something", "IncompleteSignatureException"),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/execute-api/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
            "IncompleteSignatureException",  # no X-Amz-Date header
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/dynamodb/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
            "InvalidSignatureException",
        ),
        (
            "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/execute-api/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
            "InvalidSignatureException",
        ),
    ],
    ids=["unsigned", "bearer", "no-date", "other-service", "other-region"],
)
async def test_the_management_api_refuses_what_is_not_signed_for_execute_api(
    stack: LocalRuntime, connect_player: Any, authorization: str | None, error_type: str
) -> None:
    client = await connect_player(name("unsigned"))
    (conn_id,) = [
        c for c, live in stack.gateway.connections.items() if live.authorizer["playerId"] == client.player
    ]  # type: ignore[union-attr]
    headers = ["X-Amz-Date: 20260101T000000Z"] if error_type != "IncompleteSignatureException" else []
    if authorization:
        headers.append(f"Authorization: {authorization}")
    for method in ("POST", "GET", "DELETE"):
        data = request(method, f"/@connections/{conn_id}", *headers, body=b"hi" if method == "POST" else b"")
        got, answer, body = await asyncio.to_thread(raw_http, stack.config.ws_port, data)
        assert (got, answer["x-amzn-errortype"]) == (403, error_type), body
    # Nothing reached the socket, and it is still open: a signed call goes through.
    info = await asyncio.to_thread(management_api(stack).get_connection, ConnectionId=conn_id)
    assert info["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert (await client.request({"action": "ping", "id": "still"}))["type"] == "pong"


# --- kicking a client that has stopped reading -------------------------------------------------------


def silent_client(port: int, token: str) -> socket.socket:
    """A WebSocket client that completes the upgrade and then never reads again, nor answers a close."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


async def test_kicking_a_client_that_stopped_reading_answers_at_once(stack: LocalRuntime) -> None:
    from tests.e2e.test_admin import call

    player = name("mute")
    sock = await asyncio.to_thread(silent_client, stack.config.ws_port, token_for(player))
    try:

        async def listed() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = (await call(stack, "GET", f"/admin/connections?playerId={player}"))[
                1
            ]["connections"]
            return found

        (conn,) = await eventually(listed)
        # The gateway used to wait for the client's close frame (10 s), the admin function's call timed
        # out and was retried, and the kick failed with 500 after the Lambda's 6 s.
        status, body = await call(stack, "DELETE", f"/admin/connections/{conn['connectionId']}")
        assert status == 204, body
        # The client goes away for good; its $disconnect forgets the row.
        sock.close()

        async def unlisted() -> bool:
            return not await listed()

        await eventually(unlisted, timeout=30)
    finally:
        sock.close()


# --- the dev token endpoint --------------------------------------------------------------------------


async def test_only_the_runtimes_own_page_may_mint_dev_tokens(stack: LocalRuntime) -> None:
    port = stack.config.http_port
    own = f"Host: 127.0.0.1:{port}"
    body = json.dumps({"player": name("dev")}).encode()
    cases = [
        (
            request("POST", "/local/token", "Content-Type: application/json", body=body),
            403,
            "forbidden",
        ),  # Host
        (
            request(
                "POST",
                "/local/token",
                f"Host: evil.example:{port}",
                "Content-Type: application/json",
                body=body,
            ),
            403,
            "forbidden",
        ),  # a DNS-rebinding page names its own host
        (
            request(
                "POST",
                "/local/token",
                own,
                "Origin: http://evil.example",
                "Content-Type: application/json",
                body=body,
            ),
            403,
            "forbidden",
        ),
        (
            request("POST", "/local/token", own, "Content-Type: text/plain", body=body),
            415,
            "unsupported_media_type",
        ),
        (request("GET", "/local/token", own), 405, "method_not_allowed"),
        (
            request("POST", "/local/token", own, "Content-Type: application/json", body=b'{"player":5}'),
            400,
            "bad_request",
        ),
        (
            request("POST", "/local/token", own, "Content-Type: application/json", body=b"[" * 2000),
            400,
            "bad_request",
        ),
        (
            request("POST", "/local/token", own, "Content-Type: application/json", body=b'{"player":".."}'),
            400,
            "bad_request",
        ),
    ]
    for data, status, code in cases:
        got, _, answer = await asyncio.to_thread(raw_http, port, data)
        assert (got, json.loads(answer)["error"]["code"]) == (status, code), (data[:120], answer)
    same_origin = request(
        "POST",
        "/local/token",
        own,
        f"Origin: http://127.0.0.1:{port}",
        "Content-Type: application/json",
        body=body,
    )
    got, _, answer = await asyncio.to_thread(raw_http, port, same_origin)
    assert got == 200 and json.loads(answer)["token"], answer
