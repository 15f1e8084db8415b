"""Lambda execution environments: a pool of worker processes per function.

Each function gets its own processes (`local.worker`), each importing the handler once (a cold start)
and reused while warm. With `snapStart`, as Lambda's SnapStart does, the handler is imported (and the
before-snapshot hooks run) once per function, in a snapshot process, and each environment is a fork
of it that runs the after-restore hooks: a cold start costs a fork, not an interpreter's imports.

The pool scales out when invocations find no idle environment, up to the
function's reserved concurrency from serverless.yml (or a local default), and scales in after an idle
period. A handler that raises becomes an error result; one that exceeds its timeout is killed and
replaced, as Lambda does.

Beyond the limit, an invocation waits for a free environment, as the Kinesis event source mapping
does (it retries a throttled batch). With throttling on (GAMEBACKEND_LOCAL_THROTTLE=1, or
`throttle_sync=True`), a synchronous invocation (`invoke(..., synchronous=True)`: API Gateway's) of a
function with a reservedConcurrency is refused at once instead, as Lambda refuses it: an error result
`TooManyRequestsException` ("Rate Exceeded."), counted in `throttles` and not in `invocations`.

For fault injection (`POST /local/faults`, local.faults), `kill_busy()` kills the process of an
environment in the middle of an invocation, as a crash of the runtime or a host lost under it would:
the invocation ends as `Runtime.ExitError`, and the caller (an event-source mapping) retries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import statistics
import struct
import sys
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("local.lambda")

_HEADER = struct.Struct(">I")
DEFAULT_CONCURRENCY = 4
IDLE_SECONDS = 300.0
THROTTLE_ENV = "GAMEBACKEND_LOCAL_THROTTLE"
HISTORY_SECONDS = 900  # per-second concurrency kept in memory
RECENT_SECONDS = 10  # ... and shown by snapshot() (pollers merge them by second)
FORK_ENV = "GAMEBACKEND_LOCAL_FORK"


def forking() -> bool:
    """Whether SnapStart's emulation forks its environments from the snapshot process: yes, unless
    GAMEBACKEND_LOCAL_FORK=0, or on macOS unless GAMEBACKEND_LOCAL_FORK=1. There a process that has used
    Apple's system frameworks (urllib's proxy lookup, which botocore makes, loads one) can crash in a
    forked child, which is why Python's multiprocessing stopped forking on macOS. Without forking, each
    environment imports the handler and runs both kinds of hook itself: the same code, at a cold
    start's price."""
    chosen = os.environ.get(FORK_ENV, "")
    if chosen in ("0", "1"):
        return chosen == "1"
    return sys.platform != "darwin"


def throttling_from_env() -> bool:
    return os.environ.get(THROTTLE_ENV, "").strip().lower() not in ("", "0", "false", "no", "off")


@dataclass
class Invocation:
    """What one invocation produced: a result, or the error Lambda would report."""

    ok: bool
    result: Any = None
    error_type: str | None = None
    error_message: str | None = None
    duration_ms: float = 0.0
    init_ms: float | None = None  # set on a cold start
    request_id: str = ""

    @property
    def cold(self) -> bool:
        return self.init_ms is not None


@dataclass
class FunctionStats:
    invocations: int = 0
    cold_starts: int = 0
    errors: int = 0
    timeouts: int = 0
    throttles: int = 0
    killed: int = 0  # environments killed mid-invocation by fault injection
    concurrent: int = 0
    max_concurrent: int = 0
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    metrics: dict[str, float] = field(default_factory=dict)  # sums of the EMF metrics the handler emitted
    # With GAMEBACKEND_COUNT_AWS_CALLS=1 (local.worker.AwsCallCounter): sums of the handler's AWS calls.
    aws_calls: dict[str, float] = field(default_factory=dict)
    busy: int = 0  # invocations running in an environment: Lambda's ConcurrentExecutions
    environments: int = 0  # live execution environments (worker processes), busy, idle or starting
    reserved_concurrency: int | None = None
    throttle_sync: bool = False
    # One row per wall-clock second: [epoch second, peak busy, peak environments, throttles, peak in flight].
    per_second: deque[list[int]] = field(default_factory=lambda: deque(maxlen=HISTORY_SECONDS))

    def track(self, throttled: int = 0) -> None:
        """Records the current concurrency in this second's row (and carries it over idle seconds)."""
        now = int(time.time())
        rows = self.per_second
        if rows and rows[-1][0] == now:
            row = rows[-1]
            row[1] = max(row[1], self.busy)
            row[2] = max(row[2], self.environments)
            row[3] += throttled
            row[4] = max(row[4], self.concurrent)
            return
        if rows:
            for sec in range(max(rows[-1][0] + 1, now - HISTORY_SECONDS), now):
                rows.append([sec, self.busy, self.environments, 0, self.concurrent])
        rows.append([now, self.busy, self.environments, throttled, self.concurrent])

    def snapshot(self) -> dict[str, Any]:
        ds = sorted(self.durations)

        def pct(p: float) -> float | None:
            return round(ds[min(len(ds) - 1, int(p * len(ds)))], 2) if ds else None

        return {
            "invocations": self.invocations,
            "coldStarts": self.cold_starts,
            "errors": self.errors,
            "timeouts": self.timeouts,
            "throttles": self.throttles,
            "killed": self.killed,
            "concurrent": self.concurrent,
            "maxConcurrent": self.max_concurrent,
            "p50Ms": pct(0.5),
            "p99Ms": pct(0.99),
            "meanMs": round(statistics.fmean(ds), 2) if ds else None,
            "metrics": dict(sorted(self.metrics.items())),
            "awsCalls": dict(sorted(self.aws_calls.items())),
            "busy": self.busy,
            "environments": self.environments,
            "reservedConcurrency": self.reserved_concurrency,
            "throttleSync": self.throttle_sync,
            "perSecond": self.recent(),
        }

    def recent(self, seconds: int = RECENT_SECONDS) -> list[list[int]]:
        """The last seconds' rows: [epoch second, peak busy, peak environments, throttles, peak in flight]."""
        self.track()
        return [list(row) for row in list(self.per_second)[-seconds:]]


class WorkerDied(Exception):
    pass


class _Forked:
    """An environment forked from its function's snapshot process (local.worker), seen as the pool sees
    an environment's process: its connection as stdin and stdout, kill, wait and returncode. Its exit
    code is the snapshot process's to reap; here it is -1 once the process is gone."""

    def __init__(self, pid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.pid = pid
        self.stdout = reader
        self.stdin = writer
        self._gone = False

    @property
    def returncode(self) -> int | None:
        if not self._gone:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self._gone = True
        return -1 if self._gone else None

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.stdin.close()

    async def wait(self) -> int:
        for _ in range(500):
            if self.returncode is not None:
                break
            await asyncio.sleep(0.01)
        return -1


@dataclass
class _Snapshot:
    """A function's snapshot: the process that ran its init once and forks its environments."""

    proc: asyncio.subprocess.Process
    control: socket.socket

    def discard(self) -> None:
        """Ends it: its control socket closed and its process killed (the caller reaps it, or not)."""
        _discard(self.proc, self.control)


def _discard(proc: asyncio.subprocess.Process, control: socket.socket) -> None:
    control.close()
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process | _Forked) -> None:
        self.proc = proc
        self.init_ms: float | None = None
        self.restored = False  # resumed from the function's snapshot (SnapStart) rather than initialized
        self.fresh = True
        self.last_used = time.monotonic()

    async def _read(self) -> Any:
        assert self.proc.stdout is not None
        try:
            header = await self.proc.stdout.readexactly(_HEADER.size)
            (size,) = _HEADER.unpack(header)
            return json.loads(await self.proc.stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise WorkerDied(f"worker exited with code {self.proc.returncode}") from exc

    async def start(self) -> None:
        hello = await self._read()
        if not hello.get("ready"):
            raise WorkerDied(f"{hello.get('errorType')}: {hello.get('errorMessage')}")
        self.init_ms = hello["initMs"]
        self.restored = bool(hello.get("restored"))

    async def call(self, payload: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None
        data = json.dumps(payload).encode()
        try:
            self.proc.stdin.write(_HEADER.pack(len(data)) + data)
            await self.proc.stdin.drain()
        except ConnectionError as exc:
            raise WorkerDied(f"worker exited with code {self.proc.returncode}") from exc
        reply: dict[str, Any] = await self._read()
        return reply

    def kill(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()


class FunctionPool:
    def __init__(
        self,
        name: str,
        handler: str,
        *,
        env: dict[str, str],
        timeout: float,
        memory: int,
        max_concurrency: int | None = None,
        idle_seconds: float = IDLE_SECONDS,
        cwd: str | None = None,
        throttle_sync: bool | None = None,
        snap_start: bool = False,
    ) -> None:
        self.name = name
        # SnapStart: environments are forked from one process that ran the init phase (and the
        # before-snapshot hooks) once, and run the after-restore hooks (where the runtime does not
        # fork, `forking`, each runs both itself); without it, each imports anew.
        self.snap_start = snap_start
        self._forks = snap_start and forking()
        self._snapshot: _Snapshot | None = None
        self._snapshot_lock = asyncio.Lock()
        self.handler = handler
        self.env = env
        self.timeout = timeout
        self.memory = memory
        self.max_concurrency = max_concurrency or DEFAULT_CONCURRENCY
        self.idle_seconds = idle_seconds
        self.cwd = cwd
        self.stats = FunctionStats(reserved_concurrency=max_concurrency)
        # Only a reserved concurrency throttles: DEFAULT_CONCURRENCY stands in for the account's pool,
        # which the local stack never comes near.
        self.throttle_sync = throttling_from_env() if throttle_sync is None else throttle_sync
        self._idle: list[_Worker] = []
        self._count = 0  # live workers, busy or idle or starting
        self._freed = asyncio.Condition()
        self._closed = False
        self._reaper: asyncio.Task[None] | None = None
        self._all: set[_Worker] = set()
        self._running: dict[_Worker, tuple[str, float]] = {}  # busy worker -> (request id, began)
        self._started = asyncio.Event()  # set whenever an invocation starts running in a worker

    async def kill_busy(self, within: float = 10.0, after: float = 0.0) -> dict[str, Any] | None:
        """Kills the worker of an invocation that is running, `after` seconds into it (one that is
        still running then): the first such within `within` seconds. Returns the invocation's request
        id and how far into it the kill came, or None when none was running long enough."""
        deadline = time.monotonic() + within
        while True:
            now = time.monotonic()
            for worker, (request_id, began) in list(self._running.items()):
                if now - began >= after and worker.proc.returncode is None:
                    self.stats.killed += 1
                    worker.kill()
                    log.warning("%s: killed the environment of %s (fault injection)", self.name, request_id)
                    return {
                        "function": self.name,
                        "requestId": request_id,
                        "msInto": round((now - began) * 1000, 1),
                    }
            if now >= deadline:
                return None
            # Until an invocation starts, or a running one is `after` seconds old.
            soonest = min((began + after for _, began in self._running.values()), default=deadline)
            self._started.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._started.wait(), max(0.001, min(soonest, deadline) - now))

    async def _spawn(self) -> _Worker:
        if self._forks:
            return await self._restore()
        mode = "hooks" if self.snap_start else None
        return await self._ready(_Worker(await self._worker_process(mode, stdin=asyncio.subprocess.PIPE)))

    async def _ready(self, worker: _Worker) -> _Worker:
        """The environment once it has said it is ready (its init or restore done); killed if it fails."""
        self._all.add(worker)
        try:
            await asyncio.wait_for(worker.start(), timeout=max(self.timeout, 30))
        except BaseException:
            worker.kill()
            self._all.discard(worker)
            await worker.proc.wait()
            raise
        return worker

    async def _worker_process(
        self, mode: int | str | None = None, *, stdin: int
    ) -> asyncio.subprocess.Process:
        """`local.worker` for this function: an environment; with a control socket's fd as `mode`, its
        snapshot process; with "hooks", an environment that runs SnapStart's hooks itself."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "local.worker",
            self.handler,
            self.env.get("AWS_LAMBDA_FUNCTION_NAME", self.name),
            str(self.memory),
            *(() if mode is None else (str(mode),)),
            stdin=stdin,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **self.env},
            cwd=self.cwd,
            pass_fds=(mode,) if isinstance(mode, int) else (),
        )

    async def _snapshot_of(self) -> _Snapshot:
        """The function's snapshot process, started (the init phase) if there is none alive."""
        snapshot = self._snapshot
        if snapshot is not None and snapshot.proc.returncode is None:
            return snapshot
        ours, theirs = socket.socketpair()
        proc = await self._worker_process(theirs.fileno(), stdin=asyncio.subprocess.DEVNULL)
        theirs.close()
        init = _Worker(proc)  # its ready frame is an environment's
        try:
            await asyncio.wait_for(init.start(), timeout=max(self.timeout, 30))
        except BaseException:
            _discard(proc, ours)
            await proc.wait()
            raise
        ours.setblocking(False)
        self._snapshot = _Snapshot(proc, ours)
        log.info("%s: snapshot taken (init %.2f ms)", self.name, init.init_ms)
        return self._snapshot

    async def _restore(self) -> _Worker:
        """A new environment, resumed from the function's snapshot (a fork of its process)."""
        loop = asyncio.get_running_loop()
        async with self._snapshot_lock:  # one fork request and its answer at a time
            snapshot = await self._snapshot_of()
            ours, theirs = socket.socketpair()
            try:
                socket.send_fds(snapshot.control, [b"f"], [theirs.fileno()])
                answer = b""
                while len(answer) < _HEADER.size:
                    chunk = await loop.sock_recv(snapshot.control, _HEADER.size - len(answer))
                    if not chunk:
                        raise WorkerDied(f"the snapshot process of {self.name} exited")
                    answer += chunk
            except (OSError, WorkerDied) as exc:
                ours.close()
                snapshot.discard()
                self._snapshot = None
                raise WorkerDied(f"could not resume from the snapshot of {self.name}: {exc}") from exc
            finally:
                theirs.close()
        (pid,) = _HEADER.unpack(answer)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        return await self._ready(_Worker(_Forked(pid, reader, writer)))

    @property
    def throttle_sync(self) -> bool:
        return self.stats.throttle_sync

    @throttle_sync.setter
    def throttle_sync(self, on: bool) -> None:
        self.stats.throttle_sync = on

    def _set_count(self, count: int) -> None:
        self._count = count
        self.stats.environments = count
        self.stats.track()

    async def _acquire(self, wait: bool = True) -> _Worker | None:
        """A warm environment, or a new one within the limit. At the limit: wait for one to be freed
        (counted once as a throttle), or, with wait=False, None."""
        waited = False
        async with self._freed:
            while True:
                if self._closed:
                    raise WorkerDied("function pool is shut down")
                while self._idle:
                    worker = self._idle.pop()
                    if worker.proc.returncode is None:
                        return worker
                    # It ended while idle (killed, or out of memory): never handed out, as on Lambda.
                    self._all.discard(worker)
                    self._set_count(self._count - 1)
                if self._count < self.max_concurrency:
                    self._set_count(self._count + 1)
                    break
                if not wait:
                    return None
                if not waited:
                    waited = True
                    self.stats.throttles += 1
                    self.stats.track(throttled=1)
                await self._freed.wait()
        try:
            return await self._spawn()
        except BaseException:
            async with self._freed:
                self._set_count(self._count - 1)
                self._freed.notify()
            raise

    async def _release(self, worker: _Worker, dead: bool) -> None:
        async with self._freed:
            if dead or self._closed:
                self._set_count(self._count - 1)
                worker.kill()
                self._all.discard(worker)
            else:
                worker.last_used = time.monotonic()
                self._idle.append(worker)
            self._freed.notify()

    async def invoke(self, event: Any, *, synchronous: bool = False) -> Invocation:
        """Runs the event in an environment. `synchronous` is a RequestResponse invocation (API
        Gateway's): with throttling on and the reserved concurrency in use, it is refused at once."""
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap())
        request_id = str(uuid.uuid4())
        refuse = synchronous and self.throttle_sync and self.stats.reserved_concurrency is not None
        worker: _Worker | None = None
        acquired = False
        dead = False
        self.stats.concurrent += 1  # in flight, waiting for an environment included
        if not refuse:
            self.stats.max_concurrent = max(self.stats.max_concurrent, self.stats.concurrent)
        try:
            try:
                worker = await self._acquire(wait=not refuse)
            except WorkerDied as exc:
                self.stats.invocations += 1
                self.stats.errors += 1
                log.error("%s: init failed: %s", self.name, exc)
                return Invocation(
                    ok=False, error_type="Runtime.InitError", error_message=str(exc), request_id=request_id
                )
            if worker is None:  # throttled: never ran, so not an invocation
                self.stats.throttles += 1
                self.stats.track(throttled=1)
                log.warning("%s: throttled (reserved concurrency %d in use)", self.name, self.max_concurrency)
                return Invocation(
                    ok=False,
                    error_type="TooManyRequestsException",
                    error_message="Rate Exceeded.",
                    request_id=request_id,
                )
            acquired = True
            self.stats.invocations += 1
            self.stats.max_concurrent = max(self.stats.max_concurrent, self.stats.concurrent)
            self.stats.busy += 1
            self.stats.track()
            init_ms = worker.init_ms if worker.fresh else None
            worker.fresh = False
            if init_ms is not None:
                self.stats.cold_starts += 1
            deadline_ms = time.time() * 1000 + self.timeout * 1000
            began = time.perf_counter()
            self._running[worker] = (request_id, time.monotonic())
            self._started.set()
            try:
                reply = await asyncio.wait_for(
                    worker.call({"event": event, "requestId": request_id, "deadlineMs": deadline_ms}),
                    timeout=self.timeout,
                )
            except TimeoutError:
                self.stats.timeouts += 1
                self.stats.errors += 1
                worker.kill()
                dead = True
                log.error(
                    "%s: RequestId %s Task timed out after %.2f seconds", self.name, request_id, self.timeout
                )
                return Invocation(
                    ok=False,
                    error_type="Sandbox.Timedout",
                    error_message=f"Task timed out after {self.timeout:.2f} seconds",
                    duration_ms=self.timeout * 1000,
                    init_ms=init_ms,
                    request_id=request_id,
                )
            except WorkerDied as exc:
                self.stats.errors += 1
                worker.kill()
                dead = True
                return Invocation(
                    ok=False,
                    error_type="Runtime.ExitError",
                    error_message=str(exc),
                    duration_ms=(time.perf_counter() - began) * 1000,
                    init_ms=init_ms,
                    request_id=request_id,
                )
            duration = float(reply.get("durationMs", 0.0))
            for name, value in (reply.get("metrics") or {}).items():
                self.stats.metrics[name] = self.stats.metrics.get(name, 0) + value
            for name, value in (reply.get("awsCalls") or {}).items():
                self.stats.aws_calls[name] = self.stats.aws_calls.get(name, 0) + value
            self.stats.durations.append(duration)
            inv = Invocation(
                ok=bool(reply["ok"]),
                result=reply.get("result"),
                error_type=reply.get("errorType"),
                error_message=reply.get("errorMessage"),
                duration_ms=duration,
                init_ms=init_ms,
                request_id=request_id,
            )
            if not inv.ok:
                self.stats.errors += 1
            log.info(
                "REPORT %s RequestId: %s Duration: %.2f ms%s%s",
                self.name,
                request_id,
                duration,
                (
                    " (warm)"
                    if init_ms is None
                    else f" Restore Duration: {init_ms:.2f} ms (cold, SnapStart)"
                    if worker.restored
                    else f" Init Duration: {init_ms:.2f} ms (cold)"
                ),
                "" if inv.ok else f" Error: {inv.error_type}",
            )
            return inv
        finally:
            if worker is not None:
                self._running.pop(worker, None)
            self.stats.concurrent -= 1
            if acquired:
                self.stats.busy -= 1
            self.stats.track()
            if acquired and worker is not None:
                await self._release(worker, dead)

    async def _reap(self) -> None:
        """Scale in: environments idle for longer than idle_seconds are shut down."""
        while not self._closed:
            await asyncio.sleep(min(self.idle_seconds, 30.0))
            now = time.monotonic()
            async with self._freed:
                stale = [w for w in self._idle if now - w.last_used > self.idle_seconds]
                for w in stale:
                    self._idle.remove(w)
                    self._all.discard(w)
                    self._set_count(self._count - 1)
                    w.kill()

    async def close(self) -> None:
        async with self._freed:
            self._closed = True
            self._idle = []
            self._freed.notify_all()
        if self._reaper is not None:
            self._reaper.cancel()
        for w in list(self._all):
            w.kill()
            await w.proc.wait()
        self._all.clear()
        if self._snapshot is not None:
            self._snapshot.discard()
            await self._snapshot.proc.wait()
            self._snapshot = None

    def warm_workers(self) -> int:
        return len(self._idle)
