"""Shared fixtures: settings for the local stage, token minting, moto-backed tables."""

from __future__ import annotations

import os
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


@pytest.fixture
def aws(service: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An in-process moto with every resource of serverless.yml created, for store tests."""
    from moto import mock_aws

    for key in ("AWS_ENDPOINT_URL",):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    serialize_aws_calls(monkeypatch)
    with mock_aws():
        from local.aws import create_resources

        create_resources(service, None)
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
