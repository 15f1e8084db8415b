"""The SDK's retry policy, without the stack: backoff with jitter, what is retried and what never is."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.http11 import Request, Response

from gamebackend_client import (
    PROTOCOL_VERSION,
    AuthError,
    ConnectionLost,
    GameClient,
    ServerError,
    backoff_delay,
    errors,
    rejection,
    server_error,
)


def test_backoff_grows_exponentially_up_to_the_cap_with_full_jitter() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(10.0, 0.2 * 2**attempt)
        delays = [backoff_delay(attempt, base=0.2, cap=10.0, rng=rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling, "the whole range is used"
        assert len(set(delays)) > 150, "jittered, not fixed"
    assert backoff_delay(10_000, base=0.2, cap=10.0, rng=rng) <= 10.0  # no overflow
    with pytest.raises(ValueError):
        backoff_delay(-1, base=0.2, cap=10.0)


def test_error_frames_become_the_class_of_their_code() -> None:
    e = server_error("match_full", "the match has no free seat", "j1")
    assert type(e) is errors.MatchFull and isinstance(e, errors.Conflict) and isinstance(e, ServerError)
    assert (e.code, e.message, e.ref, e.status) == ("match_full", "the match has no free seat", "j1", 409)
    assert not isinstance(e, errors.ActionRejected)
    unknown = server_error("brand_new_code", "from a newer server")
    assert type(unknown) is ServerError and unknown.code == "brand_new_code"


def test_rejections_are_action_rejected_and_the_class_of_their_code() -> None:
    r = rejection("match_not_running", "the match is finished", "a-1")
    assert isinstance(r, errors.ActionRejected) and isinstance(r, errors.MatchNotRunning)
    assert isinstance(r, errors.Conflict) and not isinstance(r, errors.MatchFull)
    assert (r.code, r.message, r.ref, r.status) == ("match_not_running", "the match is finished", "a-1", 409)
    unknown = rejection("brand_new_code", "from a newer server")
    assert type(unknown) is errors.ActionRejected and unknown.code == "brand_new_code"


def test_heartbeat_must_beat_api_gateways_idle_timeout() -> None:
    with pytest.raises(ValueError, match="600"):
        GameClient("ws://127.0.0.1:1", "t", heartbeat_interval=600)


@asynccontextmanager
async def fake_gateway(status: int | None) -> AsyncIterator[tuple[str, list[str]]]:
    """A server that refuses every upgrade with `status`, or (None) accepts and drops at once."""
    attempts: list[str] = []

    def on_request(conn: ServerConnection, request: Request) -> Response | None:
        attempts.append(request.path)
        return conn.respond(status, '{"message":"Unauthorized"}\n') if status else None

    async def handler(conn: ServerConnection) -> None:
        await conn.close(1001, "going away")

    async with serve(handler, "127.0.0.1", 0, process_request=on_request) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", attempts


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_upgrade_raises_auth_error_once(status: int) -> None:
    async with fake_gateway(status) as (url, attempts):
        with pytest.raises(AuthError) as caught:
            async with GameClient(url, "token"):
                pass
    assert caught.value.status == status
    assert attempts == [f"/?token=token&protocol={PROTOCOL_VERSION}"]


async def test_reconnection_gives_up_after_its_attempts() -> None:
    # Every socket is accepted, then dropped at once: a flapping server does not reset the backoff.
    async with fake_gateway(None) as (url, attempts):
        client = GameClient(
            url, "token", max_reconnect_attempts=3, backoff_base=0.001, heartbeat_interval=None
        )
        await client.connect()
        with pytest.raises(ConnectionLost, match="after 3 attempts"):
            async for _ in client.events():
                pass
        await client.close()
    assert len(attempts) == 4  # the first connection, then three more


async def test_a_first_connection_that_fails_is_not_retried() -> None:
    async with fake_gateway(500) as (url, attempts):
        with pytest.raises(ConnectionLost, match="could not connect"):
            await GameClient(url, "token").connect()
    assert len(attempts) == 1


# --- throttling, API Gateway's untyped frames and `closing` (protocol v2) --------------------------


@asynccontextmanager
async def scripted_gateway(answers: list[str | None]) -> AsyncIterator[tuple[str, list[str], list[int]]]:
    """A server that answers the n-th frame it receives with answers[n] (a JSON frame in which `{id}` is
    the frame's id; None: a pong), and keeps the socket open (but after a `closing` frame). Returns the
    frames it received and the number of upgrades."""
    import json

    received: list[str] = []
    upgrades: list[int] = []

    async def handler(conn: ServerConnection) -> None:
        upgrades.append(1)
        async for raw in conn:
            frame = json.loads(raw)
            received.append(frame["action"])
            template = answers[len(received) - 1] if len(received) <= len(answers) else None
            if template is None:
                answer = {"type": "pong", "ref": frame["id"], "protocol": PROTOCOL_VERSION}
                await conn.send(json.dumps(answer))
            else:
                await conn.send(template.replace("{id}", frame["id"]))
                if '"closing"' in template:  # as the server does: the frame, then the close
                    await conn.close(1000)
                    return

    async with serve(handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}", received, upgrades


GATEWAY_ERROR = '{"message": "Internal server error", "connectionId": "c", "requestId": "r"}'


async def test_an_untyped_gateway_frame_resends_the_unanswered_request_after_a_backoff() -> None:
    from gamebackend_client import GatewayMessage

    async with (
        scripted_gateway([GATEWAY_ERROR]) as (url, received, _),
        GameClient(url, "t", backoff_base=0.001, heartbeat_interval=None) as client,
    ):
        pong = await client.ping(timeout=5)
        assert pong.type == "pong"
        assert client.gateway_messages == 1
        event = await anext(client.events())
        assert isinstance(event, GatewayMessage) and event.message == "Internal server error"
    assert received == ["ping", "ping"]


async def test_a_rate_limited_answer_is_retried_then_raised() -> None:
    limited = '{"type": "error", "code": "rate_limited", "message": "slow down", "ref": "{id}"}'
    async with (
        scripted_gateway([limited, None, limited, limited, limited]) as (url, received, _),
        GameClient(url, "t", backoff_base=0.001, heartbeat_interval=None, max_throttle_retries=2) as client,
    ):
        assert (await client.ping(timeout=5)).type == "pong"  # refused once, then answered
        assert client.throttled == 1
        with pytest.raises(errors.RateLimited):
            await client.ping(timeout=5)  # refused three times: two retries, then the error
    assert received == ["ping"] * 5


async def test_a_closing_for_too_many_connections_ends_the_client_without_reconnecting() -> None:
    closing = '{"type": "closing", "code": "too_many_connections", "message": "newer tabs"}'
    async with scripted_gateway([closing]) as (url, _, upgrades):
        client = GameClient(url, "t", backoff_base=0.001, heartbeat_interval=None)
        await client.connect()
        with pytest.raises(ConnectionLost, match="newer tabs"):
            await client.ping(timeout=5)
        with pytest.raises(ConnectionLost, match="newer tabs"):
            async for _ in client.events():
                pass
        await client.close()
    assert upgrades == [1]
