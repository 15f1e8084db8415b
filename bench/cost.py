"""What a million actions cost on AWS, from what one run used per action and bench/prices.toml.

    usage per action (counted and measured)  x  list price  =  USD per million actions, by service

Left out, because they do not grow with actions: the Kinesis stream-hour ($0.04/h per on-demand
stream), storage, CloudWatch custom metrics and alarms, and the free tiers.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

PRICES = Path(__file__).with_name("prices.toml")
GB = 1024**3
# Lambda writes START, END and REPORT lines for every invocation (about 330 bytes with the request id).
PLATFORM_LOG_BYTES = 330


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    with path.open("rb") as f:
        return tomllib.load(f)


@dataclass
class Usage:
    """What one action uses on average (a run's totals divided by its actions)."""

    lambda_requests: float = 0.0
    lambda_gb_seconds: float = 0.0
    dynamodb_rru: float = 0.0
    dynamodb_wru: float = 0.0
    kinesis_ingested_gb: float = 0.0
    kinesis_retrieved_gb: float = 0.0
    ws_messages: float = 0.0
    ws_connection_minutes: float = 0.0
    sqs_requests: float = 0.0
    log_gb: float = 0.0
    xray_traces: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def gb_seconds(durations_ms: list[float], memory_mb: int) -> float:
    """Lambda bills each invocation's duration rounded up to the millisecond, times its memory."""
    return sum(math.ceil(d) for d in durations_ms) / 1000 * memory_mb / 1024


def kinesis_gb(records: float, record_bytes: float) -> float:
    """Kinesis on-demand rounds every record up to 1 KB."""
    return records * max(1, math.ceil(record_bytes / 1024)) * 1024 / GB


def per_million(usage: Usage, prices: dict[str, Any]) -> dict[str, float]:
    """USD per million actions, by service."""
    p = prices
    m = 1_000_000
    return {
        "Lambda": m
        * (
            usage.lambda_requests * p["lambda"]["per_request"]
            + usage.lambda_gb_seconds * p["lambda"]["per_gb_second_arm64"]
        ),
        "DynamoDB": m
        * (
            usage.dynamodb_rru * p["dynamodb"]["per_read_request_unit"]
            + usage.dynamodb_wru * p["dynamodb"]["per_write_request_unit"]
        ),
        "Kinesis": m
        * (
            usage.kinesis_ingested_gb * p["kinesis"]["per_gb_ingested"]
            + usage.kinesis_retrieved_gb * p["kinesis"]["per_gb_retrieved"]
        ),
        "API Gateway": m
        * (
            usage.ws_messages * p["apigateway"]["per_message"]
            + usage.ws_connection_minutes * p["apigateway"]["per_connection_minute"]
        ),
        "SQS": m * usage.sqs_requests * p["sqs"]["per_request"],
        "CloudWatch Logs": m * usage.log_gb * p["cloudwatch"]["per_gb_logs_ingested"],
        "X-Ray": m * usage.xray_traces * p["xray"]["per_trace_recorded"],
    }


@dataclass
class RunTotals:
    """A run's raw totals, before dividing by actions."""

    actions: float  # records put on the stream (kinesis.PutRecord calls of the message function)
    invocations: dict[str, int]  # per function
    gb_seconds: float
    rru: float
    wru: float
    stream_records: float
    record_bytes: float
    inbound_frames: float  # frames clients sent that a function answered (each answered with one frame)
    posts: float  # Management API posts
    connection_minutes: float
    sqs_requests: float
    log_bytes: float  # what the handlers printed (platform lines added here)
    xray_sampling: float


def usage_of(t: RunTotals) -> Usage:
    if t.actions <= 0:
        raise ValueError("no actions")
    invocations = sum(t.invocations.values())
    a = t.actions
    return Usage(
        lambda_requests=invocations / a,
        lambda_gb_seconds=t.gb_seconds / a,
        dynamodb_rru=t.rru / a,
        dynamodb_wru=t.wru / a,
        kinesis_ingested_gb=kinesis_gb(t.stream_records, t.record_bytes) / a,
        kinesis_retrieved_gb=kinesis_gb(t.stream_records, t.record_bytes) / a,
        # received, then the route response sent back; a push is one message sent
        ws_messages=(2 * t.inbound_frames + t.posts) / a,
        ws_connection_minutes=t.connection_minutes / a,
        sqs_requests=t.sqs_requests / a,
        log_gb=(t.log_bytes + PLATFORM_LOG_BYTES * invocations) / GB / a,
        xray_traces=t.xray_sampling * invocations / a,
    )
