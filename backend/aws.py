"""AWS clients, created on first use and kept for the life of the execution environment.

Creating a botocore client costs tens of milliseconds; a warm Lambda must not pay it per invocation,
and a cold one must not pay for clients its route never uses. Endpoints follow the standard
`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables, so the same code talks to AWS,
LocalStack or the embedded moto server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from functools import cache
from typing import Any


def user_agent() -> str:
    """The User-Agent of every client of ours, fixed once. Without one, botocore rebuilds its header from
    some ten components, each cleaned by a regular expression, twice per request: 8 % of the message
    function's and the processor's CPU under load (a profile of 32 bots, 2026-12-03), for a header that
    only feeds AWS's SDK statistics. botocore appends its session's extra (its own name and version).
    The application id (`AWS_SDK_UA_APP_ID`, which botocore leaves out of a fixed header) is kept as
    botocore writes it, `app/<id>`: the local runtime's AWS endpoint tells the calling function by it."""
    import os

    app_id = os.environ.get("AWS_SDK_UA_APP_ID", "").strip()
    return f"gamebackend app/{app_id}" if app_id else "gamebackend"


# boto3's sessions are not thread-safe, and a composition root's clients are made from several threads
# (the processor writes matches from worker threads): one client is made at a time.
_MAKING = threading.Lock()


@cache
def _core() -> Any:
    import botocore.session

    return botocore.session.get_session()


@cache
def session() -> Any:
    """The environment's boto3 session: every client of `client` is made from it. A session of each, as
    before, cost each client 20-30 ms of CPU to build the session (some 250 event handlers, each
    registered with a signature check) and 35-70 ms to parse its service's model, endpoint rules and
    the partitions again; from this one, a client costs about 7 ms (measured 2026-12-03).

    SnapStart's snapshot holds it built, with those files parsed (`prime`), and no credentials: it
    resolves them when it makes its first client, which is never before the snapshot."""
    import boto3

    return boto3.session.Session(botocore_session=_core())


def _sharing_files(other: Any) -> Any:
    """`other`, a new botocore or aiobotocore session, reading botocore's files through `_core()`'s loader."""
    other.register_component("data_loader", _core().get_component("data_loader"))
    return other


@cache
def aio_session() -> Any:
    """The environment's aiobotocore session (backend.push), reading botocore's files through the same
    loader as `session()`."""
    from aiobotocore.session import get_session

    return _sharing_files(get_session())


def _config() -> Any:
    from botocore.config import Config

    # Short timeouts and standard retries: a handler has seconds, not minutes.
    return Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=2,
        read_timeout=5,
        user_agent=user_agent(),
    )


def prime(services: Iterable[str]) -> None:
    """Before a snapshot: builds the sessions, and parses every file a client of each service reads
    into their loader by making one from a session of its own that shares it, dropped with its
    credentials (no call, so no connection)."""
    import os
    import sys

    import boto3
    import botocore.session

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    session()
    if "aiobotocore.session" in sys.modules:
        aio_session()
    for service in services:
        own = boto3.session.Session(
            botocore_session=_sharing_files(botocore.session.get_session()), region_name=region
        )
        own.client(service, config=_config())


@cache
def client(service: str, endpoint_url: str | None = None) -> Any:
    with _MAKING:
        return session().client(service, config=_config(), endpoint_url=endpoint_url)


def failed_dependency(exc: BaseException) -> bool:
    """Whether an exception is an AWS call's failure (throttling, a timeout, a 5xx; botocore's and
    aiobotocore's), which a caller may retry, rather than a bug of ours."""
    return type(exc).__module__.startswith(("botocore", "aiobotocore"))


# Error codes by which a service says it is throttling the caller, whatever its HTTP status (DynamoDB and
# Kinesis answer 400 for theirs).
THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "RequestLimitExceeded",
        "LimitExceededException",
        "TooManyRequestsException",
        "KMSThrottlingException",
    }
)


def downstream_failing(exc: BaseException) -> bool:
    """Whether an AWS call's exception says the service is failing (a 5xx, a throttle, a timeout, a
    connection that could not be made or was dropped): what a circuit breaker counts. An answer that
    says the request was wrong (another 4xx: a 410, a lost condition, a validation error) is the
    service working, and does not count."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict) and "Error" in response:
        status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return status >= 500 or status == 429 or response["Error"].get("Code") in THROTTLING_CODES
    return (
        failed_dependency(exc)
        or type(exc).__module__.startswith("aiohttp")
        or isinstance(exc, (TimeoutError, ConnectionError))
    )


class Deferred:
    """A client made on first use: `Deferred("sqs").send_message(...)` creates the SQS client then
    (`client`, so one per service for the environment). A composition root holds these, so that building
    it creates no client; after `client.cache_clear()` (a SnapStart restore) the next call makes a new one."""

    __slots__ = ("_endpoint_url", "_service")

    def __init__(self, service: str, endpoint_url: str | None = None) -> None:
        self._service = service
        self._endpoint_url = endpoint_url

    def __getattr__(self, name: str) -> Any:
        return getattr(client(self._service, self._endpoint_url), name)

    def __repr__(self) -> str:
        return f"Deferred({self._service!r})"
