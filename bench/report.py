"""Turns the raw results of bench/run.py into figures (per action, per million, ratios, targets) and
the markdown table that docs/performance.md includes."""

from __future__ import annotations

import statistics
from typing import Any

from bench import cost, counting

PROCESSOR_VARIANTS = ("current", "baseline")
TARGET_WRITES_PER_ACTION = 0.1
TARGET_REQUEST_RATIO = 10.0
TARGET_COLD_RATIO = 1.5
TARGET_FANOUT_RATIO = 10.0
# The real-time targets (issue 11): latency on the local stack, write units and cost per action.
TARGET_DUEL_P50_MS = 30.0
TARGET_DUEL_P99_MS = 100.0
TARGET_LOADED_P99_MS = 150.0
LOADED_BOTS = 32
BEFORE_DUEL_WRU_PER_1000 = 3228.0  # the live duel workload before the hot/cold split (2026-11-23)
TARGET_WRU_FACTOR = 5.0
TARGET_COST_PER_MILLION = 4.00


# --- analysis --------------------------------------------------------------------------------------


def _log_bytes_per_invocation(cases: list[dict[str, Any]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for variant in (*PROCESSOR_VARIANTS, "message"):
        picked = [c for c in cases if c["variant"] == variant and c["invocations"]]
        if picked:
            out[variant] = sum(c["log_bytes"] for c in picked) / sum(c["invocations"] for c in picked)
    return out


def replay_rows(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for c in cases:
        hot = counting.parse(c["calls"])
        cold = counting.parse(c.get("cold_calls") or {})
        calls = counting.parse(counting.merge(c["calls"], c.get("cold_calls") or {}))
        actions = c["invocations"] if c["variant"] == "message" else c["records"]
        rows.append(
            {
                "variant": c["variant"],
                "mode": c["mode"],
                "concurrent_matches": c["concurrent"],
                "batch": c["batch"],
                "records": actions,
                "matches": c["matches"],
                "invocations": c["invocations"],
                # Hot and cold path together (what the baseline does in one), and each apart.
                "per_action": {k: round(v, 4) for k, v in counting.per_action(calls, actions).items()},
                "per_action_hot": {k: round(v, 4) for k, v in counting.per_action(hot, actions).items()},
                "per_action_cold": {k: round(v, 4) for k, v in counting.per_action(cold, actions).items()},
                "window_s": c.get("window_s"),
                "cold_invocations": c.get("cold_invocations", 0),
                "cold_cpu_ms_per_record": round(c.get("cold_cpu_ms", 0.0) / max(1, actions), 3),
                "per_1000_by_call": counting.per_thousand(calls.by_call, actions),
                "cpu_ms_per_record": round(sum(c["cpu_ms"]) / actions, 3),
                "wall_ms_per_record": round(sum(c["wall_ms"]) / actions, 3),
                "cpu_ms_per_invocation_p50": round(statistics.median(c["cpu_ms"]), 3),
                "log_bytes_per_invocation": round(c["log_bytes"] / max(1, c["invocations"]), 1),
            }
        )
    return rows


def phase_totals(
    phase: dict[str, Any],
    memory: dict[str, int],
    log_bytes: dict[str, float],
    record_bytes: float,
    variant: str,
    sampling: float,
) -> cost.RunTotals:
    merged = counting.merge(*phase["calls"].values())
    calls = counting.parse(merged)
    actions = counting.parse(phase["calls"].get("message", {})).by_call.get("kinesis.PutRecord", 0)
    invocations = {fn: len(d) for fn, d in phase["durations_ms"].items() if d}
    fallback = log_bytes.get("message", 0.0)
    per_fn_log = {fn: log_bytes.get(variant if fn == "processor" else fn, fallback) for fn in invocations}
    return cost.RunTotals(
        actions=actions,
        invocations=invocations,
        gb_seconds=sum(cost.gb_seconds(phase["durations_ms"][fn], memory[fn]) for fn in invocations),
        rru=calls.read_units,
        wru=calls.write_units,
        stream_records=actions,
        record_bytes=record_bytes,
        inbound_frames=invocations.get("message", 0),
        posts=calls.by_call.get("apigatewaymanagementapi.PostToConnection", 0),
        connection_minutes=phase["players"] * phase["played_s"] / 60,
        sqs_requests=calls.total("sqs"),
        log_bytes=sum(n * per_fn_log[fn] for fn, n in invocations.items()),
        xray_sampling=sampling,
    )


def pooled(totals: list[cost.RunTotals]) -> cost.RunTotals:
    invocations: dict[str, int] = {}
    for t in totals:
        for fn, n in t.invocations.items():
            invocations[fn] = invocations.get(fn, 0) + n
    return cost.RunTotals(
        actions=sum(t.actions for t in totals),
        invocations=invocations,
        gb_seconds=sum(t.gb_seconds for t in totals),
        rru=sum(t.rru for t in totals),
        wru=sum(t.wru for t in totals),
        stream_records=sum(t.stream_records for t in totals),
        record_bytes=totals[0].record_bytes,
        inbound_frames=sum(t.inbound_frames for t in totals),
        posts=sum(t.posts for t in totals),
        connection_minutes=sum(t.connection_minutes for t in totals),
        sqs_requests=sum(t.sqs_requests for t in totals),
        log_bytes=sum(t.log_bytes for t in totals),
        xray_sampling=totals[0].xray_sampling,
    )


def live_rows(
    live: dict[str, Any], log_bytes: dict[str, float], record_bytes: float, prices: dict[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sampling = prices["xray"]["default_sampling"]
    for variant, run in live.items():
        phases = []
        totals = []
        for phase in run["phases"]:
            t = phase_totals(phase, run["memory_mb"], log_bytes, record_bytes, variant, sampling)
            totals.append(t)
            calls = counting.parse(counting.merge(*phase["calls"].values()))
            processor = phase["durations_ms"].get("processor") or [0.0]
            phases.append(
                {
                    "mode": phase["mode"],
                    "players": phase["players"],
                    "actions": t.actions,
                    "acts_sent": phase["bots"]["sent"],
                    "batches": phase["batches"],
                    "mean_batch": round(phase["records"] / max(1, phase["batches"]), 1),
                    "drained": phase["drained"],
                    "drain_s": phase["drain_s"],
                    "bots": {k: phase["bots"][k] for k in ("applied", "rejected", "lost", "latency_ms")},
                    "per_action": {k: round(v, 4) for k, v in counting.per_action(calls, t.actions).items()},
                    "per_1000_by_call": counting.per_thousand(calls.by_call, t.actions),
                    "per_1000_by_table": counting.per_thousand(calls.by_table, t.actions),
                    # Write units per 1,000 actions of each function: the hot path (message, processor)
                    # and the cold path (projector) apart.
                    "wru_per_1000_by_function": {
                        fn: round(1000 * counting.parse(c).write_units / max(1, t.actions), 1)
                        for fn, c in sorted(phase["calls"].items())
                        if counting.parse(c).write_units
                    },
                    "errors": calls.errors,
                    "processor_ms": {
                        "mean": round(statistics.fmean(processor), 1),
                        "p50": round(statistics.median(processor), 1),
                    },
                    "cost_per_million": _rounded(cost.per_million(cost.usage_of(t), prices)),
                }
            )
        total = pooled(totals)
        usage = cost.usage_of(total)
        out[variant] = {
            "phases": phases,
            "pooled": {
                "actions": total.actions,
                "usage_per_action": {k: round(v, 9) for k, v in usage.as_dict().items()},
                "cost_per_million": _rounded(cost.per_million(usage, prices)),
            },
        }
    return out


def _rounded(costs: dict[str, float]) -> dict[str, float]:
    out = {k: round(v, 4) for k, v in costs.items()}
    out["total"] = round(sum(costs.values()), 4)
    return out


def _live_by_mode(analysis: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """(current, baseline) live phases of the 2-8 player modes."""
    live = analysis.get("live") or {}
    if not all(v in live for v in PROCESSOR_VARIANTS):
        return {}
    base = {p["mode"]: p for p in live["baseline"]["phases"]}
    return {
        p["mode"]: (p, base[p["mode"]])
        for p in live["current"]["phases"]
        if p["mode"] in ("duel", "arena") and p["mode"] in base
    }


def _ratio(baseline: dict[str, Any], current: dict[str, Any]) -> float:
    return float(baseline["per_action"]["dynamodb_requests"] / current["per_action"]["dynamodb_requests"])


def targets(analysis: dict[str, Any], results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = analysis["replay"]
    out = []
    full = [
        r for r in rows if r["variant"] == "current" and r["batch"] >= 100 and r["mode"] in ("duel", "arena")
    ]
    writes = {f"{r['mode']} B={r['batch']}": r["per_action"]["dynamodb_writes"] for r in full}
    live = _live_by_mode(analysis)
    live_writes = ", ".join(
        f"{mode} {cur['per_action']['dynamodb_writes']:.2f} (mean batch {cur['mean_batch']:g})"
        for mode, (cur, _) in live.items()
    )
    out.append(
        {
            "target": f"<= {TARGET_WRITES_PER_ACTION} DynamoDB write requests per action "
            "(batch >= 100, 2-8 players)",
            "measured": "replay "
            + ", ".join(f"{k}: {v:.3f}" for k, v in writes.items())
            + (f"; live bots: {live_writes}" if live else ""),
            "met": bool(writes) and all(v <= TARGET_WRITES_PER_ACTION for v in writes.values()),
        }
    )
    baseline = {r["mode"]: r["per_action"]["dynamodb_requests"] for r in rows if r["variant"] == "baseline"}
    ratios = {
        f"{r['mode']} B={r['batch']}": baseline[r["mode"]] / r["per_action"]["dynamodb_requests"]
        for r in full
        if r["mode"] in baseline and r["per_action"]["dynamodb_requests"]
    }
    out.append(
        {
            "target": f">= {TARGET_REQUEST_RATIO:g}x fewer DynamoDB requests than the baseline "
            "(batch >= 100, 2-8 players)",
            "measured": "replay "
            + ", ".join(f"{k}: {v:.1f}x" for k, v in ratios.items())
            + (
                "; live bots: "
                + ", ".join(f"{mode} {_ratio(base, cur):.1f}x" for mode, (cur, base) in live.items())
                if live
                else ""
            ),
            "met": bool(ratios) and all(v >= TARGET_REQUEST_RATIO for v in ratios.values()),
        }
    )
    out += _realtime_targets(analysis, results)
    cold = results["cold_start"]
    labels = (
        ("cached", "with bytecode caches"),
        ("deployed", "with checked-hash bytecode, as deployed"),
        ("source", "from source, no bytecode at all"),
    )
    for mode, label in ((m, label) for m, label in labels if m in cold):
        handlers = {k: v for k, v in cold[mode].items() if k != "boto3 (alone)"}
        worst = max(handlers.items(), key=lambda kv: kv[1]["vs_boto3"])
        out.append(
            {
                "target": f"cold start: no handler over {TARGET_COLD_RATIO}x boto3's import time ({label})",
                "measured": f"worst {worst[0]} {worst[1]['vs_boto3']:.2f}x "
                f"({worst[1]['median_ms']:.0f} ms vs {cold[mode]['boto3 (alone)']['median_ms']:.0f} ms)",
                "met": worst[1]["vs_boto3"] <= TARGET_COLD_RATIO,
            }
        )
    fan = results["fanout"]["gateway"]
    standin = results["fanout"]["standin"]
    out.append(
        {
            "target": f"fan-out to {fan['connections']} connections: concurrent >= "
            f"{TARGET_FANOUT_RATIO:g}x faster than sequential",
            "measured": f"{fan['ratio']:.1f}x on the local gateway (stand-in with "
            f"{standin['delay_ms']:g} ms latency: {standin['ratio']:.1f}x)",
            "met": fan["ratio"] >= TARGET_FANOUT_RATIO,
        }
    )
    return out


def _realtime_targets(analysis: dict[str, Any], results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    # Judged on the default engine (moto); DynamoDB Local's rows are shown beside them in section 4.
    by_bots = {
        t["players"]: t
        for t in results.get("stack", {}).get("throughput", [])
        if t.get("engine", "moto") == "moto"
    }
    duel = by_bots.get(2)
    if duel is not None:
        lat = duel["latency_ms"]
        out.append(
            {
                "target": f"2 bots in one duel: action->state p50 <= {TARGET_DUEL_P50_MS:g} ms, "
                f"p99 <= {TARGET_DUEL_P99_MS:g} ms (local stack)",
                "measured": f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, {duel['lost']} lost",
                "met": lat["p50"] is not None
                and lat["p50"] <= TARGET_DUEL_P50_MS
                and lat["p99"] <= TARGET_DUEL_P99_MS
                and duel["lost"] == 0,
            }
        )
    loaded = by_bots.get(LOADED_BOTS)
    if loaded is not None:
        lat = loaded["latency_ms"]
        out.append(
            {
                "target": f"{LOADED_BOTS} bots at the bots' default pace: "
                f"p99 <= {TARGET_LOADED_P99_MS:g} ms, nothing lost",
                "measured": f"p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, {loaded['lost']} lost, "
                f"{loaded['actions_per_s']:g} actions applied/s",
                "met": lat["p99"] is not None and lat["p99"] <= TARGET_LOADED_P99_MS and loaded["lost"] == 0,
            }
        )
    live = analysis.get("live", {}).get("current")
    if live:
        duels = [p for p in live["phases"] if p["mode"] == "duel"]
        if duels:
            p = duels[0]
            wru = 1000 * p["per_action"]["dynamodb_wru"]
            limit = BEFORE_DUEL_WRU_PER_1000 / TARGET_WRU_FACTOR
            split = ", ".join(f"{fn} {v:,.0f}" for fn, v in p["wru_per_1000_by_function"].items())
            out.append(
                {
                    "target": "DynamoDB write units per 1,000 actions, live duels: "
                    f">= {TARGET_WRU_FACTOR:g}x below {BEFORE_DUEL_WRU_PER_1000:,.0f} (<= {limit:,.0f})",
                    "measured": f"{wru:,.0f} ({split}; mean batch {p['mean_batch']:g})",
                    "met": wru <= limit,
                }
            )
        total = live["pooled"]["cost_per_million"]["total"]
        out.append(
            {
                "target": f"estimated cost per million actions below ${TARGET_COST_PER_MILLION:.2f}",
                "measured": f"${total:.2f}",
                "met": total < TARGET_COST_PER_MILLION,
            }
        )
    return out


def analyse(results: dict[str, Any]) -> dict[str, Any]:
    prices = cost.load_prices()
    cases = results["replay"]["cases"]
    log_bytes = _log_bytes_per_invocation(cases)
    record_bytes = statistics.fmean(c["record_bytes"] for c in cases)
    analysis: dict[str, Any] = {
        "prices_as_of": prices["as_of"],
        "log_bytes_per_invocation": {k: round(v, 1) for k, v in log_bytes.items()},
        "record_bytes": round(record_bytes, 1),
        "replay": replay_rows(cases),
        "live": live_rows(results["live"], log_bytes, record_bytes, prices),
    }
    analysis["targets"] = targets(analysis, results)
    return analysis


# --- markdown --------------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _f(value: float, digits: int = 2) -> str:
    return f"{value:,.{digits}f}"


def render(results: dict[str, Any]) -> str:
    a = results["analysis"]
    m = results["machine"]
    out: list[str] = ["# Benchmark results", ""]
    out.append(
        f"Run {results['date']} with `make bench` ({results['elapsed_s']:.0f} s) on {m['cores']} cores of "
        f"{m['cpu']}, {m['memory_gb']} GB RAM, {m['os']}, Python {m['python']}. Load average (1, 5, 15 min) "
        f"before: {', '.join(map(str, m['load_before']))}; after: {', '.join(map(str, m['load_after']))}. "
        f"Prices as of {a['prices_as_of']} (bench/prices.toml). Absolute times are indicative on a shared "
        "machine; counts are exact and ratios come from the same run."
        + (" **Quick run: sizes too small to quote.**" if results.get("quick") else "")
    )
    out += ["", "## Targets", ""]
    out.append(
        _table(
            ["target", "measured", "met"],
            [[t["target"], t["measured"], "yes" if t["met"] else "**no**"] for t in a["targets"]],
        )
    )

    # 1. calls per 1,000 actions, live
    out += ["", "## 1. AWS calls per 1,000 actions (bots on the local stack, every call counted)", ""]
    live = a["live"]
    header = [
        "mode (bots)",
        "processor",
        "actions",
        "rejected",
        "mean batch",
        "DynamoDB requests",
        "reads",
        "writes",
        "RRU",
        "WRU",
        "Kinesis puts",
        "posts",
    ]
    rows = []
    for variant in PROCESSOR_VARIANTS:
        for p in live[variant]["phases"]:
            pa = p["per_action"]
            rows.append(
                [
                    f"{p['mode']} ({p['players']})",
                    variant,
                    int(p["actions"]),
                    f"{100 * p['bots']['rejected'] / max(1, p['acts_sent']):.0f}%",
                    p["mean_batch"],
                    _f(1000 * pa["dynamodb_requests"], 0),
                    _f(1000 * pa["dynamodb_reads"], 0),
                    _f(1000 * pa["dynamodb_writes"], 0),
                    _f(1000 * pa["dynamodb_rru"], 0),
                    _f(1000 * pa["dynamodb_wru"], 0),
                    _f(1000 * pa["kinesis_puts"], 0),
                    _f(1000 * pa["posts"], 0),
                ]
            )
    out.append(_table(header, rows))
    out += ["", "By operation, per 1,000 actions (all functions; DynamoDB calls of every table):", ""]
    ops = sorted({op for v in PROCESSOR_VARIANTS for p in live[v]["phases"] for op in p["per_1000_by_call"]})
    cols = [(v, p) for v in PROCESSOR_VARIANTS for p in live[v]["phases"]]
    out.append(
        _table(
            ["operation", *[f"{p['mode']} {v}" for v, p in cols]],
            [[op, *[_f(p["per_1000_by_call"].get(op, 0), 1) for _, p in cols]] for op in ops],
        )
    )

    out += [
        "",
        "Write units per 1,000 actions, by function (current; the hot path is message + processor, the cold "
        "path the projector):",
        "",
    ]
    fns = sorted({fn for p in live["current"]["phases"] for fn in p.get("wru_per_1000_by_function", {})})
    out.append(
        _table(
            ["mode (bots)", *fns],
            [
                [
                    f"{p['mode']} ({p['players']})",
                    *[_f(p["wru_per_1000_by_function"].get(fn, 0), 0) for fn in fns],
                ]
                for p in live["current"]["phases"]
            ],
        )
    )

    # replay
    out += ["", "## 1b. The same records at fixed batch sizes (replay), and 6. processor CPU per record", ""]
    windows = sorted({r["window_s"] for r in a["replay"] if r.get("window_s")})
    if windows:
        out.append(
            f"The current processor's rows count the hot path and the projector's cold path together "
            f"(hot + cold in brackets); the projector took the table's stream in {windows[0]} s windows of "
            "the records' receive times (the workload puts 200 records a second)."
        )
        out.append("")
    rows = []
    for r in a["replay"]:
        if r["variant"] == "message":
            continue
        pa = r["per_action"]
        hot, cold = r.get("per_action_hot") or {}, r.get("per_action_cold") or {}

        def split(key: str, digits: int, hot: dict[str, Any] = hot, cold: dict[str, Any] = cold) -> str:
            if not cold or not any(cold.values()):
                return ""
            return f" ({_f(hot[key], digits)} + {_f(cold[key], digits)})"

        rows.append(
            [
                r["mode"],
                r["variant"],
                r["batch"],
                f"{r['records']} ({r['concurrent_matches']})",
                _f(pa["dynamodb_requests"], 3) + split("dynamodb_requests", 3),
                _f(pa["dynamodb_writes"], 3) + split("dynamodb_writes", 3),
                _f(pa["dynamodb_wru"], 2) + split("dynamodb_wru", 2),
                _f(pa["posts"], 2),
                _f(r["cpu_ms_per_record"], 2),
                _f(r["wall_ms_per_record"], 1),
            ]
        )
    out.append(
        _table(
            [
                "mode",
                "processor",
                "batch",
                "records (matches in play)",
                "DynamoDB req/action",
                "writes/action",
                "WRU/action",
                "posts/action",
                "CPU ms/record",
                "wall ms/record",
            ],
            rows,
        )
    )
    msg = next((r for r in a["replay"] if r["variant"] == "message"), None)
    if msg:
        out += [
            "",
            f"Message function, per `act`: {_f(msg['per_action']['dynamodb_requests'], 2)} DynamoDB request, "
            f"{_f(msg['per_action']['kinesis_puts'], 2)} PutRecord, "
            f"{_f(msg['cpu_ms_per_invocation_p50'], 2)} ms CPU (median), "
            f"{msg['log_bytes_per_invocation']:.0f} bytes of log.",
        ]

    # 2. cost
    out += [
        "",
        "## 2. Estimated AWS cost per million actions (USD, from the live runs, all modes pooled)",
        "",
    ]
    services = list(live["current"]["pooled"]["cost_per_million"])
    out.append(
        _table(
            ["service", "current", "baseline"],
            [
                [
                    s if s != "total" else "**total**",
                    _f(live["current"]["pooled"]["cost_per_million"][s], 2),
                    _f(live["baseline"]["pooled"]["cost_per_million"][s], 2),
                ]
                for s in services
            ],
        )
    )
    out += ["", "Per mode (total USD per million actions):", ""]
    out.append(
        _table(
            ["mode", "current", "baseline"],
            [
                [p["mode"], _f(p["cost_per_million"]["total"], 2), _f(b["cost_per_million"]["total"], 2)]
                for p, b in zip(live["current"]["phases"], live["baseline"]["phases"], strict=True)
            ],
        )
    )

    # 3. cold start
    cold = results["cold_start"]
    out += [
        "",
        f"## 3. Cold start: import time in a fresh interpreter (median of {cold['runs']}; "
        f"from source: of {cold['source_runs']})",
        "",
    ]
    modes = [m for m in ("cached", "deployed", "source") if m in cold]
    heads = {"cached": "cached ms", "deployed": "deployed ms", "source": "from source ms"}
    out.append(
        _table(
            [
                "module",
                *(h for m in modes for h in (heads[m], "x boto3")),
                "heaviest third-party imports (ms, cached)",
            ],
            [
                [
                    f"{name} (`{v['module']}`)",
                    *(
                        cell
                        for m in modes
                        for cell in (_f(cold[m][name]["median_ms"], 0), _f(cold[m][name]["vs_boto3"], 2))
                    ),
                    ", ".join(f"{p} {ms:.0f}" for p, ms in cold["heaviest"].get(name, [])),
                ]
                for name, v in cold["cached"].items()
            ],
        )
    )

    # 4. stack
    stack = results["stack"]
    g = stack["gateway_overhead"]
    out += ["", "## 4. Local stack: throughput, latency, gateway overhead", ""]
    out.append(_table(*throughput_side_by_side(stack)))
    out += [
        "",
        "The same bots on the same stack, the tables on moto or on DynamoDB Local (AWS's engine): "
        "throughput, action->state latency, actions lost.",
    ]
    for engine, status in stack.get("engines", {}).items():
        if status != "measured":
            out.append(f"{ENGINE_NAMES.get(engine, engine)}: {status}.")
    out += [
        "",
        f"`ping` round trip ({g['pings']} pings): local gateway + Lambda worker p50 "
        f"{_f(g['gateway_ms']['p50'], 2)} ms "
        f"(p99 {_f(g['gateway_ms']['p99'], 2)}), bare `websockets` echo p50 {_f(g['echo_ms']['p50'], 2)} ms "
        f"(p99 {_f(g['echo_ms']['p99'], 2)}): **{g['ratio_p50']}x**.",
    ]

    # 5. fan-out
    fan = results["fanout"]
    out += ["", "## 5. Fan-out: one update to N connections", ""]
    out.append(
        _table(
            ["target", "connections", "sequential boto3 s", "concurrent aiobotocore s", "ratio", "delivered"],
            [
                [
                    "local gateway, real sockets",
                    fan["gateway"]["connections"],
                    _f(fan["gateway"]["sequential_median_s"], 2),
                    _f(fan["gateway"]["concurrent_median_s"], 2),
                    f"{fan['gateway']['ratio']}x",
                    f"{fan['gateway']['delivered']}/{fan['gateway']['expected_deliveries']}",
                ],
                [
                    f"stand-in, {fan['standin']['delay_ms']:g} ms per post",
                    fan["standin"]["connections"],
                    _f(fan["standin"]["sequential_median_s"], 2),
                    _f(fan["standin"]["concurrent_median_s"], 2),
                    f"{fan['standin']['ratio']}x",
                    "-",
                ],
            ],
        )
    )
    out += [
        "",
        "Section times (s): " + ", ".join(f"{k} {v:g}" for k, v in results["section_seconds"].items()) + ".",
        "",
    ]
    return "\n".join(out)


ENGINE_NAMES = {"moto": "moto", "local": "DynamoDB Local"}


def throughput_side_by_side(stack: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """One row per bot count, each figure once per engine, next to each other."""
    phases = stack["throughput"]
    engines = [e for e in ENGINE_NAMES if any(t.get("engine", "moto") == e for t in phases)]
    by = {(t.get("engine", "moto"), t["players"]): t for t in phases}
    headers = ["bots (duel)"]
    for label in ("actions applied/s", "p50 ms", "p99 ms", "lost", "batches"):
        headers += [f"{label} {ENGINE_NAMES[e]}" for e in engines]
    rows: list[list[Any]] = []
    for players in sorted({t["players"] for t in phases}):
        cells = [by.get((e, players)) for e in engines]
        row: list[Any] = [players]
        row += [_f(t["actions_per_s"], 1) if t else "-" for t in cells]
        row += [_f(t["latency_ms"]["p50"] or 0, 0) if t else "-" for t in cells]
        row += [_f(t["latency_ms"]["p99"] or 0, 0) if t else "-" for t in cells]
        row += [t["lost"] if t else "-" for t in cells]
        row += [t["processor_batches"] if t else "-" for t in cells]
        rows.append(row)
    return headers, rows


def for_docs(markdown: str) -> str:
    """The results without their title, one heading level down, for docs/performance.md."""
    lines = markdown.splitlines()
    body = lines[2:] if lines and lines[0].startswith("# ") else lines
    return "\n".join(("#" + line) if line.startswith("## ") else line for line in body).strip()
