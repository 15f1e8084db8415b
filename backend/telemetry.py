"""One Logger, Metrics and Tracer per execution environment, shared by the entry point's modules.

Logger: structured JSON, correlation id = the connection id (or request id for HTTP).
Metrics: CloudWatch Embedded Metric Format lines (namespace from POWERTOOLS_METRICS_NAMESPACE); the local
runtime counts them, see /local/metrics.
Tracer: X-Ray segments on AWS; a no-op where POWERTOOLS_TRACE_DISABLED is set (the local runtime).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

logger = Logger()
metrics = Metrics()
tracer = Tracer()

__all__ = ["MetricUnit", "logger", "metrics", "tracer"]
