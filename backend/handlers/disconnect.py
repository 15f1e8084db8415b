"""`$disconnect`: forgets the connection, and tells its match, through the stream, to stop pushing there.
Idempotent: a record already gone is fine. (API Gateway's `$disconnect` is best effort: a push that
finds the connection gone (410) does the same, streams.processor.)"""

from __future__ import annotations

from typing import Any

from backend import bootstrap
from backend.ids import ConnectionId
from backend.store.stream import disconnect_event
from backend.telemetry import MetricUnit, logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="requestContext.connectionId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = event["requestContext"]
    old = bootstrap.connections().delete(ConnectionId(ctx["connectionId"]))
    if old is not None and old.match_id is not None:
        bootstrap.stream().publish(disconnect_event(old.match_id, old.player_id, old.connection_id))
    metrics.add_metric(name="Disconnections", unit=MetricUnit.Count, value=1)
    logger.info(
        "disconnected",
        extra={
            "statusCode": ctx.get("disconnectStatusCode"),
            "reason": ctx.get("disconnectReason"),
            "known": old is not None,
        },
    )
    return {"statusCode": 200}
