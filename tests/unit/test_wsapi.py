"""The WebSocket API as data (local/wsapi.py) and the Management API's rules (local/management.py),
without sockets: route selection, the events API Gateway hands its integrations, the authorizer's
policy, the answers, the close status; the Management API's signing and calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from local.lambdas import Invocation
from local.management import ManagementApi, refuse_unsigned
from local.wsapi import Limits, LiveConnection, WsApi, close_status, integration_status, policy_allows

SIGNED = {
    "authorization": "AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/execute-api/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" + "0" * 64,
    "x-amz-date": "20261202T000000Z",
}


@pytest.fixture
def api(service: Any) -> WsApi:
    return WsApi(service, "127.0.0.1:3001")


def conn(**kw: Any) -> LiveConnection:
    return LiveConnection(
        "c1=", object(), 1_700_000_000_000, "127.0.0.1", "ua", kw.pop("authorizer", {}), **kw
    )


def test_route_selection_is_the_body_action_or_default(api: WsApi) -> None:
    assert api.select_route('{"action":"act","kind":"score"}') == "act"
    for body in (
        None,
        "not json",
        "[1]",
        '{"action":3}',
        '{"action":"$connect"}',
        '{"action":"fly"}',
        "[" * 5000,
    ):
        assert api.select_route(body) == "$default", body


def test_the_events_carry_what_api_gateway_puts_in_them(api: WsApi) -> None:
    context = api.request_context("c1=", 1_700_000_000_000, "$connect", "CONNECT", "10.0.0.1", "ua")
    assert {context[k] for k in ("routeKey", "eventType", "connectionId", "apiId", "domainName")} == {
        "$connect",
        "CONNECT",
        "c1=",
        "localws",
        "127.0.0.1:3001",
    }
    query = {"token": ["a", "b"]}
    connect = api.connect_event(context, {"Host": "h"}, {"Host": ["h"]}, query)
    assert connect["queryStringParameters"] == {"token": "b"}
    assert connect["multiValueQueryStringParameters"] == {"token": ["a", "b"]}
    auth = api.authorizer_event(context, {}, {}, query)
    assert auth["type"] == "REQUEST" and auth["methodArn"].endswith("/local/$connect")
    live = conn(authorizer={"playerId": "alice"})
    message = api.message_event(live, "act", "{}", encoded=False)
    assert message["requestContext"]["authorizer"] == {"playerId": "alice"}
    assert message["requestContext"]["eventType"] == "MESSAGE" and "messageId" in message["requestContext"]
    gone = api.disconnect_event(live, 1001, "Going away")["requestContext"]
    assert (gone["disconnectStatusCode"], gone["disconnectReason"], gone["routeKey"]) == (
        1001,
        "Going away",
        "$disconnect",
    )


def test_the_authorizers_answer(api: WsApi) -> None:
    arn = api.method_arn("$connect")
    allow = {"principalId": "alice", "policyDocument": {"Statement": [{"Effect": "Allow", "Resource": arn}]}}
    ctx = api.authorized(Invocation(ok=True, result={**allow, "context": {"playerId": "alice"}}))
    assert ctx == {"playerId": "alice", "principalId": "alice"}
    deny = {
        "policyDocument": {
            "Statement": [{"Effect": "Deny", "Resource": "*"}, *allow["policyDocument"]["Statement"]]
        }
    }
    assert api.authorized(Invocation(ok=True, result=deny))[0] == 403  # type: ignore[index]
    assert api.authorized(Invocation(ok=False, error_message="Unauthorized"))[0] == 401  # type: ignore[index]
    assert api.authorized(Invocation(ok=False, error_message="boom"))[0] == 500  # type: ignore[index]
    assert policy_allows({"policyDocument": {"Statement": [{"Effect": "Allow", "Resource": "arn:*"}]}}, arn)
    assert not policy_allows({}, arn)


def test_route_replies_and_integration_statuses(api: WsApi) -> None:
    ok = Invocation(ok=True, result={"statusCode": 200, "body": '{"type":"pong"}'})
    assert api.route_reply("ping", ok, "c1=", "r") == '{"type":"pong"}'
    failed = api.route_reply("ping", Invocation(ok=False), "c1=", "r")
    assert failed is not None and '"Internal server error"' in failed and '"requestId": "r"' in failed
    assert integration_status(Invocation(ok=True, result={"statusCode": 403})) == 403
    assert integration_status(Invocation(ok=True, result={"statusCode": "x"})) == 502
    assert integration_status(Invocation(ok=True, result=None)) == 200
    assert integration_status(Invocation(ok=False)) == 500


def test_the_close_status_that_disconnect_reports() -> None:
    assert close_status((1001, "Going away"), (1000, "bye"), None) == (1001, "Going away")
    assert close_status(None, (1000, "bye"), None) == (
        1000,
        "Client-side close frame status code '1000' and reason 'bye'",
    )
    assert close_status(None, None, 1009) == (1009, "Message too big")
    assert close_status(None, None, None) == (1006, "Connection was closed abnormally")


def test_idle_and_old_connections_expire() -> None:
    limits = Limits(idle_timeout=10, max_connection_age=100)
    live = conn()
    assert not live.expired(limits, live.last_active + 5, live.connected_at_ms + 50_000)
    assert live.expired(limits, live.last_active + 11, live.connected_at_ms + 50_000)
    assert live.expired(limits, live.last_active, live.connected_at_ms + 101_000)


def test_the_management_api_wants_a_signature_for_execute_api_in_the_region() -> None:
    assert refuse_unsigned(SIGNED, "us-east-1") is None
    missing = refuse_unsigned({}, "us-east-1")
    assert missing is not None and missing.status == 403
    assert missing.headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
    other = {**SIGNED, "authorization": SIGNED["authorization"].replace("execute-api", "dynamodb")}
    assert refuse_unsigned(other, "us-east-1").headers["x-amzn-errortype"] == "InvalidSignatureException"  # type: ignore[union-attr]
    assert refuse_unsigned(SIGNED, "eu-west-1").status == 403  # type: ignore[union-attr]


def test_the_management_api_calls() -> None:
    sent: list[tuple[str, str | bytes]] = []
    closed: list[str] = []
    stats = {"gone": 0, "posts": 0}
    live = conn()

    async def send(c: LiveConnection, data: str | bytes) -> bool:
        sent.append((c.connection_id, data))
        return True

    api = ManagementApi(
        {"c1=": live}, "us-east-1", Limits, send, lambda c: closed.append(c.connection_id), stats
    )

    def call(method: str, path: str, body: bytes = b"") -> Any:
        return asyncio.run(api.handle(method, path, SIGNED, body))

    assert call("POST", "/@connections/c1%3D", b'{"x":1}').status == 200
    assert sent == [("c1=", '{"x":1}')] and stats["posts"] == 1
    info = call("GET", "/local/@connections/c1=")
    assert info.status == 200 and b"connectedAt" in info.body
    gone = call("POST", "/@connections/nope", b"x")
    assert (gone.status, gone.headers["x-amzn-errortype"], stats["gone"]) == (410, "GoneException", 1)
    assert call("POST", "/@connections/c1=", b"x" * (Limits().max_message_bytes + 1)).status == 413
    assert call("PUT", "/@connections/c1=").status == 405
    assert call("GET", "/elsewhere").status == 404
    assert call("DELETE", "/@connections/c1=").status == 204 and closed == ["c1="]
