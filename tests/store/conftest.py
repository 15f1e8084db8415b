"""Store tests run against an in-process moto, fresh for every test (the `aws` fixture)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.store.harness import ENV, Backend, gone_management_api
from tests.store.kinesis_events import keep_resource_clients


@pytest.fixture(autouse=True)
def _quick_moto_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # Creating the tables needs boto3 clients; building them once per session halves the suite's time.
    keep_resource_clients(monkeypatch)


def _clear_environment_caches() -> None:
    from backend import aws, bootstrap, config

    config.settings.cache_clear()
    aws.client.cache_clear()
    bootstrap.Root.reset_all()


@pytest.fixture(scope="module")
def backend(service: Any) -> Iterator[Backend]:
    """The handlers of the message and admin functions, in process, over one moto for the whole module
    (tests/store/harness.py). Creating the resources takes most of a second, and the tests that use this
    check inputs that must change nothing: each compares snapshots taken before and after."""
    import boto3
    from moto import mock_aws

    from backend.telemetry import metrics
    from local.aws import create_resources

    with pytest.MonkeyPatch.context() as mp, mock_aws(), gone_management_api() as management:
        keep_resource_clients(mp)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        for k, v in {**ENV, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}.items():
            mp.setenv(k, v)
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("WS_API_ENDPOINT", management)
        # Powertools' Metrics read their namespace at import, before this fixture ran.
        mp.setattr(metrics.provider, "namespace", ENV["POWERTOOLS_METRICS_NAMESPACE"])
        create_resources(service, None)
        _clear_environment_caches()
        clients = {s: boto3.client(s, region_name="us-east-1") for s in ("dynamodb", "kinesis", "sqs")}
        yield Backend(clients["dynamodb"], clients["kinesis"], clients["sqs"])
        _clear_environment_caches()
