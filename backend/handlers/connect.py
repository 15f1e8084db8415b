"""`$connect`: records the connection (the authorizer already verified the player), and keeps the player
to `maxConnectionsPerPlayer` connections by closing their oldest (backend.sessions.Admission)."""

from __future__ import annotations

from typing import Any

from backend import bootstrap, snapstart
from backend.ids import ConnectionId, PlayerId
from backend.sessions import Admission
from backend.store.connections import Connection
from backend.telemetry import MetricUnit, logger, metrics, tracer
from backend.vocabulary import PROTOCOL_VERSION


def _admission() -> Admission:
    from backend.config import game_settings

    return Admission(
        connections=bootstrap.connections(),
        gateway=bootstrap.gateway(),
        sessions=bootstrap.sessions,  # built only for a ghost (a connection already gone)
        max_per_player=game_settings().sessions.maxConnectionsPerPlayer,
    )


admission = bootstrap.Root(_admission)
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
    wanted = (event.get("queryStringParameters") or {}).get("protocol")
    if wanted is not None and wanted != str(PROTOCOL_VERSION):
        # A client that states the protocol it speaks is refused, rather than sent frames it misreads.
        logger.info("refused a client of another protocol version", extra={"protocol": wanted})
        return {"statusCode": 400}
    conn = Connection(ConnectionId(ctx["connectionId"]), PlayerId(player), int(ctx["connectedAt"]))
    closed = admission().admit(conn)
    metrics.add_metric(name="Connections", unit=MetricUnit.Count, value=1)
    if closed:
        metrics.add_metric(name="ConnectionsClosedForLimit", unit=MetricUnit.Count, value=len(closed))
    logger.info("connected", extra={"playerId": player, "closedOlder": len(closed)})
    return {"statusCode": 200}
