"""The gateway's overhead: a `ping` round trip through the local gateway and a Lambda worker (the
`message` function answers `pong` as its route response, with no AWS call), against the same round trip
to a bare `websockets` echo server. Both servers run in this process's event loop, with the client, so
the comparison is like for like. Rounds alternate between the two; the ratio is of the medians.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from bench.procs import free_port


async def _round_trips(url: str, n: int, expect: str) -> list[float]:
    out: list[float] = []
    async with connect(url, open_timeout=30) as ws:
        for i in range(n):
            frame = json.dumps({"action": "ping", "id": f"p{i}"})
            t = time.perf_counter()
            await ws.send(frame)
            while True:
                answer = json.loads(await ws.recv())
                if answer.get("type") == expect or answer.get("action") == expect:
                    break
            out.append((time.perf_counter() - t) * 1000)
    return out


async def _echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def measure(gateway_url: str, rounds: int = 5, per_round: int = 40) -> dict[str, Any]:
    """`gateway_url` is a ws:// URL with a token; the echo server is started here."""
    port = free_port()
    async with serve(_echo, "127.0.0.1", port, compression=None):
        echo_url = f"ws://127.0.0.1:{port}/"
        await _round_trips(gateway_url, 5, "pong")  # a warm Lambda environment
        await _round_trips(echo_url, 5, "ping")
        gw: list[float] = []
        echo: list[float] = []
        for _ in range(rounds):
            gw += await _round_trips(gateway_url, per_round, "pong")
            echo += await _round_trips(echo_url, per_round, "ping")
    g, e = statistics.median(gw), statistics.median(echo)
    return {
        "pings": len(gw),
        "gateway_ms": {"p50": round(g, 3), "p99": round(_pct(gw, 99), 3)},
        "echo_ms": {"p50": round(e, 3), "p99": round(_pct(echo, 99), 3)},
        "ratio_p50": round(g / e, 1),
    }


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]
