"""Faults injected into the local stack during a load run (`--faults`, `make loadtest FAULTS=...`), and
whether the stack survived each.

    --faults kill:3,gone:2,5xx:2,throttle:2      (or --faults all: that mix)

Each `kind:N` is N episodes, spread over the middle of the run (from 15 % to 80 % of the shape's
duration), the kinds interleaved, one episode at a time, through the stack's POST /local/faults
(local.faults):

- kill      the processor's execution environment is killed in the middle of a batch (the first batch
            that has been running KILL_AFTER seconds); Lambda's event-source mapping retries it
- gone      the Management API answers the next GONE_CALLS pushes with 410, each dropping its
            connection (the players' clients reconnect and re-send what was not settled)
- 5xx       the Management API answers every push with 503 for STORM_SECONDS (the processor's
            circuit breaker opens and sheds pushes, then half-opens)
- throttle  DynamoDB answers every request with ProvisionedThroughputExceededException for
            THROTTLE_SECONDS (the SDK retries, the message route's breaker may shed frames, the
            processor's batches fail and are retried)

An episode counts as injected when the fault hit something (a worker was killed; calls were answered
with the error), and as survived when the stack recovered afterwards within RECOVERY_TIMEOUT: the
processor completed a batch after it (kill, throttle), a push reached a client after it (gone, 5xx).
That the faults lost or doubled nothing is the conservation check's to say, over the whole run.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("kill", "gone", "5xx", "throttle")
ALL = "kill:3,gone:2,5xx:2,throttle:2"
KILL_AFTER = 0.005  # seconds into a batch: after it has begun its reads, before it is done
KILL_WITHIN = 20.0
GONE_CALLS = 5
STORM_SECONDS = 3.0
THROTTLE_SECONDS = 2.0
RECOVERY_TIMEOUT = 30.0


def parse(spec: str) -> dict[str, int]:
    """ "kill:3,gone:2" -> {"kill": 3, "gone": 2}; "all" -> ALL's mix. ValueError for anything else."""
    spec = ALL if spec.strip() == "all" else spec
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kind, _, count = part.partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown fault {kind!r}: one of {', '.join(KINDS)} (or all)")
        try:
            n = int(count or 1)
        except ValueError:
            raise ValueError(f"{part!r}: the count must be a whole number") from None
        if not 1 <= n <= 50:
            raise ValueError(f"{part!r}: between 1 and 50 episodes")
        out[kind] = out.get(kind, 0) + n
    if not out:
        raise ValueError("no fault given")
    return out


def schedule(counts: dict[str, int], duration: float) -> list[tuple[float, str]]:
    """(seconds into the run, kind), the kinds interleaved, evenly over 15 %..80 % of the run."""
    queues = {k: counts[k] for k in KINDS if k in counts}
    order: list[str] = []
    while any(queues.values()):
        for kind in list(queues):
            if queues[kind]:
                order.append(kind)
                queues[kind] -= 1
    start, end = 0.15 * duration, 0.8 * duration
    step = (end - start) / max(1, len(order) - 1) if len(order) > 1 else 0.0
    return [(start + i * step, kind) for i, kind in enumerate(order)]


@dataclass
class Episode:
    kind: str
    at: float  # planned, seconds into the run
    began: float = 0.0  # actual
    injected: int = 0  # workers killed, or calls answered with the error
    survived: bool = False
    recovery_s: float | None = None  # from the end of the fault to the first sign of recovery
    detail: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def _post(url: str, body: dict[str, Any] | None = None, method: str = "POST") -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=KILL_WITHIN + 10) as answer:
            found: dict[str, Any] = json.loads(answer.read())
            return found
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"/local/faults answered {exc.code}: {exc.read()[:300]!r}") from None


def _metrics(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        found: dict[str, Any] = json.loads(answer.read())
        return found


def _batches_done(metrics: dict[str, Any]) -> int:
    fn = metrics.get("functions", {}).get("processor", {})
    return int(fn.get("invocations", 0)) - int(fn.get("errors", 0))


def _pushes(metrics: dict[str, Any]) -> int:
    return int(metrics.get("gateway", {}).get("posts", 0))


class FaultRunner(threading.Thread):
    """Runs the episodes of a schedule against the stack at `http_url`, from `began` (time.monotonic())."""

    def __init__(self, http_url: str, plan: list[tuple[float, str]], quiet: bool = False) -> None:
        super().__init__(daemon=True)
        self.faults_url = f"{http_url.rstrip('/')}/local/faults"
        self.metrics_url = f"{http_url.rstrip('/')}/local/metrics"
        self.episodes = [Episode(kind, at) for at, kind in plan]
        self.quiet = quiet
        self.began = time.monotonic()
        self._halt = threading.Event()

    def run(self) -> None:
        for episode in self.episodes:
            if self._halt.wait(max(0.0, self.began + episode.at - time.monotonic())):
                return
            episode.began = round(time.monotonic() - self.began, 2)
            try:
                self._episode(episode)
            except Exception as exc:  # reported, never raised: the run's other checks still matter
                episode.error = f"{type(exc).__name__}: {exc}"
            finally:
                # Whatever happened, the fault must not outlive its episode.
                try:
                    _post(self.faults_url, method="DELETE")
                except Exception as exc:
                    episode.error = episode.error or f"could not clear the fault: {exc}"
            if not self.quiet:
                print(f"  fault {self.describe(episode)}", flush=True)

    def stop(self) -> None:
        self._halt.set()
        self.join(KILL_WITHIN + RECOVERY_TIMEOUT + 10)

    def _episode(self, e: Episode) -> None:
        before = _metrics(self.metrics_url)
        listing = _post(self.faults_url, method="GET") if e.kind != "kill" else {}
        if e.kind == "kill":
            answer = _post(
                self.faults_url,
                {"target": "lambda", "function": "processor", "after": KILL_AFTER, "within": KILL_WITHIN},
            )
            killed = answer.get("killed")
            e.injected = 1 if killed else 0
            e.detail = killed or {"note": f"no batch ran within {KILL_WITHIN:g} s"}
        elif e.kind in ("gone", "5xx"):
            status = 410 if e.kind == "gone" else 503
            spec: dict[str, Any] = {"target": "management", "status": status}
            spec.update({"count": GONE_CALLS} if e.kind == "gone" else {"seconds": STORM_SECONDS})
            was = int(listing["management"]["injected"].get(str(status), 0))
            _post(self.faults_url, spec)
            self._halt.wait(STORM_SECONDS)  # a 410 storm ends when its calls are used: give it as long
            now = _post(self.faults_url, method="GET")["management"]
            e.injected = int(now["injected"].get(str(status), 0)) - was
            e.detail = {"status": status, "dropped": now["dropped"] - listing["management"]["dropped"]}
        else:  # throttle
            was = int((listing.get("aws") or {}).get("injected", 0))
            _post(
                self.faults_url,
                {
                    "target": "aws",
                    "service": "dynamodb",
                    "code": "ProvisionedThroughputExceededException",
                    "status": 400,
                    "message": "Rate of requests exceeds the allowed throughput.",
                    "seconds": THROTTLE_SECONDS,
                },
            )
            self._halt.wait(THROTTLE_SECONDS)
            now = _post(self.faults_url, method="GET")
            e.injected = int((now.get("aws") or {}).get("injected", 0)) - was
            e.detail = {"service": "dynamodb", "seconds": THROTTLE_SECONDS}
        _post(self.faults_url, method="DELETE")
        ended = time.monotonic()
        during = _metrics(self.metrics_url)
        shed = _metric(during, "processor", "PushesShed") - _metric(before, "processor", "PushesShed")
        if shed:
            e.detail["pushesShed"] = shed
        # Recovery: the first batch completed, or push delivered, after the fault ended.
        progress = _pushes if e.kind in ("gone", "5xx") else _batches_done
        mark = progress(during)
        while time.monotonic() - ended < RECOVERY_TIMEOUT:
            if progress(_metrics(self.metrics_url)) > mark:
                e.recovery_s = round(time.monotonic() - ended, 2)
                e.survived = e.injected > 0
                return
            self._halt.wait(0.1)

    def describe(self, e: Episode) -> str:
        state = "survived" if e.survived else "NOT survived" if e.injected else "not injected"
        recovered = f", recovered {e.recovery_s:.2f} s after" if e.recovery_s is not None else ""
        error = f", error {e.error}" if e.error else ""
        return f"{e.kind} at {e.began:.0f} s: {e.injected} injected, {state}{recovered}{error}"

    def summary(self, spec: str) -> dict[str, Any]:
        by_kind: dict[str, dict[str, Any]] = {}
        for e in self.episodes:
            k = by_kind.setdefault(
                e.kind, {"episodes": 0, "injected": 0, "hit": 0, "survived": 0, "maxRecoveryS": 0.0}
            )
            k["episodes"] += 1
            k["injected"] += e.injected
            k["hit"] += bool(e.injected)
            k["survived"] += e.survived
            if e.recovery_s is not None:
                k["maxRecoveryS"] = max(k["maxRecoveryS"], e.recovery_s)
        return {
            "spec": spec,
            "passed": all(e.survived for e in self.episodes),
            "byKind": by_kind,
            "episodes": [asdict(e) for e in self.episodes],
        }


def _metric(metrics: dict[str, Any], function: str, name: str) -> int:
    return int(metrics.get("functions", {}).get(function, {}).get("metrics", {}).get(name, 0))


def markdown(faults: dict[str, Any]) -> list[str]:
    lines = [
        "",
        f"## Faults injected (`{faults['spec']}`) — "
        + ("all survived" if faults["passed"] else "NOT all survived"),
        "",
        "| fault | episodes | hit | calls failed / workers killed | survived | slowest recovery s |",
        "|---|---|---|---|---|---|",
    ]
    for kind, k in faults["byKind"].items():
        cells = [kind, k["episodes"], k["hit"], k["injected"], k["survived"], f"{k['maxRecoveryS']:.2f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    lines += [
        "",
        "| episode | at s | injected | survived | recovery s | detail |",
        "|---|---|---|---|---|---|",
    ]
    for e in faults["episodes"]:
        detail = json.dumps(e["detail"]) + (f" error: {e['error']}" if e["error"] else "")
        recovery = "" if e["recovery_s"] is None else f"{e['recovery_s']:.2f}"
        lines.append(
            f"| {e['kind']} | {e['began']:.0f} | {e['injected']} | {e['survived']} | {recovery} | {detail} |"
        )
    return lines
