"""`python -m loadtest.run --shape spike`: a headless Locust run, the metrics around it, the conservation
check after it, and the report.

    python -m loadtest.run --shape spike                       # the local stack (started if not running)
    python -m loadtest.run --shape ramp --peak 80              # find the knee
    python -m loadtest.run --shape spike --host wss://{api}.execute-api.{region}.amazonaws.com/dev \\
        --admin-url https://{httpApi}.execute-api.{region}.amazonaws.com --admin-token "$ADMIN_JWT" \\
        --stage dev --token-cmd 'JWT_SECRET=… .venv/bin/gamebackend token {player} --stage dev'

    python -m loadtest.run --shape spike --faults all          # faults injected under load

Steps: (1) start the local stack if it is the target and not running (with Lambda throttling on);
(2) note the DLQ's messages; (3) run Locust (loadtest/locustfile.py) as a subprocess, while a
thread polls /local/metrics every second and /admin/stats every 5 s (and, with --faults, another
injects the faults of loadtest/faults.py); (4) wait for the stream to drain
and run the conservation check (loadtest.conservation); (5) write under loadtest/reports/<run>/:
Locust's report.html and CSVs, ledger.json, timeline.json, metrics.json, summary.json, summary.md and
plot.png. Exit status: 0 when every check passed, 1 when one failed, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadtest import conservation, faults, ledger, report, shapes
from loadtest.conservation import Endpoints, http_json, local_metrics

ROOT = Path(__file__).resolve().parent.parent
REPORTS = ROOT / "loadtest" / "reports"
LOCUSTFILE = ROOT / "loadtest" / "locustfile.py"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m loadtest.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--shape", default="spike", choices=sorted(shapes.SHAPES))
    p.add_argument("--peak", type=int, default=0, help="scale the shape to this many users at its peak")
    p.add_argument("--host", default="ws://127.0.0.1:3001", help="the WebSocket API (ws:// or wss://…/stage)")
    p.add_argument("--admin-url", default="http://127.0.0.1:3000", help="the HTTP API serving /admin/")
    p.add_argument(
        "--admin-token",
        default=os.environ.get("GAMEBACKEND_ADMIN_TOKEN", ""),
        help="an admin JWT (default: $GAMEBACKEND_ADMIN_TOKEN, or minted for the local stage)",
    )
    p.add_argument("--metrics-url", default="", help="default: <admin-url>/local/metrics when it answers")
    p.add_argument("--stage", default="local")
    p.add_argument("--config", default=str(ROOT / "serverless.yml"))
    p.add_argument(
        "--aws-endpoint",
        default=os.environ.get("AWS_ENDPOINT_URL", ""),
        help="AWS endpoint for the DLQ (default: the embedded one for the local stage)",
    )
    p.add_argument(
        "--token-cmd", default="", help="shell command printing a player token; {player} is replaced"
    )
    p.add_argument("--modes", default="practice:4,duel:4,arena:2")
    p.add_argument("--think", default="0.5,1.5", help="seconds between a player's actions: min,max")
    p.add_argument("--request-timeout", type=float, default=10.0)
    p.add_argument("--outcome-grace", type=float, default=30.0)
    p.add_argument("--drain-timeout", type=float, default=120.0)
    p.add_argument(
        "--settle", type=float, default=0.0, help="seconds to poll the totals (default 10, 60 deployed)"
    )
    p.add_argument("--skip-dlq", action="store_true", help="do not read the dead-letter queue")
    p.add_argument(
        "--start-stack",
        choices=["auto", "never"],
        default="auto",
        help="auto: start the local stack if it is the target and does not answer",
    )
    p.add_argument(
        "--dynamodb",
        choices=["moto", "local"],
        help="the DynamoDB engine of the local stack this run starts (default: the stack's, moto); "
        "a stack already running keeps its own, and the report names it",
    )
    p.add_argument(
        "--windows-of",
        metavar="STAGE",
        help="the local stack this run starts takes its projector's tumbling windows from this stage of "
        "serverless.yml (dev: as deployed, 10 s; default: the stack's own, the local stage's 2 s)",
    )
    p.add_argument(
        "--no-throttle",
        action="store_true",
        help="start the local stack without Lambda throttling (invocations queue instead)",
    )
    p.add_argument(
        "--no-warm-up",
        dest="warm_up",
        action="store_false",
        help="skip the warm-up (one player through the pipeline before the load)",
    )
    p.add_argument(
        "--faults",
        default="",
        help="inject faults during the run (local stack only): kill:N,gone:N,5xx:N,throttle:N or all "
        "(loadtest/faults.py); the report counts them and whether each was survived",
    )
    p.add_argument("--reports", default=str(REPORTS))
    p.add_argument("--run-id", default="")
    return p.parse_args(argv)


def is_local(url: str) -> bool:
    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


def machine() -> str:
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    kernel = f"{platform.system()} {platform.release()}"
    return f"{platform.node()} ({kernel}, {os.cpu_count()} CPUs{', ' + cpu if cpu else ''})"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


# --- the local stack ---------------------------------------------------------------------------------


class LocalStack:
    """`gamebackend local` in a subprocess, on the ports of --host/--admin-url, stopped at the end."""

    def __init__(
        self,
        host: str,
        admin_url: str,
        aws_endpoint: str,
        log: Path,
        throttle: bool,
        dynamodb: str | None,
        windows_of: str | None = None,
    ) -> None:
        self.host, self.admin_url, self.log, self.throttle = host, admin_url, log, throttle
        self.dynamodb = dynamodb
        self.windows_of = windows_of
        self.aws_endpoint = aws_endpoint
        self.proc: subprocess.Popen[bytes] | None = None

    def healthy(self) -> bool:
        health = local_health(self.admin_url)
        return health is not None and health.get("status") == "ok"

    def start(self, timeout: float = 120.0) -> None:
        ws, http, aws = urlsplit(self.host), urlsplit(self.admin_url), urlsplit(self.aws_endpoint)
        env = {**os.environ, "GAMEBACKEND_LOCAL_THROTTLE": "1" if self.throttle else "0"}
        env.pop("AWS_ENDPOINT_URL", None)  # the stack embeds its own AWS endpoint on --aws-port
        command = [
            sys.executable,
            "-m",
            "cli",
            "local",
            "--ws-port",
            str(ws.port or 3001),
            "--http-port",
            str(http.port or 3000),
            "--aws-port",
            str(aws.port or 4566),
            *(["--dynamodb", self.dynamodb] if self.dynamodb else []),
            *(["--windows-of", self.windows_of] if self.windows_of else []),
        ]
        print(f"loadtest: starting the local stack ({' '.join(command[2:])}), log in {self.log}", flush=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the local stack exited with {self.proc.returncode}; see {self.log}")
            if self.healthy():
                return
            time.sleep(0.5)
        raise RuntimeError(f"the local stack did not answer within {timeout:g} s; see {self.log}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def local_health(admin_url: str) -> dict[str, Any] | None:
    """The local stack's `/local/health` answer (status, stage, endpoints, DynamoDB engine, windows), or
    None when nothing answers it."""
    try:
        status, body = http_json(f"{admin_url.rstrip('/')}/local/health", timeout=2)
    except OSError:
        return None
    return body if status == 200 and isinstance(body, dict) else None


def warm_up(host: str, token: str, timeout: float = 90.0) -> float:
    """One player through the whole pipeline (connect, join practice, act, its state push), so that
    the first cold starts of each function are not in the measurement. Returns the seconds it took."""
    from websockets.sync.client import connect

    from loadtest.client import socket_url

    began = time.monotonic()
    deadline = began + timeout
    with connect(socket_url(host, token), open_timeout=timeout, proxy=None, compression=None) as ws:

        def until(predicate: Any) -> dict[str, Any]:
            while True:
                frame = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
                if isinstance(frame, dict) and predicate(frame):
                    return frame

        ws.send(json.dumps({"action": "join", "mode": "practice", "id": "warm-j"}))
        match_id = until(lambda f: f.get("type") == "joined")["matchId"]
        until(lambda f: f.get("type") == "state" and f.get("status") == "running")
        ws.send(
            json.dumps({"action": "act", "kind": "move", "matchId": match_id, "id": "warm-m", "x": 1, "y": 1})
        )
        until(lambda f: f.get("type") == "state" and "warm-m" in f.get("applied", []))
        ws.send(json.dumps({"action": "leave", "matchId": match_id, "id": "warm-l"}))
        until(lambda f: f.get("type") == "left")
    return time.monotonic() - began


# --- metrics polled during the run -------------------------------------------------------------------


class CpuShare:
    """CPUs in use since the last sample: by this command and its children (the stack it started,
    Locust, the Lambda workers, moto), by the kernel's soft interrupts (loopback traffic, mostly ours),
    and by every other process, the busiest of which are named."""

    def __init__(self) -> None:
        import psutil

        self.psutil = psutil
        self.me = psutil.Process()
        self.last = (time.monotonic(), self.psutil.cpu_times(), self._ours())
        self.others: dict[int, float] = {}
        self._others(set())

    def _ours(self) -> tuple[float, set[int]]:
        total, pids = 0.0, set()
        for proc in [self.me, *self.me.children(recursive=True)]:
            with contextlib.suppress(Exception):
                t = proc.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
                pids.add(proc.pid)
        return total, pids

    def _others(self, ours: set[int]) -> dict[str, float]:
        """CPU seconds per other process since the last call, by command line."""
        seen: dict[int, float] = {}
        spent: dict[str, float] = {}
        for proc in self.psutil.process_iter(["cpu_times", "cmdline", "name"]):
            if proc.pid in ours or proc.info["cpu_times"] is None:
                continue
            t = proc.info["cpu_times"]
            seen[proc.pid] = t.user + t.system
            delta = seen[proc.pid] - self.others.get(proc.pid, seen[proc.pid])
            if delta > 0:
                name = " ".join(proc.info["cmdline"] or [proc.info["name"] or "?"])[:80]
                spent[name] = spent.get(name, 0.0) + delta
        self.others = seen
        return spent

    def sample(self) -> dict[str, Any]:
        now, times, (ours, pids) = time.monotonic(), self.psutil.cpu_times(), self._ours()
        then, times0, (ours0, _) = self.last
        self.last = (now, times, (ours, pids))
        span = max(1e-3, now - then)

        def delta(field: str) -> float:
            return max(0.0, (getattr(times, field, 0.0) - getattr(times0, field, 0.0)) / span)

        used = sum(delta(f) for f in ("user", "nice", "system", "irq", "softirq"))
        mine = min(used, max(0.0, (ours - ours0) / span))
        top = sorted(self._others(pids).items(), key=lambda kv: -kv[1])[:3]
        return {
            "total": round(used, 2),
            "ours": round(mine, 2),
            "softirq": round(delta("softirq"), 2),
            "others": round(max(0.0, used - mine), 2),
            "top": [[name, round(spent / span, 2)] for name, spent in top if spent / span >= 0.05],
        }


class Sampler(threading.Thread):
    """Polls /local/metrics every second and /admin/stats every 5 s; prints a line every 5 s."""

    def __init__(self, endpoints: Endpoints, quiet: bool = False) -> None:
        super().__init__(daemon=True)
        self.endpoints = endpoints
        self.samples: list[dict[str, Any]] = []
        self.quiet = quiet
        self._halt = threading.Event()
        self.began = time.time()
        self.cpu = CpuShare()

    def run(self) -> None:
        n = 0
        while not self._halt.is_set():
            now = time.time()
            sample: dict[str, Any] = {"t": int(now), "at": now, "metrics": local_metrics(self.endpoints)}
            if n % 5 == 0:
                sample["cpu"] = self.cpu.sample()
            if n % 5 == 0 and self.endpoints.admin_token:
                with contextlib.suppress(OSError, ValueError):
                    status, body = http_json(
                        f"{self.endpoints.admin_url.rstrip('/')}/admin/stats",
                        self.endpoints.admin_token,
                        timeout=5,
                    )
                    sample["stats"] = body if status == 200 else None
            self.samples.append(sample)
            if n % 5 == 0 and not self.quiet:
                print(self.line(sample), flush=True)
            n += 1
            self._halt.wait(max(0.05, 1.0 - (time.time() - now)))

    def line(self, sample: dict[str, Any]) -> str:
        parts = [f"  t={sample['at'] - self.began:5.0f}s"]
        m = sample.get("metrics")
        if m:
            gw = m.get("gateway", {})
            parts.append(f"sockets={gw.get('open')}")
            for fn in ("message", "processor"):
                f = m.get("functions", {}).get(fn)
                if f:
                    parts.append(
                        f"{fn}: busy {f.get('busy')}/{f.get('environments')} env, thr {f.get('throttles')}"
                    )
            parts.append(f"behind={conservation.stream_backlog(m)}")
        stats = sample.get("stats")
        if stats:
            parts.append(f"actions/min={stats.get('actionsLastMinute')}")
        cpu = sample.get("cpu")
        if cpu:
            parts.append(f"cpu: ours {cpu['ours']:.2f} others {cpu['others']:.2f}")
        return "  ".join(parts)

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


# --- the run -----------------------------------------------------------------------------------------


def backend_summary(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    with_metrics = [s["metrics"] for s in samples if s.get("metrics")]
    if not with_metrics:
        return None
    first, last = with_metrics[0], with_metrics[-1]
    functions: dict[str, Any] = {}
    for fn, snap in last.get("functions", {}).items():
        base = first.get("functions", {}).get(fn, {})
        rows = [r for m in with_metrics for r in m.get("functions", {}).get(fn, {}).get("perSecond", [])]
        functions[fn] = {
            "reservedConcurrency": snap.get("reservedConcurrency"),
            "peakBusy": max((r[1] for r in rows), default=snap.get("maxConcurrent")),
            "environments": max((r[2] for r in rows), default=snap.get("environments")),
            "invocations": snap.get("invocations", 0) - base.get("invocations", 0),
            "coldStarts": snap.get("coldStarts", 0) - base.get("coldStarts", 0),
            "throttles": snap.get("throttles", 0) - base.get("throttles", 0),
            "errors": snap.get("errors", 0) - base.get("errors", 0),
            "p99Ms": snap.get("p99Ms"),
        }

    def hot(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in snapshot.get("streams", []) if s.get("source") != "dynamodb"]

    def cold(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
        return [s for s in snapshot.get("streams", []) if s.get("source") == "dynamodb"]

    streams = [s for m in with_metrics for s in hot(m)]
    last_streams, first_streams = hot(last), hot(first)
    return {
        "throttling": any(f.get("throttleSync") for f in last.get("functions", {}).values()),
        "functions": functions,
        "stream": {
            "maxBehind": max((conservation.stream_backlog(m) for m in with_metrics), default=0),
            "maxAgeMs": max((float(s.get("iteratorAgeMs", 0)) for s in streams), default=0.0),
            "batches": sum(s.get("batches", 0) for s in last_streams)
            - sum(s.get("batches", 0) for s in first_streams),
            "maxBatchSize": max((s.get("maxBatchSize", 0) for s in last_streams), default=0),
            "retries": sum(s.get("retries", 0) for s in last_streams)
            - sum(s.get("retries", 0) for s in first_streams),
        },
        # The leaderboard projector: windows it closed during the run, and how far behind it fell.
        "projector": {
            "windows": sum(s.get("windows", 0) for s in cold(last))
            - sum(s.get("windows", 0) for s in cold(first)),
            "maxAgeMs": max(
                (float(s.get("iteratorAgeMs", 0)) for m in with_metrics for s in cold(m)), default=0.0
            ),
        },
        "gateway": last.get("gateway"),
    }


def warm_up_token(args: argparse.Namespace) -> str:
    player = f"lt-{args.run_id or 'x'}-warmup"
    if args.token_cmd:
        out = subprocess.run(
            args.token_cmd.replace("{player}", player), shell=True, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    from local.tokens import StageTokens

    return StageTokens.of(args.config, args.stage).mint(player)


def cpu_summary(samples: list[dict[str, Any]]) -> dict[str, Any] | None:
    cpu = [s["cpu"] for s in samples if s.get("cpu")][1:]  # the first covers the time before the run
    if not cpu:
        return None
    busiest: dict[str, float] = {}
    for c in cpu:
        for name, share in c.get("top", []):
            busiest[name] = busiest.get(name, 0.0) + share / len(cpu)
    return {
        "oursMean": round(sum(c["ours"] for c in cpu) / len(cpu), 2),
        "othersMean": round(sum(c["others"] for c in cpu) / len(cpu), 2),
        "othersMax": max(c["others"] for c in cpu),
        "softirqMean": round(sum(c.get("softirq", 0.0) for c in cpu) / len(cpu), 2),
        "busiestOthers": {k: round(v, 2) for k, v in sorted(busiest.items(), key=lambda kv: -kv[1])[:3]},
    }


def cpu_line(samples: list[dict[str, Any]]) -> str:
    cpu = cpu_summary(samples)
    if cpu is None:
        return "CPU not sampled"
    busiest = ", ".join(f"`{k}` {v:.2f}" for k, v in cpu["busiestOthers"].items()) or "none"
    return (
        f"during the run this test used {cpu['oursMean']:.2f} CPUs on average and everything else "
        f"{cpu['othersMean']:.2f} (at most {cpu['othersMax']:.2f} over 5 s; soft interrupts "
        f"{cpu['softirqMean']:.2f}; busiest other processes: {busiest})"
    )


def locust_command(args: argparse.Namespace, out: Path, run_id: str) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--only-summary",
        "--host",
        args.host,
        "--shape",
        args.shape,
        "--run-id",
        run_id,
        "--html",
        str(out / "report.html"),
        "--csv",
        str(out / "locust"),
        "--csv-full-history",
        "--ledger",
        str(out / "ledger.json"),
        "--timeline",
        str(out / "timeline.json"),
        "--modes",
        args.modes,
        "--think",
        args.think,
        "--request-timeout",
        str(args.request_timeout),
        "--outcome-grace",
        str(args.outcome_grace),
        "--stage",
        args.stage,
        "--sls-config",
        args.config,
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "WARNING",
    ]
    if args.peak:
        command += ["--peak", str(args.peak)]
    if args.token_cmd:
        command += ["--token-cmd", args.token_cmd]
    return command


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shape = shapes.get(args.shape, args.peak or None)
    plan: list[tuple[float, str]] = []
    if args.faults:
        if not (is_local(args.host) and is_local(args.admin_url)):
            print("loadtest: --faults needs the local stack (its /local/faults)", file=sys.stderr)
            return 2
        try:
            plan = faults.schedule(faults.parse(args.faults), shape.duration)
        except ValueError as exc:
            print(f"loadtest: --faults: {exc}", file=sys.stderr)
            return 2
    args.fault_plan = plan
    run_id = args.run_id = args.run_id or uuid.uuid4().hex[:8]
    started = datetime.now(UTC)
    out = Path(args.reports) / f"{shape.name}-{started:%Y%m%d-%H%M%S}-{run_id}"
    out.mkdir(parents=True, exist_ok=True)
    local_target = is_local(args.host) and is_local(args.admin_url)
    if not args.aws_endpoint and args.stage == "local":
        args.aws_endpoint = "http://127.0.0.1:4566"
    print(
        f"loadtest: shape {shape.name} ({shape.description}), {shape.duration:g} s, peak {shape.peak} users"
    )
    print(f"loadtest: report in {out}", flush=True)

    stack: LocalStack | None = None
    if local_target and args.start_stack == "auto":
        candidate = LocalStack(
            args.host,
            args.admin_url,
            args.aws_endpoint,
            out / "stack.log",
            throttle=not args.no_throttle,
            dynamodb=args.dynamodb,
            windows_of=args.windows_of,
        )
        if not candidate.healthy():
            stack = candidate
            try:
                stack.start()
            except RuntimeError as exc:
                print(f"loadtest: {exc}", file=sys.stderr)
                stack.stop()
                return 2
    try:
        return run(args, shape, run_id, started, out, stack)
    finally:
        if stack is not None:
            print("loadtest: stopping the local stack we started", flush=True)
            stack.stop()


def run(
    args: argparse.Namespace,
    shape: shapes.Shape,
    run_id: str,
    started: datetime,
    out: Path,
    stack: LocalStack | None,
) -> int:
    token = args.admin_token
    if not token and args.stage == "local":
        from local.tokens import StageTokens

        token = StageTokens.of(args.config, args.stage).mint("loadtest-admin", admin=True, ttl=6 * 3600)
    if not token:
        print(
            "loadtest: an admin token is needed for the conservation check (--admin-token)", file=sys.stderr
        )
        return 2
    aws_endpoint = args.aws_endpoint or None
    endpoints = Endpoints(
        admin_url=args.admin_url,
        admin_token=token,
        metrics_url=args.metrics_url or f"{args.admin_url.rstrip('/')}/local/metrics",
        stage=args.stage,
        aws_endpoint=aws_endpoint,
        config=Path(args.config),
    )
    before = local_metrics(endpoints)
    if before is None:
        endpoints.metrics_url = None
        print("loadtest: no /local/metrics: a deployed stage (concurrency and stream lag from /admin/stats)")
    else:
        throttling = any(f.get("throttleSync") for f in before.get("functions", {}).values())
        state = "on" if throttling else "off"
        print(f"loadtest: local stack, Lambda throttling of synchronous invocations {state}")
    status, health = http_json(f"{args.admin_url.rstrip('/')}/admin/health", timeout=10)
    if status >= 500 or not isinstance(health, dict):
        print(
            f"loadtest: the admin API does not answer at {args.admin_url}: {status} {health}", file=sys.stderr
        )
        return 2

    dlq_before: set[str] | None = None
    if not args.skip_dlq:
        try:
            dlq_before = conservation.dlq_ids(endpoints)
        except Exception as exc:
            print(
                f"loadtest: cannot read the DLQ ({type(exc).__name__}: {exc}); pass --skip-dlq",
                file=sys.stderr,
            )
            return 2
    if args.warm_up:
        try:
            player_token = warm_up_token(args)
            print(f"loadtest: warmed up in {warm_up(args.host, player_token):.1f} s", flush=True)
        except Exception as exc:
            print(f"loadtest: the warm-up failed ({type(exc).__name__}: {exc})", file=sys.stderr)
            return 2
    load_before = load_average()

    sampler = Sampler(endpoints)
    sampler.start()
    command = locust_command(args, out, run_id)
    print(f"loadtest: locust {' '.join(command[3:])}", flush=True)
    began = time.monotonic()
    injector: faults.FaultRunner | None = None
    with (out / "locust.log").open("wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        if args.fault_plan:
            injector = faults.FaultRunner(args.admin_url, args.fault_plan)
            print(f"loadtest: {len(args.fault_plan)} fault episodes ({args.faults})", flush=True)
            injector.start()
        try:
            code = proc.wait(timeout=shape.duration + args.outcome_grace * 4 + 180)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
            print("loadtest: locust overran its time and was killed", file=sys.stderr)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            proc.wait(60)
            raise
    elapsed = time.monotonic() - began
    if injector is not None:
        injector.stop()  # its last episode's recovery first: the drain below must see no fault
    if code != 0 or not (out / "ledger.json").exists():
        sampler.stop()
        print(f"loadtest: locust failed (exit {code}); see {out / 'locust.log'}", file=sys.stderr)
        return 2

    meta, players = ledger.read(out / "ledger.json")
    print(
        f"loadtest: locust done in {elapsed:.0f} s; {len(players)} players; checking conservation", flush=True
    )
    health = local_health(args.admin_url) if is_local(args.admin_url) else None
    windows = (health.get("windows") if health is not None else None) or {}
    # Locally the boards settle within one window of the last action (the stack's longest), plus 10 s.
    settle = args.settle or (10.0 + max(windows.values(), default=0) if endpoints.metrics_url else 60.0)
    verdict = conservation.check(
        players,
        endpoints,
        drain_timeout=args.drain_timeout,
        settle=settle,
        dlq_before=dlq_before,
        dead_lettered_before=conservation.dead_lettered(before) if before else None,
    )
    time.sleep(1.5)  # a last metrics sample or two after the drain
    sampler.stop()
    load_after = load_average()
    engine = health.get("dynamodbEngine") if health is not None else None

    timeline = json.loads((out / "timeline.json").read_text())
    (out / "metrics.json").write_text(json.dumps(sampler.samples))
    _, series = report.build_series(timeline, sampler.samples)
    found = report.plateaus(timeline, shape)
    title = f"{shape.name} — {args.host} — {started:%Y-%m-%d %H:%M} UTC — run {run_id}"
    try:
        report.plot(series, shape, out / "plot.png", title)
        plotted = True
    except Exception as exc:  # the check's verdict must not depend on the plot
        print(f"loadtest: no plot: {type(exc).__name__}: {exc}", file=sys.stderr)
        plotted = False
    files = [*(p.name for p in out.iterdir()), "summary.json", "summary.md"]
    fault_summary = injector.summary(args.faults) if injector is not None else None
    summary = {
        "passed": verdict.passed and (fault_summary is None or fault_summary["passed"]),
        "faults": fault_summary,
        "shape": shape.name,
        "shapeDescription": shape.description,
        "runId": run_id,
        "startedAt": started.isoformat(timespec="seconds"),
        "elapsedS": elapsed,
        "host": args.host,
        "adminUrl": args.admin_url,
        "dynamodbEngine": engine,
        "windows": windows or None,
        "machine": f"{machine()}; load average {load_before} before, {load_after} after; "
        + cpu_line(sampler.samples),
        "cpu": cpu_summary(sampler.samples),
        "conservation": verdict.to_json(),
        "requests": report.overall(timeline),
        "failures": meta.get("failures", {}),
        "backend": backend_summary(sampler.samples),
        "plateaus": [p.to_json() for p in found],
        "kneePush": report.knee(found, "push"),
        "kneeAck": report.knee(found, "ack"),
        "plot": plotted,
        "files": sorted(set(files)),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    (out / "summary.md").write_text(report.summary_markdown(summary))
    latest = Path(args.reports) / "latest"
    with contextlib.suppress(OSError):
        if latest.is_symlink() or latest.exists():
            latest.unlink()
        latest.symlink_to(out.name)

    print()
    for name, o in summary["requests"].items():
        fails = ", ".join(f"{k} {v}" for k, v in o["failures"].items()) or "no failures"
        p50, p99 = report._ms(o["p50"]), report._ms(o["p99"])
        print(f"  {name:8s} {o['ok']:6d} ok  p50 {p50:>5s} ms  p99 {p99:>5s} ms  ({fails})")
    for key in ("kneePush", "kneeAck"):
        k = summary[key]
        if k and shape.name == "ramp":
            where = f"{k['users']} users, {k['actionsPerS']} actions/s"
            print(f"  knee ({k['entry']} p99 > {report.KNEE_MS:g} ms): {where}")
    print("\nconservation check:")
    print("\n".join(verdict.lines()))
    if fault_summary is not None and injector is not None:
        print("\nfaults:")
        for kind, k in fault_summary["byKind"].items():
            print(
                f"  {kind:8s} {k['episodes']} episodes, {k['hit']} hit, {k['injected']} injected, "
                f"{k['survived']} survived (slowest recovery {k['maxRecoveryS']:.2f} s)"
            )
    outcome = "PASSED" if summary["passed"] else "FAILED"
    print(
        f"\nloadtest: {outcome}; report: {out / 'summary.md'}, {out / 'report.html'}"
        + (", plot.png" if plotted else "")
    )
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
