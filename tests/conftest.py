"""Shared fixtures: settings for the local stage, token minting, tables on each DynamoDB engine.

The store tests run once per engine (`dynamodb_engine`): moto, in-process, and AWS's DynamoDB Local, one
per session, with fresh tables for every test. GAMEBACKEND_DYNAMODB=moto or =local runs only that one.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
LOCAL = {
    "secret": "local-development-secret-not-for-production",
    "issuer": "gamebackend-local",
    "audience": "gamebackend",
}


@pytest.fixture(scope="session")
def service() -> Any:
    from local import slsconfig

    return slsconfig.load(ROOT / "serverless.yml", "local")


def token_for(player: str, *, admin: bool = False, ttl: int = 3600, **overrides: Any) -> str:
    from backend.auth import mint

    params = {**LOCAL, **overrides}
    return mint(
        player,
        secret=params["secret"],
        issuer=params["issuer"],
        audience=params["audience"],
        admin=admin,
        ttl=ttl,
        now=overrides.get("now"),
    )


def dynamodb_engines() -> tuple[str, ...]:
    """Both engines, or the one GAMEBACKEND_DYNAMODB names."""
    from local.dynamodb_local import ENGINE_ENV, ENGINES, engine_from_env

    return (engine_from_env(),) if os.environ.get(ENGINE_ENV, "").strip() else ENGINES


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[str]:
    """One DynamoDB Local for the whole session (about a second to start); its URL."""
    from local.dynamodb_local import DynamoDBLocal, EngineUnavailable

    server = DynamoDBLocal("127.0.0.1", free_port())
    try:
        server.start()
    except EngineUnavailable as exc:
        pytest.fail(f"{exc}; GAMEBACKEND_DYNAMODB=moto runs the suite on moto alone", pytrace=False)
    yield server.url
    server.stop()


@pytest.fixture(params=dynamodb_engines())
def dynamodb_engine(request: pytest.FixtureRequest) -> str:
    """The engine of this run of a store test: "moto" or "local" (DynamoDB Local)."""
    return str(request.param)


def _drop_tables(url: str) -> None:
    import boto3

    ddb = boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    for name in ddb.list_tables()["TableNames"]:
        ddb.delete_table(TableName=name)


@pytest.fixture
def aws(
    service: Any, dynamodb_engine: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Every resource of serverless.yml, for store tests: Kinesis, SQS and CloudWatch on an in-process moto,
    and the tables on moto too or on DynamoDB Local (fresh for each test: dropped and created again)."""
    from moto import mock_aws

    from local.aws import Endpoints, create_resources

    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Also on DynamoDB Local, which needs no lock: SQS, Kinesis and CloudWatch are still moto's.
    serialize_aws_calls(monkeypatch)
    endpoints = Endpoints(None)
    if dynamodb_engine == "local":
        url: str = request.getfixturevalue("dynamodb_local")
        _drop_tables(url)
        endpoints = Endpoints(None, dynamodb=url)
        # Every client made without an explicit endpoint (the stores', the processor's) goes there; moto
        # intercepts only requests to AWS's own host names, so these pass it by.
        for key, value in endpoints.env().items():
            monkeypatch.setenv(key, value)
    with mock_aws():
        # The tests play matches on fixed past days. DynamoDB Local deletes an item within seconds of
        # its expiry, where AWS takes up to days and moto never does: without TTL on its tables, their
        # items stay readable for the seconds a test takes, as they would on AWS.
        create_resources(service, endpoints, ttl=dynamodb_engine != "local")
        yield


def serialize_aws_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """One botocore call at a time, as the embedded AWS endpoint (local.awsserver) takes them: moto's
    models are not thread-safe, and the processor and the projector call AWS from threads."""
    import threading

    import botocore.client

    lock = threading.RLock()
    original = botocore.client.BaseClient._make_api_call

    def serialized(self: Any, operation: str, params: Any) -> Any:
        with lock:
            return original(self, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", serialized)


@pytest.fixture
def ddb(aws: None) -> Any:
    import boto3

    return boto3.client("dynamodb", region_name="us-east-1")


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_DEV", "false")
    # As in every function's environment (serverless.yml): a child Logger (backend/admin/app.py) finds
    # its parent (backend/telemetry.py) by this service name, whichever of them a test imports first.
    os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "gamebackend")
    # The boards, modes and sessions (custom.leaderboards, custom.modes, custom.sessions) as every function
    # of the local stage gets them, as the CLI's commands set them.
    from cli.main import use_stage_settings

    use_stage_settings(str(ROOT / "serverless.yml"))


def declared_game_settings(stage: str = "local") -> str:
    from local import slsconfig

    return slsconfig.game_environment(slsconfig.load(ROOT / "serverless.yml", stage))["GAME_SETTINGS"]
