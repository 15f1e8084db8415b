"""SnapStart's hooks (backend/snapstart.py) as the Lambda runtime runs them, and the lazy tracer.

Before the snapshot: whatever the hooks load, the handlers then answer as before. After a restore:
clients, stores, cached secrets and signing keys are made anew, and `random` has a new state.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from typing import Any

import pytest
import snapshot_restore_py

from backend import aws, telemetry
from backend.handlers import message
from backend.vocabulary import PROTOCOL_VERSION
from local.runtime import ROOT

# A ping and the OpenAPI document emit no metric; powertools says so.
pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")


@pytest.fixture(autouse=True)
def metrics_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    # Powertools' Metrics read their namespace at import; the handlers here flush what they add.
    monkeypatch.setattr(telemetry.metrics.provider, "namespace", "GameBackend")
    telemetry.metrics.clear_metrics()  # nothing another test left in the shared buffer


def run_hooks(hooks: list[Any]) -> None:
    for fn, args, kwargs in hooks:
        fn(*args, **kwargs)


def ping_event() -> dict[str, Any]:
    return {
        "requestContext": {
            "connectionId": "c-1",
            "requestTimeEpoch": 1_700_000_000_000,
            "authorizer": {"playerId": "alice", "role": "player"},
        },
        "body": json.dumps({"action": "ping", "id": "p1"}),
    }


class Context:
    function_name = "gamebackend-local-message"
    function_version = "1"
    invoked_function_arn = (
        "arn:aws:lambda:us-east-1:000000000000:function:gamebackend-local-message:snapstart"
    )
    memory_limit_in_mb = 256
    aws_request_id = "r-1"

    def get_remaining_time_in_millis(self) -> int:
        return 5000


def test_hooks_are_registered_for_the_runtime() -> None:
    registered = {fn.__name__ for fn, _, _ in snapshot_restore_py.get_after_restore()}
    assert {"reseed_random", "forget_clients", "forget_secrets"} <= registered
    assert snapshot_restore_py.get_before_snapshot()  # the handler modules' warm()


def test_a_handler_answers_after_the_snapshot_and_the_restore() -> None:
    run_hooks(snapshot_restore_py.get_before_snapshot())
    run_hooks(snapshot_restore_py.get_after_restore())
    answer = message.handler(ping_event(), Context())
    assert answer["statusCode"] == 200
    assert json.loads(answer["body"]) == {"type": "pong", "ref": "p1", "protocol": PROTOCOL_VERSION}


def test_after_a_restore_clients_and_stores_are_made_anew(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    before_client = aws.client("dynamodb")
    before_routes = message.routes()
    run_hooks(snapshot_restore_py.get_after_restore())
    assert aws.client.cache_info().currsize == 0
    assert message.routes() is not before_routes
    assert aws.client("dynamodb") is not before_client


def test_after_a_restore_random_has_a_new_state() -> None:
    random.seed(1234)  # as if every environment resumed with this state
    snapshot = random.getstate()
    run_hooks(snapshot_restore_py.get_after_restore())
    assert random.getstate() != snapshot


def test_after_a_restore_the_cached_secret_and_keys_are_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities.parameters import constants

    from backend import auth

    constants.DEFAULT_PROVIDERS["ssm"] = object()  # what get_parameter leaves: a provider and its cache
    auth._jwks("http://127.0.0.1:9/jwks.json")
    assert auth._jwks.cache_info().currsize == 1
    run_hooks(snapshot_restore_py.get_after_restore())
    assert "ssm" not in constants.DEFAULT_PROVIDERS
    assert auth._jwks.cache_info().currsize == 0


def test_where_downstream_tracing_is_off_the_decorators_only_call_through(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRACE_DOWNSTREAM", "false")
    tracer = telemetry.LazyTracer()

    @tracer.capture_lambda_handler
    def handler(event: Any, context: Any) -> Any:
        return helper(event)

    @tracer.capture_method
    def helper(value: Any) -> Any:
        return {"echo": value}

    assert handler(1, None) == {"echo": 1}
    assert not tracer.loaded and tracer.load() is None


TRACED = """
import json, sys
from backend.telemetry import tracer

@tracer.capture_lambda_handler
def handler(event, context):
    return step(event)

@tracer.capture_method
def step(value):
    return {"value": value, "sdk": "aws_xray_sdk" in sys.modules}

before = "aws_xray_sdk" in sys.modules
print(json.dumps({"before": before, "answer": handler(7, None), "loaded": tracer.loaded}))
"""


@pytest.mark.parametrize(("setting", "traced"), [("true", True), ("false", False)])
def test_where_downstream_tracing_is_on_the_first_invocation_loads_the_sdk(
    setting: str, traced: bool
) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "LAMBDA_TASK_ROOT": str(ROOT),
        "AWS_LAMBDA_FUNCTION_NAME": "gamebackend-dev-processor",
        "AWS_REGION": "us-east-1",
        "AWS_XRAY_CONTEXT_MISSING": "IGNORE_ERROR",  # no trace header here: nothing to attach to
        "TRACE_DOWNSTREAM": setting,
    }
    out = subprocess.run(
        [sys.executable, "-c", TRACED],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["before"] is False
    assert result["answer"] == {"value": 7, "sdk": traced}
    assert result["loaded"] is traced


def test_the_admin_api_answers_after_its_routes_were_prepared_before_the_snapshot() -> None:
    from backend.handlers import admin

    run_hooks(snapshot_restore_py.get_before_snapshot())
    run_hooks(snapshot_restore_py.get_after_restore())
    event = {
        "version": "2.0",
        "routeKey": "GET /admin/openapi.json",
        "rawPath": "/admin/openapi.json",
        "rawQueryString": "",
        "headers": {},
        "requestContext": {
            "http": {"method": "GET", "path": "/admin/openapi.json", "sourceIp": "127.0.0.1"},
            "requestId": "r-1",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }
    answer = admin.handler(event, Context())
    assert answer["statusCode"] == 200
    document = json.loads(answer["body"])
    assert "/admin/leaderboards/{board}" in document["paths"]
    assert "LeaderboardPage" in document["components"]["schemas"]


def test_the_snapshot_holds_the_sessions_and_botocore_s_parsed_files_for_the_common_services(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from botocore.loaders import JSONFileLoader

    from backend import snapstart

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for made in (aws.client, aws.session, aws.aio_session, aws._core):
        made.cache_clear()  # nothing parsed, and no credentials resolved, by an earlier test
    run_hooks(snapshot_restore_py.get_before_snapshot())
    # Built, and without credentials: they are resolved after the restore, by the first client.
    assert aws.session()._session._credentials is None
    assert aws.aio_session()._credentials is None
    run_hooks(snapshot_restore_py.get_after_restore())
    read: list[str] = []
    load_file = JSONFileLoader.load_file
    monkeypatch.setattr(
        JSONFileLoader, "load_file", lambda self, path: read.append(path) or load_file(self, path)
    )
    for service in snapstart.COMMON_SERVICES:
        aws.client(service, "http://127.0.0.1:9")
    assert read == []
