"""The Lambda handlers in process against moto: the events API Gateway and Lambda hand them, and a
snapshot of everything they could have changed.

`Backend` (the `backend` fixture of tests/store/conftest.py) calls the real entry points
(`backend.handlers.message.handler`, `backend.handlers.admin.handler`, `streams.processor.handler`) with
events shaped as the local runtime shapes them, so a test here and an e2e test see the same contract.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from local.worker import LambdaContext
from tests.conftest import token_for

PREFIX = "gamebackend-local"
TABLES = [f"{PREFIX}-{t}" for t in ("connections", "matches", "leaderboards", "events")]
STREAM = f"{PREFIX}-actions"
DLQ = f"{PREFIX}-actions-dlq"
ENV = {
    "STAGE": "local",
    "CONNECTIONS_TABLE": TABLES[0],
    "MATCHES_TABLE": TABLES[1],
    "LEADERBOARDS_TABLE": TABLES[2],
    "EVENTS_TABLE": TABLES[3],
    "GAME_STREAM": STREAM,
    "ACTION_DLQ": DLQ,
    "WS_API_ENDPOINT": "http://127.0.0.1:9",  # replaced by the backend fixture with gone_management_api()
    "JWT_SECRET": "local-development-secret-not-for-production",
    "JWT_ISSUER": "gamebackend-local",
    "JWT_AUDIENCE": "gamebackend",
    "AWS_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "gamebackend",
    "POWERTOOLS_METRICS_NAMESPACE": "GameBackend",
    "POWERTOOLS_LOG_LEVEL": "CRITICAL",
}
ADMIN_TOKEN = token_for("ops", admin=True)


@contextmanager
def gone_management_api() -> Iterator[str]:
    """A Management API on loopback for which every connection is gone (no socket exists in process):
    410 GoneException to every call, as API Gateway answers for an id it does not know."""

    class Gone(BaseHTTPRequestHandler):
        def _gone(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = b'{"message":null}'
            self.send_response(410)
            self.send_header("Content-Type", "application/json")
            self.send_header("x-amzn-errortype", "GoneException")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_DELETE = _gone

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gone)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def context(function: str) -> LambdaContext:
    return LambdaContext(
        f"{PREFIX}-{function}", 256, uuid.uuid4().hex, time.time() * 1000 + 60_000, "us-east-1"
    )


def http_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    raw_query: str = "",
    body: str | bytes | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API payload 2.0 event, as local/httpapi.py builds it (header names lowercased)."""
    encoded = isinstance(body, bytes)
    text = base64.b64encode(body).decode() if isinstance(body, bytes) else body
    now = int(time.time() * 1000)
    return {
        "version": "2.0",
        "routeKey": "ANY /admin/{proxy+}",
        "rawPath": path,
        "rawQueryString": raw_query,
        "headers": {k.lower(): v for k, v in (headers or {}).items()},
        "queryStringParameters": query or None,
        "pathParameters": None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "localhttp",
            "domainName": "127.0.0.1",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1"},
            "requestId": uuid.uuid4().hex,
            "routeKey": "ANY /admin/{proxy+}",
            "stage": "$default",
            "timeEpoch": now,
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


def ws_event(body: str | None, *, player: str, connection_id: str, is_base64: bool = False) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {
        "requestContext": {
            "routeKey": "$default",
            "eventType": "MESSAGE",
            "connectionId": connection_id,
            "connectedAt": now,
            "requestTimeEpoch": now,
            "requestId": uuid.uuid4().hex,
            "messageId": uuid.uuid4().hex,
            "stage": "local",
            "apiId": "localws",
            "authorizer": {"playerId": player, "role": "player", "principalId": player},
        },
        "body": body,
        "isBase64Encoded": is_base64,
    }


class Backend:
    def __init__(self, ddb: Any, kinesis: Any, sqs: Any) -> None:
        self.ddb = ddb
        self.kinesis = kinesis
        self.sqs = sqs

    def admin(self, event: dict[str, Any]) -> tuple[int, Any, dict[str, Any]]:
        """(status, parsed JSON body or None, headers) of the admin function's answer."""
        from backend.handlers.admin import handler

        out = handler(event, context("admin"))
        raw = out.get("body") or ""
        return int(out["statusCode"]), json.loads(raw) if raw else None, dict(out.get("headers") or {})

    def frame(self, body: str | None, *, player: str = "alice", is_base64: bool = False) -> dict[str, Any]:
        """The message function's answer to one frame, as the client would get it."""
        from backend.handlers.message import guard, handler

        # Each frame is judged on its own here (the fuzzers send thousands on one connection at once): the
        # flood guard has its own tests (tests/unit/test_guard.py).
        guard.reset()
        event = ws_event(body, player=player, connection_id=f"c-{player}", is_base64=is_base64)
        out = handler(event, context("message"))
        assert out["statusCode"] == 200, out
        answer: dict[str, Any] = json.loads(out["body"])
        return answer

    def snapshot(self) -> dict[str, Any]:
        """Every item of every table, every record on the stream and the dead-letter queue's depth."""
        state: dict[str, Any] = {}
        for table in TABLES:
            items, kwargs = [], {"TableName": table}
            while True:
                out = self.ddb.scan(**kwargs)
                items += out["Items"]
                if "LastEvaluatedKey" not in out:
                    break
                kwargs["ExclusiveStartKey"] = out["LastEvaluatedKey"]
            state[table] = sorted(json.dumps(i, sort_keys=True) for i in items)
        records = []
        for shard in self.kinesis.list_shards(StreamName=STREAM)["Shards"]:
            it = self.kinesis.get_shard_iterator(
                StreamName=STREAM, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
            records += [r["SequenceNumber"] for r in self.kinesis.get_records(ShardIterator=it)["Records"]]
        state[STREAM] = sorted(records)
        url = self.sqs.get_queue_url(QueueName=DLQ)["QueueUrl"]
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        state[DLQ] = attrs["Attributes"]["ApproximateNumberOfMessages"]
        return state
