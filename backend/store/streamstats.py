"""Stream health from CloudWatch: what Kinesis and Lambda publish about the actions stream.

On AWS, Kinesis publishes `IncomingRecords` and Lambda publishes `IteratorAge` for an event source
mapping; the local runtime's poller publishes the same two metrics to the embedded endpoint, so this
code reads them the same way everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


class StreamStats:
    def __init__(self, client: Any, stream_name: str, processor_function: str) -> None:
        self._cw = client
        self._stream = stream_name
        self._function = processor_function

    def _stat(
        self, namespace: str, metric: str, dimension: tuple[str, str], stat: str, window: timedelta
    ) -> float | None:
        end = datetime.now(UTC)
        out = self._cw.get_metric_statistics(
            Namespace=namespace,
            MetricName=metric,
            Dimensions=[{"Name": dimension[0], "Value": dimension[1]}],
            StartTime=end - window,
            EndTime=end,
            Period=60,
            Statistics=[stat],
        )
        points = out.get("Datapoints") or []
        if not points:
            return None
        values = [float(p[stat]) for p in points]
        return sum(values) if stat == "Sum" else max(values)

    def records_last_minute(self) -> int | None:
        value = self._stat(
            "AWS/Kinesis", "IncomingRecords", ("StreamName", self._stream), "Sum", timedelta(seconds=60)
        )
        return int(value) if value is not None else None

    def iterator_age_ms(self) -> float | None:
        return self._stat(
            "AWS/Lambda", "IteratorAge", ("FunctionName", self._function), "Maximum", timedelta(minutes=5)
        )
