"""`$connect`: records the connection (the authorizer already verified the player)."""

from __future__ import annotations

from typing import Any

from backend import bootstrap, snapstart
from backend.ids import ConnectionId, PlayerId
from backend.store.connections import Connection
from backend.telemetry import MetricUnit, logger, metrics, tracer

connections = bootstrap.Root(bootstrap.connections)
snapstart.warm()


@logger.inject_lambda_context(correlation_id_path="requestContext.connectionId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = event["requestContext"]
    player = (ctx.get("authorizer") or {}).get("playerId")
    if not player:
        # Only reachable if the route is deployed without its authorizer: refuse rather than guess.
        logger.error("no playerId in the authorizer context")
        return {"statusCode": 401}
    conn = Connection(ConnectionId(ctx["connectionId"]), PlayerId(player), int(ctx["connectedAt"]))
    connections().put(conn)
    metrics.add_metric(name="Connections", unit=MetricUnit.Count, value=1)
    logger.info("connected", extra={"playerId": player})
    return {"statusCode": 200}
