"""Store tests run against an in-process moto, fresh for every test (the `aws` fixture)."""

from __future__ import annotations

import pytest

from tests.store.kinesis_events import keep_resource_clients


@pytest.fixture(autouse=True)
def _quick_moto_setup(monkeypatch: pytest.MonkeyPatch) -> None:
    # Creating the tables needs boto3 clients; building them once per session halves the suite's time.
    keep_resource_clients(monkeypatch)
