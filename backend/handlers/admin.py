"""The admin HTTP API (httpApi routes): powertools' resolver does routing, validation and OpenAPI."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from backend import bootstrap, snapstart
from backend.admin import app as routes
from backend.admin.app import AdminDeps, handle
from backend.aws import Deferred
from backend.config import settings
from backend.store.health import Health
from backend.telemetry import logger, metrics, tracer


def _build() -> AdminDeps:
    s = settings()
    tables = [s.connections_table, s.matches_table, s.leaderboards_table, s.events_table]
    return AdminDeps(
        make_leaderboards=bootstrap.leaderboards,
        events=bootstrap.events(),
        matches=bootstrap.matches(),
        connections=bootstrap.connections(),
        stream=bootstrap.stream(),
        stream_stats=bootstrap.stream_stats(),
        queues=bootstrap.queue_depths(),
        health=Health(Deferred("dynamodb"), Deferred("kinesis"), tables, s.stream_name),
        pusher=bootstrap.pusher(),
        settings=s,
    )


deps = bootstrap.Root(_build)
# Before SnapStart's snapshot: PyJWT, the pusher, the leaderboards' machinery, every model, and each
# route's validation.
snapstart.warm(
    "jwt",
    "backend.push",
    "backend.rankings",
    "aiobotocore.session",
    models=routes.models,
    prepare=routes.prepare,
)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context, deps())
