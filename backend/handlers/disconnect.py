"""`$disconnect`: forgets the connection. Idempotent: a record already gone is fine."""

from __future__ import annotations

from typing import Any

from backend import bootstrap, snapstart
from backend.ids import ConnectionId
from backend.telemetry import MetricUnit, logger, metrics, tracer

snapstart.warm("backend.store.connections")


@logger.inject_lambda_context(correlation_id_path="requestContext.connectionId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = event["requestContext"]
    old = bootstrap.connections().delete(ConnectionId(ctx["connectionId"]))
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
