"""Fan-out: one update pushed to N connections, aiobotocore concurrent sender vs a sequential boto3 loop.

The target is the local gateway's own Management API (local/gateway.py) with N real WebSocket clients
connected to it, in a child process (`python -m bench.fanout N`: the gateway with no functions wired,
so connecting runs no Lambda, and the clients, which count what they receive). The senders run in this
process with warm clients, as in a warm Lambda:

- sequential: one boto3 `apigatewaymanagementapi` client, `post_to_connection` for each id in turn;
- concurrent: backend.push.Pusher, the processor's sender (one aiobotocore client, 64 in flight).

Both are timed in alternation, and every round checks that the clients received every frame.
The same senders against bench.standin with a fixed service latency show what waiting on the network,
not the loopback's CPU, does to the ratio.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

from local.runtime import ROOT

REGION = "us-east-1"


async def _serve(n: int) -> None:
    from websockets.asyncio.client import connect

    from bench.procs import free_port
    from local import slsconfig
    from local.gateway import Gateway

    service = slsconfig.load(ROOT / "serverless.yml", "local")
    service.functions = {}  # no $connect, no authorizer, no routes: the sockets alone
    gateway = Gateway(service, {}, host="127.0.0.1", port=free_port())
    await gateway.start()
    received = 0
    sockets: list[Any] = []

    async def client(opened: asyncio.Future[None]) -> None:
        nonlocal received
        ws = await connect(f"ws://127.0.0.1:{gateway.port}/", open_timeout=60, max_queue=None)
        sockets.append(ws)
        opened.set_result(None)
        async for _ in ws:
            received += 1

    loop = asyncio.get_running_loop()
    tasks = []
    for start in range(0, n, 100):  # 100 handshakes at a time
        opened = [loop.create_future() for _ in range(start, min(n, start + 100))]
        tasks += [asyncio.create_task(client(f)) for f in opened]
        await asyncio.gather(*opened)
    print(json.dumps({"port": gateway.port, "ids": list(gateway.connections)}), flush=True)
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "count":
            print(json.dumps({"received": received}), flush=True)
        else:
            break
    for ws in sockets:
        await ws.close()
    for t in tasks:
        t.cancel()
    await gateway.stop()


@contextlib.contextmanager
def sockets(n: int) -> Iterator[tuple[str, list[str], Any]]:
    """The gateway with n connected clients in a child process: (Management API URL, ids, count())."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fanout", str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=str(ROOT),
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        ready = json.loads(proc.stdout.readline())

        def count() -> int:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("count\n")
            proc.stdin.flush()
            return int(json.loads(proc.stdout.readline())["received"])

        yield f"http://127.0.0.1:{ready['port']}", ready["ids"], count
    finally:
        with contextlib.suppress(BrokenPipeError, OSError):
            proc.stdin.write("quit\n")
            proc.stdin.flush()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _sequential_client(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    # The settings of backend.aws.client, which every function uses.
    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=5)
    return boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=endpoint, region_name=REGION, config=config
    )


def _settled(count: Any) -> int:
    """What the clients received, once the number stops moving (the last frames may be in flight)."""
    last = -1
    while True:
        now = int(count())
        if now == last:
            return now
        last = now
        time.sleep(0.2)


def compare(endpoint: str, ids: list[str], rounds: int, count: Any = None) -> dict[str, Any]:
    """Times both senders `rounds` times each, in alternation; medians and the ratio."""
    from backend.push import Pusher

    data = json.dumps({"type": "notice", "message": "x" * 200})
    sequential = _sequential_client(endpoint)
    pusher = Pusher(endpoint, REGION)
    sequential.post_to_connection(ConnectionId=ids[0], Data=data.encode())  # warm both clients
    pusher.send([(ids[0], data)])
    before = _settled(count) if count else 0
    times: dict[str, list[float]] = {"sequential": [], "concurrent": []}
    failures = 0
    for _ in range(rounds):
        t = time.perf_counter()
        for cid in ids:
            sequential.post_to_connection(ConnectionId=cid, Data=data.encode())
        times["sequential"].append(time.perf_counter() - t)
        t = time.perf_counter()
        report = pusher.send([(cid, data) for cid in ids])
        times["concurrent"].append(time.perf_counter() - t)
        failures += len(report.failed) + len(report.gone)
    delivered = _settled(count) - before if count else None
    pusher.close()
    seq, conc = statistics.median(times["sequential"]), statistics.median(times["concurrent"])
    return {
        "connections": len(ids),
        "rounds": rounds,
        "sequential_s": [round(x, 3) for x in times["sequential"]],
        "concurrent_s": [round(x, 3) for x in times["concurrent"]],
        "sequential_median_s": round(seq, 3),
        "concurrent_median_s": round(conc, 3),
        "ratio": round(seq / conc, 2),
        "failed_posts": failures,
        "delivered": delivered,
        "expected_deliveries": 2 * rounds * len(ids) if count else None,
    }


if __name__ == "__main__":
    asyncio.run(_serve(int(sys.argv[1])))
