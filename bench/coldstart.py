"""Cold start: how long importing each handler module takes in a fresh interpreter, against boto3 alone.

Each figure is the median of N fresh interpreters, the modules taken in turn (round robin), so a drift
in the machine's speed hits them all alike. The environment is a Lambda's (AWS_LAMBDA_FUNCTION_NAME and
LAMBDA_TASK_ROOT set, tracing on, each function's TRACE_DOWNSTREAM as serverless.yml deploys it), so
powertools and the tracer import what they import on AWS. Three ways:

- `cached`: with the bytecode caches of the virtualenv (what a developer's machine does);
- `source`: with no bytecode cache at all (PYTHONPYCACHEPREFIX at an empty directory, nothing written):
  what a package without bytecode pays, standard library included;
- `deployed`: with checked-hash bytecode for every module of the project and its dependencies, and the
  standard library's own (timestamp) bytecode, in a private PYTHONPYCACHEPREFIX: how the deployed
  package and layer start (tools/bytecode.cjs compiles them for the runtime's version; here the
  local interpreter's stands in).

`python -X importtime` of each handler then names the imports that cost the most.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from typing import Any

from local import slsconfig
from local.runtime import ROOT

SNIPPET = (
    "import importlib, sys, time\n"
    "t = time.perf_counter()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print((time.perf_counter() - t) * 1000)\n"
)


def handler_modules() -> dict[str, str]:
    """function name -> handler module, from serverless.yml."""
    service = slsconfig.load(ROOT / "serverless.yml", "dev")
    return {name: fn.handler.split(":")[0] for name, fn in service.functions.items()}


def lambda_env(function: str | None = None) -> dict[str, str]:
    """A Lambda's environment; for `function`, with its TRACE_DOWNSTREAM as serverless.yml sets it."""
    keep = {"PATH", "HOME", "LANG", "LC_ALL", "TMPDIR"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": "gamebackend-dev-bench",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "POWERTOOLS_SERVICE_NAME": "gamebackend",
            "POWERTOOLS_METRICS_NAMESPACE": "GameBackend",
            "POWERTOOLS_LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
        }
    )
    if function is not None:
        service = slsconfig.load(ROOT / "serverless.yml", "dev")
        env["TRACE_DOWNSTREAM"] = str(service.functions[function].environment.get("TRACE_DOWNSTREAM", ""))
    return env


def import_ms(module: str, env: dict[str, str], *, cached: bool, prefix: str | None = None) -> float:
    """One fresh interpreter's import of `module`: with the venv's caches (`cached`), with the bytecode
    in `prefix`, or with none."""
    env = dict(env)
    with tempfile.TemporaryDirectory() as empty:
        if not cached:
            env.update({"PYTHONPYCACHEPREFIX": prefix or empty, "PYTHONDONTWRITEBYTECODE": "1"})
        out = subprocess.run(
            [sys.executable, "-c", SNIPPET, module],
            env=env,
            cwd=str(ROOT),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    return float(out.stdout.strip().splitlines()[-1])


PROJECT = ("backend", "streams", "games", "local", "clients", "bench")

_LOADED = (
    "import importlib, json, sys\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(json.dumps([getattr(m, '__file__', None) for m in list(sys.modules.values())]))\n"
)
_COMPILE = (
    "import json, py_compile, sys, sysconfig\n"
    "stdlib = sysconfig.get_paths()['stdlib']\n"
    "for f in json.load(sys.stdin):\n"
    "    mode = py_compile.PycInvalidationMode\n"
    "    own = not f.startswith(stdlib) or 'site-packages' in f\n"
    "    py_compile.compile(f, invalidation_mode=mode.CHECKED_HASH if own else mode.TIMESTAMP)\n"
)


def deployed_bytecode(modules: dict[str, tuple[str, dict[str, str]]], prefix: str) -> int:
    """Compiles, into `prefix` (a PYTHONPYCACHEPREFIX), every source module that importing each of
    `modules` (name -> (module, env)) loads: checked-hash as tools/bytecode.cjs does for the package and
    the layer, timestamp for the standard library as the runtime ships it. Returns the count."""
    files: set[str] = set()
    for module, env in modules.values():
        out = subprocess.run(
            [sys.executable, "-c", _LOADED, module],
            env={**env, "PYTHONPYCACHEPREFIX": prefix, "PYTHONDONTWRITEBYTECODE": "1"},
            cwd=str(ROOT),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        files |= {f for f in json.loads(out.stdout.strip().splitlines()[-1]) if f and f.endswith(".py")}
    subprocess.run(
        [sys.executable, "-c", _COMPILE],
        input=json.dumps(sorted(files)),
        env={**os.environ, "PYTHONPYCACHEPREFIX": prefix},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return len(files)


def parse_importtime(stderr: str) -> list[tuple[str, float, str | None]]:
    """(module, cumulative ms, the module whose import started it) for each line of -X importtime."""
    rows: list[tuple[str, float, str | None]] = []
    pending: list[tuple[int, int]] = []  # (depth, index in rows) of lines whose parent is not known yet
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        depth = (len(m.group(2)) - 1) // 2
        rows.append((m.group(3), int(m.group(1)) / 1000, None))
        index = len(rows) - 1
        while pending and pending[-1][0] > depth:  # printed before their parent: they are its children
            child = pending.pop()[1]
            rows[child] = (rows[child][0], rows[child][1], m.group(3))
        pending.append((depth, index))
    return rows


def heaviest_imports(
    module: str, env: dict[str, str], top: int = 4, runs: int = 3
) -> list[tuple[str, float]]:
    """The third-party packages the project's modules import that cost the most (-X importtime,
    cumulative, with bytecode caches, the least of `runs` interpreters): where a lazy import would pay off."""
    best: dict[str, float] = {}
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", f"import {module}"],
            env=env,
            cwd=str(ROOT),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        costs: dict[str, float] = {}
        for name, ms, parent in parse_importtime(out.stderr):
            package = name.split(".")[0]
            if parent is None or parent.split(".")[0] not in PROJECT or package in PROJECT:
                continue
            costs[package] = round(costs.get(package, 0.0) + ms, 1)
        for package, ms in costs.items():
            best[package] = min(best.get(package, ms), ms)
    return sorted(best.items(), key=lambda kv: -kv[1])[:top]


def measure(runs: int = 10, source_runs: int = 10) -> dict[str, Any]:
    modules = {"boto3 (alone)": ("boto3", lambda_env())}
    modules |= {name: (module, lambda_env(name)) for name, module in handler_modules().items()}
    result: dict[str, Any] = {"runs": runs, "source_runs": source_runs, "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory(prefix="bench-bytecode-") as prefix:
        result["deployed_modules"] = deployed_bytecode(modules, prefix)
        for mode, n in (("cached", runs), ("deployed", runs), ("source", source_runs)):
            samples: dict[str, list[float]] = {name: [] for name in modules}
            for i in range(n):
                names = list(modules)
                names = names[i % len(names) :] + names[: i % len(names)]
                for name in names:
                    module, env = modules[name]
                    at = prefix if mode == "deployed" else None
                    samples[name].append(import_ms(module, env, cached=mode == "cached", prefix=at))
            medians = {name: statistics.median(v) for name, v in samples.items()}
            boto3 = medians["boto3 (alone)"]
            result[mode] = {
                name: {
                    "module": modules[name][0],
                    "median_ms": round(ms, 1),
                    "min_ms": round(min(samples[name]), 1),
                    "max_ms": round(max(samples[name]), 1),
                    "vs_boto3": round(ms / boto3, 2),
                }
                for name, ms in medians.items()
            }
    result["heaviest"] = {
        name: heaviest_imports(module, lambda_env(name)) for name, module in handler_modules().items()
    }
    return result
