"""Every client frame (`$default` and one route per action). The answer goes back as the route response."""

from __future__ import annotations

from typing import Any

from backend import protocol, snapstart
from backend.service import Caller, handle_frame
from backend.telemetry import logger, metrics, tracer

# Before SnapStart's snapshot: the game routes that `ping` never needs, and the protocol's models.
snapstart.warm("backend.actions", models=protocol.models)


@logger.inject_lambda_context(correlation_id_path="requestContext.connectionId")
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    caller = Caller.from_event(event)
    answer = handle_frame(caller, event.get("body"), is_base64=bool(event.get("isBase64Encoded")))
    return {"statusCode": 200, "body": answer}
