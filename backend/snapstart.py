"""SnapStart: what a function does before Lambda snapshots it, and what a restored environment makes anew.

With SnapStart (`snapStart` in serverless.yml; python3.12 and later, published versions only), Lambda
runs a function's init phase once per published version, snapshots the environment, and resumes every
new environment from that snapshot instead of importing the handler again. So:

- before the snapshot, a function does the work its first request would otherwise do (`warm`): the
  imports its handler keeps lazy, botocore's files for its clients, the pydantic models it validates
  with, the tracer where downstream tracing is on. The handler modules stay light to import, for the
  stages and environments without SnapStart (a stage with `snapStart: false`, `$LATEST`). The local
  runtime emulates SnapStart: it runs both kinds of hook (local/worker.py).
- after a restore, what must not be shared by every environment resumed from one snapshot is made
  anew (`on_restore`): the `random` module's state (botocore's retry jitter draws from it: a shared
  state would retry every environment in step), AWS clients and their pooled connections (taken before
  the snapshot, they are stale), and cached secrets and signing keys (re-read, so a rotation is seen).
  `uuid.uuid4`, `secrets` and `os.urandom` read the kernel's entropy and need nothing.

Nothing here keeps a client or reads a secret before the snapshot: those wait for a request. What it
keeps is the environment's boto3 and aiobotocore sessions, without credentials, and botocore's data
files parsed into them, the same in every environment: a restored environment's first clients then
cost about 7 ms each instead of 60-100 (backend.aws.session, backend.aws.prime).

The hooks are registered with `snapshot_restore_py`, whose registries the Lambda runtime reads; so does
the local runtime's emulation (local/worker.py), and the tests run them (tests/unit/test_snapstart.py).
"""

from __future__ import annotations

import importlib
import random
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from snapshot_restore_py import register_after_restore, register_before_snapshot

F = TypeVar("F", bound=Callable[..., Any])

# What every function's requests import on first use (backend.aws creates its clients lazily).
COMMON_IMPORTS = ("boto3", "botocore.client", "botocore.config")
# The services whose botocore data files (models, endpoint rules) every snapshot holds parsed: those of
# the hot path and of most functions. A client of another one parses its own files on first use.
COMMON_SERVICES = ("dynamodb", "kinesis", "sqs", "apigatewaymanagementapi")


def warm(
    *modules: str,
    models: Callable[[], Iterable[Any]] | None = None,
    prepare: Callable[[], None] | None = None,
) -> None:
    """Registers, to run before the snapshot: import `modules` (and COMMON_IMPORTS), parse botocore's
    files for the COMMON_SERVICES' clients, build the pydantic models and type adapters that `models()`
    returns, run `prepare()`, and load the tracer if downstream tracing is on."""

    def before_snapshot() -> None:
        for name in (*COMMON_IMPORTS, *modules):
            importlib.import_module(name)
        from backend import aws

        aws.prime(COMMON_SERVICES)
        for model in models() if models is not None else ():
            rebuild = getattr(model, "model_rebuild", None) or model.rebuild
            rebuild()
        if prepare is not None:
            prepare()
        from backend.telemetry import tracer

        tracer.load()

    register_before_snapshot(before_snapshot)


def on_restore(fn: F) -> F:
    """Registers `fn` to run after every restore (a decorator)."""
    register_after_restore(fn)
    return fn


@on_restore
def reseed_random() -> None:
    random.seed()  # from os.urandom: a new state per environment


@on_restore
def forget_clients() -> None:
    """Every client, and every composition root (whose stores and pusher hold clients), is made again
    on first use."""
    from backend import aws, bootstrap

    aws.client.cache_clear()
    bootstrap.Root.reset_all()


@on_restore
def forget_secrets() -> None:
    """The JWT secret (powertools' parameter cache) and an identity provider's signing keys."""
    if "aws_lambda_powertools.utilities.parameters" in sys.modules:
        from aws_lambda_powertools.utilities import parameters

        parameters.clear_caches()  # type: ignore[no-untyped-call]
    if "backend.auth" in sys.modules:
        from backend import auth

        auth.forget_keys()
