"""One module per table: the only code that knows its keys and attributes."""

from __future__ import annotations


def condition_failed(exc: Exception) -> bool:
    """Whether a botocore ClientError is a failed ConditionExpression: the stores turn that into the
    project's own errors (or into "already done"), never letting game code read AWS error codes."""
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return bool(code == "ConditionalCheckFailedException")
