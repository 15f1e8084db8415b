"""Stream health: what Kinesis and Lambda publish to CloudWatch about the streams, and the depth of the
dead-letter queues.

On AWS, Kinesis publishes `IncomingRecords` and Lambda publishes `IteratorAge` for an event source
mapping; the local runtime's pollers publish the same metrics to the embedded endpoint, so this code
reads them the same way everywhere. Queue depths are read from SQS itself (the attribute the alarms'
`ApproximateNumberOfMessagesVisible` metric samples), which answers at once where the metric lags by
minutes.
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

    def iterator_age_ms(self, function: str | None = None) -> float | None:
        """The largest iterator age of the last five minutes of `function`'s event source mapping (by
        default the processor's, on the actions stream)."""
        return self._stat(
            "AWS/Lambda",
            "IteratorAge",
            ("FunctionName", function or self._function),
            "Maximum",
            timedelta(minutes=5),
        )


class QueueDepths:
    """Messages waiting in the dead-letter queues."""

    def __init__(self, client: Any) -> None:
        self._sqs = client
        self._urls: dict[str, str] = {}

    def depth(self, queue: str) -> int:
        url = self._urls.get(queue)
        if url is None:
            url = self._urls[queue] = str(self._sqs.get_queue_url(QueueName=queue)["QueueUrl"])
        out = self._sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
        return int(out["Attributes"]["ApproximateNumberOfMessages"])
