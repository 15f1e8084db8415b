"""`$disconnect`: forgets the connection, gives back its waiting seat, and tells its match, through the
stream, that the player dropped (backend.sessions). API Gateway's `$disconnect` is best effort: a push
that finds the connection gone (410, streams.processor) and a presence probe (streams.timers) do the
same."""

from __future__ import annotations

from typing import Any

from backend import bootstrap, protocol, snapstart
from backend.ids import ConnectionId
from backend.telemetry import MetricUnit, logger, metrics, tracer

sessions = bootstrap.Root(bootstrap.sessions)
snapstart.warm("backend.store.connections", models=lambda: [protocol.GameEvent])


@logger.inject_lambda_context(correlation_id_path="requestContext.connectionId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = event["requestContext"]
    old = sessions().close(ConnectionId(ctx["connectionId"]))
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
