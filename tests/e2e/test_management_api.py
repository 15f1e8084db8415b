"""The local Management API over real HTTP: keep-alive (a pusher reuses its connection), chunked
bodies, and the answers to requests that HTTP/1.1 refuses, on the WebSocket API's own port."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import socket
import time
from typing import Any

from local.runtime import LocalRuntime
from local.wsapi import Limits
from tests.unit.test_wsapi import SIGNED


def _signed(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"Authorization": SIGNED["authorization"], "X-Amz-Date": SIGNED["x-amz-date"], **(extra or {})}


async def test_one_http_connection_carries_many_posts(stack: LocalRuntime, connect_player: Any) -> None:
    client = await connect_player("mgmt-keepalive")
    (conn_id,) = [
        c for c, live in stack.gateway.connections.items() if live.authorizer["playerId"] == client.player
    ]  # type: ignore[union-attr]

    def post_three() -> list[int]:
        http_conn = http.client.HTTPConnection("127.0.0.1", stack.config.ws_port, timeout=10)
        statuses = []
        for i in range(3):
            http_conn.request(
                "POST", f"/@connections/{conn_id}", body=json.dumps({"n": i}), headers=_signed()
            )
            answer = http_conn.getresponse()
            answer.read()
            statuses.append(answer.status)
        # Chunked, on the same connection.
        http_conn.putrequest("POST", f"/@connections/{conn_id}")
        for name, value in _signed({"Transfer-Encoding": "chunked"}).items():
            http_conn.putheader(name, value)
        http_conn.endheaders()
        http_conn.send(b'7\r\n{"n":3}\r\n0\r\n\r\n')
        answer = http_conn.getresponse()
        answer.read()
        statuses.append(answer.status)
        http_conn.close()
        return statuses

    assert await asyncio.to_thread(post_three) == [200, 200, 200, 200]
    got = [await client.recv() for _ in range(4)]
    assert got == [{"n": 0}, {"n": 1}, {"n": 2}, {"n": 3}]


async def test_a_keep_alive_connection_outlives_the_handshake_timeout(
    stack: LocalRuntime, connect_player: Any
) -> None:
    """The handshake timeout bounds a new connection's first request head, nothing after it. (websockets'
    own open_timeout once aborted every pusher's connection 10 s after it opened, a post in flight
    included.)"""
    client = await connect_player("mgmt-longlived")
    assert stack.gateway is not None
    (conn_id,) = [
        c for c, live in stack.gateway.connections.items() if live.authorizer["playerId"] == client.player
    ]
    saved = stack.gateway.limits
    stack.gateway.limits = Limits(handshake_timeout=0.3)

    def posts_apart() -> tuple[list[int], set[int]]:
        http_conn = http.client.HTTPConnection("127.0.0.1", stack.config.ws_port, timeout=10)
        statuses, ports = [], set()
        for i in range(3):
            if i:
                time.sleep(0.4)  # past the timeout each time: 0.8 s after the connection opened at the end
            http_conn.request(
                "POST", f"/@connections/{conn_id}", body=json.dumps({"n": i}), headers=_signed()
            )
            answer = http_conn.getresponse()
            answer.read()
            statuses.append(answer.status)
            assert http_conn.sock is not None
            ports.add(http_conn.sock.getsockname()[1])  # the same TCP connection throughout
        http_conn.close()
        return statuses, ports

    def silent_for() -> float:
        began = time.monotonic()
        # An abort, or a close: either ends it.
        with (
            socket.create_connection(("127.0.0.1", stack.config.ws_port), timeout=10) as s,
            contextlib.suppress(ConnectionResetError),
        ):
            assert s.recv(1) == b""
        return time.monotonic() - began

    try:
        statuses, ports = await asyncio.to_thread(posts_apart)
        dropped_after = await asyncio.to_thread(silent_for)
    finally:
        stack.gateway.limits = saved
    assert statuses == [200, 200, 200] and len(ports) == 1
    assert [await client.recv() for _ in range(3)] == [{"n": 0}, {"n": 1}, {"n": 2}]
    # A connection that never sends a request head is still dropped once the timeout has passed.
    assert 0.3 <= dropped_after < 9


async def test_a_request_http_refuses_gets_a_json_400(stack: LocalRuntime) -> None:
    def send_raw(data: bytes) -> bytes:
        with socket.create_connection(("127.0.0.1", stack.config.ws_port), timeout=10) as s:
            s.sendall(data)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
            return b"".join(chunks)

    answer = await asyncio.to_thread(
        send_raw, b"POST /@connections/x HTTP/1.1\r\nContent-Length: nope\r\n\r\n"
    )
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert "message" in json.loads(body)


async def test_a_gateway_stops_with_a_pusher_s_connection_still_open(service: Any) -> None:
    """websockets' server waits for every connection it did not close itself; a pusher's keep-alive one
    stays open, so the gateway closes it (before, `gamebackend local` never finished stopping while a
    processor environment held one, and its moto processes outlived it)."""
    from local.gateway import Gateway

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = Gateway(service, {}, port=port)
    await gateway.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    headers = "".join(f"{k}: {v}\r\n" for k, v in _signed().items())
    writer.write(
        f"POST /@connections/nobody HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 1\r\n\r\nx".encode()
    )
    await writer.drain()
    assert (await reader.readline()).startswith(b"HTTP/1.1 410")  # answered, and kept alive
    try:
        await asyncio.wait_for(gateway.stop(), 5)
        await asyncio.wait_for(reader.read(), 5)  # the rest of the answer, then the end
        assert reader.at_eof()
    finally:
        writer.close()
