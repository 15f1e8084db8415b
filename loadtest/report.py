"""The load-test report: per-second series, plateaus and knee, the plot, and summary.md.

Inputs, all written under the run's report directory:
- `timeline.json` (the locustfile): per wall-clock second, the users and every request's latency
  and failure, by entry (connect, join, ack, push);
- `metrics.json` (loadtest.run's sampler): `/local/metrics` polled every second (per function: busy
  environments per second, environments, throttles; per stream: records behind, iterator age) and
  `/admin/stats` every 5 s.

p99 over time is computed over a sliding 5-second window (a second holds too few samples at low load);
the plateau table uses every sample of a plateau, after its first third (the ramp to it), and
gives push p99 and failed acks over the whole stage as well (on a spike: the jump, cold starts and all).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.bots import percentile  # one definition for the bots' report and this one
from loadtest.shapes import Shape

KNEE_MS = 250.0
WINDOW = 5  # seconds, for p99 over time
ENTRIES = ("connect", "join", "ack", "push")


@dataclass
class Series:
    t: list[int]  # seconds since the start of the test
    users: list[int | None]
    rate: dict[str, list[int]]  # successful entries per second, by entry
    failures: list[int]  # failed entries per second (all entries)
    p99: dict[str, list[float | None]]  # sliding-window p99, by entry
    busy: dict[str, list[int | None]]  # peak busy environments per second, by function
    environments: dict[str, list[int | None]]
    throttles: dict[str, list[int]]
    reserved: dict[str, int]  # reserved concurrency, for the functions that have one
    behind: list[int | None]  # records behind (read, not yet handed to the function, or in flight)
    age: list[float | None]  # iterator age of the last batch, ms
    lag: list[tuple[int, float | None]]  # (t, /admin/stats streamLagMs)


def build_series(timeline: dict[str, Any], metrics: list[dict[str, Any]]) -> tuple[int, Series]:
    seconds = {int(s["t"]): s for s in timeline.get("seconds", [])}
    start = int(timeline.get("start") or (min(seconds) if seconds else 0))
    samples = [m for m in metrics if m.get("metrics")]
    end = max([*seconds, *(int(m["t"]) for m in metrics)], default=start)
    span = list(range(start, end + 1))
    t = [s - start for s in span]

    users: list[int | None] = []
    last_users: int | None = None
    rate: dict[str, list[int]] = {e: [] for e in ENTRIES}
    failures: list[int] = []
    last_second = max(seconds, default=start)
    for sec in span:
        b = seconds.get(sec, {})
        if b.get("users") is not None:
            last_users = int(b["users"])
        users.append(last_users if sec <= last_second else 0)  # after Locust stopped: nobody
        for e in ENTRIES:
            rate[e].append(len(b.get("ok", {}).get(e, [])))
        failures.append(sum(sum(v.values()) for v in b.get("fail", {}).values()))
    p99: dict[str, list[float | None]] = {e: [] for e in ENTRIES}
    for i in range(len(span)):
        for e in ENTRIES:
            window = [
                v
                for s in span[max(0, i - WINDOW + 1) : i + 1]
                for v in seconds.get(s, {}).get("ok", {}).get(e, [])
            ]
            p99[e].append(percentile(window, 99))

    per_fn: dict[str, dict[int, list[int]]] = {}
    by_sec: dict[int, dict[str, Any]] = {}
    lag: list[tuple[int, float | None]] = []
    for m in metrics:
        if m.get("stats") is not None:
            lag.append((int(m["t"]) - start, m["stats"].get("streamLagMs")))
        if not m.get("metrics"):
            continue
        by_sec[int(m["t"])] = m["metrics"]
        for fn, snap in m["metrics"].get("functions", {}).items():
            rows = per_fn.setdefault(fn, {})
            for row in snap.get("perSecond", []):
                rows[int(row[0])] = [int(x) for x in row[1:]]
    busy: dict[str, list[int | None]] = {}
    environments: dict[str, list[int | None]] = {}
    throttles: dict[str, list[int]] = {}
    for fn, rows in per_fn.items():
        busy[fn] = [rows[s][0] if s in rows else None for s in span]
        environments[fn] = [rows[s][1] if s in rows else None for s in span]
        throttles[fn] = [rows[s][2] if s in rows else 0 for s in span]
    behind: list[int | None] = []
    age: list[float | None] = []
    for sec in span:
        snap = by_sec.get(sec)
        # The hot path's stream: the projector's table stream waits a window by design.
        streams = [s for s in snap.get("streams", []) if s.get("source") != "dynamodb"] if snap else None
        behind.append(
            sum(int(s.get("recordsBehind", 0)) + int(s.get("inflight", 0)) for s in streams)
            if streams is not None
            else None
        )
        age.append(max((float(s.get("iteratorAgeMs", 0)) for s in streams), default=0.0) if streams else None)
    reserved = {
        fn: int(snap["reservedConcurrency"])
        for m in samples[-1:]
        for fn, snap in m["metrics"].get("functions", {}).items()
        if snap.get("reservedConcurrency")
    }
    series = Series(t, users, rate, failures, p99, busy, environments, throttles, reserved, behind, age, lag)
    if not samples:
        series.busy, series.environments, series.throttles = {}, {}, {}
    return start, series


@dataclass
class Plateau:
    users: int
    start: float
    end: float
    seconds: int
    actions_per_s: float
    ack_p50: float | None
    ack_p99: float | None
    push_p50: float | None
    push_p99: float | None
    failures: int
    ack_failed_pct: float  # ack attempts that failed (throttled frames, mostly), in percent
    # The same over the whole stage, its first third included: on a spike, the jump and its cold starts.
    whole_push_p99: float | None = None
    whole_ack_failed_pct: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def plateaus(timeline: dict[str, Any], shape: Shape) -> list[Plateau]:
    seconds = {int(s["t"]): s for s in timeline.get("seconds", [])}
    start = float(timeline.get("start") or (min(seconds) if seconds else 0))
    found: list[Plateau] = []
    begin = 0.0

    def ack_failed_pct(secs: list[int]) -> float:
        fails = sum(sum(seconds[s]["fail"].get("ack", {}).values()) for s in secs)
        acks = sum(len(seconds[s]["ok"].get("ack", [])) for s in secs)
        return round(100 * fails / max(1, fails + acks), 1)

    for stage in shape.stages:
        first, lo, hi = begin, begin + (stage.until - begin) / 3, stage.until
        begin = stage.until
        secs = [s for s in seconds if lo <= s - start < hi]
        if not secs:
            continue
        whole = [s for s in seconds if first <= s - start < hi]
        acks = [v for s in secs for v in seconds[s]["ok"].get("ack", [])]
        pushes = [v for s in secs for v in seconds[s]["ok"].get("push", [])]
        fails = sum(sum(v.values()) for s in secs for v in seconds[s]["fail"].values())
        found.append(
            Plateau(
                users=stage.users,
                start=round(lo, 1),
                end=round(hi, 1),
                seconds=len(secs),
                actions_per_s=round(len(acks) / len(secs), 1),
                ack_p50=percentile(acks, 50),
                ack_p99=percentile(acks, 99),
                push_p50=percentile(pushes, 50),
                push_p99=percentile(pushes, 99),
                failures=fails,
                ack_failed_pct=ack_failed_pct(secs),
                whole_push_p99=percentile([v for s in whole for v in seconds[s]["ok"].get("push", [])], 99),
                whole_ack_failed_pct=ack_failed_pct(whole),
            )
        )
    return found


def knee(found: list[Plateau], entry: str = "push") -> dict[str, Any] | None:
    """The first plateau from which the p99 of `entry` stays above KNEE_MS on every later plateau (a
    one-plateau excursion, a cold start say, is not a knee), with the plateau before it."""

    def p99(p: Plateau) -> float | None:
        return p.push_p99 if entry == "push" else p.ack_p99

    ordered = [p for p in sorted(found, key=lambda p: (p.start, p.users)) if p99(p) is not None]
    for i, p in enumerate(ordered):
        if all((p99(q) or 0) > KNEE_MS for q in ordered[i:]):
            below = ordered[i - 1] if i else None
            return {
                "entry": entry,
                "users": p.users,
                "actionsPerS": p.actions_per_s,
                "p99Ms": p99(p),
                "lastBelow": None
                if below is None
                else {"users": below.users, "actionsPerS": below.actions_per_s, "p99Ms": p99(below)},
            }
    return None


def overall(timeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per entry: count, failures by cause, p50/p95/p99/max."""
    out: dict[str, dict[str, Any]] = {}
    for e in ENTRIES:
        values = [v for s in timeline.get("seconds", []) for v in s["ok"].get(e, [])]
        causes: dict[str, int] = {}
        for s in timeline.get("seconds", []):
            for cause, n in s["fail"].get(e, {}).items():
                causes[cause] = causes.get(cause, 0) + n
        out[e] = {
            "ok": len(values),
            "failures": causes,
            "p50": percentile(values, 50),
            "p95": percentile(values, 95),
            "p99": percentile(values, 99),
            "max": max(values) if values else None,
        }
    return out


def _nan(values: list[Any]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def plot(series: Series, shape: Shape, path: Path, title: str) -> None:
    """Four panels over the same time axis: load, latency, Lambda concurrency, stream."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(11, 12), sharex=True)
    t = series.t

    ax = axes[0]
    ax.plot(t, _nan(series.users), color="black", label="users")
    ax.set_ylabel("users")
    ax.set_ylim(bottom=0)
    twin = ax.twinx()
    twin.plot(t, series.rate["ack"], color="tab:blue", alpha=0.8, label="actions acked/s")
    twin.plot(t, series.rate["push"], color="tab:green", alpha=0.6, label="actions applied/s (state pushes)")
    if any(series.failures):
        twin.bar(t, series.failures, color="tab:red", alpha=0.4, width=1.0, label="failures/s")
    twin.set_ylabel("per second")
    twin.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = twin.get_legend_handles_labels()
    ax.legend(handles + more_handles, labels + more_labels, loc="upper left", fontsize=8)
    ax.set_title(title, fontsize=10)

    ax = axes[1]
    for entry, color in (("ack", "tab:blue"), ("push", "tab:green"), ("connect", "tab:purple")):
        values = _nan(series.p99[entry])
        if any(not math.isnan(v) for v in values):
            ax.plot(t, values, color=color, label=f"p99 {entry} ({WINDOW} s window)")
    ax.axhline(KNEE_MS, color="tab:red", linestyle="--", linewidth=1, label=f"{KNEE_MS:g} ms")
    ax.set_yscale("log")
    ax.set_ylabel("latency, ms")
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[2]
    if series.busy:
        colors = {
            "message": "tab:blue",
            "processor": "tab:orange",
            "authorizer": "tab:purple",
            "connect": "tab:brown",
        }
        for fn, color in colors.items():
            if fn not in series.busy:
                continue
            ax.step(t, _nan(series.busy[fn]), where="post", color=color, label=f"{fn}: concurrent executions")
            if fn in series.reserved:
                ax.step(
                    t,
                    _nan(series.environments[fn]),
                    where="post",
                    color=color,
                    linestyle=":",
                    label=f"{fn}: environments",
                )
                ax.axhline(
                    series.reserved[fn],
                    color=color,
                    linestyle="--",
                    linewidth=0.8,
                    alpha=0.6,
                    label=f"{fn}: reserved concurrency {series.reserved[fn]}",
                )
        throttled = {fn: v for fn, v in series.throttles.items() if fn in series.reserved and any(v)}
        if throttled:
            twin = ax.twinx()
            bottom = [0] * len(t)
            for fn, counts in sorted(throttled.items()):
                twin.bar(
                    t,
                    counts,
                    bottom=bottom,
                    color=colors.get(fn, "gray"),
                    alpha=0.3,
                    width=1.0,
                    label=f"{fn} throttles/s",
                )
                bottom = [a + b for a, b in zip(bottom, counts, strict=True)]
            twin.set_ylabel("throttles/s")
            twin.legend(loc="upper right", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize=7, ncol=2)
    else:
        ax.text(
            0.5,
            0.5,
            "no /local/metrics (a deployed stage): see CloudWatch ConcurrentExecutions",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.set_ylabel("Lambda concurrency")

    ax = axes[3]
    if any(v is not None for v in series.behind):
        ax.plot(t, _nan(series.behind), color="tab:orange", label="records behind (read, not yet applied)")
        ax.set_ylabel("records behind")
        ax.set_ylim(bottom=0)
        twin = ax.twinx()
        twin.plot(
            t, _nan(series.age), color="tab:gray", alpha=0.7, label="iterator age of the last batch, ms"
        )
        twin.set_ylabel("iterator age, ms")
        twin.set_ylim(bottom=0)
        twin.legend(loc="upper right", fontsize=8)
        ax.legend(loc="upper left", fontsize=8)
    elif series.lag:
        ax.plot(
            [x for x, _ in series.lag], _nan([y for _, y in series.lag]), label="streamLagMs (/admin/stats)"
        )
        ax.set_ylabel("stream lag, ms")
        ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel(
        "seconds since the start of the test (grey lines: the shape's stages; after the last, the drain)"
    )

    for stage in shape.stages:
        for a in axes:
            a.axvline(stage.until, color="black", alpha=0.15, linewidth=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def _mark(ok: bool | None) -> str:
    return {True: "PASS", False: "FAIL", None: "SKIP"}[ok]


def summary_markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# Load test `{summary['shape']}` — {'PASSED' if summary['passed'] else 'FAILED'}",
        "",
        f"- run id `{summary['runId']}`, {summary['startedAt']}, {summary['elapsedS']:.0f} s",
        f"- host `{summary['host']}`, admin `{summary['adminUrl']}`"
        + (f", DynamoDB engine `{summary['dynamodbEngine']}`" if summary.get("dynamodbEngine") else "")
        + "".join(f", {fn} windows {s} s" for fn, s in sorted((summary.get("windows") or {}).items())),
        f"- shape: {summary['shapeDescription']}",
        f"- machine: {summary['machine']}",
        "",
        "## Conservation",
        "",
        *[f"- **{_mark(c['ok'])}** {c['name']}: {c['detail']}" for c in summary["conservation"]["checks"]],
        "",
    ]
    if summary.get("faults"):
        from loadtest.faults import markdown

        lines += [*markdown(summary["faults"])[1:], ""]
    lines += [
        "## Requests",
        "",
        "| entry | ok | failures | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, o in summary["requests"].items():
        fails = ", ".join(f"{k} {v}" for k, v in o["failures"].items()) or "0"
        cells = [name, o["ok"], fails, *(_ms(o[k]) for k in ("p50", "p95", "p99", "max"))]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    backend = summary.get("backend") or {}
    if backend:
        lines += [
            "",
            "## Backend (local metrics)",
            "",
            "| function | reserved | peak busy | environments | cold starts | throttles | p99 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for fn, b in backend.get("functions", {}).items():
            lines.append(
                f"| {fn} | {b.get('reservedConcurrency') or '-'} | {b['peakBusy']} | {b['environments']} | "
                f"{b['coldStarts']} | {b['throttles']} | {_ms(b.get('p99Ms'))} |"
            )
        s = backend.get("stream", {})
        lines += [
            "",
            f"Stream: at most {s.get('maxBehind')} records behind, "
            f"iterator age up to {_ms(s.get('maxAgeMs'))} ms, "
            f"{s.get('batches')} batches (largest {s.get('maxBatchSize')}), {s.get('retries')} retries. "
            f"Throttling of synchronous invocations: {'on' if backend.get('throttling') else 'off'}.",
        ]
    lines += [
        "",
        "## Plateaus",
        "",
        "Each plateau after its first third (the ramp to it); the last two columns over the whole stage,",
        "the ramp and its new environments included.",
        "",
        "| users | seconds | actions/s | ack p50 | ack p99 | acks failed | push p50 | push p99 | failures "
        "| whole stage: push p99 | acks failed |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in summary["plateaus"]:
        cells = [p["users"], f"{p['start']:.0f}-{p['end']:.0f}", p["actions_per_s"]]
        cells += [_ms(p["ack_p50"]), _ms(p["ack_p99"]), f"{p.get('ack_failed_pct', 0)} %"]
        cells += [_ms(p["push_p50"]), _ms(p["push_p99"]), p["failures"]]
        cells += [_ms(p.get("whole_push_p99")), f"{p.get('whole_ack_failed_pct', 0)} %"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    knees = (("kneePush", "action->state push"), ("kneeAck", "ack")) if summary["shape"] == "ramp" else ()
    for key, label in knees:
        k = summary.get(key)
        if k:
            below = k.get("lastBelow")
            lines.append(
                f"\nKnee ({label} p99 > {KNEE_MS:g} ms): {k['users']} users, {k['actionsPerS']} actions/s "
                f"(p99 {k['p99Ms']:.0f} ms)"
                + (
                    f"; last plateau under it: {below['users']} users, {below['actionsPerS']} actions/s, "
                    f"p99 {below['p99Ms']:.0f} ms"
                    if below
                    else ""
                )
            )
        else:
            lines.append(f"\nKnee ({label}): p99 did not stay above {KNEE_MS:g} ms up to the last plateau.")
    lines += ["", "## Files", "", *[f"- `{f}`" for f in summary["files"]], ""]
    return "\n".join(lines)
