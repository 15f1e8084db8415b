"""`$disconnect`: forgets the connection. Idempotent: a record already gone is fine."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from backend import bootstrap
from backend.ids import ConnectionId

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="requestContext.connectionId")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    ctx = event["requestContext"]
    old = bootstrap.connections().delete(ConnectionId(ctx["connectionId"]))
    logger.info(
        "disconnected",
        extra={
            "statusCode": ctx.get("disconnectStatusCode"),
            "reason": ctx.get("disconnectReason"),
            "known": old is not None,
        },
    )
    return {"statusCode": 200}
