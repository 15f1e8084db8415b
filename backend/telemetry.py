"""One Logger, Metrics and tracer per execution environment, shared by the entry point's modules.

Logger: structured JSON, correlation id = the connection id (or request id for HTTP).
Metrics: CloudWatch Embedded Metric Format lines (namespace from POWERTOOLS_METRICS_NAMESPACE); the local
runtime counts them, see /local/metrics.
Tracing: Lambda's active tracing (`provider.tracing.lambda` in serverless.yml) records every invocation's
segment (initialization, invocation, overhead) with no SDK in the function at all. The X-Ray SDK adds
subsegments for the function's downstream calls (botocore, aiobotocore, `capture_method`) and costs about
150 ms of imports and patching, so it is loaded only where `TRACE_DOWNSTREAM` is true for the function
(docs/operations.md says which and why), and then not at import: by the first traced invocation, or
before SnapStart's snapshot (backend.snapstart), so that a restored environment has it already.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

F = TypeVar("F", bound=Callable[..., Any])
TRACE_DOWNSTREAM_ENV = "TRACE_DOWNSTREAM"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class LazyTracer:
    """powertools' Tracer, created on first need, and only where downstream tracing is on.

    Its decorators cost nothing where it is off: the function runs undecorated but for one check.
    """

    def __init__(self) -> None:
        self._tracer: Tracer | None = None

    @staticmethod
    def wanted() -> bool:
        """Downstream tracing is on for this function, and there is an X-Ray daemon to send to (on AWS;
        never where POWERTOOLS_TRACE_DISABLED is set, as in the local runtime and the tests)."""
        return (
            _truthy(os.environ.get(TRACE_DOWNSTREAM_ENV))
            and not _truthy(os.environ.get("POWERTOOLS_TRACE_DISABLED"))
            and bool(os.environ.get("LAMBDA_TASK_ROOT"))
        )

    @property
    def loaded(self) -> bool:
        return self._tracer is not None

    def load(self) -> Tracer | None:
        """The Tracer (importing the X-Ray SDK and patching botocore and aiobotocore), or None when off."""
        if self._tracer is None and self.wanted():
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer()
        return self._tracer

    def capture_lambda_handler(self, handler: F) -> F:
        traced: Callable[..., Any] | None = None

        @functools.wraps(handler)
        def run(event: Any, context: Any) -> Any:
            nonlocal traced
            if traced is None:  # decided once per environment
                tracer = self.load()
                traced = handler if tracer is None else tracer.capture_lambda_handler(handler)
            return traced(event, context)

        return run  # type: ignore[return-value]

    def capture_method(self, method: F) -> F:
        traced: Callable[..., Any] | None = None

        @functools.wraps(method)
        def run(*args: Any, **kwargs: Any) -> Any:
            nonlocal traced
            if traced is None:  # the handler's decorator has loaded the tracer by now, if it is on
                traced = method if self._tracer is None else self._tracer.capture_method(method)
            return traced(*args, **kwargs)

        return run  # type: ignore[return-value]


logger = Logger()
metrics = Metrics()
tracer = LazyTracer()

__all__ = ["TRACE_DOWNSTREAM_ENV", "LazyTracer", "MetricUnit", "logger", "metrics", "tracer"]
