"""The clients every handler makes (backend.aws, backend.push): what they put on the wire themselves."""

from __future__ import annotations

from typing import Any

import pytest

from backend import aws
from backend.push import Pusher


class Sent(Exception):
    """Raised from botocore's before-send hook: the request is built and signed, and goes nowhere."""


def _capture(headers: list[dict[str, Any]]) -> Any:
    def before_send(request: Any, **_: Any) -> None:
        headers.append({k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()})
        raise Sent

    return before_send


def _assert_ours(agents: list[str], requests: int, app_id: str | None) -> None:
    # Ours, then botocore's session extra; none of the components botocore builds when left to itself.
    assert len(agents) == requests and len(set(agents)) == 1
    ours = ["gamebackend"] + ([f"app/{app_id}"] if app_id else [])
    assert agents[0].split()[: len(ours)] == ours == aws.user_agent().split()
    assert "ua/" not in agents[0] and "md/" not in agents[0] and "os/" not in agents[0]


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


# The app id (AWS_SDK_UA_APP_ID) stays in the header: the local runtime's AWS endpoint tells the calling
# function by it, and lets the cold path's give way.
APP_IDS = pytest.mark.parametrize("app_id", [None, "gamebackend-local-projector"])


def _app_id(monkeypatch: pytest.MonkeyPatch, app_id: str | None) -> None:
    if app_id:
        monkeypatch.setenv("AWS_SDK_UA_APP_ID", app_id)
    else:
        monkeypatch.delenv("AWS_SDK_UA_APP_ID", raising=False)


@APP_IDS
def test_boto3_clients_send_our_fixed_user_agent(app_id: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    _app_id(monkeypatch, app_id)
    aws.client.cache_clear()
    try:
        ddb = aws.client("dynamodb", "http://127.0.0.1:9")
        headers: list[dict[str, Any]] = []
        ddb.meta.events.register("before-send.dynamodb.GetItem", _capture(headers))
        for _ in range(2):
            with pytest.raises(Sent):
                ddb.get_item(TableName="t", Key={"k": {"S": "v"}})
    finally:
        aws.client.cache_clear()
    _assert_ours([h["User-Agent"] for h in headers], 2, app_id)


@APP_IDS
def test_the_pusher_sends_our_fixed_user_agent(app_id: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    _app_id(monkeypatch, app_id)
    pusher = Pusher("http://127.0.0.1:9", region="us-east-1")
    headers: list[dict[str, Any]] = []

    async def post() -> None:
        client = await pusher._get_client()
        client.meta.events.register("before-send.apigatewaymanagementapi.PostToConnection", _capture(headers))
        with pytest.raises(Sent):
            await client.post_to_connection(ConnectionId="c1", Data=b"{}")

    try:
        pusher.run(post())
    finally:
        pusher.close()
    _assert_ours([h["User-Agent"] for h in headers], 1, app_id)


def forget_sessions() -> None:
    for made in (aws.client, aws.session, aws.aio_session, aws._core):
        made.cache_clear()


@pytest.fixture
def files_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The botocore data files parsed from here on (models, endpoint rules, partitions...)."""
    from botocore.loaders import JSONFileLoader

    read: list[str] = []
    load_file = JSONFileLoader.load_file

    def recording(self: Any, file_path: str) -> Any:
        read.append(file_path)
        return load_file(self, file_path)

    monkeypatch.setattr(JSONFileLoader, "load_file", recording)
    return read


def test_clients_made_after_priming_parse_no_file(files_read: list[str]) -> None:
    import boto3

    forget_sessions()  # nothing parsed by an earlier test
    aws.prime(["dynamodb", "apigatewaymanagementapi"])
    files_read.clear()
    aws.client.cache_clear()
    try:
        aws.client("dynamodb", "http://127.0.0.1:9")
        aws.client("dynamodb", "http://127.0.0.1:10")
    finally:
        aws.client.cache_clear()
    pusher = Pusher("http://127.0.0.1:9", region="us-east-1")
    try:
        pusher.run(pusher._get_client())
    finally:
        pusher.close()
    assert files_read == []
    assert aws.client("dynamodb", "http://127.0.0.1:11")._request_signer._credentials is not None
    # A session of its own (what every client had before) parses them again.
    boto3.session.Session().client("dynamodb", endpoint_url="http://127.0.0.1:9")
    assert any("dynamodb" in path for path in files_read)
