"""`make run` is `gamebackend local`: it must come up, serve, and stop cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from backend.vocabulary import PROTOCOL_VERSION
from tests.conftest import dynamodb_engines
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


def test_token_command_mints_a_token_the_authorizer_accepts() -> None:
    from tests.unit.test_auth import check

    out = _cli("token", "zoe", "--admin", "--ttl", "60")
    assert out.returncode == 0, out.stderr
    claims = check(out.stdout.strip())
    assert (claims.player_id, claims.role) == ("zoe", "admin")  # type: ignore[attr-defined]


def test_schema_command_prints_both_directions() -> None:
    out = _cli("schema")
    doc = json.loads(out.stdout)
    assert set(doc) == {"client", "actions", "modes", "server", "streamRecord"}
    # The race modes' actions, from their plug-in, and which modes play them.
    assert doc["actions"]["score"]["title"] == "Score" and doc["modes"]["duel"] == ["move", "score"]


@pytest.mark.parametrize("engine", dynamodb_engines())
def test_local_starts_serves_and_stops_on_ctrl_c(engine: str) -> None:
    ws, http, aws, dynamodb = free_port(), free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "local",
            "--ws-port",
            str(ws),
            "--http-port",
            str(http),
            "--aws-port",
            str(aws),
            "--dynamodb",
            engine,
            "--dynamodb-port",
            str(dynamodb),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{http}/local/health", timeout=1) as r:
                    health = json.loads(r.read())
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "the local stack did not come up"
                time.sleep(0.2)
        assert health["status"] == "ok" and health["dynamodbEngine"] == engine
        # The tables are on --dynamodb-port on either engine, away from the stream and the queues.
        assert health["dynamodb"] == f"http://127.0.0.1:{dynamodb}"
        assert health["aws"] == f"http://127.0.0.1:{aws}"
        token = _cli("token", "cli-user").stdout.strip()
        with connect(f"ws://127.0.0.1:{ws}/?token={token}", open_timeout=30) as sock:
            sock.send('{"action":"ping"}')
            assert json.loads(sock.recv(timeout=10)) == {"type": "pong", "protocol": PROTOCOL_VERSION}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        # Every port is free again: the Lambda workers, the embedded AWS endpoint and the tables' engine
        # went with it.
        for port in (ws, http, aws, dynamodb):
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_local_on_dynamodb_local_without_java_names_the_install_step(tmp_path: Path) -> None:
    # A PATH with no java on it; the interpreter is named by its full path.
    env = {**os.environ, "PATH": str(tmp_path)}
    env.pop("AWS_ENDPOINT_URL", None)
    ws, http, aws, dynamodb = free_port(), free_port(), free_port(), free_port()
    out = _cli(
        "local",
        *("--ws-port", str(ws), "--http-port", str(http), "--aws-port", str(aws)),
        *("--dynamodb", "local", "--dynamodb-port", str(dynamodb)),
        env=env,
    )
    assert out.returncode == 1
    assert "apt-get install openjdk-17-jre-headless" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    for port in (ws, http, aws, dynamodb):  # nothing was left running
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, port


def test_an_unknown_engine_is_refused_with_the_choices() -> None:
    out = _cli("local", env={**os.environ, "GAMEBACKEND_DYNAMODB": "sqlite"})
    assert out.returncode == 2
    assert "GAMEBACKEND_DYNAMODB='sqlite'" in out.stderr and "moto, local" in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
