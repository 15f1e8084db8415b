"""Every client frame (`$default` and one route per action). The answer goes back as the route response."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend import bootstrap, protocol, snapstart
from backend.breaker import CircuitBreaker
from backend.caller import Caller
from backend.config import game_settings
from backend.errors import RateLimited
from backend.guard import FrameGuard
from backend.protocol import Closing, dump
from backend.service import handle_frame, refuse
from backend.telemetry import MetricUnit, logger, metrics, tracer

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
        timers=bootstrap.timers(),
        probe_every=game_settings().sessions.presenceProbe,
    )


def _guard() -> FrameGuard:
    limits = game_settings().sessions
    return FrameGuard(limits.framesPerSecond, limits.frameBurst, limits.floodClose)


routes = bootstrap.Root(_game_routes)
# The data plane's breaker (DynamoDB, Kinesis): one per execution environment, as the routes are.
data_plane = CircuitBreaker("DataPlane")
guard = bootstrap.Root(_guard)
gateway = bootstrap.Root(bootstrap.gateway)
# Before SnapStart's snapshot: the game routes that `ping` never needs, and the protocol's models.
snapstart.warm("backend.actions", models=protocol.models)


@logger.inject_lambda_context(correlation_id_path="requestContext.connectionId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    caller = Caller.from_event(event)
    verdict = guard().admit(caller.connection_id, caller.received_at / 1000)
    if verdict != "ok":
        if verdict == "close":
            close_flooder(caller)
        body = refuse(event.get("body"), RateLimited("too many frames on this connection; slow down"))
        return {"statusCode": 200, "body": body}
    answer = handle_frame(
        routes,
        caller,
        event.get("body"),
        is_base64=bool(event.get("isBase64Encoded")),
        breaker=data_plane,
    )
    return {"statusCode": 200, "body": answer}


def close_flooder(caller: Caller) -> None:
    """Tells a connection that keeps flooding why, then closes it (API Gateway closes with 1000: its
    DeleteConnection takes no close code)."""
    message = "this connection kept sending frames beyond its limit and is closed"
    logger.warning("closing a flooding connection", extra={"playerId": caller.player_id})
    metrics.add_metric(name="FloodsClosed", unit=MetricUnit.Count, value=1)
    try:
        gateway().post(caller.connection_id, dump(Closing(code=RateLimited.code, message=message)))
        gateway().close(caller.connection_id)
    except Exception:  # the refusal still goes back; the next frame past the limit tries nothing more
        logger.exception("could not close a flooding connection")
