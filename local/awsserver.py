"""The embedded AWS endpoint's own process: moto's WSGI app, one request at a time, with change feeds.

    python -m local.awsserver -H 127.0.0.1 -p 4566

moto's models are not thread-safe (its Kinesis `put_record` says so of itself, and two concurrent
conditional updates can both pass their condition), while its server answers each request on a thread
of its own. Here every AWS request runs under one lock, so the embedded endpoint applies requests one
at a time, as DynamoDB and Kinesis do per item and per shard: an acknowledged write is never lost,
never doubled, and a condition is never passed twice.

Change feeds, which AWS has no equivalent of and nothing in backend/ or streams/ knows about:

    GET /_local/changes?key=K&since=N&wait=S  ->  {"key": K, "version": V}

answers as soon as the version of K is above N, or after S seconds (at most 30) with the version
unchanged. With `&after=SEQ` on a shard's key, the answer also lists that shard's records after
sequence number SEQ (`records`, as GetRecords would), which is how an enhanced fan-out consumer is
pushed its records. K is `kinesis/<stream>/<shardId>` (bumped by every PutRecord and PutRecords that wrote to
that shard) or `dynamodb/<table>` (bumped by every successful write to the table). The local event
source pollers wait on them instead of sleeping between empty reads, so a record is handed to its
function as soon as it is written, as an enhanced fan-out consumer is pushed its records.

Faults, for tests and load runs (not part of AWS either):

    POST /_local/faults {"operation": "UpdateItem", "resource": "<table or stream>", "code":
                         "ProvisionedThroughputExceededException", "status": 400, "count": 5}
    GET /_local/faults    DELETE /_local/faults

makes the next `count` matching requests (-1: all of them, until deleted) fail with that AWS error,
as the service would answer it; `resource` and `operation` may be left out to match any. `"service":
"dynamodb"` (or "kinesis", "sqs", ...) limits a rule to one service; `"seconds": S` ends it after S
seconds whatever its count (a throttling storm). `injected` counts the requests failed so far.

Requests served, for finding where the endpoint's time goes (not part of AWS either):

    GET /_local/stats  ->  {"requests": [{"service", "operation", "function", "count", "cpuSeconds",
                                          "waitSeconds", "longestWait"}],
                            "collections": [{"generation", "count", "seconds", "longest"}]}

per service, operation and calling function (the `app/<function>` of the User-Agent), with the CPU
seconds spent under the lock, most first, and the wall seconds spent waiting for it (in all, and the
longest wait); and the garbage collector's pauses per generation (wall
seconds in all and the longest), during which the process answers nothing.

The server keeps its HTTP/1.1 connections alive (`keep_alive_handler`): werkzeug's development server,
which moto's own server is, closes each connection after one answer, so every AWS call of every
function paid a TCP connection, a server thread, and botocore's reconnection; the whole stack spent
twice the CPU per game action. moto's Flask app runs without Flask's debug mode, which moto turns on.

Two of moto's costs grow with what it has stored, which a long load run makes visible on every action,
so they are replaced here (`_speed_up_moto`) with the same answers at a constant cost: a Kinesis shard
finds its last sequence number and the records after a sequence number by walking all of its records,
and the server lists moto's package directory on disk for every request.

A third grows with it too: CPython's full garbage collection walks every object the process holds,
and moto holds each stored item and stream record as dozens of them (and, until local/motofixes
stopped it, every item it had ever made). After one 60-second run of 32 bots the tables' process held
some 370,000 and a full collection stopped it for 250 ms, every request of every function waiting
behind it; after a few runs a second. `keep_only_young_collected` moves what survives a full
collection out of the collector's sight (`gc.freeze`), so the next one walks only what was created
since: what moto stores is plain data without reference cycles, freed by its reference counts when
it is deleted or overwritten.
"""

from __future__ import annotations

import argparse
import email.parser
import functools
import gc
import http.client
import io
import json
import logging
import os
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs

CHANGES_PATH = "/_local/changes"
FAULTS_PATH = "/_local/faults"
STATS_PATH = "/_local/stats"
MAX_WAIT = 30.0
BACKGROUND_PATIENCE = 0.05  # seconds a background request yields to foreground ones at most
# Iterators of DynamoDB Streams that moto keeps forever; AWS expires them after 15 minutes. Past this
# many, the oldest half is forgotten (a poller only ever uses its newest one).
MAX_STREAM_ITERATORS = 20_000
# A request's thread that has written its answer waits for the interpreter lock held by the request
# being served: with CPython's default 5 ms it waits up to that long, one request at a time.
SWITCH_INTERVAL = 0.0005
IDLE_CONNECTION_SECONDS = 300.0  # botocore keeps a pool per client; its idle connections end after this

_DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems", "ExecuteStatement"}
)

StartResponse = Callable[..., Any]


class ChangeFeeds:
    """A version counter per key, and waiters woken when one moves."""

    def __init__(self) -> None:
        self._versions: dict[str, int] = {}
        self._changed = threading.Condition()

    def bump(self, keys: Iterable[str]) -> None:
        with self._changed:
            for key in keys:
                self._versions[key] = self._versions.get(key, 0) + 1
            self._changed.notify_all()

    def version(self, key: str) -> int:
        with self._changed:
            return self._versions.get(key, 0)

    def wait(self, key: str, since: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                current = self._versions.get(key, 0)
                remaining = deadline - time.monotonic()
                if current > since or remaining <= 0:
                    return current
                self._changed.wait(remaining)


def _target(environ: dict[str, Any]) -> tuple[str, str]:
    """("Kinesis_20131202", "PutRecord") from the X-Amz-Target header, or ("", "")."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    service, _, operation = target.partition(".")
    return service, operation


def _stream_name(request: dict[str, Any]) -> str:
    name = request.get("StreamName")
    if name:
        return str(name)
    arn = str(request.get("StreamARN", ""))
    return arn.rsplit("/", 1)[-1]


def _tables_written(operation: str, request: dict[str, Any]) -> set[str]:
    if operation == "BatchWriteItem":
        return set(request.get("RequestItems") or {})
    if operation == "TransactWriteItems":
        return {
            part["TableName"]
            for item in request.get("TransactItems") or []
            for kind, part in item.items()
            if kind != "ConditionCheck" and isinstance(part, dict) and "TableName" in part
        }
    if operation == "ExecuteStatement":
        return set()  # PartiQL is not used here; its table is inside the statement
    return {str(request["TableName"])} if "TableName" in request else set()


def changed_keys(service: str, operation: str, request: dict[str, Any], response: dict[str, Any]) -> set[str]:
    """The change-feed keys that a successful request moved."""
    if service.startswith("Kinesis_") and operation in ("PutRecord", "PutRecords"):
        stream = _stream_name(request)
        records = response.get("Records") if operation == "PutRecords" else [response]
        return {f"kinesis/{stream}/{r['ShardId']}" for r in records or [] if r.get("ShardId")}
    if service.startswith("DynamoDB_") and operation in _DYNAMODB_WRITES:
        return {f"dynamodb/{table}" for table in _tables_written(operation, request)}
    return set()


class Faults:
    """Injected failures: each a match (operation, resource) and how many requests it still fails."""

    def __init__(self) -> None:
        self._rules: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.injected = 0

    def add(self, rule: dict[str, Any]) -> dict[str, Any]:
        clean: dict[str, Any] = {
            "operation": str(rule.get("operation") or ""),
            "resource": str(rule.get("resource") or ""),
            "code": str(rule.get("code") or "InternalServerError"),
            "status": int(rule.get("status") or 500),
            "count": int(rule.get("count", -1)),
            "message": str(rule.get("message") or "injected by the local runtime"),
            "service": str(rule.get("service") or "").lower(),
        }
        seconds = float(rule.get("seconds") or 0)
        if seconds < 0 or (clean["count"] == 0 or clean["count"] < -1):
            raise ValueError("count must be positive or -1, seconds positive")
        if seconds:
            clean["expiresAt"] = time.monotonic() + seconds
        with self._lock:
            self._rules.append(clean)
        return clean

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def listing(self) -> dict[str, Any]:
        with self._lock:
            self._expire()
            return {"faults": list(self._rules), "injected": self.injected}

    def _expire(self) -> None:
        now = time.monotonic()
        self._rules = [r for r in self._rules if float(r.get("expiresAt", now + 1)) > now]

    @property
    def armed(self) -> bool:
        return bool(self._rules)

    def take(self, service: str, operation: str, resources: set[str]) -> dict[str, Any] | None:
        """The rule this request falls under, used up by one; None when none does. `service` is the
        X-Amz-Target prefix (DynamoDB_20120810, Kinesis_20131202, ...)."""
        with self._lock:
            self._expire()
            for rule in self._rules:
                if rule["service"] and not _service_is(service, rule["service"]):
                    continue
                if rule["operation"] and rule["operation"] != operation:
                    continue
                if rule["resource"] and rule["resource"] not in resources:
                    continue
                if rule["count"] > 0:
                    rule["count"] -= 1
                if rule["count"] == 0:
                    self._rules.remove(rule)
                self.injected += 1
                return rule
        return None


def _service_is(target: str, name: str) -> bool:
    """Whether an X-Amz-Target prefix is that of the boto3 service `name` (DynamoDB Streams' is
    DynamoDBStreams_20120810: not "dynamodb")."""
    prefix = target.partition("_")[0].lower()
    return prefix == name.lower() or (name == "sqs" and prefix == "amazonsqs")


def _resources(service: str, operation: str, request: dict[str, Any]) -> set[str]:
    if service.startswith("Kinesis_"):
        return {_stream_name(request)}
    if service.startswith("DynamoDB_"):
        if operation in ("BatchGetItem", "BatchWriteItem"):
            return set(request.get("RequestItems") or {})
        if operation.startswith("Transact"):
            return {
                part["TableName"]
                for item in request.get("TransactItems") or []
                for part in item.values()
                if isinstance(part, dict) and "TableName" in part
            }
        return {str(request.get("TableName", ""))}
    return set()


def _app_of(agent: str) -> str:
    """The function an AWS call came from: its User-Agent's `app/<function>` (AWS_SDK_UA_APP_ID)."""
    for part in agent.split():
        if part.startswith("app/"):
            return part[4:]
    return ""


class RequestStats:
    """Requests served and the CPU they took under the lock, per service, operation and calling function:
    where the endpoint's one process spends its time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[tuple[str, str, str], list[float]] = {}

    def add(self, service: str, operation: str, app: str, cpu: float, waited: float) -> None:
        with self._lock:
            row = self._rows.setdefault((service.partition("_")[0], operation, app), [0, 0.0, 0.0, 0.0])
            row[0] += 1
            row[1] += cpu
            row[2] += waited
            row[3] = max(row[3], waited)

    def listing(self) -> dict[str, Any]:
        with self._lock:
            rows = sorted(self._rows.items(), key=lambda kv: -kv[1][1])
            return {
                "requests": [
                    {
                        "service": s,
                        "operation": o,
                        "function": a,
                        "count": int(n),
                        "cpuSeconds": round(c, 4),
                        "waitSeconds": round(w, 4),
                        "longestWait": round(longest, 4),
                    }
                    for (s, o, a), (n, c, w, longest) in rows
                ],
                "collections": GC_PAUSES.listing(),
            }


class PriorityLock:
    """One holder at a time; a waiting foreground request goes before waiting background ones (but a
    background request gives way for at most BACKGROUND_PATIENCE of free lock, so it is never
    starved).

    A release wakes one waiter, a foreground one if any waits: waking them all (one condition,
    notify_all) had each of a dozen waiting threads take the interpreter lock in turn to find the lock
    taken again, and that was a tenth of the tables' process under load (profiled with 16 bots)."""

    def __init__(self) -> None:
        mutex = threading.Lock()
        self._mutex = mutex
        self._foreground = threading.Condition(mutex)
        self._background = threading.Condition(mutex)
        self._busy = False
        self._foreground_waiting = 0
        self._background_waiting = 0

    def waiting(self) -> tuple[int, int]:
        """(foreground, background) requests waiting now."""
        with self._mutex:
            return self._foreground_waiting, self._background_waiting

    def acquire(self, background: bool) -> None:
        with self._mutex:
            if background:
                self._background_waiting += 1
            else:
                self._foreground_waiting += 1
            own = self._background if background else self._foreground
            yielding_since: float | None = None  # when the lock was free but given to a foreground one
            try:
                while True:
                    if self._busy:
                        own.wait()
                        continue
                    if not background or not self._foreground_waiting:
                        break
                    now = time.monotonic()
                    yielding_since = now if yielding_since is None else yielding_since
                    if now - yielding_since >= BACKGROUND_PATIENCE:
                        break
                    own.wait(BACKGROUND_PATIENCE - (now - yielding_since))
            finally:
                if background:
                    self._background_waiting -= 1
                else:
                    self._foreground_waiting -= 1
            self._busy = True

    def release(self) -> None:
        with self._mutex:
            self._busy = False
            # A woken waiter that finds the lock taken again (another request came first) waits again,
            # and the next release wakes one more: every release wakes one while any waits.
            if self._foreground_waiting:
                self._foreground.notify()
            elif self._background_waiting:
                self._background.notify()


class _ThenClose:
    """A WSGI response body that runs `then` when the server closes it, after sending it."""

    def __init__(self, body: bytes, then: Callable[[], None]) -> None:
        self._body = body
        self._then = then

    def __iter__(self) -> Iterator[bytes]:
        return iter((self._body,))

    def close(self) -> None:
        self._then()


class SerializedAws:
    """WSGI middleware: every request to moto under one lock; change feeds bumped after writes;
    injected faults answered before moto sees the request.

    Requests of the cold path's functions (`background`: their botocore User-Agent carries
    `app/<function>`, which the local runtime sets with AWS_SDK_UA_APP_ID) give way to the others: on
    AWS a projector's window of writes does not delay a player's action, and here, with one request at
    a time, it would."""

    def __init__(
        self,
        app: Callable[[dict[str, Any], StartResponse], Iterable[bytes]],
        background: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.lock = PriorityLock()
        self.feeds = ChangeFeeds()
        self.faults = Faults()
        self.stats = RequestStats()
        self._background = tuple(f"app/{name}" for name in background)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == CHANGES_PATH:
            return self._changes(environ, start_response)
        if path == FAULTS_PATH:
            return self._faults(environ, start_response)
        if path == STATS_PATH:
            start_response("200 OK", [("Content-Type", "application/json")])
            return [json.dumps(self.stats.listing()).encode()]
        service, operation = _target(environ)
        watched = (service.startswith("Kinesis_") and operation in ("PutRecord", "PutRecords")) or (
            service.startswith("DynamoDB_") and operation in _DYNAMODB_WRITES
        )
        request_body = b""
        if watched or (self.faults.armed and service):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            request_body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(request_body)
        if self.faults.armed and service:
            try:
                request = json.loads(request_body or b"{}")
            except ValueError:
                request = {}
            rule = self.faults.take(service, operation, _resources(service, operation, request))
            if rule is not None:
                return _aws_error(start_response, service, rule)
        status: list[str] = []

        def capture(code: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(code)
            return start_response(code, headers, exc_info)

        agent = str(environ.get("HTTP_USER_AGENT", ""))
        arrived = time.perf_counter()
        self.lock.acquire(background=any(app in agent for app in self._background))
        waited = time.perf_counter() - arrived
        began = time.thread_time()
        try:
            # The whole body is produced under the lock: moto builds it from its models.
            body = b"".join(self.app(environ, capture))
            if service.startswith("DynamoDBStreams"):
                _forget_old_stream_iterators()
        finally:
            self.lock.release()
            self.stats.add(service, operation, _app_of(agent), time.thread_time() - began, waited)
        if watched and status and status[0].startswith("2"):
            # After the answer has gone out (a WSGI server calls close() then): the pollers this wakes
            # would otherwise compete with the writer for the GIL while its answer is being sent.
            return _ThenClose(body, lambda: self._bump(service, operation, request_body, body))
        return [body]

    def _bump(self, service: str, operation: str, request_body: bytes, body: bytes) -> None:
        try:
            keys = changed_keys(
                service, operation, json.loads(request_body or b"{}"), json.loads(body or b"{}")
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            return  # not JSON (another protocol): nobody waits on it
        if keys:
            self.feeds.bump(keys)

    def _faults(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD")
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            try:
                rule = json.loads(environ["wsgi.input"].read(length) or b"{}")
                if not isinstance(rule, dict):
                    raise ValueError("a fault is a JSON object")
                answer: Any = self.faults.add(rule)
            except (ValueError, TypeError) as exc:
                start_response("400 Bad Request", [("Content-Type", "application/json")])
                return [json.dumps({"message": f"bad fault: {exc}"}).encode()]
        elif method == "DELETE":
            self.faults.clear()
            answer = self.faults.listing()
        elif method == "GET":
            answer = self.faults.listing()
        else:
            start_response(
                "405 Method Not Allowed",
                [("Content-Type", "application/json"), ("Allow", "GET, POST, DELETE")],
            )
            return [b'{"message": "GET, POST or DELETE"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]

    def _changes(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        query = parse_qs(str(environ.get("QUERY_STRING", "")))
        key = (query.get("key") or [""])[0]
        try:
            since = int((query.get("since") or ["0"])[0])
            wait = min(MAX_WAIT, max(0.0, float((query.get("wait") or ["0"])[0])))
        except ValueError:
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"message": "since and wait must be numbers"}']
        if not key:
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [b'{"message": "key is required"}']
        after = query["after"][0] if query.get("after") else None
        version = self.feeds.wait(key, since, wait)
        answer: dict[str, Any] = {"key": key, "version": version}
        if after is not None and key.startswith("kinesis/") and version > since:
            # A subscribed shard's new records travel with the answer, as enhanced fan-out pushes
            # them (SubscribeToShard): no GetRecords between a write and its consumer.
            self.lock.acquire(background=False)
            try:
                answer["records"] = _records_after(key, after)
            finally:
                self.lock.release()
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer).encode()]


SUBSCRIBE_LIMIT = 10_000  # records per answer, as GetRecords returns at most


def _records_after(key: str, after: str) -> list[dict[str, Any]] | None:
    """The records of shard `kinesis/<stream>/<shardId>` after sequence number `after` (None: no such
    shard), as GetRecords lists them, with the data in base64 and the arrival in epoch seconds."""
    from moto.kinesis.models import kinesis_backends

    _, stream_name, shard_id = key.split("/", 2)
    for regions in kinesis_backends.values():
        for backend in regions.values():
            stream = backend.streams.get(stream_name)
            shard = stream.shards.get(shard_id) if stream is not None else None
            if shard is not None:
                found, _, _ = shard_records_after(shard, after if after.isdigit() else "0", SUBSCRIBE_LIMIT)
                return [
                    {
                        "SequenceNumber": str(r.sequence_number),
                        "PartitionKey": r.partition_key,
                        "Data": r.data,
                        "ApproximateArrivalTimestamp": r.created_at,
                    }
                    for r in found
                ]
    return None


def _aws_error(start_response: StartResponse, service: str, rule: dict[str, Any]) -> Iterable[bytes]:
    """An error as the JSON protocols answer it: botocore raises it as that service's ClientError."""
    prefix = "com.amazonaws.dynamodb.v20120810#" if service.startswith("DynamoDB_") else ""
    body = json.dumps({"__type": prefix + rule["code"], "message": rule["message"]}).encode()
    reason = {400: "Bad Request", 500: "Internal Server Error", 503: "Service Unavailable"}.get(
        rule["status"], "Error"
    )
    start_response(
        f"{rule['status']} {reason}",
        [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", rule["code"])],
    )
    return [body]


def _forget_old_stream_iterators() -> None:
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    for regions in dynamodbstreams_backends.values():
        for backend in regions.values():
            iterators = backend.shard_iterators
            if len(iterators) > MAX_STREAM_ITERATORS:
                for arn in list(iterators)[: len(iterators) // 2]:
                    del iterators[arn]


def shard_records_after(shard: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
    """moto's `Shard.get_records`, by key instead of by walking every record of the shard: a shard's
    sequence numbers are 1, 2, 3, ... (moto's put_record adds one to the last). A shard whose numbers
    are not contiguous (none here) takes moto's own walk."""
    records = shard.records
    first, last = next(iter(records), 0), next(reversed(records), 0)
    if records and last - first + 1 != len(records):
        return _walk_records(shard, last_sequence_id, limit)
    after = max(int(last_sequence_id), first - 1)
    end = last if limit is None else min(last, after + limit)
    found = [records[n] for n in range(after + 1, end + 1)]
    if not found:
        return [], int(last_sequence_id), 0
    behind = records[last].created_at - found[-1].created_at
    return found, found[-1].sequence_number, int(behind * 1000)


def _walk_records(shard: Any, last_sequence_id: str, limit: int | None) -> tuple[list[Any], int, int]:
    from moto.kinesis.models import Shard

    return _MOTO_GET_RECORDS.get("walk", Shard.get_records)(shard, last_sequence_id, limit)  # type: ignore[no-any-return]


_MOTO_GET_RECORDS: dict[str, Any] = {}


def _speed_up_moto() -> None:
    """Constant-cost versions of moto's per-request work that grows with its stored data (module doc)."""
    from moto import backends
    from moto.core import responses as moto_responses
    from moto.core import utils as moto_utils
    from moto.kinesis.models import Shard

    modules = tuple(backends.list_of_moto_modules())
    # moto is untyped at these seams: its functions are replaced through setattr.
    setattr(backends, "list_of_moto_modules", lambda: modules)  # noqa: B010
    _MOTO_GET_RECORDS.setdefault("walk", Shard.get_records)
    setattr(Shard, "get_max_sequence_number", lambda shard: next(reversed(shard.records), 0))  # noqa: B010
    setattr(Shard, "get_records", shard_records_after)  # noqa: B010
    # Every request lists its response class's methods with inspect.getmembers: once per class is enough.
    names = functools.cache(moto_utils.method_names_from_class)
    setattr(moto_responses, "method_names_from_class", names)  # noqa: B010


def _quiet_app(service: Any) -> Any:
    """moto's per-service Flask app without Flask's debug mode, which moto turns on and which makes every
    request with a body wrap its form data in a debugging helper; errors are answered the same way."""
    from moto.moto_server.werkzeug_app import create_backend_app

    app = create_backend_app(service)
    app.debug = False
    return app


def build_app(background: Iterable[str] = ()) -> SerializedAws:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    from local import motofixes

    _speed_up_moto()
    motofixes.install()
    return SerializedAws(DomainDispatcherApplication(_quiet_app), background)


_HEADER_NAME = re.compile(r"[\041-\071\073-\176]+")  # what email's parser takes for a header's name


def parse_headers(fp: Any, _class: type = http.client.HTTPMessage) -> Any:
    """http.client.parse_headers, which http.server runs on every request, without the email package's
    feed parser: the header block of an AWS SDK's request is plain `Name: value` lines, and the message
    is built as the parser builds it (names as sent, values without their leading blanks and line
    end). A block the parser would read otherwise (a folded line, a line without a name and a colon, no
    blank line at its end) goes to the parser itself. The parser was a tenth of each moto process's
    time, profiled under 16 bots."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]  # the limits on lines and count
    fields = _plain_fields(lines)
    if fields is None:
        return email.parser.Parser(_class=_class).parsestr(b"".join(lines).decode("iso-8859-1"))
    message = _class()
    message._headers = fields
    message.set_payload("")
    return message


def _plain_fields(lines: list[bytes]) -> list[tuple[str, str]] | None:
    """The (name, value) pairs of a block of plain `Name: value` lines ended by a blank one, else None."""
    if not lines or lines[-1] not in (b"\r\n", b"\n"):
        return None
    fields: list[tuple[str, str]] = []
    for raw in lines[:-1]:
        name, colon, value = raw.decode("iso-8859-1").partition(":")
        if not colon or not _HEADER_NAME.fullmatch(name) or name.startswith("From "):
            return None
        fields.append((name, value.lstrip(" \t").rstrip("\r\n")))
    return fields


_REQUEST_LOG = logging.getLogger("werkzeug")


def keep_alive_handler() -> type:
    """moto's request handler, serving HTTP/1.1 with keep-alive. werkzeug's development server closes
    every connection after one response (and then drains the socket, which would swallow the next
    request of a kept-alive one), so each AWS call paid a new TCP connection and a new server thread.
    This handler runs the WSGI app itself: the body is read to its Content-Length, the whole answer is
    sent with its Content-Length, and the connection then waits for the next request. A request
    without a length (chunked) or an app that fails closes the connection, as before."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler
    from werkzeug.wsgi import LimitedStream

    class KeepAlive(MotoRequestHandler):  # type: ignore[misc]
        timeout = IDLE_CONNECTION_SECONDS  # an idle kept-alive connection ends after this
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # werkzeug formats the line (the path decoded, a timestamp, colours) before its logger drops
            # it: 5 % of the tables' process under load, for the line per request that main() turns off.
            if _REQUEST_LOG.isEnabledFor(logging.INFO):
                super().log_request(code, size)

        def run_wsgi(self) -> None:
            length = self.headers.get("Content-Length") or "0"
            if self.headers.get("Transfer-Encoding") or not length.isdigit():
                self.close_connection = True
                super().run_wsgi()  # werkzeug's own path, which closes the connection
                return
            body = LimitedStream(self.rfile, int(length))
            environ = self.make_environ()
            environ["wsgi.input"] = body
            try:
                status, headers, payload, answer = self._call(environ)
            except Exception:
                # An answer all the same, as werkzeug's server gives: botocore retries a 500.
                logging.getLogger(__name__).exception("request failed: %s %s", self.command, self.path)
                self.close_connection = True
                self.send_error(500, "InternalFailure")
                return
            try:
                code, _, reason = status.partition(" ")
                self.send_response(int(code), reason)
                for name, value in headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                # One write for the head and the body: two small writes on a kept-alive connection
                # meet Nagle's algorithm and the client's delayed ACK (40 ms a call).
                self._headers_buffer.append(b"\r\n" + payload)
                self.flush_headers()
                body.exhaust()
            except (ConnectionError, TimeoutError):
                self.close_connection = True  # the client went away
            finally:
                if hasattr(answer, "close"):
                    answer.close()  # after sending: a _ThenClose bumps its feeds here

        def _call(self, environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes, Any]:
            started: list[Any] = []

            def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                started[:] = [status, headers]
                return lambda data: None  # the write() callable: moto never uses it

            answer = self.server.app(environ, start_response)
            try:
                payload = b"".join(answer)
            except Exception:
                if hasattr(answer, "close"):
                    answer.close()
                raise
            return started[0], started[1], payload, answer

    return KeepAlive


class GcPauses:
    """The collector's pauses per generation: count, wall seconds and the longest (a gc callback)."""

    def __init__(self) -> None:
        self._began = 0.0
        self._rows: dict[int, list[float]] = {}

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        # The collector holds the interpreter lock: no other thread runs between start and stop.
        if phase == "start":
            self._began = time.perf_counter()
            return
        took = time.perf_counter() - self._began
        row = self._rows.setdefault(int(info.get("generation", -1)), [0, 0.0, 0.0])
        row[0] += 1
        row[1] += took
        row[2] = max(row[2], took)

    def listing(self) -> list[dict[str, Any]]:
        return [
            {"generation": g, "count": int(n), "seconds": round(total, 4), "longest": round(longest, 4)}
            for g, (n, total, longest) in sorted(dict(self._rows).items())
        ]


GC_PAUSES = GcPauses()


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def keep_only_young_collected() -> None:
    """After every full collection, what survived it is frozen (module doc). Frozen objects still die
    when their last reference goes; only a reference cycle among them would stay, which moto's stored
    data does not make (tests/unit/test_awsserver_speedups.py)."""
    if _freeze_survivors not in gc.callbacks:
        gc.freeze()  # what the imports left, before the first request
        gc.callbacks.extend([GC_PAUSES, _freeze_survivors])


def main(argv: list[str] | None = None) -> None:
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    parser.add_argument(
        "--background",
        default="",
        help="comma-separated app ids (AWS_SDK_UA_APP_ID) whose requests give way to the others",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own server does: URLs it hands out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.setswitchinterval(SWITCH_INTERVAL)
    # What http.server parses each request's headers with (typeshed types it as an overload).
    setattr(http.client, "parse_headers", parse_headers)  # noqa: B010
    _REQUEST_LOG.setLevel(logging.ERROR)  # not a line per request
    # Threaded so that change-feed waiters never hold up AWS requests; the lock serialises the latter.
    background = [name for name in args.background.split(",") if name]
    app = build_app(background)
    keep_only_young_collected()
    run_simple(args.host, args.port, app, threaded=True, request_handler=keep_alive_handler())


if __name__ == "__main__":
    main()
