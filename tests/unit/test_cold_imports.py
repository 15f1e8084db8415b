"""What importing a handler module loads, in a fresh interpreter with the function's environment as
deployed (serverless.yml's dev stage: tracing on, each function's TRACE_DOWNSTREAM), and what SnapStart's
before-snapshot hooks then load. Not timed: `make bench` measures the time (bench/coldstart.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from local import slsconfig
from local.runtime import ROOT

# Never at import, in any function: each is a request's (or SnapStart's) business, or not needed at all.
HEAVY = (
    "aws_xray_sdk",  # only by the first traced invocation, where TRACE_DOWNSTREAM is true
    "wrapt",
    "requests",
    "boto3",
    "botocore.session",
    "botocore.client",
    "aiobotocore",
    "aiohttp",
    "jwt",
    "cryptography",
    "aws_lambda_powertools.event_handler.openapi.models",  # the admin's /admin/openapi.json only
    "aws_lambda_powertools.utilities.parameters",
    "backend.actions",  # the message route's game modules: not for `ping`
)
# And where a function needs nothing of pydantic at all ($disconnect puts a GameEvent on the stream).
WITHOUT_PYDANTIC = {"authorizer", "connect"}
# What only some of a function's routes use: loaded by the first of them (or before the snapshot).
ROUTES_ONLY = {"admin": ("backend.rankings", "backend.store.leaderboards", "backend.game.boards")}

PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
loaded = {"imported": sorted(sys.modules)}
if len(sys.argv) > 2:
    import snapshot_restore_py
    for fn, args, kwargs in snapshot_restore_py.get_before_snapshot():
        fn(*args, **kwargs)
    import botocore.client
    call = vars(botocore.client.BaseClient)["_make_api_call"]
    loaded["warmed"] = sorted(sys.modules)
    loaded["botocore_patched"] = type(call).__name__ == "FunctionWrapper"  # wrapt: the X-Ray SDK's patch
    loaded["unbuilt"] = {
        name: [
            getattr(m, "__name__", repr(m)) for m in sys.modules[name].models()
            if not getattr(m, "__pydantic_complete__", getattr(m, "pydantic_complete", False))
        ]
        for name in ("backend.protocol", "backend.admin.models") if name in sys.modules
    }
print(json.dumps(loaded))
"""


def deployed_env(function: str) -> dict[str, str]:
    """The function's environment variables as serverless.yml deploys them (dev), in a Lambda."""
    service = slsconfig.load(ROOT / "serverless.yml", "dev")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    for key, value in service.functions[function].environment.items():
        if isinstance(value, str | int | bool):
            env[key] = str(value).lower() if isinstance(value, bool) else str(value)
    env.update(
        {
            "AWS_LAMBDA_FUNCTION_NAME": f"gamebackend-dev-{function}",
            "LAMBDA_TASK_ROOT": str(ROOT),
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": str(ROOT),
        }
    )
    assert "POWERTOOLS_TRACE_DISABLED" not in env  # tracing as deployed: on
    return env


def probe(function: str, *, warm: bool = False) -> dict[str, Any]:
    service = slsconfig.load(ROOT / "serverless.yml", "dev")
    module = service.functions[function].handler.split(":")[0]
    args = [sys.executable, "-c", PROBE, module, *(["warm"] if warm else [])]
    out = subprocess.run(
        args, env=deployed_env(function), cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def loaded(modules: list[str], name: str) -> bool:
    return any(m == name or m.startswith(name + ".") for m in modules)


FUNCTIONS = sorted(slsconfig.load(ROOT / "serverless.yml", "dev").functions)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_a_handler_module_imports_nothing_heavy(function: str) -> None:
    imported = probe(function)["imported"]
    assert [h for h in HEAVY if loaded(imported, h)] == []
    assert [m for m in ROUTES_ONLY.get(function, ()) if loaded(imported, m)] == []
    if function in WITHOUT_PYDANTIC:
        assert not loaded(imported, "pydantic")


TRACED = "projector"  # the one function whose downstream calls are traced (docs/operations.md#tracing)


def test_the_projector_traces_downstream_calls_as_deployed() -> None:
    """Its TRACE_DOWNSTREAM is true: the SDK is loaded before the snapshot, and botocore patched."""
    assert deployed_env(TRACED)["TRACE_DOWNSTREAM"] == "true"
    result = probe(TRACED, warm=True)
    assert not loaded(result["imported"], "aws_xray_sdk")
    assert loaded(result["warmed"], "aws_xray_sdk")
    assert result["botocore_patched"] is True
    assert result["unbuilt"] == {"backend.protocol": []}


@pytest.mark.parametrize("function", [f for f in FUNCTIONS if f != TRACED])
def test_before_the_snapshot_a_function_loads_what_its_requests_need_but_no_xray_sdk(function: str) -> None:
    assert deployed_env(function)["TRACE_DOWNSTREAM"] == "false"
    result = probe(function, warm=True)
    warmed = result["warmed"]
    assert not loaded(warmed, "aws_xray_sdk")
    assert result["botocore_patched"] is False
    assert loaded(warmed, "boto3") and loaded(warmed, "botocore.client")
    needs = {
        "authorizer": ["jwt", "aws_lambda_powertools.utilities.parameters"],
        "message": ["backend.actions"],
        "admin": ["jwt", "backend.push", *ROUTES_ONLY["admin"]],
    }
    for module in needs.get(function, []):
        assert loaded(warmed, module), module
    built = {"message": "backend.protocol", "processor": "backend.protocol", "admin": "backend.admin.models"}
    if function in built:
        assert result["unbuilt"][built[function]] == []
    if function == "disconnect":  # it validates the stream record it puts, nothing else
        assert "GameEvent" not in result["unbuilt"]["backend.protocol"]
