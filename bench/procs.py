"""Child processes the benchmarks start: the metered AWS endpoint and the Management API stand-in."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator

from local import aws
from local.runtime import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def metered_moto() -> Iterator[str]:
    """bench.meter (moto that bills capacity as DynamoDB does) in a child process; yields its URL."""
    port = free_port()
    env = {**os.environ, **aws.FAKE_CREDENTIALS, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.meter", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=str(ROOT),
    )
    try:
        aws.wait_for_port("127.0.0.1", port, 30, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)


@contextlib.contextmanager
def standin(delay_ms: float = 0.0) -> Iterator[str]:
    """bench.standin (a Management API that answers 200) in a child process; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.standin", "--port", "0", "--delay-ms", str(delay_ms)],
        stdout=subprocess.PIPE,
        cwd=str(ROOT),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().decode().split()
        if len(line) != 2 or line[0] != "port":
            raise RuntimeError(f"the Management API stand-in did not start: {line}")
        yield f"http://127.0.0.1:{line[1]}"
    finally:
        _stop(proc)
