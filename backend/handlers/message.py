"""Every client frame (`$default` and one route per action). The answer goes back as the route response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend import bootstrap, protocol, snapstart
from backend.breaker import CircuitBreaker
from backend.caller import Caller
from backend.service import handle_frame
from backend.telemetry import logger, metrics, tracer

if TYPE_CHECKING:
    from backend.actions import GameRoutes


def _game_routes() -> GameRoutes:
    # Imported by the first frame that is not a `ping`, or before SnapStart's snapshot.
    from backend.actions import GameRoutes

    return GameRoutes(
        matches=bootstrap.matches(),
        connections=bootstrap.connections(),
        stream=bootstrap.stream(),
        leaderboards=bootstrap.leaderboards(),
    )


routes = bootstrap.Root(_game_routes)
# The data plane's breaker (DynamoDB, Kinesis): one per execution environment, as the routes are.
data_plane = CircuitBreaker("DataPlane")
# Before SnapStart's snapshot: the game routes that `ping` never needs, and the protocol's models.
snapstart.warm("backend.actions", models=protocol.models)


@logger.inject_lambda_context(correlation_id_path="requestContext.connectionId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    caller = Caller.from_event(event)
    answer = handle_frame(
        routes,
        caller,
        event.get("body"),
        is_base64=bool(event.get("isBase64Encoded")),
        breaker=data_plane,
    )
    return {"statusCode": 200, "body": answer}
