"""REQUEST authorizer of `$connect`: verifies `?token=` and hands the player id to every later event."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponseWebSocket,
)

from backend import auth
from backend.errors import Unauthorized
from backend.telemetry import MetricUnit, logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path="requestContext.connectionId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        claims = auth.verify_from_settings(the_token(event))
    except Unauthorized as exc:
        metrics.add_metric(name="ConnectionsRefused", unit=MetricUnit.Count, value=1)
        logger.info("connection refused", extra={"reason": exc.message})
        # API Gateway's contract: exactly this message makes it answer 401.
        raise Exception("Unauthorized") from None
    response = APIGatewayAuthorizerResponseWebSocket.from_route_arn(
        event["methodArn"],
        principal_id=claims.player_id,
        context={"playerId": claims.player_id, "role": claims.role},
    )
    response.allow_all_routes()
    logger.info("connection authorized", extra={"playerId": claims.player_id, "role": claims.role})
    return response.asdict()


def the_token(event: dict[str, Any]) -> str | None:
    """The one `token` query parameter. API Gateway's single-value map keeps only the last of repeated
    parameters (`?token=A&token=B` gives B), so which token a client "meant" would depend on the order in
    which a proxy or library wrote them: two are refused, whatever they hold."""
    values = (event.get("multiValueQueryStringParameters") or {}).get("token")
    if values is not None and len(values) != 1:
        raise Unauthorized("more than one token")
    return (event.get("queryStringParameters") or {}).get("token")
