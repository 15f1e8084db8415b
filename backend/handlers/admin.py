"""The admin HTTP API (httpApi routes): powertools' resolver does routing, validation and OpenAPI."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from backend.admin.app import handle
from backend.telemetry import logger, metrics, tracer


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return handle(event, context)
